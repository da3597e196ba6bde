"""Serving throughput at 32 concurrent clients: ours with its default admission limit and with hand-set ones,
`transformers serve --continuous-batching`, and a naive one-`generate`-per-request server, side by side in one run.

    python benchmarks/serve_throughput.py                 # the trained tiny run (cached), 64 requests x 64 tokens
    python benchmarks/serve_throughput.py --quick         # 32 requests x 32 tokens: a minute or two
    python benchmarks/serve_throughput.py --model RUN_OR_PRESET --concurrency 1,4,16,32 --hand-set 16,32,64

Every server starts first and stays up; then each concurrency level runs on one server after the other (load drift
on a shared machine hits all alike), after a short warm-up of each, `--rounds` times: each figure is the server's
fastest round (other processes on the machine only ever slow a run down). All get the same streamed requests (3-digit
additions, thinking on, greedy). The naive server (benchmarks/naive_server.py) and ours get `ignore_eos`, so
every request generates exactly `--max-tokens` tokens; `transformers serve` rejects that field, so its requests stop
at the model's end of turn (the same greedy reply, usually shorter): tokens/s counts the tokens each server reports
in `usage`. It serves the run exported by `reasoning-nb export` (a plain model dir). "ours, default" is
`reasoning-nb serve` without `--max-concurrency` (the limit it derives from the KV cache and free memory, read
from its start-up line); "ours, --max-concurrency N" sets it by hand (with a queue that never refuses). Reported:
aggregate generated tokens/s, p50/p95 time to first token and end-to-end latency; then, at the highest level, the
default against the best hand-set value (tok/s) and against `transformers serve` (TTFT p50).
`--no-transformers` / `--no-naive` skip those columns. Not measured: prompt-heavy workloads, real GPU kernels.
"""
import argparse, asyncio, contextlib, json, os, random, re, statistics, sys, tempfile, time
from pathlib import Path

import httpx

from reasoning_nb.serve import ServerProcess   # `reasoning-nb serve` (or another command) on a free port


def _prompts(n, seed=0):
    rng = random.Random(seed)
    return [f'What is {rng.randint(100, 999)}+{rng.randint(100, 999)}?' for _ in range(n)]


_TEXT = re.compile(r'"(?:reasoning_content|content)":\s*"(?!")')

def _has_text(line):
    "True for an SSE chunk carrying generated text (thinking or answer)."
    return line.startswith('data: {') and bool(_TEXT.search(line))


async def _one(client, url, prompt, max_tokens, extra):
    "Stream one request; returns (ttft, latency, generated tokens)."
    body = {'messages': [{'role': 'user', 'content': prompt}], 'max_tokens': max_tokens, 'stream': True,
            'stream_options': {'include_usage': True}, 'temperature': 0, **extra}
    t0, ttft, tokens = time.perf_counter(), None, 0
    async with client.stream('POST', url + '/v1/chat/completions', json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():   # parse JSON only where needed: the client shares the CPU with the server
            if ttft is None and _has_text(line): ttft = time.perf_counter() - t0
            if '"usage"' in line and (u := json.loads(line[6:]).get('usage')): tokens = u['completion_tokens']
    return ttft or time.perf_counter() - t0, time.perf_counter() - t0, tokens


async def run_load(url, prompts, concurrency, max_tokens, extra=None):
    "Send `prompts` with at most `concurrency` in flight; returns a dict of aggregate numbers."
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=concurrency + 4)) as client:
        extra = extra if extra is not None else {'ignore_eos': True}
        async def go(p):
            async with sem: return await _one(client, url, p, max_tokens, extra)
        t0 = time.perf_counter()
        res = await asyncio.gather(*(go(p) for p in prompts))
        wall = time.perf_counter() - t0
    q = lambda xs, p: statistics.quantiles(xs, n=100, method='inclusive')[p - 1]
    ttft, lat, toks = [r[0] for r in res], [r[1] for r in res], sum(r[2] for r in res)
    return {'concurrency': concurrency, 'requests': len(res), 'tokens': toks, 'wall_s': wall, 'tok_per_s': toks / wall,
            'ttft_p50': q(ttft, 50), 'ttft_p95': q(ttft, 95), 'lat_p50': q(lat, 50), 'lat_p95': q(lat, 95)}


def bench(servers, prompts, levels, max_tokens, extras=None, rounds=1):
    "Warm up, then run each level on every server in turn, `rounds` times; keeps each one's fastest round."
    runs, extras = {name: [[] for _ in levels] for name in servers}, extras or {}
    for name, srv in servers.items():
        asyncio.run(run_load(srv.url, prompts[:4], 2, 8, extras.get(name)))
    for _ in range(rounds):   # interleaved: load drift on a shared machine hits all alike
        for i, c in enumerate(levels):
            for name, srv in servers.items():
                runs[name][i].append(asyncio.run(run_load(srv.url, prompts, c, max_tokens, extras.get(name))))
    return {name: [max(rs, key=lambda r: r['tok_per_s']) for rs in per] for name, per in runs.items()}


def admission_limit(srv) -> str:
    "The max-concurrency a server chose, from its start-up line ('?' if it printed none)."
    m = re.search(r'max-concurrency (\d+)', srv.logs())
    return m.group(1) if m else '?'


