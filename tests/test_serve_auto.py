"""`auto` thinking decided by the model (a run trained to choose, marked by `rl.json`) or by the rule (`--auto rule`).

On the trained tiny model (or REASONING_NB_TEST_MODEL) with a fake `rl.json`: the prompt carries `detailed thinking
auto`; `usage.thinking` agrees with `reasoning_tokens` and with the reasoning/content split whichever way the model
goes (a think block with thinking, an empty `<think></think>`, a direct answer: the tiny model was never trained on
the auto prompt, so a wrapper forces each shape); a stream equals its non-streamed twin; `--auto rule` keeps the
rule's on/off; the start-up line names the policy. In-process apps (httpx's ASGI transport), one server process.
"""
import asyncio, json
from pathlib import Path

import httpx
import openai
import pytest
import torch

from reasoning_nb.data import SYSTEM_AUTO, SYSTEM_OFF, SYSTEM_ON, THINK_CLOSE, THINK_OPEN
from reasoning_nb.protocol import parse_request
from reasoning_nb.serve import RL_MARKER, ServerProcess, auto_policy, auto_warning, create_app, load_for_serving
from reasoning_nb.handlers import prepare
from reasoning_nb.thinking import EMPTY_THINK

Q, HI = 'What is 347+589?', 'Hello!'
AUTO = {'role': 'system', 'content': SYSTEM_AUTO}


@pytest.fixture(scope='module')
def rl_run(model_path, tmp_path_factory):
    "The trained run with a fake `rl.json`: what lesson 05's RL run leaves behind."
    if not Path(model_path).is_dir(): pytest.skip('needs a run directory to mark as an RL run')
    run = tmp_path_factory.mktemp('rl') / 'rl-run'
    run.mkdir()
    for p in Path(model_path).iterdir(): (run / p.name).symlink_to(p.resolve())
    (run / RL_MARKER).write_text(json.dumps({'fake': True, 'system_prompt': SYSTEM_AUTO}))
    return run


@pytest.fixture(scope='module')
def loaded(rl_run):
    torch.set_num_threads(1)
    return load_for_serving(str(rl_run))


class Scripted(torch.nn.Module):
    "The model with its first tokens forced: 'think' opens a block, 'empty' writes `<think></think>`, 'direct' never opens one."
    def __init__(self, inner, tok, script):
        super().__init__()
        self.inner, self.script, self.config = inner, script, inner.config
        self.generation_config = inner.generation_config
        self.open, self.close = tok.convert_tokens_to_ids(THINK_OPEN), tok.convert_tokens_to_ids(THINK_CLOSE)

    def forward(self, input_ids, **kw):
        out = self.inner(input_ids=input_ids, **kw)
        logits, prefill = out.logits.clone(), input_ids.shape[1] > 1
        for row, last in enumerate(input_ids[:, -1].tolist()):
            want = self.open if prefill else self.close if self.script == 'empty' and last == self.open else None
            if self.script == 'direct': logits[row, -1, self.open] = -1e9
            elif want is not None:
                logits[row, -1] = -1e9
                logits[row, -1, want] = 1e9
        out.logits = logits
        return out


def app_for(loaded, script=None, **kw):
    model, tok = loaded
    return create_app(Scripted(model, tok, script) if script else model, tok, 'tiny', max_concurrency=16, **kw)


async def _ask(client, body, stream):
    "(reasoning, content, usage) of one request, non-streamed or streamed."
    body = {'model': 'tiny', 'max_tokens': 48, **body}
    if not stream:
        r = (await client.post('/v1/chat/completions', json=body)).json()
        m = r['choices'][0]['message']
        return m['reasoning_content'] or '', m['content'], r['usage']
    r, c, usage = [], [], None
    body = {**body, 'stream': True, 'stream_options': {'include_usage': True}}
    async with client.stream('POST', '/v1/chat/completions', json=body) as resp:
        async for line in resp.aiter_lines():
            if not line.startswith('data: ') or line == 'data: [DONE]': continue
            chunk = json.loads(line[6:])
            usage = chunk.get('usage') or usage
            for ch in chunk['choices']:
                r.append(ch['delta'].get('reasoning_content') or '')
                c.append(ch['delta'].get('content') or '')
    return ''.join(r), ''.join(c), usage


def serve(app, bodies):
    "Every body non-streamed and streamed through `app`, all at once: [(non-stream reply, stream reply), ...]."
    async def go():
        app.state.engine.start()   # what the app's lifespan does (httpx's ASGI transport does not run lifespans)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url='http://t', timeout=120) as cl:
                out = await asyncio.gather(*[_ask(cl, b, s) for b in bodies for s in (False, True)])
        finally: app.state.engine.stop()
        return list(zip(out[::2], out[1::2]))
    return asyncio.run(go())


def check(pair, chosen_by, mode=None):
    "Stream equals non-stream; usage.thinking agrees with the split and reasoning_tokens; no tag anywhere."
    (r, c, usage), streamed = pair
    assert streamed == (r, c, usage), f'stream {streamed!r} != non-stream {(r, c, usage)!r}'
    thinking, n_reasoning = usage['thinking'], usage['completion_tokens_details']['reasoning_tokens']
    assert thinking['chosen_by'] == chosen_by, usage
    assert thinking['mode'] == ('on' if r else 'off') == ('on' if n_reasoning > 0 else 'off'), (r, c, usage)
    if mode: assert thinking['mode'] == mode, (r, c, usage)
    for tag in (THINK_OPEN, THINK_CLOSE): assert tag not in r and tag not in c, (r, c)
    return r, c, usage


