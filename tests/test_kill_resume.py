"""`reasoning-nb train --resume` after `kill -9` at any moment ends with the adapter an uninterrupted run would have.

One run of the tiny preset is SIGKILLed at 5 moments drawn from a seeded generator and resumed after each: while it
starts (before or after `config.json`), at random points between steps, and once inside a checkpoint save. Every
checkpoint is complete only once its `complete.json` (names and sizes of its files, written atomically after Trainer's
own last file) is there; a checkpoint without it is skipped with a warning naming it. The moment inside a save uses
the test hook `REASONING_NB_TEST_SAVE_PAUSE=<seconds>` (`runs._MarkComplete.on_save`): the checkpoint is written,
the marker not yet. The final adapter is compared tensor by tensor with an uninterrupted run of the same seed."""
import json, os, random, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file
from reasoning_nb.data import sample_path

STEPS, SAVE = 24, 4
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false', 'PYTHONWARNINGS': 'default'}


def _cmd(data, out, *extra):
    return [sys.executable, '-m', 'reasoning_nb', 'train', '--preset', 'tiny', '--data', str(data), '--out', str(out),
            '--max-steps', str(STEPS), '--save-steps', str(SAVE), '--batch-size', '8', '--val-size', '16',
            '--logging-steps', '1', '--warmup-steps', '4', '--threads', '1', '--quiet', *extra]


def _steps_logged(run):
    "Steps in metrics.jsonl so far (a line torn by a kill is ignored)."
    steps = []
    for line in (Path(run) / 'metrics.jsonl').read_text().splitlines() if (Path(run) / 'metrics.jsonl').exists() else []:
        try: steps.append(json.loads(line)['step'])
        except (ValueError, KeyError): pass
    return max(steps, default=0)


def _in_save(run, since=0):
    "A checkpoint whose files Trainer wrote after time `since` but whose completion marker is not there yet, or None."
    for c in (Path(run) / 'checkpoints').glob('checkpoint-*'):
        try: fresh = (c / 'trainer_state.json').stat().st_mtime > since
        except OSError: continue
        if fresh and not (c / 'complete.json').exists(): return c
    return None


def _wait(p, until, what, timeout=240):
    "Poll `until()` while process `p` runs; fail if it ends or times out first."
    t0 = time.time()
    while not until():
        assert p.poll() is None, f'the run ended before {what}: {p.stderr.read()[-2000:]}'
        assert time.time() - t0 < timeout, f'timed out waiting for {what}'
        time.sleep(0.005)


def _kill(p):
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL, f'the run finished before it could be killed (rc {p.returncode})'


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    p = tmp_path_factory.mktemp('killdata') / 'data.jsonl'
    p.write_text(''.join(sample_path().read_text().splitlines(keepends=True)[:400]))
    return p


def test_kill_anywhere_then_resume_gives_the_same_adapter(data, tmp_path):
    torch.set_num_threads(1)
    t0 = time.time()
    ref = subprocess.Popen(_cmd(data, tmp_path / 'ref'), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
    _wait(ref, lambda: _steps_logged(tmp_path / 'ref') >= 1, 'the first step')
    startup = time.time() - t0  # imports, model and data loading, config.json: the window of the 'start' moment
    assert ref.wait(timeout=600) == 0, ref.stderr.read()[-2000:]
    ref.stderr.close()
    rng = random.Random(15)
    moments = ['start', 'in-save', 'between-steps', 'between-steps', 'between-steps']
    rng.shuffle(moments)
    run, log = tmp_path / 'killed', []
    for i, moment in enumerate(moments):
        env = {**ENV, 'REASONING_NB_TEST_SAVE_PAUSE': '60'} if moment == 'in-save' else ENV
        started = time.time()
        p = subprocess.Popen(_cmd(data, run, *(['--resume'] if i else [])), env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        if moment == 'start':  # while importing, loading the model or writing config.json
            time.sleep(rng.uniform(0.05, 0.9) * startup)
        elif moment == 'in-save':
            _wait(p, lambda: _in_save(run, started), 'a checkpoint save')
        else:  # between (or during) optimizer steps, at a random step past where this segment starts
            target = rng.randint(min(_steps_logged(run) + 1, STEPS - 2), STEPS - 2)
            _wait(p, lambda: _steps_logged(run) >= target, f'step {target}')
            time.sleep(rng.uniform(0, 0.3))
        _kill(p)
        log.append((moment, _steps_logged(run)))
        assert not (run / 'adapter').exists() or (run / 'adapter' / 'adapter_model.safetensors').exists()
        p.stderr.close()
    res = subprocess.run(_cmd(data, run, '--resume'), env=ENV, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    got, want = load_file(run / 'adapter' / 'adapter_model.safetensors'), load_file(tmp_path / 'ref' / 'adapter' /
                                                                                   'adapter_model.safetensors')
    assert sorted(got) == sorted(want)
    diff = max((got[k] - want[k]).abs().max().item() for k in got)
    print(f'kills (moment, last step logged): {log}; max |adapter diff| {diff:.1e}; {time.time() - t0:.0f} s')
    assert diff <= 1e-6, f'adapter differs from the uninterrupted run by {diff}'
    steps = [json.loads(l)['step'] for l in (run / 'metrics.jsonl').read_text().splitlines() if '"loss"' in l]
    assert sorted(steps) == list(range(1, STEPS + 1)), steps  # each step logged once: lines past the checkpoint trimmed


def test_incomplete_checkpoint_is_skipped_with_a_warning(data, tmp_path):
    "The in-save kill, looked at directly: the resumed run names the checkpoint it skipped and ends at the planned step."
    run = tmp_path / 'run'
    p = subprocess.Popen(_cmd(data, run), env={**ENV, 'REASONING_NB_TEST_SAVE_PAUSE': '60'}, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    _wait(p, lambda: _in_save(run), 'a checkpoint save')
    half = _in_save(run)
    time.sleep(0.2)  # inside the pause: every file of the checkpoint but its marker
    _kill(p)
    p.stderr.close()
    from reasoning_nb.runs import checkpoint_complete
    assert not checkpoint_complete(half)
    res = subprocess.run(_cmd(data, run, '--resume'), env=ENV, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f'{half.name}: incomplete checkpoint' in res.stderr, res.stderr[-2000:]
    assert _steps_logged(run) == STEPS
