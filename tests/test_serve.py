"""The OpenAI-compatible server as users meet it: a real `reasoning-nb serve` process on a free localhost port.

Runs on the trained tiny model (`runs.cached_run('tiny')`, cached after the first training) or on the model named by
REASONING_NB_TEST_MODEL. Two server processes: an open one, and a locked-down one (API key, one batch row,
one queue slot, 0.3 s timeout) for auth, 429 and timeouts.
"""
import asyncio, json, random, subprocess, sys, time

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from reasoning_nb.serve import ServerProcess

KEY = 'sk-test-key'
Q = 'What is 347+589?'


@pytest.fixture(scope='module')
def srv(model_path):
    with ServerProcess(model_path, '--served-model-name', 'tiny', '--max-concurrency', 32, '--max-queue', 64) as s: yield s


@pytest.fixture(scope='module')
def locked(model_path):
    with ServerProcess(model_path, '--served-model-name', 'tiny', '--api-key', KEY, '--max-concurrency', 1,
                       '--max-queue', 1, '--timeout', 0.3) as s: yield s


@pytest.fixture(scope='module')
def client(srv): return openai.OpenAI(base_url=srv.base_url, api_key='unused', max_retries=0)


def chat(client, content=Q, system='detailed thinking on', **kw):
    msgs = ([{'role': 'system', 'content': system}] if system else []) + [{'role': 'user', 'content': content}]
    return client.chat.completions.create(model='tiny', messages=msgs, max_tokens=kw.pop('max_tokens', 96), **kw)


def metrics(url):
    fams = text_string_to_metric_families(httpx.get(url + '/metrics').text)
    return {s.name + (json.dumps(s.labels, sort_keys=True) if s.labels else ''): s.value for f in fams for s in f.samples}


def wait_idle(url, timeout=10):
    "Metrics show nothing running or waiting (slots are freed at the next engine step)."
    end = time.time() + timeout
    while time.time() < end:
        m = metrics(url)
        if m['num_requests_running'] == 0 and m['num_requests_waiting'] == 0: return m
        time.sleep(0.05)
    raise AssertionError(f'server not idle: {m}')


# --- the official client -------------------------------------------------------------------------------------

def test_models_health_cli_help(srv, client):
    assert [m.id for m in client.models.list()] == ['tiny']
    assert httpx.get(srv.url + '/health').json()['status'] == 'ok'
    out = subprocess.run([sys.executable, '-m', 'reasoning_nb', 'serve', '--help'], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and all(o in out.stdout for o in ['--model', '--host', '--port', '--api-key', '--max-concurrency', '--max-queue'])


def test_non_stream_separates_thinking(client):
    r = chat(client)
    m = r.choices[0].message
    assert m.reasoning_content and m.reasoning == m.reasoning_content
    assert '<think>' not in m.content and '</think>' not in m.content and m.content.strip()
    assert '<think>' not in m.reasoning_content
    assert r.usage.completion_tokens_details.reasoning_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.choices[0].finish_reason == 'stop'


def test_stream_matches_non_stream(client):
    full = chat(client, temperature=0).choices[0].message
    chunks = list(chat(client, temperature=0, stream=True, stream_options={'include_usage': True}))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    thinking = ''.join(getattr(d, 'reasoning_content', None) or '' for d in deltas)
    answer = ''.join(d.content or '' for d in deltas)
    assert (thinking.strip(), answer) == (full.reasoning_content, full.content)
    assert deltas[0].role == 'assistant'
    first_answer = next(i for i, d in enumerate(deltas) if d.content)
    assert all(not getattr(d, 'reasoning_content', None) for d in deltas[first_answer:])
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens_details.reasoning_tokens > 0
    assert sum(1 for d in deltas if d.content or getattr(d, 'reasoning_content', None)) > 3   # token by token


def test_raw_sse_format(srv):
    body = {'messages': [{'role': 'user', 'content': Q}], 'stream': True, 'max_tokens': 8}
    with httpx.stream('POST', srv.base_url + '/chat/completions', json=body) as r:
        assert r.status_code == 200 and r.headers['content-type'].startswith('text/event-stream')
        lines = [l for l in r.iter_lines() if l]
    assert lines[-1] == 'data: [DONE]' and all(l.startswith('data: ') for l in lines)
    assert json.loads(lines[-2][6:])['choices'][0]['finish_reason'] == 'length'


def test_thinking_off(client):
    for r in [chat(client, system='detailed thinking off'),
              chat(client, extra_body={'chat_template_kwargs': {'enable_thinking': False}}),
              chat(client, system=None, extra_body={'max_thinking_tokens': 0})]:
        m = r.choices[0].message
        assert m.reasoning_content is None and r.usage.completion_tokens_details.reasoning_tokens == 0 and m.content.strip()


def test_auto_mode(client):
    auto, off = (chat(client, 'Hello!', system=f'detailed thinking {m}') for m in ('auto', 'off'))
    assert auto.choices[0].message == off.choices[0].message   # no signal: exactly the off prompt (greedy)
    assert chat(client, Q, system='detailed thinking auto').usage.completion_tokens_details.reasoning_tokens > 0


@pytest.mark.parametrize('field', ['max_thinking_tokens', 'thinking_token_budget', 'nvext'])
def test_budget_respected(client, field):
    free = chat(client).usage.completion_tokens_details.reasoning_tokens
    for budget in [1, 6]:
        extra = {'nvext': {'max_thinking_tokens': budget}} if field == 'nvext' else {field: budget}
        r = chat(client, extra_body=extra)
        assert r.usage.completion_tokens_details.reasoning_tokens < free   # thinking the model closes again after the forced close counts too
        assert r.choices[0].message.content.strip(), 'the model answers after the forced </think>'


def test_stop_seed_and_max_tokens(client):
    r = chat(client, stop=['3'])   # stop strings cut the answer only: the thinking keeps its 3s
    m = r.choices[0].message
    assert '3' in m.reasoning_content and '3' not in m.content and r.choices[0].finish_reason == 'stop'
    a, b = (chat(client, temperature=1.0, seed=7).choices[0].message for _ in range(2))
    assert (a.reasoning_content, a.content) == (b.reasoning_content, b.content)
    r = chat(client, max_tokens=5)
    assert r.usage.completion_tokens == 5 and r.choices[0].finish_reason == 'length'


# --- concurrency and disconnects -----------------------------------------------------------------------------

async def _stream(http, url, q, max_tokens=48, drop_after=None):
    body = {'messages': [{'role': 'user', 'content': q}], 'stream': True, 'max_tokens': max_tokens,
            'stream_options': {'include_usage': True}, 'ignore_eos': bool(drop_after)}
    lines = []
    async with http.stream('POST', url + '/v1/chat/completions', json=body) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line: lines.append(line)
            if drop_after and len(lines) >= drop_after: return 'dropped'
    assert lines[-1] == 'data: [DONE]'
    return json.loads(lines[-2][6:])['usage']['completion_tokens']


def test_32_concurrent_streams_all_complete(srv):
    rng = random.Random(0)
    qs = [f'What is {rng.randint(100, 999)}+{rng.randint(100, 999)}?' for _ in range(32)]
    async def main():
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=40)) as http:
            return await asyncio.gather(*(_stream(http, srv.url, q) for q in qs))
    before = metrics(srv.url)
    done = asyncio.run(main())
    assert len(done) == 32 and all(isinstance(n, int) and n > 0 for n in done)
    after = wait_idle(srv.url)
    assert after['generation_tokens_total'] - before['generation_tokens_total'] >= sum(done)


