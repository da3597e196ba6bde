"""`reasoning-nb eval` end to end in a subprocess, on the tiny base (built once and cached by models)."""
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def _run(*args, timeout=600):
    env = {**os.environ, 'PYTHONPATH': str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', ''), 'MPLBACKEND': 'Agg',
           'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '1')}  # one thread: a shared 2-core machine thrashes with more
    return subprocess.run([sys.executable, '-m', 'reasoning_nb', *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)

def test_eval_help():
    r = _run('eval', '--help')
    assert r.returncode == 0, r.stderr
    for flag in ('--model', '--task', '--modes', '--budget', '--k'): assert flag in r.stdout

def test_eval_writes_report(tmp_path):
    out = tmp_path/'ev'
    r = _run('eval', '--model', 'tiny', '--task', 'tiny-add', '--n', '12', '--modes', 'on,none', '--budget', '0,4',
             '--k', '1,3', '--max-new-tokens', '40', '--out', str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    assert '| model-on |' in r.stdout and '| model-none |' in r.stdout and 'McNemar' in r.stdout
    recs = [json.loads(l) for l in (out/'model-on.jsonl').read_text().splitlines()]
    assert len(recs) == 12
    assert {'prompt', 'reply', 'thinking_tokens', 'answer_tokens', 'extracted', 'correct'} <= set(recs[0])
    summary = json.loads((out/'model-on.json').read_text())
    assert summary['n'] == 12 and summary['ci_low'] <= summary['accuracy'] <= summary['ci_high']
    assert summary['correct'] == sum(r['correct'] for r in recs)
    sweep = json.loads((out/'budget_sweep.json').read_text())
    assert [s['budget'] for s in sweep] == [0, 4, None]
    assert sweep[0]['mean_thinking_tokens'] == 0       # budget 0: the think block is closed at once
    assert all(s['mean_thinking_tokens'] <= 4 for s in sweep[:2])
    assert (out/'budget_sweep.png').stat().st_size > 1000 and (out/'self_consistency.png').is_file()
    assert '![Thinking budget](budget_sweep.png)' in (out/'report.md').read_text()

def test_eval_bad_arguments(tmp_path):
    r = _run('eval', '--model', 'tiny', '--modes', 'on,maybe')
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1].startswith('reasoning-nb eval: error: --modes takes')
    bad = tmp_path/'bad.jsonl'
    bad.write_text('{"question": "q", "choices": ["a", "b"], "gold": 7}\n')
    r = _run('eval', '--model', 'tiny', '--task', str(bad), '--out', str(tmp_path/'o'))
    assert r.returncode == 1 and f'{bad}:1: field "gold"' in r.stderr and 'Traceback' not in r.stderr

def test_eval_mcq_counts_no_answer(tmp_path):
    "Multiple choice through the CLI: a reply without a letter is 'no answer' and wrong, never a default letter."
    out = tmp_path/'mcq'
    r = _run('eval', '--model', 'tiny', '--task', 'tiny-mcq', '--n', '8', '--modes', 'on,none', '--max-new-tokens', '24',
             '--out', str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    recs = [json.loads(l) for l in (out/'model-none.jsonl').read_text().splitlines()]
    assert [x['gold'] in 'ABCD' for x in recs] == [True] * 8
    assert [x['correct'] for x in recs] == [x['extracted'] == x['gold'] for x in recs]
    summary = json.loads((out/'model-none.json').read_text())
    assert summary['no_answer'] == sum(x['extracted'] is None for x in recs) / 8
    assert 'Choose the best answer' in recs[0]['prompt'] and recs[0]['prompt'].endswith('?')
