"""Serving throughput: the seed's one-`generate`-per-request server, `transformers serve --continuous-batching`, and ours.

    python benchmarks/serve_throughput.py                      # the trained tiny model (train.tiny_run())
    python benchmarks/serve_throughput.py --model RUN_OR_PRESET --requests 64 --max-tokens 64

The servers run side by side and get the same 64 streamed requests (3-digit additions, thinking on, greedy)
at concurrency 1, 4, 16 and 32, each level run on one server after the other. The seed's server and ours get
`ignore_eos`, so every request generates exactly `--max-tokens` tokens; `transformers serve` rejects that field,
so its requests stop at the model's end of turn (the same greedy reply, usually shorter): tokens/s counts the
tokens each server reports in `usage`. It serves the run exported by `reasoning-nb export` (plain model dir).
Reported per run: aggregate generated tokens/s, p50/p95 time to first token and end-to-end latency; then
ratios of ours to the others per concurrency. `--no-transformers` skips the third column. Prints a markdown table.
Not measured: prompt-heavy workloads (prefill is not chunked here), and real GPU kernels.
"""
import argparse, asyncio, contextlib, json, os, random, re, statistics, sys, tempfile, time
from pathlib import Path

import httpx

from reasoning_nb.serve import ServerProcess


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
        async def go(p):
            async with sem: return await _one(client, url, p, max_tokens, extra if extra is not None else {'ignore_eos': True})
        t0 = time.perf_counter()
        res = await asyncio.gather(*(go(p) for p in prompts))
        wall = time.perf_counter() - t0
    q = lambda xs, p: statistics.quantiles(xs, n=100, method='inclusive')[p - 1]
    ttft, lat, toks = [r[0] for r in res], [r[1] for r in res], sum(r[2] for r in res)
    return {'concurrency': concurrency, 'requests': len(res), 'tokens': toks, 'wall_s': wall, 'tok_per_s': toks / wall,
            'ttft_p50': q(ttft, 50), 'ttft_p95': q(ttft, 95), 'lat_p50': q(lat, 50), 'lat_p95': q(lat, 95)}


def bench(servers, prompts, levels, max_tokens, extras=None):
    "Warm up, then run each level on every server in turn (load drift on a shared machine hits all alike)."
    rows, extras = {name: [] for name in servers}, extras or {}
    for name, srv in servers.items(): asyncio.run(run_load(srv.url, prompts[:4], 2, 8, extras.get(name)))
    for c in levels:
        for name, srv in servers.items(): rows[name].append(asyncio.run(run_load(srv.url, prompts, c, max_tokens, extras.get(name))))
    return rows


NAMES = {'seed': 'seed (generate per request)', 'transformers': 'transformers serve --continuous-batching', 'ours': 'reasoning_nb (batched)'}

def table(rows) -> str:
    "Markdown table of every server per concurrency, with ours / each other server's throughput."
    others = [n for n in rows if n != 'ours']
    lines = ['| concurrency | server | tok/s | TTFT p50 / p95 (s) | latency p50 / p95 (s) | ' + ' | '.join(f'ours / {n}' for n in others) + ' |',
             '|---|---|---|---|---|' + '---|' * len(others)]
    for i, o in enumerate(rows['ours']):
        for name in [*others, 'ours']:
            r = rows[name][i]
            ratios = [f"**{o['tok_per_s'] / rows[n][i]['tok_per_s']:.1f}x**" if name == 'ours' else '' for n in others]
            lines.append(f"| {r['concurrency']} | {NAMES[name]} | {r['tok_per_s']:.0f} | {r['ttft_p50']:.3f} / {r['ttft_p95']:.3f} | "
                         f"{r['lat_p50']:.2f} / {r['lat_p95']:.2f} | " + ' | '.join(ratios) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', default=None, help='run dir or preset (default: the trained tiny run)')
    p.add_argument('--requests', type=int, default=64)
    p.add_argument('--max-tokens', type=int, default=64)
    p.add_argument('--concurrency', default='1,4,16,32')
    p.add_argument('--json', default=None, help='also write the rows to this file')
    p.add_argument('--no-transformers', action='store_true', help='skip the `transformers serve --continuous-batching` column')
    a = p.parse_args(argv)
    if a.model is None:
        from reasoning_nb.train import tiny_run
        a.model = str(tiny_run())
    prompts, levels = _prompts(a.requests), [int(c) for c in a.concurrency.split(',')]
    seed_cmd = [sys.executable, str(Path(__file__).with_name('seed_server.py')), '--model', a.model]
    with contextlib.ExitStack() as stack:
        servers, extras = {'seed': stack.enter_context(ServerProcess(a.model, cmd=seed_cmd))}, {}
        if not a.no_transformers:
            from reasoning_nb.export import export_for_serving
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            model_dir = export_for_serving(a.model, tmp / 'model', name='bench')   # transformers serve wants a plain model dir
            servers['transformers'] = stack.enter_context(ServerProcess(model_dir, cmd=['transformers', 'serve', str(model_dir), '--continuous-batching', '--host', '127.0.0.1']))
            extras['transformers'] = {'model': str(model_dir)}                    # it rejects `ignore_eos` and routes by model path
        servers['ours'] = stack.enter_context(ServerProcess(a.model, '--max-concurrency', max(levels), '--max-queue', 2 * a.requests))
        rows = bench(servers, prompts, levels, a.max_tokens, extras)
    print(f'model: {a.model}; {a.requests} requests x up to {a.max_tokens} tokens; CPU threads: {os.cpu_count()}\n')
    print(table(rows))
    if a.json: Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