def table(rows, limits, naive='naive') -> str:
    "Markdown table: every server per concurrency, with each one's tokens/s over the naive server's."
    lines = ['| concurrency | server | max-concurrency | tok/s | TTFT p50 / p95 (s) | latency p50 / p95 (s) | '
             'tok/s vs naive |', '|---|---|---|---|---|---|---|']
    for i in range(len(next(iter(rows.values())))):
        for name, rs in rows.items():
            r = rs[i]
            vs = f"{r['tok_per_s'] / rows[naive][i]['tok_per_s']:.1f}x" if naive in rows else ''
            lines.append(f"| {r['concurrency']} | {name} | {limits.get(name, '')} | {r['tok_per_s']:.0f} | "
                         f"{r['ttft_p50']:.3f} / {r['ttft_p95']:.3f} | {r['lat_p50']:.2f} / {r['lat_p95']:.2f} | "
                         f"{vs} |")
    return '\n'.join(lines)


def verdict(rows, limits) -> str:
    "At the highest level: the default against the best hand-set limit and against `transformers serve`."
    last = {name: rs[-1] for name, rs in rows.items()}
    d, hand = last[DEFAULT], {n: r for n, r in last.items() if n.startswith('ours, --max')}
    out = [f"at {d['concurrency']} clients, ours with its default limit ({limits[DEFAULT]}):"]
    if hand:
        best = max(hand, key=lambda n: hand[n]['tok_per_s'])
        b = hand[best]
        out.append(f"- tok/s {d['tok_per_s']:.0f} vs {b['tok_per_s']:.0f} for the best hand-set ({best}): "
                   f"{d['tok_per_s'] / b['tok_per_s']:.2f}x; TTFT p50 {d['ttft_p50']:.3f} vs {b['ttft_p50']:.3f} s")
    if TRANSFORMERS in last:
        t = last[TRANSFORMERS]
        out.append(f"- TTFT p50 {d['ttft_p50']:.3f} s vs {t['ttft_p50']:.3f} s for {TRANSFORMERS} "
                   f"({d['ttft_p50'] / t['ttft_p50']:.2f}x); tok/s {d['tok_per_s']:.0f} vs {t['tok_per_s']:.0f}")
    return '\n'.join(out)


NAIVE, DEFAULT = 'naive (generate per request)', 'ours, default'
TRANSFORMERS = 'transformers serve --continuous-batching'


def tiny_run_dir() -> str:
    "The trained tiny run (trained once and cached by the package)."
    from reasoning_nb.runs import cached_run
    return str(cached_run('tiny'))


def start_servers(stack, a) -> tuple[dict, dict]:
    "Start every server of the comparison; returns ({name: server}, {name: extra request fields})."
    servers, extras = {}, {}
    if not a.no_naive:
        cmd = [sys.executable, str(Path(__file__).with_name('naive_server.py')), '--model', a.model]
        servers[NAIVE] = stack.enter_context(ServerProcess(a.model, cmd=cmd))
    if not a.no_transformers:
        from reasoning_nb.export import export_for_serving
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        model_dir = export_for_serving(a.model, tmp / 'model', name='bench')   # it wants a plain model dir
        cmd = ['transformers', 'serve', str(model_dir), '--continuous-batching', '--host', '127.0.0.1']
        servers[TRANSFORMERS] = stack.enter_context(ServerProcess(model_dir, cmd=cmd))
        extras[TRANSFORMERS] = {'model': str(model_dir)}   # it rejects `ignore_eos` and routes by model path
    servers[DEFAULT] = stack.enter_context(ServerProcess(a.model))
    for n in a.hand_set:
        servers[f'ours, --max-concurrency {n}'] = stack.enter_context(
            ServerProcess(a.model, '--max-concurrency', n, '--max-queue', 2 * a.requests))
    return servers, extras


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', default=None, help='run dir or preset (default: the trained tiny run)')
    p.add_argument('--requests', type=int, default=64)
    p.add_argument('--max-tokens', type=int, default=64)
    p.add_argument('--concurrency', default='32', help='comma-separated client concurrency levels')
    p.add_argument('--hand-set', default='16,32,64', help='hand-set --max-concurrency values to compare with')
    p.add_argument('--rounds', type=int, default=3, help='runs per server and level; the fastest is reported')
    p.add_argument('--quick', action='store_true', help='32 requests x 32 tokens, 2 rounds')
    p.add_argument('--json', default=None, help='also write the rows to this file')
    p.add_argument('--no-transformers', action='store_true', help='skip `transformers serve --continuous-batching`')
    p.add_argument('--no-naive', action='store_true', help='skip the naive one-generate-per-request server')
    a = p.parse_args(argv)
    if a.quick: a.requests, a.max_tokens, a.rounds = 32, 32, 2
    a.model = a.model or tiny_run_dir()
    a.hand_set = [int(n) for n in a.hand_set.split(',') if n]
    prompts, levels = _prompts(a.requests), [int(c) for c in a.concurrency.split(',')]
    load = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        servers, extras = start_servers(stack, a)
        limits = {n: admission_limit(s) for n, s in servers.items() if n.startswith('ours')}
        rows = bench(servers, prompts, levels, a.max_tokens, extras, a.rounds)
    print(f'model: {a.model}; {a.requests} requests x up to {a.max_tokens} tokens, best of {a.rounds} rounds; '
          f'{os.cpu_count()} CPUs, '
          f'load average {load:.1f} -> {os.getloadavg()[0]:.1f}\n')
    print(table(rows, limits, NAIVE))
    print('\n' + verdict(rows, limits))
    if a.json: Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
