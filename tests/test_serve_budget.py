"""Budgets never leak: at every budget 0..40 on the trained tiny model, neither `content` nor `reasoning_content`
holds a think tag, text the model itself closed as thinking never reaches `content`, and a streamed reply equals
the non-streamed one exactly. (The parser's own guarantees are property-tested in lesson 04.)"""
import asyncio, json, os

import httpx
import pytest

from reasoning_nb.data import THINK_CLOSE, THINK_OPEN, split_thinking

Q = 'What is 347+589?'
BUDGETS = range(41)


@pytest.fixture(scope='module')
def app():
    from reasoning_nb.serve import create_app, load_for_serving
    if os.environ.get('REASONING_NB_TEST_MODEL'): path = os.environ['REASONING_NB_TEST_MODEL']
    else:
        from reasoning_nb.runs import cached_run
        path = cached_run('tiny')
    model, tok = load_for_serving(str(path))
    return create_app(model, tok, 'tiny', max_concurrency=48, max_queue=128), tok


async def _one(client, budget, stream):
    body = {'model': 'tiny', 'messages': [{'role': 'user', 'content': Q}], 'max_tokens': 80,
            'max_thinking_tokens': budget, 'stream': stream}
    if not stream:
        m = (await client.post('/v1/chat/completions', json=body)).json()['choices'][0]['message']
        return m['reasoning_content'] or '', m['content']
    r, c = [], []
    async with client.stream('POST', '/v1/chat/completions', json=body) as resp:
        async for line in resp.aiter_lines():
            if not line.startswith('data: ') or line == 'data: [DONE]': continue
            for ch in json.loads(line[6:])['choices']:
                r.append(ch['delta'].get('reasoning_content') or ''); c.append(ch['delta'].get('content') or '')
    return ''.join(r), ''.join(c)


async def _all(app):
    app.state.engine.start()   # what the app's lifespan does (httpx's ASGI transport does not run lifespans)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url='http://t', timeout=300) as client:
            return await asyncio.gather(*[_one(client, b, s) for b in BUDGETS for s in (False, True)])
    finally: app.state.engine.stop()


def test_budgets_0_to_40_never_leak(app):
    app, tok = app
    out = asyncio.run(_all(app))
    assert sum(bool(c.strip()) for r, c in out) > len(out) // 2, 'most budgets still get an answer'
    for i, b in enumerate(BUDGETS):
        (r, c), (rs, cs) = out[2 * i], out[2 * i + 1]
        assert (rs, cs) == (r, c), f'budget {b}: stream {(rs, cs)!r} != non-stream {(r, c)!r}'
        for tag in (THINK_OPEN, THINK_CLOSE): assert tag not in c and tag not in r, f'budget {b}: a tag leaked: {(r, c)!r}'
        if b == 0: assert r == '', 'budget 0 means thinking off'
