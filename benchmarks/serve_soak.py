"""Soak test: minutes of mixed, seeded traffic against `reasoning-nb serve`; exits non-zero when the server misbehaves.

    python benchmarks/serve_soak.py --minutes 10                 # starts a server on the trained tiny run
    python benchmarks/serve_soak.py --model RUN --server-args='--max-concurrency 32'
    python benchmarks/serve_soak.py --base-url http://127.0.0.1:8000 --server-pid PID   # a running server

`--concurrency` clients loop until the time is up, each on its own seeded random stream (the sequence of requests
is reproducible, their interleaving is not). Each request is drawn from the mix: streamed or not; thinking on/off
by system prompt ("detailed thinking on/off") or by `chat_template_kwargs.enable_thinking`, or the server default;
`max_thinking_tokens` budgets; greedy or sampled; `stop`; `n` and the optional parameters the server accepted in
one probe request each (said in the report); multi-turn histories; ~10 % client disconnects (a stream closed after
a few chunks, a non-streamed request cancelled); ~`--bad` of hostile or invalid bodies (malformed JSON, wrong
types, unsupported parameters, deep nesting, huge numbers, lone surrogates, wrong content type), which must get 4xx.
A warm-up (`--warmup` s, same mix, counted) comes first; the server's RSS is read from /proc after it and after
the run has drained. Prints one markdown table. Fails (exit 1) on: any 5xx; a broken response (connection reset,
a stream without `[DONE]`, an error chunk); a think tag (`<think>`, `</think>`) in `content`, `reasoning_content`
or `reasoning`; requests still running after the drain; RSS growth >= `--max-rss-growth` %; the server dying.
Bad bodies answered 2xx and good bodies answered 4xx are counted and named (the contract says neither should
happen) but do not fail the run; so are replies whose `reasoning_tokens` exceed `max_thinking_tokens` (plus 8 for
the forced `</think>`): after the forced close a model may think again, and that text is counted as thinking.
Latency is end-to-end per finished request on this machine, client included.
Not measured: long prompts, many hours, several server processes.
"""
import argparse, asyncio, json, os, random, re, statistics, sys, time
from pathlib import Path

import httpx

TAGS = ('<think>', '</think>')
MODES = ('system on', 'system off', 'kwargs on', 'kwargs off', 'default')


def rss_mib(pid):
    "Resident memory of process `pid` in MiB, from /proc (None when unknown)."
    try: text = Path(f'/proc/{pid}/status').read_text()
    except (OSError, TypeError): return None
    m = re.search(r'^VmRSS:\s+(\d+) kB', text, re.M)
    return int(m.group(1)) / 1024 if m else None


def _json(obj) -> bytes:
    return json.dumps(obj).encode()


def _chat(content, **kw) -> dict:
    return {'messages': [{'role': 'user', 'content': content}], 'max_tokens': 8, **kw}


