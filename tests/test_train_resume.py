"""Kill a `reasoning-nb train` run mid-way (SIGKILL after a checkpoint), resume it, check it ends at the planned
step with the loss and learning rate continuing where they were, not restarting. Uses a 170k-parameter micro base."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
from reasoning_nb.train import micro_base
from reasoning_nb.data import sample_path

STEPS, SAVE = 60, 10
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false'}

def _cmd(base, data, out, *extra):
    return [sys.executable, '-m', 'reasoning_nb', 'train', '--model', str(base), '--data', str(data), '--out', str(out),
            '--max-steps', str(STEPS), '--save-steps', str(SAVE), '--batch-size', '16', '--val-size', '32',
            '--logging-steps', '1', '--lr', '1e-2', '--warmup-steps', '5', '--threads', '1', '--quiet', *extra]

def _log(run): return [json.loads(l) for l in (Path(run) / 'metrics.jsonl').read_text().splitlines()]
def _train(log): return {e['step']: e for e in log if 'loss' in e}

@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp('resume')
    data = d / 'data.jsonl'
    data.write_text(''.join(sample_path().read_text().splitlines(keepends=True)[:800]))
    return micro_base(d / 'base'), data, d

def _done(ckpt): return (ckpt / 'trainer_state.json').exists() and any(ckpt.glob('scheduler.pt'))

def test_kill_and_resume(setup):
    base, data, d = setup
    ref = subprocess.run(_cmd(base, data, d / 'ref'), env=ENV, capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-2000:]

    run = d / 'killed'
    p = subprocess.Popen(_cmd(base, data, run), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not _done(run / 'checkpoints' / f'checkpoint-{SAVE}') and time.time() - t0 < 300 and p.poll() is None:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL); p.wait()
    assert p.returncode == -signal.SIGKILL, 'the run finished before it could be killed'
    assert not (run / 'adapter').exists()
    steps_before = max(_train(_log(run)))
    assert steps_before < STEPS

    res = subprocess.run(_cmd(base, data, run, '--resume'), env=ENV, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (run / 'adapter' / 'adapter_model.safetensors').exists()
    log, ref_log = _train(_log(run)), _train(_log(d / 'ref'))
    assert max(log) == STEPS                        # ends at the planned step
    assert sorted(log) == list(range(1, STEPS + 1))  # each step logged once (lines past the checkpoint were trimmed)
    ckpts = sorted(int(c.name.split('-')[1]) for c in (run / 'checkpoints').glob('checkpoint-*'))
    assert ckpts[-1] == STEPS
    # continuing, not restarting: the schedule and the loss pick up where the reference run was at that step
    first = min(s for s in log if s > SAVE and s > steps_before - (steps_before % SAVE))
    resumed = min(s for s in log if s > max(c for c in range(0, steps_before + 1, SAVE)))
    for s in range(resumed, STEPS + 1):
        assert log[s]['learning_rate'] == pytest.approx(ref_log[s]['learning_rate'], rel=1e-6)
    assert log[resumed]['loss'] < 0.8 * log[1]['loss']
    assert log[STEPS]['loss'] == pytest.approx(ref_log[STEPS]['loss'], rel=0.05)
