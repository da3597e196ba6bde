"""Batched vs one-at-a-time generation on the same evaluation items, side by side.

    python benchmarks/eval_throughput.py                 # trained tiny run (cached), 128 held-out additions
    python benchmarks/eval_throughput.py --model tiny --n 64 --batch-size 32

Both arms call `reasoning_nb.evaluate.evaluate` on the same items with the same greedy settings; the only difference
is `batch_size` (1 = one `generate` per question, the way a popular guide evaluates). Prints a markdown table and
the speed-up ratio.
Not measured here: GPU throughput, where batching matters even more (the device sits idle between small calls).
"""
import argparse, os, time

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', default=None, help='run dir or preset; default: the cached trained tiny run')
    p.add_argument('--task', default='tiny-add')
    p.add_argument('--n', type=int, default=128)
    p.add_argument('--mode', default='on')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--max-new-tokens', type=int, default=64)
    p.add_argument('--threads', type=int, default=int(os.environ.get('OMP_NUM_THREADS', 1)),
                   help='torch threads (default 1: stable timings on a shared machine; more favour batching further)')
    a = p.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    from reasoning_nb.evaluate import evaluate, load_for_eval, load_task
    if a.model is None:
        from reasoning_nb.runs import cached_run
        a.model = str(cached_run('tiny'))
    model, tok = load_for_eval(a.model)
    items = load_task(a.task, a.n)
    evaluate(model, tok, items[:4], a.mode, max_new_tokens=8)  # warm-up: first calls pay one-off costs
    rows = []
    for label, bs in ((f'batched ({a.batch_size})', a.batch_size), ('one at a time', 1)):
        t = time.perf_counter()
        s = evaluate(model, tok, items, a.mode, max_new_tokens=a.max_new_tokens, batch_size=bs)['summary']
        rows.append((label, time.perf_counter() - t, s))
    print(f'model {a.model}, task {a.task}, {len(items)} items, mode {a.mode}, greedy, {a.threads} threads\n')
    print('| generation | seconds | items/s | tokens/s | accuracy % |\n|---|---|---|---|---|')
    for label, secs, s in rows:
        row = [label, f'{secs:.1f}', f'{len(items) / secs:.1f}', f"{s['tokens_per_s']:.0f}",
               f"{100 * s['accuracy']:.1f}"]
        print('| ' + ' | '.join(row) + ' |')
    print(f'\nbatched is {rows[1][1] / rows[0][1]:.1f}x faster than one at a time')

if __name__ == '__main__': main()
