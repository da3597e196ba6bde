"""The streaming data layer from the command line: sampled limits across splits, the RL config, lenient reports,
sampled stats and deterministic curation. Runs `python -m reasoning_nb data ...` on small temp files."""
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args, **env):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]), OMP_NUM_THREADS='1', **env)
    return subprocess.run([sys.executable, '-m', 'reasoning_nb', 'data', *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300, cwd=ROOT)


def row(cat, i, reasoning='on'):
    out = f'<think>\nstep {i}\n</think>\n\n{i}' if reasoning == 'on' else str(i)
    return {'input': [{'role': 'user', 'content': f'{cat} question {i}'}], 'output': out, 'reasoning': reasoning,
            'system_prompt': f'detailed thinking {reasoning}', 'category': cat}


def hub_layout(root, config='SFT', splits=('code', 'math', 'science', 'chat'), n=400):
    for s in splits:
        (root/config/s).mkdir(parents=True, exist_ok=True)
        (root/config/s/f'{s}.jsonl').write_text('\n'.join(json.dumps(row(s, i, 'on' if i % 3 else 'off')) for i in range(n)) + '\n')
    return root


def categories(stdout):
    "Categories listed in the mode table of `stats` output."
    table = stdout.split('\n\n')[1].splitlines()[2:-1]
    return {l.split()[0] for l in table}


def test_limit_draws_from_every_split(tmp_path):
    d = hub_layout(tmp_path/'data')
    p = run('stats', d, '--limit', '500', '--tokenizer', 'words')
    assert p.returncode == 0, p.stderr
    assert ': 500 rows' in p.stdout
    assert categories(p.stdout) == {'code', 'math', 'science', 'chat'}, p.stdout  # not just the first split
    out1, out2 = tmp_path/'a.jsonl', tmp_path/'b.jsonl'
    for out in (out1, out2):
        p = run('curate', d, '--limit', '500', '--out', out, '--quota', 'math=20', '--quota', 'chat=20', '--on-ratio', '0.5', '--seed', '1')
        assert p.returncode == 0, p.stderr
    assert out1.read_text() == out2.read_text()  # the same sample and selection for the same seed


def test_rl_config_and_split_from_the_cli(tmp_path):
    d = hub_layout(tmp_path/'data', splits=('math',), n=10)
    hub_layout(d, config='RL', splits=('instruction_following',), n=7)
    p = run('stats', d, '--config', 'RL', '--tokenizer', 'words')
    assert p.returncode == 0, p.stderr
    assert ': 7 rows' in p.stdout and categories(p.stdout) == {'instruction_following'}
    p = run('validate', d, '--config', 'SFT', '--split', 'math')
    assert p.returncode == 0 and 'OK: 10 valid rows' in p.stdout, p.stdout + p.stderr
    p = run('stats', d, '--config', 'RL', '--split', 'math', '--tokenizer', 'words')
    assert p.returncode == 1 and "no split 'math'" in p.stderr and 'Traceback' not in p.stderr


def test_lenient_lists_skipped_sources_and_fails_when_nothing_loaded(tmp_path):
    p = run('stats', 'nosuchorg/nosuchdataset', '--split', 'math,code', '--limit', '5', '--lenient', '--tokenizer', 'words',
            HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1')
    assert p.returncode == 1, p.stdout + p.stderr
    for s in ('math', 'code'): assert f'nosuchorg/nosuchdataset/SFT/{s}:1: dataset: could not load it' in p.stderr, p.stderr
    assert 'to work offline' in p.stderr and 'nothing loaded from nosuchorg/nosuchdataset' in p.stderr
    assert 'Traceback' not in p.stderr
    bad = tmp_path/'bad.jsonl'
    bad.write_text(json.dumps(dict(row('math', 1), reasoning='maybe')) + '\n')
    p = run('curate', bad, '--out', tmp_path/'x.jsonl', '--quota', 'math=1', '--on-ratio', '1', '--lenient')
    assert p.returncode == 1 and f'{bad}:1: reasoning' in p.stderr, p.stderr


def test_stats_samples_with_bands_and_curate_streams_a_large_file(tmp_path):
    f = tmp_path/'many.jsonl'
    f.write_text(''.join(json.dumps(row(['math', 'code'][i % 2], i, 'on' if i % 4 < 2 else 'off')) + '\n' for i in range(6000)))
    p = run('stats', f, '--sample', '500', '--tokenizer', 'words')
    assert p.returncode == 0, p.stderr
    assert ': 6000 rows' in p.stdout and 'a uniform sample of 500 of the 6000 rows' in p.stdout and '±' in p.stdout
    p = run('stats', f, '--sample', '0', '--tokenizer', 'words')
    assert 'on all 6000 rows' in p.stdout and '±' not in p.stdout
    outs = []
    for k, procs in enumerate(('1', '2')):
        out = tmp_path/f'c{k}.jsonl'
        p = run('curate', f, '--out', out, '--quota', 'math=100', '--quota', 'code=50', '--on-ratio', '0.7', '--num-proc', procs)
        assert p.returncode == 0, p.stderr
        assert 'kept 150 (' in p.stdout and 'dropped 0' in p.stdout, p.stdout
        outs.append(out.read_text())
    assert outs[0] == outs[1]  # one process or two: the same selection
    rows = [json.loads(l) for l in outs[0].splitlines()]
    assert sum(r['category'] == 'math' and r['reasoning'] == 'on' for r in rows) == 70
    assert sum(r['category'] == 'code' and r['reasoning'] == 'off' for r in rows) == 15
