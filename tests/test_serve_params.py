"""Every OpenAI chat parameter is honoured or refused by name (issue 15, item 2), the batch size defaults from the
memory (item 3) and a server reachable from elsewhere without a key says so (item 6). A real `reasoning-nb serve`
process on the trained tiny model, driven by the official `openai` client."""
import json, os, time

import httpx
import openai
import pytest

from reasoning_nb.engine import serving_limits
from reasoning_nb.serve import ServerProcess

Q = 'What is 347+589?'


@pytest.fixture(scope='module')
def srv(model_path):
    with ServerProcess(model_path, '--served-model-name', 'tiny') as s: yield s   # batch size from the memory


@pytest.fixture(scope='module')
def client(srv): return openai.OpenAI(base_url=srv.base_url, api_key='unused', max_retries=0)


@pytest.fixture(scope='module')
def tok(model_path):
    from reasoning_nb.serve import load_for_serving
    return load_for_serving(model_path)[1]


def chat(client, q=Q, **kw):
    kw.setdefault('max_tokens', 96)
    return client.chat.completions.create(model='tiny', messages=[{'role': 'user', 'content': q}], **kw)


REFUSED = [('tools', [{'type': 'function', 'function': {'name': 'add', 'parameters': {}}}]),
           ('tool_choice', 'required'), ('functions', [{'name': 'add'}]), ('function_call', 'auto'),
           ('response_format', {'type': 'json_object'}),
           ('response_format', {'type': 'json_schema', 'json_schema': {'name': 'x', 'schema': {}}}),
           ('audio', {'voice': 'alloy', 'format': 'wav'}), ('modalities', ['text', 'audio']),
           ('prediction', {'type': 'content', 'content': 'x'}), ('web_search_options', {}),
           ('verbosity', 'low'), ('store', True), ('service_tier', 'flex')]


@pytest.mark.parametrize('param,value', REFUSED, ids=[f'{p}={json.dumps(v)[:20]}' for p, v in REFUSED])
def test_refused_parameter_is_named(srv, param, value):
    body = {'messages': [{'role': 'user', 'content': Q}], param: value}
    if param == 'web_search_options': body[param] = {'search_context_size': 'low'}
    r = httpx.post(srv.base_url + '/chat/completions', json=body, timeout=60)
    assert r.status_code == 400, r.text
    err = r.json()['error']
    assert err['param'] == param and f"'{param}'" in err['message'] and 'not supported by this server' in err['message'], err
    assert err['code'] == 'unsupported_parameter'


def test_harmless_defaults_accepted_and_unknown_logged_once(srv):
    body = {'messages': [{'role': 'user', 'content': Q}], 'max_tokens': 4, 'tools': None, 'tool_choice': 'none',
            'response_format': {'type': 'text'}, 'modalities': ['text'], 'user': 'u1', 'store': False,
            'metadata': {'k': 'v'}, 'top_k': 5, 'my_extension': 1}
    for _ in range(2): assert httpx.post(srv.base_url + '/chat/completions', json=body, timeout=60).status_code == 200
    logs = srv.logs()
    assert logs.count("ignoring unknown request field 'my_extension'") == 1, logs[-2000:]
    assert logs.count("ignoring unknown request field 'top_k'") == 1


def test_n_3_choices_from_one_request(client):
    r = chat(client, n=3, temperature=1.0, seed=3)
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert all(c.message.content is not None and '<think>' not in c.message.content for c in r.choices)
    greedy = chat(client, n=2)   # greedy: both choices equal the single answer
    one = chat(client).choices[0].message
    assert [(c.message.reasoning_content, c.message.content) for c in greedy.choices] == [(one.reasoning_content, one.content)] * 2
    assert greedy.usage.completion_tokens == 2 * chat(client).usage.completion_tokens


def test_n_streams_every_choice(client):
    chunks = list(chat(client, n=2, stream=True, stream_options={'include_usage': True}))
    by = {0: [], 1: []}
    for ch in chunks:
        for c in ch.choices: by[c.index].append(c.delta.content or '')
    one = chat(client).choices[0].message.content
    assert [''.join(by[0]), ''.join(by[1])] == [one, one]
    finishes = [c.finish_reason for ch in chunks for c in ch.choices if c.finish_reason]
    assert finishes == ['stop', 'stop'] and chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_logprobs_one_entry_per_content_token(client, tok):
    r = chat(client, logprobs=True, top_logprobs=3)
    c = r.choices[0]
    entries = c.logprobs.content
    assert ''.join(e.token for e in entries) == c.message.content, (entries, c.message.content)
    content_ids = tok.encode(c.message.content, add_special_tokens=False)
    assert len(entries) == len(content_ids), (len(entries), content_ids)
    for e in entries:
        assert e.logprob <= 0 and len(e.top_logprobs) == 3 and bytes(e.bytes).decode() == e.token
        assert e.top_logprobs[0].logprob >= e.logprob - 1e-6   # greedy: the chosen token is the best
    reasoning = c.logprobs.model_extra['reasoning']   # thinking tokens go beside content, not into it
    assert len(reasoning) + len(entries) <= r.usage.completion_tokens and len(reasoning) > 0
    assert chat(client).choices[0].logprobs is None


