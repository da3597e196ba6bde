"""Kill a `reasoning-nb train` run mid-way (SIGKILL after a checkpoint), resume it, check it ends at the planned
step with the loss and learning rate continuing where they were, not restarting (an uninterrupted run of the
same config is the reference, matched bit for bit: runs are seeded). Uses the tiny base with small batches: its loss falls steeply, so a restart would show."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
from reasoning_nb.data import sample_path

STEPS, SAVE = 40, 10
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false'}

def _cmd(base, data, out, *extra):
    return [sys.executable, '-m', 'reasoning_nb', 'train', '--model', str(base), '--data', str(data), '--out', str(out),
            '--max-steps', str(STEPS), '--save-steps', str(SAVE), '--batch-size', '8', '--val-size', '16',
            '--logging-steps', '1', '--warmup-steps', '5', '--threads', '1', '--quiet', *extra]

def _log(run): return [json.loads(l) for l in (Path(run) / 'metrics.jsonl').read_text().splitlines()]
def _train(log): return {e['step']: e for e in log if 'loss' in e}

@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp('resume')
    data = d / 'data.jsonl'
    data.write_text(''.join(sample_path().read_text().splitlines(keepends=True)[:800]))
    return 'tiny', data, d

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
    resumed_from = max(int(c.name.split('-')[1]) for c in (run / 'checkpoints').glob('checkpoint-*') if _done(c))

    res = subprocess.run(_cmd(base, data, run, '--resume'), env=ENV, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (run / 'adapter' / 'adapter_model.safetensors').exists()
    log, ref_log = _train(_log(run)), _train(_log(d / 'ref'))
    assert max(log) == STEPS                        # ends at the planned step
    assert sorted(log) == list(range(1, STEPS + 1))  # each step logged once (lines past the checkpoint were trimmed)
    assert sorted(int(c.name.split('-')[1]) for c in (run / 'checkpoints').glob('checkpoint-*'))[-1] == STEPS
    # continuing, not restarting: seeded, the resumed curve is the uninterrupted one bit for bit (loss and schedule)
    for s in range(1, STEPS + 1):
        assert (log[s]['loss'], log[s]['learning_rate']) == (ref_log[s]['loss'], ref_log[s]['learning_rate']), s
    assert log[resumed_from + 1]['loss'] < 0.7 * log[1]['loss']

def test_resume_extends_and_never_overshoots(tmp_path):
    "`--max-steps 20` then `--resume --max-steps 30` ends at 30 on a schedule refitted to 30; resuming a finished run trains nothing."
    from reasoning_nb.runs import micro_base
    base, data = micro_base(tmp_path / 'micro'), tmp_path / 'data.jsonl'
    data.write_text(''.join(sample_path().read_text().splitlines(keepends=True)[:300]))
    def cmd(out, steps, *extra):
        c = _cmd(base, data, out, *extra); c[c.index('--max-steps') + 1] = str(steps); return c
    for c in [cmd(tmp_path / 'run', 20), cmd(tmp_path / 'run', 30, '--resume'), cmd(tmp_path / 'run', 30, '--resume'),
              cmd(tmp_path / 'ref', 30)]:
        r = subprocess.run(c, env=ENV, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
    log, ref = _train(_log(tmp_path / 'run')), _train(_log(tmp_path / 'ref'))
    assert sorted(log) == list(range(1, 31))  # ends at 30, no extra step from the second resume
    saved = json.loads((tmp_path / 'run' / 'config.json').read_text())
    assert saved['config']['max_steps'] == 30 and saved['resumed'] == [dict(step=20, changed=dict(max_steps=30))]
    for s in range(21, 31): assert log[s]['learning_rate'] == pytest.approx(ref[s]['learning_rate'], rel=1e-9), s
    assert log[30]['learning_rate'] < log[21]['learning_rate']
    bad = subprocess.run(cmd(tmp_path / 'run', 10, '--resume'), env=ENV, capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and 'past max_steps=10' in bad.stderr + bad.stdout