def prompt_of(app, body):
    return app.state.tokenizer.decode(prepare(app, parse_request(body))[0].prompt)


def test_policy_and_prompt(rl_run, model_path, loaded):
    assert auto_policy(rl_run)[0] == 'model' and auto_policy(model_path)[0] == 'rule'
    assert auto_policy(rl_run, 'rule')[0] == 'rule' and auto_warning(model_path, 'model') and not auto_warning(rl_run, 'model')
    model_app, rule_app = app_for(loaded, auto='model'), app_for(loaded, auto='rule', default_thinking='auto')
    for body in [{'messages': [AUTO, {'role': 'user', 'content': HI}]},
                 {'messages': [{'role': 'user', 'content': HI}], 'chat_template_kwargs': {'enable_thinking': 'auto'}}]:
        p = prompt_of(model_app, body)
        assert SYSTEM_AUTO in p and SYSTEM_ON not in p and SYSTEM_OFF not in p, p
        assert THINK_OPEN not in p and THINK_CLOSE not in p, p   # nothing decided for the model
    assert prompt_of(model_app, {'messages': [AUTO, {'role': 'user', 'content': HI}], 'max_thinking_tokens': 0}).endswith(EMPTY_THINK)
    assert SYSTEM_ON in prompt_of(model_app, {'messages': [{'role': 'user', 'content': HI}]})   # --thinking on: the default
    p_on, p_off = (prompt_of(rule_app, {'messages': [{'role': 'user', 'content': q}]}) for q in (Q, HI))
    assert SYSTEM_ON in p_on and SYSTEM_AUTO not in p_on and SYSTEM_OFF in p_off and p_off.endswith(EMPTY_THINK)


@pytest.mark.parametrize('script,mode', [('think', 'on'), ('empty', 'off'), ('direct', 'off')])
def test_model_choice_reported(loaded, script, mode):
    app = app_for(loaded, script, auto='model')
    bodies = [{'messages': [AUTO, {'role': 'user', 'content': Q}]},
              {'messages': [{'role': 'user', 'content': Q}], 'chat_template_kwargs': {'enable_thinking': 'auto'}},
              {'messages': [AUTO, {'role': 'user', 'content': Q}], 'max_thinking_tokens': 4},   # the budget applies
              {'messages': [AUTO, {'role': 'user', 'content': Q}], 'max_thinking_tokens': 0}]
    out = serve(app, bodies)
    for pair in out[:3]: check(pair, 'model', mode if pair is not out[2] or script != 'think' else None)
    check(out[3], 'request', 'off')
    if script == 'think':
        r, _, usage = check(out[2], 'model')
        full = out[0][0][2]['completion_tokens_details']['reasoning_tokens']
        assert usage['completion_tokens_details']['reasoning_tokens'] < full, (usage, full)
    if script == 'empty':   # the block's tags were generated, yet they are not reasoning
        assert out[0][0][2]['completion_tokens'] >= 2 and out[0][0][2]['completion_tokens_details']['reasoning_tokens'] == 0


def test_rule_keeps_todays_behaviour(loaded):
    app = app_for(loaded)   # no rl.json: the rule
    on, hi, explicit_on, explicit_off = serve(app, [
        {'messages': [AUTO, {'role': 'user', 'content': Q}]}, {'messages': [AUTO, {'role': 'user', 'content': HI}]},
        {'messages': [{'role': 'system', 'content': SYSTEM_ON}, {'role': 'user', 'content': Q}]},
        {'messages': [{'role': 'system', 'content': SYSTEM_OFF}, {'role': 'user', 'content': HI}]}])
    r, c, _ = check(on, 'rule', 'on')
    assert (r, c) == check(explicit_on, 'system', 'on')[:2]   # the rule chose on: the same reply as asking for on
    assert check(hi, 'rule', 'off')[:2] == check(explicit_off, 'system', 'off')[:2]


def test_natural_choice_and_startup_line(rl_run, model_path):
    "Whatever the untrained model does with the auto prompt, the report agrees; the start-up lines name the policy."
    with ServerProcess(rl_run, '--served-model-name', 'tiny') as srv:
        assert 'auto thinking: the model decides' in srv.logs() and 'WARNING' not in srv.logs(), srv.logs()
        client = openai.OpenAI(base_url=srv.base_url, api_key='unused', max_retries=0)
        for q in (Q, HI, 'What is 12+30?'):
            r = client.chat.completions.create(model='tiny', max_tokens=48, messages=[AUTO, {'role': 'user', 'content': q}])
            thinking, m = r.usage.model_extra['thinking'], r.choices[0].message
            assert thinking['chosen_by'] == 'model', thinking
            assert (thinking['mode'] == 'on') == bool(m.reasoning_content) == (r.usage.completion_tokens_details.reasoning_tokens > 0)
            assert THINK_OPEN not in m.content and THINK_CLOSE not in m.content
    with ServerProcess(model_path, '--served-model-name', 'tiny', '--auto', 'model') as srv:
        logs = srv.logs()
        assert 'auto thinking: the model decides (prompt: detailed thinking auto); --auto model' in logs, logs
        assert 'WARNING: --auto model' in logs and 'no rl.json' in logs, logs
