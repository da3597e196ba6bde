"""`reasoning-nb eval --base-url` grades a served model exactly like a local one: the built-in server on the
trained tiny run, 200 tiny items, greedy, gives the same accuracy (item by item) as local evaluation."""
import json, os, subprocess, sys

import pytest

from reasoning_nb.serve import ServerProcess


@pytest.fixture(scope='module')
def run():
    from reasoning_nb.runs import cached_run
    return str(cached_run('tiny'))


def _eval(tmp, *args):
    p = subprocess.run([sys.executable, '-m', 'reasoning_nb', 'eval', '--task', 'tiny-add', '--n', '200', '--modes', 'on,off',
                        '--out', str(tmp), *map(str, args)], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    return {m: [json.loads(l) for l in (tmp / f'model-{m}.jsonl').read_text().splitlines()] for m in ('on', 'off')}


def test_base_url_matches_local_greedy(run, tmp_path):
    local = _eval(tmp_path / 'local', '--model', run)
    with ServerProcess(run, '--served-model-name', 'tiny', '--max-concurrency', 32, '--api-key', 'sk-x') as srv:
        served = _eval(tmp_path / 'served', '--model', 'tiny', '--base-url', srv.base_url, '--api-key', 'sk-x', '--concurrency', 32)
    for m in ('on', 'off'):
        acc = lambda recs: sum(r['correct'] for r in recs) / len(recs)
        print(f'mode {m}: local {acc(local[m]):.3f}, --base-url {acc(served[m]):.3f}')
        assert len(served[m]) == len(local[m]) == 200
        assert [r['correct'] for r in served[m]] == [r['correct'] for r in local[m]], m
        assert [r['extracted'] for r in served[m]] == [r['extracted'] for r in local[m]], m


def test_base_url_errors_are_one_line(tmp_path):
    p = subprocess.run([sys.executable, '-m', 'reasoning_nb', 'eval', '--task', 'tiny-add', '--n', '2', '--model', 'x',
                        '--base-url', 'http://127.0.0.1:9/v1', '--retries', '0', '--modes', 'on', '--out', str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and 'Traceback' not in p.stderr and '127.0.0.1:9' in p.stderr, p.stderr