def test_disconnects_free_slots(srv):
    async def main():
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=40)) as http:
            jobs = [_stream(http, srv.url, Q, max_tokens=400, drop_after=3 if i % 2 else None) for i in range(16)]
            return await asyncio.gather(*jobs)
    before = metrics(srv.url)
    res = asyncio.run(main())
    assert res.count('dropped') == 8 and all(isinstance(n, int) for n in res if n != 'dropped')
    after = wait_idle(srv.url)
    aborted = after.get('request_success_total{"finished_reason": "abort"}', 0) - before.get('request_success_total{"finished_reason": "abort"}', 0)
    assert aborted >= 1   # the dropped streams that were still generating were cancelled, not run to the end


def test_non_stream_disconnect_frees_slot(srv):
    body = {'messages': [{'role': 'user', 'content': Q}], 'ignore_eos': True}   # runs to the 512-token context
    key = 'request_success_total{"finished_reason": "abort"}'
    before = metrics(srv.url).get(key, 0)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(srv.base_url + '/chat/completions', json=body, timeout=0.2)
    assert wait_idle(srv.url, timeout=5).get(key, 0) == before + 1


# --- errors: every class, never a 500 ------------------------------------------------------------------------

BAD = [b'{not json', b'[]', b'"str"', b'{}', json.dumps({'messages': []}).encode(),
       json.dumps({'messages': [{'role': 'robot', 'content': 'x'}]}).encode(),
       json.dumps({'messages': [{'role': 'user'}]}).encode(),
       json.dumps({'messages': [{'role': 'user', 'content': [{'type': 'image_url', 'image_url': {'url': 'x'}}]}]}).encode(),
       json.dumps({'messages': [{'role': 'user', 'content': 'x'}], 'temperature': -1}).encode(),
       json.dumps({'messages': [{'role': 'user', 'content': 'x'}], 'top_p': 1.5}).encode(),
       json.dumps({'messages': [{'role': 'user', 'content': 'x'}], 'max_tokens': 'many'}).encode(),
       json.dumps({'messages': [{'role': 'user', 'content': 'x'}], 'max_tokens': 10**6}).encode(),
       json.dumps({'messages': [{'role': 'user', 'content': 'x ' * 5000}]}).encode(),
       json.dumps({'messages': [{'role': 'user', 'content': 'x'}], 'stop': 5}).encode(),
       json.dumps({'messages': [{'role': 'user', 'content': 'x'}], 'seed': 'abc'}).encode(),
       json.dumps({'messages': [{'role': 'user', 'content': 'x'}], 'chat_template_kwargs': {'enable_thinking': 'maybe'}}).encode(),
       json.dumps({'messages': [{'role': 'user', 'content': 'x'}], 'max_thinking_tokens': -3}).encode(),
       json.dumps({'messages': [{'role': 'user', 'content': 'x'}], 'stream': True, 'stream_options': 'yes'}).encode(),
       b'\xff\xfe\x00garbage']