J = 'application/json'
BAD_BODIES = {   # name -> (raw body, content type): each must answer 4xx
    'truncated JSON': (b'{"messages": [{"role": "user", "content": "hi"', J),
    'not JSON': (b'hello there', J),
    'empty body': (b'', J),
    'raw NUL bytes': (b'{"messages": [{"role": "user", "content": "a\x00b"}]}', J),
    'nested 100000 deep': (b'[' * 100_000 + b']' * 100_000, J),
    'JSON array body': (_json([_chat('hi')]), J),
    'no messages': (_json({'max_tokens': 4}), J),
    'empty messages': (_json({'messages': []}), J),
    'messages is a string': (_json({'messages': 'What is 2+2?'}), J),
    'role is a number': (_json({'messages': [{'role': 5, 'content': 'hi'}]}), J),
    'unknown role': (_json({'messages': [{'role': 'wizard', 'content': 'hi'}]}), J),
    'content is a dict': (_json({'messages': [{'role': 'user', 'content': {'text': 'hi'}}]}), J),
    'max_tokens is a string': (_json(_chat('hi', max_tokens='ten')), J),
    'max_tokens negative': (_json(_chat('hi', max_tokens=-5)), J),
    'max_tokens 400 digits': (_json(_chat('hi', max_tokens=0))[:-2] + b'9' * 400 + b'}', J),
    'temperature 1e999': (b'{"messages": [{"role": "user", "content": "hi"}], "temperature": 1e999}', J),
    'temperature is a string': (_json(_chat('hi', temperature='hot')), J),
    'top_p 7': (_json(_chat('hi', top_p=7)), J),
    'stream is a string': (_json(_chat('hi', stream='yes')), J),
    'lone surrogate': (b'{"messages": [{"role": "user", "content": "a\\ud800b"}]}', J),
    'max_thinking_tokens -1': (_json(_chat('hi', max_thinking_tokens=-1)), J),
    'n is a string': (_json(_chat('hi', n='two')), J),
    'n 0': (_json(_chat('hi', n=0)), J),
    'unsupported tools': (_json(_chat('hi', tools=[{'type': 'function', 'function': {'name': 'f'}}])), J),
    'unsupported tool_choice': (_json(_chat('hi', tool_choice='auto')), J),
    'unsupported response_format': (_json(_chat('hi', response_format={'type': 'json_object'})), J),
    'unsupported audio': (_json(_chat('hi', audio={'voice': 'alloy', 'format': 'wav'})), J),
    'unknown model': (_json(_chat('hi', model='no-such-model')), J),
    'wrong content type': (_json(_chat('hi')), 'text/plain'),
}

OPTIONAL = {   # feature -> extra fields; used in the mix when the probe request answers 200
    'n': {'n': 2},
    'logprobs': {'logprobs': True, 'top_logprobs': 2},
    'penalties': {'presence_penalty': 0.5, 'frequency_penalty': 0.5},
    'logit_bias': {'logit_bias': {'0': -100}},
    'seed': {'seed': 7},
}


def prompt(rng) -> list:
    "A user turn (3-digit addition), sometimes after an earlier exchange."
    q = f'What is {rng.randint(100, 999)}+{rng.randint(100, 999)}?'
    if rng.random() < 0.2:
        return [{'role': 'user', 'content': 'What is 12+30?'}, {'role': 'assistant', 'content': '42'},
                {'role': 'user', 'content': q}]
    return [{'role': 'user', 'content': q}]


def good_request(rng, features) -> dict:
    "One valid request drawn from the mix: {'body', 'mode', 'disconnect', 'n'}."
    mode, msgs = rng.choice(MODES), prompt(rng)
    if mode.startswith('system'): msgs = [{'role': 'system', 'content': f'detailed thinking {mode.split()[1]}'}, *msgs]
    body = {'messages': msgs, 'max_tokens': rng.randint(4, 48), 'stream': rng.random() < 0.5}
    if mode.startswith('kwargs'): body['chat_template_kwargs'] = {'enable_thinking': mode.endswith('on')}
    if rng.random() < 0.5: body.update(temperature=0.8, top_p=0.9)
    else: body['temperature'] = 0
    if rng.random() < 0.3: body['max_thinking_tokens'] = rng.choice([0, 2, 8, 16])
    if rng.random() < 0.1: body['stop'] = ['\n\n']
    if body['stream'] and rng.random() < 0.5: body['stream_options'] = {'include_usage': True}
    for name in features:
        if rng.random() < (0.2 if name == 'n' else 0.1): body.update(OPTIONAL[name])
    if 'n' in body: body['n'] = rng.choice([2, 3])
    return {'body': body, 'mode': mode, 'disconnect': rng.random() < 0.1, 'n': body.get('n', 1)}


