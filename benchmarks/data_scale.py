"""The data layer at scale: validate / stats / curate on 100k and 1M synthetic Nemotron-shaped rows.

    python benchmarks/data_scale.py                    # 100k and 1M rows (files cached in /tmp/reasoning_nb_data_scale)
    python benchmarks/data_scale.py --sizes 20000      # a quick run

Rows are generated deterministically (seed 0) with the real dataset's shape: ~1.6 kB each, categories and
on/off mix close to the SFT config (math 66%, code 30%, 10% of them reasoning-on), 1% duplicate prompts.
Each step runs in its own process; we report its wall time and peak RSS (`os.wait4`; the CPU time it and its
workers used goes into the ratio lines), side by side with two
baselines making the same per-(category, mode) quota selection: a `datasets` streaming reader and a plain-Python
streaming reservoir (json.loads + Algorithm R, no validation). Timings on a shared machine are noisy: compare
the columns of one run, not runs with each other. The 32M-row column extrapolates linearly from 1M rows.
"""
import argparse, hashlib, json, os, random, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUOTAS, ON_RATIO = {'math': 5000, 'code': 2000}, 0.5
MIX = [('math', .66, .1), ('code', .30, .1), ('science', .02, .5), ('chat', .015, .3), ('safety', .005, .5)]  # category, share, on rate
FULL = 32_000_000


def generate(path, n, seed=0):
    "Write `n` Nemotron-shaped rows to `path` (deterministic for `seed`)."
    rng = random.Random(seed)
    words = [''.join(rng.choices('abcdefghijklmnopqrstuvwxyz', k=rng.randint(2, 9))) for _ in range(2000)]
    blocks = [' '.join(rng.choices(words, k=rng.randint(25, 50))) for _ in range(997)]
    cats, weights = [c for c, _, _ in MIX], [w for _, w, _ in MIX]
    on_rate = {c: r for c, _, r in MIX}
    tmp = Path(str(path) + '.part')
    with open(tmp, 'w', encoding='utf-8') as f:
        for i in range(n):
            cat = rng.choices(cats, weights)[0]
            on = rng.random() < on_rate[cat]
            pid = rng.randrange(i) if i and rng.random() < 0.01 else i  # 1% repeat an earlier prompt
            b = lambda k: blocks[(pid * 7 + k * 131) % len(blocks)]
            prompt = f'Problem {pid}: {b(1)}'
            answer = f'{b(3)} The answer is {pid % 997}.'
            think = f'{b(5)} {b(6)} {b(7)} {b(8)}'
            out = f'<think>\n{think}\n</think>\n\n{answer}' if on else f'{answer} {b(11)} {b(12)} {b(13)} {b(14)}'
            mode = 'on' if on else 'off'
            f.write(json.dumps({'input': [{'role': 'user', 'content': prompt}], 'output': out, 'category': cat,
                                'license': 'cc-by-4.0', 'reasoning': mode, 'generator': 'synthetic', 'version': 'v1.1',
                                'system_prompt': f'detailed thinking {mode}', 'used_in_training': ['Ultra', 'Nano']}) + '\n')
    tmp.rename(path)


def _reservoirs():
    need = {(c, m): k for c, q in QUOTAS.items() for m, k in (('on', round(q * ON_RATIO)), ('off', q - round(q * ON_RATIO)))}
    return need, {k: [] for k in need}, {k: 0 for k in need}, {k: random.Random(f'0/{k}') for k in need}


def _select(rows):
    "Algorithm R per (category, mode) over raw dict rows: the selection both baselines make."
    need, res, seen, rng = _reservoirs()
    for r in rows:
        key = (r['category'], r['reasoning'])
        if key not in need: continue
        seen[key] += 1
        if len(res[key]) < need[key]: res[key].append(r)
        else:
            j = rng[key].randrange(seen[key])
            if j < need[key]: res[key][j] = r
    assert all(len(res[k]) == need[k] for k in need), 'not enough rows'
    return sum(len(v) for v in res.values())


def plain_reservoir(path):
    with open(path, 'rb') as f: return _select(json.loads(l) for l in f)


def datasets_streaming(path):
    from datasets import load_dataset
    from datasets.utils.logging import disable_progress_bar; disable_progress_bar()
    return _select(load_dataset('json', data_files=str(path), split='train', streaming=True))


