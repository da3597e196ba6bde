"""Trained tokens per second for four ways of batching the same LoRA run, side by side in one process.

    python benchmarks/train_throughput.py                  # tiny base, bundled sample, 1 thread
    python benchmarks/train_throughput.py --threads 2 --seconds 20

Same model (the tiny instruct base + LoRA r16 on every linear layer), same on/off mix of the bundled sample,
same optimizer; only the batching differs:
  (a) a popular guide's recipe: every sample padded to max_length, micro-batch 1, gradient accumulation 8;
  (b) padded dynamic batches: 64 samples padded to the longest in the batch;
  (c) this package's default: 64 samples packed into one row without padding (position_ids + `sdpa_varlen`);
  (d) TRL `SFTTrainer` with packing (BFD into max_length rows, padding-free, its default attention).
"Tokens" are real (non-pad) tokens through forward and backward. MFU = 6 * N * tokens/s / peak, N = base model
parameters, peak = the best fp32 matmul FLOP/s measured here with the same threads.
(d) is timed for speed only: with PyTorch SDPA, TRL's padding-free rows get a dense block-diagonal mask, so attention
costs grow with the square of the whole row; FlashAttention on a GPU avoids that. What it does not cover: GPUs (FlashAttention varlen would replace `sdpa_varlen`), torch.compile, gradient checkpointing.
"""
import argparse, os, sys, tempfile, time, warnings
import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import PrinterCallback

def peak_flops(n=1024, reps=10):
    "Best fp32 matmul FLOP/s of an n x n product on this machine."
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2): a @ b
    best = 0.0
    for _ in range(reps):
        t = time.perf_counter(); a @ b; best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best

def _real_tokens(batch):
    "Non-pad tokens in a collated batch (packed rows have no padding)."
    if 'attention_mask' in batch: return int(batch['attention_mask'].sum())
    return int(batch['input_ids'].numel())

class _Clock(TrainerCallback):
    "Time optimizer steps after `warmup` of them; stop after `seconds` or `max_steps`."
    def __init__(self, counter, warmup=1, seconds=15.0): self.counter, self.warmup, self.seconds, self.t0 = counter, warmup, seconds, None
    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.warmup: self.t0, self.counter['tokens'] = time.perf_counter(), 0
        elif self.t0 and time.perf_counter() - self.t0 > self.seconds: control.should_training_stop = True
    def on_train_end(self, args, state, control, **kw): self.counter['seconds'] = time.perf_counter() - self.t0

def _counting(collate, counter):
    def f(features):
        b = collate(features); counter['tokens'] = counter.get('tokens', 0) + _real_tokens(b); return b
    return f

def _model(cfg, pack):
    from reasoning_nb.runs import peft_model
    from reasoning_nb.models import load_model
    model, _ = load_model(cfg.model, quantize=False)
    pm = peft_model(replace_(cfg, pack=pack), model)
    return pm, sum(p.numel() for p in model.parameters())

def replace_(cfg, **kw):
    from dataclasses import replace
    return replace(cfg, **kw)

def run_trainer(cfg, train_set, tok, pack, pad_to, seconds):
    "Tokens/s of the package's Trainer setup with batching (pack, pad_to)."
    from reasoning_nb.train import training_args, make_collator
    model, n = _model(cfg, pack)
    counter = {}
    args = training_args(cfg, tempfile.mkdtemp(), save_strategy='no', eval_strategy='no', load_best_model_at_end=False,
                         disable_tqdm=True, logging_steps=10**6, max_steps=10**6)
    tr = Trainer(model=model, args=args, train_dataset=train_set, data_collator=_counting(make_collator(tok, pack, pad_to), counter),
                 callbacks=[_Clock(counter, seconds=seconds)])
    tr.remove_callback(PrinterCallback); tr.train()
    return counter['tokens'] / counter['seconds'], n

