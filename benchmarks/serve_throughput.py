"""Serving throughput: the seed's one-`generate`-per-request server vs our continuous-batching server.

    python benchmarks/serve_throughput.py                      # the trained tiny model (train.tiny_run())
    python benchmarks/serve_throughput.py --model RUN_OR_PRESET --requests 64 --max-tokens 64

Both servers run side by side and get the same 64 streamed requests (3-digit additions, thinking on, greedy,
`ignore_eos` so every request generates exactly `--max-tokens` tokens and both do identical work) at
concurrency 1, 4, 16 and 32, each level run on one server then the other. Reported per run: aggregate
generated tokens/s, p50/p95 time to first token and end-to-end latency; then the ours/seed throughput ratio
per concurrency (the target is >= 5x at 16). Prints a markdown table.
Not measured: prompt-heavy workloads (prefill is not chunked here), and real GPU kernels.
"""
import argparse, asyncio, json, os, random, statistics, sys, time
from pathlib import Path

import httpx

from reasoning_nb.serve import ServerProcess


def _prompts(n, seed=0):
    rng = random.Random(seed)
    return [f'What is {rng.randint(100, 999)}+{rng.randint(100, 999)}?' for _ in range(n)]


def _has_text(line):
    "True for an SSE chunk carrying generated text (thinking or answer)."
    return line.startswith('data: {') and ('"reasoning_content": "' in line or ('"content": "' in line and '"content": ""' not in line))


async def _one(client, url, prompt, max_tokens):
    "Stream one request; returns (ttft, latency, generated tokens)."
    body = {'messages': [{'role': 'user', 'content': prompt}], 'max_tokens': max_tokens, 'stream': True,
            'stream_options': {'include_usage': True}, 'ignore_eos': True, 'temperature': 0}
    t0, ttft, tokens = time.perf_counter(), None, 0
    async with client.stream('POST', url + '/v1/chat/completions', json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():   # parse JSON only where needed: the client shares the CPU with the server
            if ttft is None and _has_text(line): ttft = time.perf_counter() - t0
            if '"usage": {' in line: tokens = json.loads(line[6:])['usage']['completion_tokens']
    return ttft or time.perf_counter() - t0, time.perf_counter() - t0, tokens


async def run_load(url, prompts, concurrency, max_tokens):
    "Send `prompts` with at most `concurrency` in flight; returns a dict of aggregate numbers."
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=concurrency + 4)) as client:
        async def go(p):
            async with sem: return await _one(client, url, p, max_tokens)
        t0 = time.perf_counter()
        res = await asyncio.gather(*(go(p) for p in prompts))
        wall = time.perf_counter() - t0
    q = lambda xs, p: statistics.quantiles(xs, n=100, method='inclusive')[p - 1]
    ttft, lat, toks = [r[0] for r in res], [r[1] for r in res], sum(r[2] for r in res)
    return {'concurrency': concurrency, 'requests': len(res), 'tokens': toks, 'wall_s': wall, 'tok_per_s': toks / wall,
            'ttft_p50': q(ttft, 50), 'ttft_p95': q(ttft, 95), 'lat_p50': q(lat, 50), 'lat_p95': q(lat, 95)}


def bench(servers, prompts, levels, max_tokens):
    "Warm up, then run each level on every server in turn (load drift on a shared machine hits all alike)."
    rows = {name: [] for name in servers}
    for srv in servers.values(): asyncio.run(run_load(srv.url, prompts[:4], 2, 8))
    for c in levels:
        for name, srv in servers.items(): rows[name].append(asyncio.run(run_load(srv.url, prompts, c, max_tokens)))
    return rows


def table(seed_rows, our_rows) -> str:
    "Markdown table of both servers and the throughput ratio."
    lines = ['| concurrency | server | tok/s | TTFT p50 / p95 (s) | latency p50 / p95 (s) | ratio |', '|---|---|---|---|---|---|']
    for s, o in zip(seed_rows, our_rows):
        for name, r in [('seed (generate per request)', s), ('reasoning_nb (batched)', o)]:
            ratio = f"**{o['tok_per_s'] / s['tok_per_s']:.1f}x**" if r is o else ''
            lines.append(f"| {r['concurrency']} | {name} | {r['tok_per_s']:.0f} | {r['ttft_p50']:.3f} / {r['ttft_p95']:.3f} | "
                         f"{r['lat_p50']:.2f} / {r['lat_p95']:.2f} | {ratio} |")
    return '\n'.join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', default=None, help='run dir or preset (default: the trained tiny run)')
    p.add_argument('--requests', type=int, default=64)
    p.add_argument('--max-tokens', type=int, default=64)
    p.add_argument('--concurrency', default='1,4,16,32')
    p.add_argument('--json', default=None, help='also write the rows to this file')
    a = p.parse_args(argv)
    if a.model is None:
        from reasoning_nb.train import tiny_run
        a.model = str(tiny_run())
    prompts, levels = _prompts(a.requests), [int(c) for c in a.concurrency.split(',')]
    seed_cmd = [sys.executable, str(Path(__file__).with_name('seed_server.py')), '--model', a.model]
    with ServerProcess(a.model, cmd=seed_cmd) as seed_srv, \
         ServerProcess(a.model, '--max-concurrency', max(levels), '--max-queue', 2 * a.requests) as our_srv:
        rows = bench({'seed': seed_srv, 'ours': our_srv}, prompts, levels, a.max_tokens)
    seed, ours = rows['seed'], rows['ours']
    print(f'model: {a.model}; {a.requests} requests x {a.max_tokens} tokens; CPU threads: {os.cpu_count()}\n')
    print(table(seed, ours))
    if a.json: Path(a.json).write_text(json.dumps({'seed': seed, 'ours': ours}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