def measure(cmd):
    "Run `cmd`; (wall seconds, peak RSS MB, stdout, CPU seconds). Fails loudly on a non-zero exit."
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
    with tempfile.TemporaryFile('w+') as fo, tempfile.TemporaryFile('w+') as fe:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=fo, stderr=fe, text=True, env=env, cwd=ROOT)
        _, status, ru = os.wait4(p.pid, 0)  # the child's own rusage: its peak RSS
        wall, rc = time.perf_counter() - t, os.waitstatus_to_exitcode(status)
        p.returncode = rc
        fo.seek(0); fe.seek(0); out, err = fo.read(), fe.read()
    if rc: raise SystemExit(f'{" ".join(cmd)} failed ({rc}):\n{out[-2000:]}\n{err[-2000:]}')
    return wall, ru.ru_maxrss / 1024, out, ru.ru_utime + ru.ru_stime  # CPU of the child and the workers it reaped


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--sizes', default='100000,1000000', help='row counts, comma-separated')
    ap.add_argument('--dir', default='/tmp/reasoning_nb_data_scale', help='where the generated files are cached')
    ap.add_argument('--sample', type=int, default=10_000, help='rows sampled for token lengths by stats')
    ap.add_argument('--step', nargs=2, metavar=('NAME', 'FILE'), help=argparse.SUPPRESS)  # internal: run one baseline
    args = ap.parse_args()
    if args.step:
        name, f = args.step
        print({'plain': plain_reservoir, 'datasets': datasets_streaming}[name](f)); return
    py = sys.executable
    data = [py, '-m', 'reasoning_nb', 'data']
    sizes, d = [int(s) for s in args.sizes.split(',')], Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    steps = {
        'validate': lambda f: [*data, 'validate', f],
        'stats': lambda f: [*data, 'stats', f, '--sample', str(args.sample)],
        'curate': lambda f: [*data, 'curate', f, '--out', d/'curated.jsonl', *[x for c, q in QUOTAS.items() for x in ('--quota', f'{c}={q}')],
                             '--on-ratio', str(ON_RATIO), '--seed', '0'],
        'datasets streaming baseline': lambda f: [py, __file__, '--step', 'datasets', f],
        'plain streaming reservoir': lambda f: [py, __file__, '--step', 'plain', f],
    }
    res, cpus, notes = {}, {}, []
    load = os.getloadavg()[0]
    for n in sizes:
        f = d/f'rows_{n}.jsonl'
        if not f.exists():
            t = time.perf_counter(); generate(f, n); print(f'generated {n:,} rows ({f.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t:.0f} s', file=sys.stderr)
        for name, cmd in steps.items():
            wall, rss, out, cpu = measure([str(x) for x in cmd(f)])
            res[(name, n)], cpus[(name, n)] = (wall, rss), cpu
            print(f'{n:>9,} rows  {name:<28} {wall:7.1f} s {rss:7.0f} MB', file=sys.stderr, flush=True)
            if name == 'curate':
                digest = hashlib.sha256((d/'curated.jsonl').read_bytes()).hexdigest()[:12]
                again = measure([str(x) for x in cmd(f)])[0] if n == sizes[0] else None
                same = hashlib.sha256((d/'curated.jsonl').read_bytes()).hexdigest()[:12] == digest
                notes.append(f'curate at {n:,} rows: {out.splitlines()[0].split(" -> ")[0]}; output sha256 {digest}' +
                             (f'; a second run gave {"the same file" if same else "A DIFFERENT FILE"}' if again else ''))
            if name == 'stats':
                notes.append(f'stats at {n:,} rows: ' + next(l for l in out.splitlines() if l.startswith('lengths in')).rstrip(':'))
    cols = [f'{n:,} rows' for n in sizes] + ([f'{FULL // 10**6}M rows (linear upper bound)'] if sizes[-1] != FULL else [])
    head = f'{"step":<28} ' + ' '.join(f'{c:>26}' for c in cols)
    print(head); print('-' * len(head))
    big = sizes[-1]
    for name in steps:
        cells = [f'{res[(name, n)][0]:8.1f} s {res[(name, n)][1]:7.0f} MB' for n in sizes]
        if len(cols) > len(sizes):
            w, r = res[(name, big)]
            grow = (r - res[(name, sizes[0])][1]) / max(1, big - sizes[0]) if len(sizes) > 1 else 0  # MB per row beyond the first size
            cells.append(f'{w * FULL / big / 60:7.0f} min {r + max(0, grow) * (FULL - big):7.0f} MB')
        print(f'{name:<28} ' + ' '.join(f'{c:>26}' for c in cells))
    print()
    for n in sizes:
        c, p = res[('curate', n)], res[('plain streaming reservoir', n)]
        cpu = cpus[('curate', n)] / cpus[('plain streaming reservoir', n)]
        print(f'{n:,} rows: curate / plain reservoir = {c[0] / p[0]:.2f}x wall, {cpu:.2f}x CPU time, {c[1] / p[1]:.2f}x peak RSS')
    if len(sizes) > 1:
        for name in ('validate', 'stats', 'curate'):
            print(f'{name}: peak RSS {res[(name, sizes[0])][1]:.0f} MB at {sizes[0]:,} rows -> {res[(name, big)][1]:.0f} MB at {big:,} rows')
    for line in notes: print(line)
    print(f'machine: {os.cpu_count()} cores, 1-minute load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end'
          ' (other work on the machine slows the multi-process curate more than the one-process baselines)')


if __name__ == '__main__':
    main()