def test_logprobs_streamed_equal_non_streamed(client):
    full = chat(client, logprobs=True).choices[0].logprobs.content
    chunks = list(chat(client, logprobs=True, stream=True))
    streamed = [e for ch in chunks for c in ch.choices if c.logprobs for e in (c.logprobs.content or [])]
    assert [(e.token, round(e.logprob, 4)) for e in streamed] == [(e.token, round(e.logprob, 4)) for e in full]


def test_logit_bias_bans_the_greedy_first_token(client, tok):
    plain = chat(client).choices[0].message.content
    first = tok.encode(plain, add_special_tokens=False)[0]
    banned = chat(client, logit_bias={str(first): -100}).choices[0].message.content
    assert tok.encode(banned, add_special_tokens=False)[:1] != [first], (plain, banned)


@pytest.mark.parametrize('penalty', ['frequency_penalty', 'presence_penalty'])
def test_penalties_change_a_long_greedy_reply(client, penalty):
    long = dict(q='What is 12+30?', max_tokens=96, extra_body={'ignore_eos': True})   # past its end, it repeats itself
    plain = chat(client, **long).choices[0].message
    pen = chat(client, **{penalty: 2.0}, **long).choices[0].message
    assert (pen.reasoning_content, pen.content) != (plain.reasoning_content, plain.content)
    assert chat(client, **{penalty: 0.0}, **long).choices[0].message.content == plain.content   # zero: no change


def test_limits_from_memory_printed_at_start(srv):
    line = next(l for l in srv.logs().splitlines() if l.startswith('reasoning-nb serve:'))
    assert 'max-concurrency' in line and 'KiB/token' in line and 'GiB free on cpu' in line and 'given' not in line, line
    n = int(line.split('max-concurrency ')[1].split(',')[0])
    fit = int(line.split(' rows fit')[0].rsplit(' ', 1)[1])
    assert n == max(1, min(fit, 16 * os.cpu_count())), (n, fit, line)   # 16 rows per core unless memory is shorter
    assert f'max-queue {4 * n}' in line


def test_max_concurrency_overrides_and_exposure_warning(model_path):
    with ServerProcess(model_path, '--max-concurrency', 3, '--host', '0.0.0.0') as s:
        logs = s.logs()
        assert 'anyone who can reach port' in logs and 'without --api-key' in logs, logs[-1500:]
        assert 'max-concurrency 3, max-queue 12' in logs and '(--max-concurrency given)' in logs, logs[-1500:]
        assert httpx.get(s.url + '/metrics').status_code == 200 and httpx.get(s.url + '/health').status_code == 200
    with ServerProcess(model_path, '--max-concurrency', 2, '--api-key', 'k', '--host', '0.0.0.0') as s:
        assert 'anyone who can reach' not in s.logs()


def test_serving_limits_values():
    llama_kv = 2 * 32 * 8 * 128 * 2   # Llama-3.1-8B in bf16: 128 KiB a token
    gpu = serving_limits(llama_kv, 2048, 24 << 30, 'cuda', fraction=0.9)
    assert (gpu['max_concurrency'], gpu['max_queue'], gpu['limited_by']) == (86, 344, 'memory')
    assert serving_limits(llama_kv, 2048, 1 << 28, 'cuda')['max_concurrency'] == 1          # never below one row
    assert serving_limits(4096, 512, 64 << 30, 'cuda')['max_concurrency'] == 256            # vLLM's max_num_seqs cap
    cpu = serving_limits(4096, 512, 16 << 30, 'cpu', cores=2)
    assert (cpu['max_concurrency'], cpu['limited_by']) == (32, '16 per core')
    assert serving_limits(4096, 512, 16 << 30, 'cpu', cores=8)['max_concurrency'] == 128
    assert serving_limits(131072, 4096, 2 << 30, 'cpu', cores=16)['max_concurrency'] == 2   # memory before cores


@pytest.mark.parametrize('budget', [1, 3, 6])
def test_logprobs_with_a_budget_still_spell_the_answer(client, budget):
    "After a forced `</think>` the tokens wait until the model shows they were the answer or more thinking."
    r = chat(client, logprobs=True, extra_body={'max_thinking_tokens': budget})
    c = r.choices[0]
    assert ''.join(e.token for e in c.logprobs.content) == c.message.content, (c.logprobs.content, c.message)
    streamed = [e for ch in chat(client, logprobs=True, stream=True, extra_body={'max_thinking_tokens': budget})
                for x in ch.choices if x.logprobs for e in (x.logprobs.content or [])]
    assert [e.token for e in streamed] == [e.token for e in c.logprobs.content]
