"""Data-parallel training on 2 CPU processes (torchrun, gloo): one writer (a metrics line per logged step, one config,
one adapter) and the same curve as one process with twice the per-device batch (same samples per step)."""
import json, os, subprocess, sys
import pytest
from reasoning_nb.runs import micro_base
from reasoning_nb.data import sample_path

ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false'}
STEPS = 6

def _cmd(base, data, out, batch):
    return ['-m', 'reasoning_nb', 'train', '--model', str(base), '--data', str(data), '--out', str(out), '--max-steps', str(STEPS),
            '--save-steps', str(STEPS), '--batch-size', str(batch), '--val-size', '16', '--logging-steps', '1',
            '--warmup-steps', '2', '--threads', '1', '--quiet']

def test_two_processes_match_one_with_twice_the_batch(tmp_path):
    base, data = micro_base(tmp_path / 'micro'), tmp_path / 'data.jsonl'
    data.write_text(''.join(sample_path().read_text().splitlines(keepends=True)[:300]))
    ddp = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', '29631',
                          *_cmd(base, data, tmp_path / 'ddp', 4)], env=ENV, capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert ddp.stdout.count('done:') == 1 and 'global batch: 4 per device x 2 processes x 1 accumulation = 8' in ddp.stdout
    one = subprocess.run([sys.executable, *_cmd(base, data, tmp_path / 'one', 8)], env=ENV, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    lines = [json.loads(l) for l in (tmp_path / 'ddp' / 'metrics.jsonl').read_text().splitlines()]
    train_steps = [e['step'] for e in lines if 'loss' in e]
    assert train_steps == list(range(1, STEPS + 1))  # one line per logged step, not one per rank
    ref = {e['step']: e['loss'] for e in map(json.loads, (tmp_path / 'one' / 'metrics.jsonl').read_text().splitlines()) if 'loss' in e}
    for e in lines:
        if 'loss' in e: assert e['loss'] == pytest.approx(ref[e['step']], rel=1e-4), (e['step'], e['loss'], ref[e['step']])
    assert (tmp_path / 'ddp' / 'adapter' / 'adapter_model.safetensors').exists()
