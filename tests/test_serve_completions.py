"""`/v1/completions` answers the requests lm-evaluation-harness's `local-completions` model sends for
log-likelihood tasks (MMLU by log-likelihood): token-id prompts, `echo`, `logprobs`, `max_tokens: 1`. The
parsing below is lm-eval 0.4's `LocalCompletionsAPI.parse_logprobs`; the numbers are checked against the model."""
from operator import itemgetter

import httpx
import pytest
import torch

from reasoning_nb.serve import ServerProcess


@pytest.fixture(scope='module')
def setup():
    from reasoning_nb.runs import load_trained, cached_run
    run = cached_run('tiny')
    model, tok = load_trained(run)
    with ServerProcess(run, '--served-model-name', 'tiny') as srv: yield srv, model, tok


def parse_logprobs(outputs, ctxlens):
    "lm-eval's parser: (sum of continuation logprobs, is_greedy) per choice."
    res = []
    for out in outputs if isinstance(outputs, list) else [outputs]:
        for choice, ctxlen in zip(sorted(out['choices'], key=itemgetter('index')), ctxlens):
            assert ctxlen > 0
            lps, tops = choice['logprobs']['token_logprobs'][ctxlen:-1], choice['logprobs']['top_logprobs'][ctxlen:-1]
            res.append((sum(lps), all(t == max(top.values()) for t, top in zip(lps, tops))))
    return res


def _loglik(model, ctx, cont):
    ids = torch.tensor([ctx + cont])
    lp = torch.log_softmax(model(ids).logits[0].float(), -1)
    return sum(float(lp[len(ctx) + i - 1, t]) for i, t in enumerate(cont)), all(
        int(lp[len(ctx) + i - 1].argmax()) == t for i, t in enumerate(cont))


def test_lm_eval_loglikelihood_request(setup):
    srv, model, tok = setup
    ctx = tok.encode('<|im_start|>user\nWhat is 12+30?<|im_end|>\n<|im_start|>assistant\n', add_special_tokens=False)
    conts = [tok.encode(s, add_special_tokens=False) for s in ('42', '43', '<think>\n')]
    body = {'model': 'tiny', 'prompt': [ctx + c for c in conts], 'temperature': 0, 'max_tokens': 1, 'logprobs': 1, 'seed': 1234, 'echo': True}
    r = httpx.post(srv.base_url + '/completions', json=body, timeout=120)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out['object'] == 'text_completion' and len(out['choices']) == 3
    got = parse_logprobs(out, [len(ctx)] * 3)
    for (lp, greedy), c in zip(got, conts):
        ref_lp, ref_greedy = _loglik(model, ctx, c)
        assert abs(lp - ref_lp) < 1e-3 and greedy == ref_greedy, (lp, ref_lp, greedy, ref_greedy)
    ch = out['choices'][0]
    assert ch['text'].startswith(tok.decode(ctx + conts[0], skip_special_tokens=False))   # echo: prompt, then the generated token
    assert len(ch['logprobs']['tokens']) == len(ctx) + len(conts[0]) + 1 and ch['logprobs']['token_logprobs'][0] is None


def test_generation_and_errors(setup):
    srv, model, tok = setup
    r = httpx.post(srv.base_url + '/completions', json={'prompt': 'What is', 'max_tokens': 5}, timeout=120).json()
    assert r['choices'][0]['logprobs'] is None and r['usage']['completion_tokens'] <= 5
    for body, param in [({'prompt': []}, 'prompt'), ({'prompt': 'x', 'stream': True}, 'stream'), ({'prompt': 'x', 'echo': 1}, 'echo'),
                        ({'prompt': [[10**9]]}, 'prompt'), ({'prompt': 'x', 'max_tokens': -1}, 'max_tokens')]:
        e = httpx.post(srv.base_url + '/completions', json=body, timeout=30)
        assert e.status_code == 400 and e.json()['error']['param'] == param, (body, e.text)
    assert httpx.post(srv.base_url + '/completions', json={'prompt': 'x', 'model': 'nope'}, timeout=30).status_code == 404