@pytest.mark.parametrize('body', BAD)
def test_bad_requests_are_400(srv, body):
    r = httpx.post(srv.base_url + '/chat/completions', content=body, headers={'content-type': 'application/json'})
    assert r.status_code == 400, r.text
    assert set(r.json()['error']) == {'message', 'type', 'param', 'code'} and r.json()['error']['type'] == 'invalid_request_error'


def test_client_errors_map_to_openai_exceptions(client):
    with pytest.raises(openai.NotFoundError): client.chat.completions.create(model='gpt-9', messages=[{'role': 'user', 'content': 'x'}])
    with pytest.raises(openai.BadRequestError): client.chat.completions.create(model='tiny', messages=[])


def test_other_http_errors(srv):
    assert httpx.get(srv.url + '/nope').status_code == 404
    assert httpx.get(srv.base_url + '/chat/completions').status_code == 405
    r = httpx.post(srv.base_url + '/chat/completions', content=b'{"a": "' + b'x' * (2 << 20) + b'"}')
    assert r.status_code == 413 and 'error' in r.json()


def test_fuzz_never_500(srv):
    rng = random.Random(1)
    atoms = [None, True, 0, -1, 1.5, 1e308, 'x', '', [], {}, [{}], {'role': 'user'}, [{'role': 'user', 'content': None}]]
    keys = ['messages', 'model', 'temperature', 'top_p', 'max_tokens', 'stop', 'seed', 'stream', 'n', 'stream_options',
            'chat_template_kwargs', 'nvext', 'max_thinking_tokens', 'ignore_eos']
    with httpx.Client(timeout=30) as http:
        for _ in range(60):
            body = {k: rng.choice(atoms) for k in rng.sample(keys, rng.randint(1, 6))}
            if rng.random() < 0.5: body['messages'] = [{'role': 'user', 'content': 'hi'}]
            if body.get('stream') is True: body['max_tokens'] = 4
            r = http.post(srv.base_url + '/chat/completions', json=body)
            assert r.status_code < 500, (body, r.text)
    wait_idle(srv.url)


def test_auth(locked):
    assert httpx.get(locked.base_url + '/models').status_code == 401
    bad = openai.OpenAI(base_url=locked.base_url, api_key='wrong', max_retries=0)
    with pytest.raises(openai.AuthenticationError): bad.chat.completions.create(model='tiny', messages=[{'role': 'user', 'content': 'x'}])
    good = openai.OpenAI(base_url=locked.base_url, api_key=KEY, max_retries=0)
    assert good.chat.completions.create(model='tiny', messages=[{'role': 'user', 'content': Q}], max_tokens=4).usage.completion_tokens == 4
    assert httpx.get(locked.url + '/health').status_code == 200   # health and metrics stay open for probes


def test_queue_full_429_and_timeout(locked):
    body = {'messages': [{'role': 'user', 'content': Q}], 'ignore_eos': True}   # runs to the 512-token context
    async def main():
        async with httpx.AsyncClient(timeout=30, headers={'Authorization': f'Bearer {KEY}'}) as http:
            return await asyncio.gather(*(http.post(locked.base_url + '/chat/completions', json=body) for _ in range(6)))
    rs = asyncio.run(main())
    codes = sorted(r.status_code for r in rs)
    assert set(codes) == {429, 504}, codes   # one runs, one waits, the rest bounce; ~480 tokens cannot finish in 0.3 s
    assert all(r.headers.get('retry-after') for r in rs if r.status_code == 429)
    assert all(set(r.json()['error']) == {'message', 'type', 'param', 'code'} for r in rs)
    m = wait_idle(locked.url)
    assert m['http_requests_total{"path": "/v1/chat/completions", "status": "429"}'] == codes.count(429)


def test_metrics_parse(srv):
    body = {'messages': [{'role': 'user', 'content': Q}]}   # one reply that thinks, whichever tests ran before on this worker
    r = httpx.post(srv.base_url + '/chat/completions', json=body, timeout=60)
    assert r.json()['usage']['completion_tokens_details']['reasoning_tokens'] > 0, r.text
    bad = httpx.post(srv.base_url + '/chat/completions', json={}, timeout=60)   # and one refused request
    assert bad.status_code == 400, bad.text
    m = wait_idle(srv.url)
    for name in ['num_requests_running', 'num_requests_waiting', 'time_to_first_token_seconds_count',
                 'e2e_request_latency_seconds_count', 'prompt_tokens_total', 'generation_tokens_total', 'reasoning_tokens_count']:
        assert name in m, name
    assert m['time_to_first_token_seconds_count'] > 0 and m['reasoning_tokens_sum'] > 0
    assert any(k.startswith('http_requests_total') and '"400"' in k for k in m)
