"""The real-architecture path at real size on one CUDA GPU: measured VRAM vs `estimate_memory`, and training throughput (no hub needed).

Builds the real Llama-3.1-8B and Qwen2.5-1.5B architectures from the configs packaged with reasoning_nb, with random
weights (same memory as trained ones), runs `--steps` LoRA (bf16) / QLoRA (4-bit) training steps (forward, backward, AdamW) per setting at
several sequence lengths, and prints one table: tokens/s over those steps and measured `torch.cuda.max_memory_allocated` next to the estimate without its stated
overhead (the CUDA context and allocator slack are not in `max_memory_allocated`). Sized to finish in under 10 minutes
on one 80 GB+ card (H100/H200); settings that do not fit the card are reported as OOM and skipped.

    python scripts/gpu_check.py                 # the full check (needs CUDA, bitsandbytes for QLoRA)
    python scripts/gpu_check.py --list          # print the settings and their estimates; no GPU needed
    python scripts/gpu_check.py --cpu-smoke     # run the same code path on the tiny config on CPU (not the GPU check)

Not handled: multi-GPU, FlashAttention-2 kernels (sdpa is used), torch.compile. Written and checked on a machine without
a GPU: `--help`, `--list` and `--cpu-smoke` have run (tests/test_real_gpu_check.py); the CUDA path has not been run yet.
Throughput: sequence tokens x steps / seconds of the steps (model build excluded, first step included).
"""
import argparse, gc, json, sys, time
import torch
from reasoning_nb.memory import GiB, estimate_memory, measure_peak

GPU_RUNS = [  # (model, method, lora_r, seq_len, batch, grad_ckpt): ~16 runs, 8B ones are the slow part
    *[('qwen2.5-1.5b-instruct', m, 16, s, 1, ck) for m in ('lora', 'qlora') for s in (1024, 4096) for ck in (False, True)],
    *[('llama-3.1-8b-instruct', 'lora', 64, s, 1, ck) for s, ck in ((1024, False), (4096, False), (4096, True), (8192, True))],
    *[('llama-3.1-8b-instruct', 'qlora', 64, s, 1, ck) for s, ck in ((1024, False), (4096, True), (8192, True))],
]
CPU_SMOKE_RUNS = [('tiny', 'lora', 16, 128, 2, False), ('tiny', 'lora', 16, 128, 2, True), ('tiny', 'qlora', 16, 128, 2, True)]

def estimate(model, method, r, seq, batch, ckpt, device):
    "Estimate comparable to the measurement: allocated bytes, no stated overhead."
    e = estimate_memory(model, method, lora_r=r, seq_len=seq, batch=batch, grad_ckpt=ckpt, device=device,
                        dtype='bf16' if device == 'cuda' else 'fp32')
    return e.total_bytes - e.overhead, e

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--list', action='store_true', help='print the settings and estimates only')
    p.add_argument('--cpu-smoke', action='store_true', help='run the code path on the tiny config on CPU')
    p.add_argument('--budget-s', type=float, default=540, help='stop starting new runs after this many seconds')
    p.add_argument('--json', help='also write the rows to this file')
    p.add_argument('--steps', type=int, default=None, help='training steps per setting (default 20 on GPU, 2 with --cpu-smoke)')
    a = p.parse_args(argv)
    device = 'cpu' if a.cpu_smoke else 'cuda'
    steps = a.steps if a.steps is not None else (2 if a.cpu_smoke else 20)
    if steps < 1: p.error('--steps must be at least 1')
    runs = CPU_SMOKE_RUNS if a.cpu_smoke else GPU_RUNS
    if not a.list and device == 'cuda' and not torch.cuda.is_available():
        print('no CUDA device: use --list or --cpu-smoke', file=sys.stderr); return 2
    t0, rows = time.time(), []
    print(f"{'model':<24}{'method':<7}{'r':>3}{'seq':>6}{'b':>3}{'ckpt':>5}{'measured GiB':>14}{'estimated GiB':>15}{'error':>8}{'tok/s':>9}{'s':>6}")
    for model, method, r, seq, batch, ckpt in runs:
        est, e = estimate(model, method, r, seq, batch, ckpt, device)
        row = dict(model=model, method=method, r=r, seq=seq, batch=batch, ckpt=ckpt, estimated=est, peak_phase=e.peak_phase)
        tps = None
        if a.list: meas, secs = None, 0.0
        elif time.time() - t0 > a.budget_s: print(f'{model:<24}{method:<7} skipped: time budget spent'); continue
        else:
            t = time.time()
            try:
                res = measure_peak(model, device=device, isolate=a.cpu_smoke, method=method, lora_r=r, seq_len=seq, batch=batch,
                                   grad_ckpt=ckpt, dtype='bf16' if device == 'cuda' else 'fp32', steps=steps)
                meas, tps = res['peak_bytes'], seq * batch * steps / max(res['seconds'], 1e-9)
            except torch.OutOfMemoryError: meas = 'OOM'
            secs = time.time() - t
            gc.collect()
            if device == 'cuda': torch.cuda.empty_cache()
        row.update(measured=meas, seconds=round(secs, 1), tokens_per_s=tps and round(tps))
        rows.append(row)
        m = f'{meas/GiB:14.2f}' if isinstance(meas, int) else f'{str(meas or "-"):>14}'
        tp = f'{tps:9.0f}' if tps else f'{"-":>9}'
        err = f'{est/meas - 1:+8.1%}' if isinstance(meas, int) else f'{"":>8}'
        print(f"{model:<24}{method:<7}{r:>3}{seq:>6}{batch:>3}{'on' if ckpt else 'off':>5}{m}{est/GiB:15.2f}{err}{tp}{secs:6.0f}", flush=True)
    if a.json: open(a.json, 'w').write(json.dumps(rows, indent=1))
    print(f'done in {time.time() - t0:.0f} s')
    return 0

if __name__ == '__main__': sys.exit(main())