class Tally:
    "What the clients saw."
    def __init__(self):
        self.status, self.latency, self.ttft = {}, [], []
        self.leaks, self.broken, self.bad_ok, self.bad_5xx, self.good_4xx = [], [], {}, {}, {}
        self.requests = self.bad = self.disconnects = self.reasoning_off = 0
        self.over_budget, self.off_examples = [], []

    def code(self, status):
        self.status[status // 100] = self.status.get(status // 100, 0) + 1

    def check_text(self, where, text, mode):
        "Count a think tag in `text`; thinking text from a request that switched thinking off is counted apart."
        if text and any(t in text for t in TAGS): self.leaks.append(f'{where} [{mode}]: {text[:120]!r}')


async def send_bad(client, url, rng, t: Tally):
    name = rng.choice(sorted(BAD_BODIES))
    raw, ctype = BAD_BODIES[name]
    t.bad += 1
    try: r = await client.post(url, content=raw, headers={'content-type': ctype})
    except httpx.HTTPError as e:
        t.broken.append(f'bad body {name!r}: {type(e).__name__} {e}')
        return
    t.code(r.status_code)
    if r.status_code >= 500: t.bad_5xx[name] = r.status_code
    elif r.status_code < 400: t.bad_ok[name] = r.status_code
    elif 'error' not in (r.json() if r.headers.get('content-type', '').startswith('application/json') else {}):
        t.broken.append(f'bad body {name!r}: {r.status_code} without an OpenAI error object')


def check_message(t, choices, req, usage):
    "Checks on a finished non-streamed reply."
    if len(choices) != req['n']: t.broken.append(f"asked n={req['n']}, got {len(choices)} choices")
    for c in choices:
        m = c.get('message') or {}
        for k in ('content', 'reasoning_content', 'reasoning'): t.check_text(k, m.get(k), req['mode'])
        if req['mode'].endswith('off') and (m.get('reasoning_content') or '').strip():
            t.reasoning_off += 1
            t.off_examples.append(f"{req['mode']}, n={req['n']}: reasoning {m.get('reasoning_content')!r}, "
                                  f"content {m.get('content')!r}, body {req['body']}"[:400])
    budget = req['body'].get('max_thinking_tokens')
    used = ((usage or {}).get('completion_tokens_details') or {}).get('reasoning_tokens')
    if budget is not None and used is not None and used > req['n'] * (budget + 8):
        r = [(c.get('message') or {}).get('reasoning_content') for c in choices]
        t.over_budget.append(f"budget {budget}, n={req['n']}, {req['mode']}: {used} reasoning tokens in {r}"[:300])


async def send_stream(client, url, req, rng, t: Tally, t0):
    texts, done, first, cut = {}, False, None, rng.randint(1, 6) if req['disconnect'] else None
    async with client.stream('POST', url, json=req['body']) as r:
        t.code(r.status_code)
        if r.status_code != 200:
            await r.aread()
            return r.status_code, r.text
        lines = 0
        async for line in r.aiter_lines():
            if not line.startswith('data: '): continue
            lines += 1
            if cut and lines >= cut:
                t.disconnects += 1
                return 200, None
            if line == 'data: [DONE]':
                done = True
                continue
            chunk = json.loads(line[6:])
            if 'error' in chunk: t.broken.append(f"error chunk: {chunk['error']}")
            for c in chunk.get('choices', []):
                d, parts = c.get('delta') or {}, texts.setdefault(c.get('index', 0), ['', ''])
                parts[0] += d.get('content') or ''
                parts[1] += d.get('reasoning_content') or d.get('reasoning') or ''
                if first is None and (d.get('content') or d.get('reasoning_content')): first = time.perf_counter() - t0
    if not done: t.broken.append(f"stream without [DONE] ({lines} events) for {req['body']}")
    if len(texts) != req['n'] and not cut: t.broken.append(f"stream asked n={req['n']}, got {len(texts)} choices")
    for i, (content, reasoning) in texts.items():
        t.check_text(f'streamed content[{i}]', content, req['mode'])
        t.check_text(f'streamed reasoning_content[{i}]', reasoning, req['mode'])
        if req['mode'].endswith('off') and reasoning.strip():
            t.reasoning_off += 1
            t.off_examples.append(f"streamed, {req['mode']}: reasoning {reasoning!r}, content {content!r}, "
                                  f"body {req['body']}"[:400])
    if first is not None: t.ttft.append(first)
    return 200, None


async def send_good(client, url, rng, features, t: Tally):
    req, t0 = good_request(rng, features), time.perf_counter()
    try:
        if req['body']['stream']: status, text = await send_stream(client, url, req, rng, t, t0)
        elif req['disconnect']:
            try: r = await asyncio.wait_for(client.post(url, json=req['body']), rng.uniform(0.02, 0.5))
            except asyncio.TimeoutError:
                t.disconnects += 1
                return
            t.code(r.status_code)
            return
        else:
            r = await client.post(url, json=req['body'])
            t.code(r.status_code)
            status, text = r.status_code, r.text
            if status == 200:
                out = r.json()
                check_message(t, out.get('choices', []), req, out.get('usage'))
    except httpx.HTTPError as e:
        t.broken.append(f"{type(e).__name__} {e} for {req['body']}")
        return
    if status >= 400:
        key = f'{status}: {text[:160]}'
        t.good_4xx[key] = t.good_4xx.get(key, 0) + 1
    elif not req['disconnect']: t.latency.append(time.perf_counter() - t0)


async def client_loop(i, base, seed, end, features, bad, t: Tally):
    "One client: requests until `end`, drawn from its own seeded stream."
    rng, url = random.Random(seed * 1000 + i), base + '/v1/chat/completions'
    async with httpx.AsyncClient(timeout=120) as client:
        while time.perf_counter() < end:
            t.requests += 1
            try:
                if rng.random() < bad: await send_bad(client, url, rng, t)
                else: await send_good(client, url, rng, features, t)
            except (ValueError, KeyError, TypeError, AttributeError) as e:   # a reply that is not the JSON it should be
                t.broken.append(f'unreadable reply: {type(e).__name__} {e}')


async def probe(base) -> dict:
    "One request per optional parameter: {feature: 'used' | why not}."
    out = {}
    async with httpx.AsyncClient(timeout=120) as client:
        for name, extra in OPTIONAL.items():
            r = await client.post(base + '/v1/chat/completions', json=_chat('What is 2+2?', max_tokens=4, **extra))
            try: choices = r.json()['choices'] if r.status_code == 200 else None
            except (ValueError, KeyError, TypeError): choices = []
            if choices is None: out[name] = f'refused ({r.status_code})'
            elif not choices: out[name] = 'unreadable reply'
            elif name == 'n' and len(choices) != 2: out[name] = f'ignored ({len(choices)} choice)'
            elif name == 'logprobs' and not choices[0].get('logprobs'): out[name] = 'ignored (no logprobs)'
            else: out[name] = 'used'
    return out


def running(base):
    "(running, waiting) from the server's /metrics, None when it has none."
    try: text = httpx.get(base + '/metrics', timeout=10).text
    except httpx.HTTPError: return None
    vals = [re.search(rf'^{k}\S* ([0-9.e+-]+)$', text, re.M) for k in ('num_requests_running', 'num_requests_waiting')]
    return tuple(float(v.group(1)) for v in vals) if all(vals) else None


def drain(base, wait=60):
    "Wait until the server runs nothing; returns what still runs or waits (None without metrics)."
    end, now = time.time() + wait, running(base)
    while now and sum(now) and time.time() < end:
        time.sleep(0.5)
        now = running(base)
    return now


def quantile(xs, p):
    if len(xs) < 2: return xs[0] if xs else float('nan')
    return statistics.quantiles(xs, n=100, method='inclusive')[p - 1]


async def traffic(base, seconds, a, features, t):
    end = time.perf_counter() + seconds
    await asyncio.gather(*(client_loop(i, base, a.seed, end, features, a.bad, t) for i in range(a.concurrency)))


def soak(base, a, pid=None) -> dict:
    "Probe, warm up, soak, drain; returns the report."
    features = asyncio.run(probe(base))
    used, t = [k for k, v in features.items() if v == 'used'], Tally()
    asyncio.run(traffic(base, a.warmup, a, used, t))
    drain(base)
    rss0, t.latency, t.ttft = rss_mib(pid), [], []   # latency: after the warm-up only
    t0 = time.perf_counter()
    asyncio.run(traffic(base, a.minutes * 60, a, used, t))
    secs, stuck = time.perf_counter() - t0, drain(base)
    rss1 = rss_mib(pid)
    try: alive = httpx.get(base + '/health', timeout=10).status_code == 200
    except httpx.HTTPError: alive = False
    return {'seconds': secs, 'warmup_s': a.warmup, 'concurrency': a.concurrency, 'seed': a.seed, 'features': features,
            'requests': t.requests, 'bad_bodies': t.bad, '2xx': t.status.get(2, 0), '4xx': t.status.get(4, 0),
            '5xx': t.status.get(5, 0), 'broken': len(t.broken), 'leaks': len(t.leaks), 'disconnects': t.disconnects,
            'reasoning_when_off': t.reasoning_off, 'over_budget': len(t.over_budget), 'bad_answered_2xx': t.bad_ok,
            'bad_answered_5xx': t.bad_5xx, 'good_answered_4xx': t.good_4xx, 'latency_p50': quantile(t.latency, 50),
            'latency_p99': quantile(t.latency, 99), 'ttft_p50': quantile(t.ttft, 50), 'finished': len(t.latency),
            'stuck_after_drain': sum(stuck) if stuck else 0 if stuck is not None else None,
            'rss_start_mib': rss0, 'rss_end_mib': rss1,
            'rss_growth_pct': 100 * (rss1 - rss0) / rss0 if rss0 and rss1 else None, 'server_alive': alive,
            'examples': {'leaks': t.leaks[:5], 'broken': t.broken[:5], 'over_budget': t.over_budget[:3],
                         'thinking_when_off': t.off_examples[:3]}}


def failures(rep, max_growth) -> list[str]:
    "Why the run failed (empty: it passed)."
    why = [f'{rep["5xx"]} 5xx responses'] if rep['5xx'] else []
    if rep['broken']: why.append(f'{rep["broken"]} broken responses')
    if rep['leaks']: why.append(f'{rep["leaks"]} think-tag leaks')
    if rep['stuck_after_drain']: why.append(f'{rep["stuck_after_drain"]:g} requests still running after the drain')
    if rep['rss_growth_pct'] is not None and rep['rss_growth_pct'] >= max_growth:
        why.append(f'RSS grew {rep["rss_growth_pct"]:.1f} % (limit {max_growth:g} %)')
    if rep['server_alive'] is False: why.append('the server stopped answering /health')
    return why


def table(rep, max_growth) -> str:
    "The report as one markdown table."
    f = lambda x, spec='.3f': 'n/a' if x is None or x != x else format(x, spec)
    rows = [('duration after warm-up (s)', f'{rep["seconds"]:.0f} (+{rep["warmup_s"]:g} warm-up)', ''),
            ('clients (concurrency)', rep['concurrency'], ''),
            ('requests (bad bodies among them)', f'{rep["requests"]} ({rep["bad_bodies"]})', ''),
            ('2xx', rep['2xx'], ''), ('4xx', rep['4xx'], ''), ('5xx', rep['5xx'], 'must be 0'),
            ('broken responses (reset, no [DONE], error chunk)', rep['broken'], 'must be 0'),
            ('think-tag leaks', rep['leaks'], 'must be 0'),
            ('client disconnects (streams cut, also in 2xx; posts cancelled)', rep['disconnects'], ''),
            ('requests still running after drain', f(rep['stuck_after_drain'], 'g'), 'must be 0'),
            ('bad bodies answered 2xx', len(rep['bad_answered_2xx']), 'should be 0'),
            ('good bodies answered 4xx', sum(rep['good_answered_4xx'].values()), 'should be 0'),
            ('thinking text with thinking off', rep['reasoning_when_off'], 'should be 0'),
            ('non-streamed replies over their thinking budget (+8)', rep['over_budget'], 'counted'),
            ('latency p50 / p99 (s)', f'{f(rep["latency_p50"])} / {f(rep["latency_p99"])}', ''),
            ('stream TTFT p50 (s)', f(rep['ttft_p50']), ''),
            ('server RSS after warm-up / at end (MiB)',
             f'{f(rep["rss_start_mib"], ".0f")} / {f(rep["rss_end_mib"], ".0f")}', ''),
            ('RSS growth', f(rep['rss_growth_pct'], '+.1f') + ' %', f'< {max_growth:g} %')]
    why = failures(rep, max_growth)
    rows.append(('verdict', 'FAIL: ' + '; '.join(why) if why else 'PASS', ''))
    return '\n'.join(['| measure | value | limit |', '|---|---|---|'] + [f'| {a} | {b} | {c} |' for a, b, c in rows])


def details(rep) -> str:
    "Lines naming what went wrong, for whoever fixes the server."
    out = [f'bad body {k!r} answered {v}' for k, v in {**rep['bad_answered_5xx'], **rep['bad_answered_2xx']}.items()]
    out += [f'good body answered {k} (x{v})' for k, v in rep['good_answered_4xx'].items()]
    out += [f'leak: {x}' for x in rep['examples']['leaks']] + [f'broken: {x}' for x in rep['examples']['broken']]
    out += [f'over budget: {x}' for x in rep['examples']['over_budget']]
    out += [f'thinking with thinking off: {x}' for x in rep['examples']['thinking_when_off']]
    return '\n'.join(out)


def tiny_run_dir() -> str:
    "The trained tiny run (trained once and cached by the package)."
    from reasoning_nb.runs import cached_run
    return str(cached_run('tiny'))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--minutes', type=float, default=10, help='soak length after the warm-up')
    p.add_argument('--warmup', type=float, default=None, help='warm-up seconds (default: 10 %% of the soak, 5-60 s)')
    p.add_argument('--model', default=None, help='run dir or preset to serve (default: the trained tiny run)')
    p.add_argument('--server-args', default='', help="more `reasoning-nb serve` arguments, e.g. '--max-concurrency 32'")
    p.add_argument('--base-url', default=None, help='soak a running server instead of starting one')
    p.add_argument('--server-pid', type=int, default=None, help='with --base-url: the server process, for RSS')
    p.add_argument('--concurrency', type=int, default=8, help='clients in flight')
    p.add_argument('--bad', type=float, default=0.1, help='share of hostile or invalid bodies')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--max-rss-growth', type=float, default=10.0, help='percent; at or above it the run fails')
    p.add_argument('--json', default=None, help='also write the report to this file')
    a = p.parse_args(argv)
    a.warmup = a.warmup if a.warmup is not None else min(60.0, max(5.0, 6 * a.minutes))
    load = os.getloadavg()[0]
    if a.base_url: rep, desc = soak(a.base_url.rstrip('/'), a, a.server_pid), a.base_url
    else:
        from reasoning_nb.serve import ServerProcess   # `reasoning-nb serve` in a subprocess on a free port
        a.model = a.model or tiny_run_dir()
        with ServerProcess(a.model, *a.server_args.split()) as srv: rep, desc = soak(srv.url, a, srv.proc.pid), srv.url
    rep['load_avg_1m_start'], rep['load_avg_1m_end'], rep['cpus'] = load, os.getloadavg()[0], os.cpu_count()
    feats = ', '.join(f'{k}: {v}' for k, v in rep['features'].items())
    print(f'server: {desc} ({a.model or "external"} {a.server_args}); seed {a.seed}; {rep["cpus"]} CPUs, '
          f'load average {load:.1f} -> {rep["load_avg_1m_end"]:.1f}\noptional parameters probed: {feats}\n')
    print(table(rep, a.max_rss_growth))
    if (d := details(rep)): print('\n' + d)
    if a.json: Path(a.json).write_text(json.dumps(rep, indent=1))
    return 1 if failures(rep, a.max_rss_growth) else 0


if __name__ == '__main__':
    sys.exit(main())