def run_trl(cfg, train_set, tok, seconds):
    "Tokens/s of TRL's SFTTrainer with packing on the same pre-tokenized samples."
    from trl import SFTConfig, SFTTrainer
    from datasets import Dataset
    model, n = _model(cfg, pack=False)  # TRL picks its own attention path for packed rows
    model.base_model.model.set_attn_implementation('sdpa')
    ds = Dataset.from_list([{'input_ids': e['input_ids'], 'completion_mask': [int(l != -100) for l in e['labels']]} for e in train_set])
    counter = {}
    args = SFTConfig(output_dir=tempfile.mkdtemp(), max_steps=10**6, per_device_train_batch_size=1, gradient_accumulation_steps=1,
                     learning_rate=cfg.lr, lr_scheduler_type='cosine_with_min_lr', lr_scheduler_kwargs=dict(min_lr_rate=cfg.min_lr_rate),
                     warmup_steps=cfg.warmup_steps, max_grad_norm=cfg.max_grad_norm, packing=True, padding_free=True,
                     max_length=_trl_row(cfg), completion_only_loss=True, save_strategy='no', eval_strategy='no',
                     report_to='none', disable_tqdm=True, logging_steps=10**6, use_cpu=not torch.cuda.is_available(),
                     dataloader_num_workers=0, seed=cfg.seed)
    tr = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, callbacks=[_Clock(counter, seconds=seconds)])
    tr.data_collator = _counting(tr.data_collator, counter)
    tr.remove_callback(PrinterCallback); tr.train()
    return counter['tokens'] / counter['seconds'], n

def _trl_row(cfg, mean_len=None):
    "TRL packs into rows of max_length tokens; give it rows holding about one of our batches (64 samples)."
    return cfg.batch_size * (mean_len or _trl_row.mean_len)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--seconds', type=float, default=12.0, help='timed seconds per variant (after one warm-up step)')
    p.add_argument('--skip-trl', action='store_true')
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads); warnings.filterwarnings('ignore')
    from reasoning_nb.train import train_config, mix_on_off, encode_records
    from reasoning_nb.data import load_records, sample_path
    from reasoning_nb.models import load_tokenizer
    cfg = train_config('tiny')
    tok = load_tokenizer(cfg.model)
    examples, _ = encode_records(mix_on_off(load_records(sample_path()), cfg.on_ratio, seed=0), tok, cfg.max_length)
    _trl_row.mean_len = round(sum(len(e['input_ids']) for e in examples) / len(examples))
    peak = peak_flops()
    seed = replace_(cfg, batch_size=1, grad_accum=8)
    rows = []
    for name, fn in [('(a) guide: pad to max_length, micro-batch 1, accum 8', lambda: run_trainer(seed, examples, tok, False, cfg.max_length, a.seconds)),
                     ('(b) padded dynamic batches of 64', lambda: run_trainer(cfg, examples, tok, False, None, a.seconds)),
                     ('(c) reasoning_nb default: packed, padding-free', lambda: run_trainer(cfg, examples, tok, True, None, a.seconds)),
                     ('(d) TRL SFTTrainer, packing', lambda: run_trl(cfg, examples, tok, a.seconds))]:
        if name.startswith('(d)') and a.skip_trl: continue
        try: tps, n = fn()
        except Exception as e: print(f'{name}: failed: {type(e).__name__}: {e}', file=sys.stderr); continue
        rows.append((name, tps, 6 * n * tps / peak)); print(f'{name}: {tps:,.0f} tokens/s', file=sys.stderr)
    base = rows[0][1]
    print(f"\nTiny base ({n:,} parameters) + LoRA r{cfg.r}, bundled sample (mean {_trl_row.mean_len} tokens, max {cfg.max_length}), "
          f"{a.threads} CPU thread(s), peak matmul {peak / 1e9:.1f} GFLOP/s\n")
    print('| batching | tokens/s | vs (a) | MFU |\n|---|---:|---:|---:|')
    for name, tps, mfu in rows: print(f'| {name} | {tps:,.0f} | {tps / base:.2f}x | {mfu:.1%} |')
    return rows

if __name__ == '__main__': main()
