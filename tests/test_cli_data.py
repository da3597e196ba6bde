"""`reasoning-nb data ...` run for real (`python -m reasoning_nb data ...`) on temp files.

Each kind of bad row must come back as a `file:line: field: problem` line, exit status 1 and no traceback;
good data must exit 0 with a summary. The repository root goes first on PYTHONPATH so the working tree is
what gets tested, installed or not.
"""
import json, os, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT/'reasoning_nb'/'assets'/'sample.jsonl'


def run(*args):
    "Run `python -m reasoning_nb data *args`; returns the CompletedProcess (text stdout/stderr)."
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]),
               OMP_NUM_THREADS='1', MPLBACKEND='Agg')
    return subprocess.run([sys.executable, '-m', 'reasoning_nb', 'data', *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)


def row(reasoning='on', **kw):
    "A valid Nemotron row, with fields overridden by `kw` (a value of None removes the field)."
    r = {'input': [{'role': 'user', 'content': 'What is 12+30?'}],
         'output': '<think>\n2+0=2\n1+3=4\n</think>\n\n42' if reasoning == 'on' else '42',
         'reasoning': reasoning, 'system_prompt': f'detailed thinking {reasoning}', 'category': 'math',
         'license': 'cc-by-4.0', 'generator': 'test', 'version': 'v1.1', 'used_in_training': 'Ultra, Nano'}
    r.update(kw)
    return {k: v for k, v in r.items() if v is not None}


BAD = {  # name -> (line 3 of the file, field, words the problem must contain)
    'bad json': ('{"input": [', 'json', 'invalid JSON'),
    'not an object': ('[1, 2, 3]', 'row', 'expected a JSON object'),
    'missing field': (json.dumps(row(output=None)), 'output', 'missing'),
    'mistyped field': (json.dumps(row(category=7)), 'category', 'expected str, got int'),
    'input not a list': (json.dumps(row(input='hello')), 'input', 'expected a list'),
    'unknown role': (json.dumps(row(input=[{'role': 'robot', 'content': 'hi'}])), 'input[0].role', "unknown role 'robot'"),
    'reasoning flag': (json.dumps(row(reasoning='maybe')), 'reasoning', "expected 'on' or 'off'"),
    'system prompt contradicts flag': (json.dumps(row('on', system_prompt='detailed thinking off')), 'system_prompt', 'contradicts'),
    'unclosed think': (json.dumps(row(output='<think>\nlet me see')), 'output', 'unclosed <think>'),
    'thinking in off mode': (json.dumps(row('off', output='<think>\nhmm\n</think>\n\n42')), 'output', "reasoning is 'off'"),
    'on mode without thinking': (json.dumps(row('on', output='42')), 'output', "reasoning is 'on'"),
    'used_in_training mistyped': (json.dumps(row(used_in_training=3)), 'used_in_training', 'expected a list of strings'),
    'unparseable v1 string': (json.dumps(row(input='<|begin_of_text|><|start_header_id|>')), 'input', 'old pre-templated v1 format'),
}


@pytest.mark.parametrize('name', BAD)
def test_validate_names_file_line_and_field(tmp_path, name):
    line, field, words = BAD[name]
    f = tmp_path/'data.jsonl'
    f.write_text('\n'.join([json.dumps(row()), '', line, json.dumps(row('off'))]) + '\n', encoding='utf-8')
    p = run('validate', f)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    problem = next(l for l in p.stdout.splitlines() if l.startswith(f'{f}:3: '))
    assert problem.startswith(f'{f}:3: {field}: ') and words in problem, problem
    assert 'Traceback' not in p.stdout + p.stderr
    assert '2 valid rows' in p.stdout  # the good rows on lines 1 and 4 are still counted


def test_validate_empty_file_and_several_files(tmp_path):
    empty, good, bad = tmp_path/'empty.jsonl', tmp_path/'good.jsonl', tmp_path/'bad.json'
    empty.write_text('\n  \n')
    good.write_text(json.dumps(row()) + '\n')
    bad.write_text(json.dumps([row(), row(), row(reasoning='yes')]))  # .json: the number is the list position
    p = run('validate', good, empty, bad, tmp_path/'missing.jsonl')
    assert p.returncode == 1
    assert f'{empty}:1: file: empty file' in p.stdout
    assert f'{bad}:3: reasoning: ' in p.stdout
    assert f'{tmp_path/"missing.jsonl"}: no such file' in p.stdout
    assert 'Traceback' not in p.stdout + p.stderr


def test_validate_good_files_exit_0(tmp_path):
    crlf = tmp_path/'crlf.jsonl'  # BOM, CRLF line ends and blank lines are all fine
    crlf.write_bytes(b'\xef\xbb\xbf' + b'\r\n'.join(json.dumps(r).encode() for r in [row(), row('off')]) + b'\r\n\r\n')
    v1 = tmp_path/'v1.jsonl'  # the old pre-templated format is converted
    v1.write_text(json.dumps(row(input='<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 12+30?<|eot_id|>'
                                 '<|start_header_id|>assistant<|end_header_id|>\n\n', output='42<|eot_id|>', reasoning='off',
                                 system_prompt='detailed thinking off')) + '\n')
    p = run('validate', crlf, v1, SAMPLE)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f'{crlf}: 2 valid rows (1 on / 1 off), 0 bad' in p.stdout
    assert p.stdout.strip().splitlines()[-1].startswith('OK:')


def test_validate_hub_layout_directory(tmp_path):
    for split, rows in {'math': [row(), row('off')], 'chat': [row(category='chat'), row(reasoning='x')]}.items():
        d = tmp_path/'SFT'/split
        d.mkdir(parents=True)
        (d/f'{split}_v1.1.jsonl').write_text('\n'.join(map(json.dumps, rows)))
    p = run('validate', tmp_path)
    assert p.returncode == 1 and f'{tmp_path/"SFT"/"chat"/"chat_v1.1.jsonl"}:2: reasoning: ' in p.stdout
    p = run('stats', tmp_path, '--split', 'math', '--tokenizer', 'words')
    assert p.returncode == 0, p.stderr
    assert ': 2 rows' in p.stdout and 'chat' not in p.stdout.split('lengths in')[0]


def test_stats_on_sample_with_plot(tmp_path):
    png = tmp_path/'stats.png'
    p = run('stats', SAMPLE, '--plot', png)
    assert p.returncode == 0, p.stderr
    n = sum(1 for l in SAMPLE.read_text().splitlines() if l.strip())
    assert f': {n} rows' in p.stdout
    for words in ('category', 'generator', 'license', 'version', 'lengths in', 'thinking share'): assert words in p.stdout
    assert png.read_bytes()[:4] == b'\x89PNG'


def test_stats_bad_source_is_one_line_error(tmp_path):
    f = tmp_path/'bad.jsonl'
    f.write_text(json.dumps(row()) + '\n' + json.dumps(row(reasoning='sure')) + '\n')
    p = run('stats', f, '--tokenizer', 'words')
    assert p.returncode == 1
    assert f'error: {f}:2: reasoning: ' in p.stderr and 'Traceback' not in p.stderr


def test_curate_exact_quota_and_ratio(tmp_path):
    out = tmp_path/'curated.jsonl'
    p = run('curate', SAMPLE, '--out', out, '--quota', 'math=200', '--on-ratio', '0.7', '--seed', '0')
    assert p.returncode == 0, p.stderr
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(rows) == 200 and sum(r['reasoning'] == 'on' for r in rows) == 140
    assert {r['category'] for r in rows} == {'math'}
    assert all(isinstance(r['used_in_training'], list) for r in rows)
    assert 'kept 200 (math: 140 on / 60 off)' in p.stdout
    out2 = tmp_path/'again.jsonl'  # same seed, same file; curriculum reorders the same rows
    assert run('curate', SAMPLE, '--out', out2, '--quota', 'math=200', '--on-ratio', '0.7', '--seed', '0').returncode == 0
    assert out2.read_text() == out.read_text()
    out3 = tmp_path/'curriculum.jsonl'
    assert run('curate', SAMPLE, '--out', out3, '--quota', 'math=200', '--on-ratio', '0.7', '--curriculum').returncode == 0
    assert sorted(out3.read_text().splitlines()) == sorted(out.read_text().splitlines())


def test_curate_errors(tmp_path):
    p = run('curate', SAMPLE, '--out', tmp_path/'x.jsonl', '--quota', 'math=100000', '--on-ratio', '0.5')
    assert p.returncode == 1 and "not enough 'math' rows" in p.stderr and 'Traceback' not in p.stderr
    p = run('curate', SAMPLE, '--out', tmp_path/'x.jsonl', '--quota', 'math', '--on-ratio', '0.5')
    assert p.returncode == 2 and 'expected CATEGORY=N' in p.stderr
    assert not (tmp_path/'x.jsonl').exists()


KILL_WHILE_WRITING = '''
import os, signal, sys
from reasoning_nb.data import Record
from reasoning_nb.cli import main
calls = [0]
def to_dict(self):  # SIGKILL this process while it writes its third row: the worst moment for the output file
    calls[0] += 1
    if calls[0] == 3: os.kill(os.getpid(), signal.SIGKILL)
    return dict(self.__dict__)
Record.to_dict = to_dict
sys.exit(main(sys.argv[1:]))
'''


def test_killed_or_failed_curate_leaves_the_old_output(tmp_path):
    out = tmp_path/'curated.jsonl'
    args = ['curate', SAMPLE, '--out', out, '--quota', 'math=20', '--on-ratio', '0.5']
    assert run(*args, '--seed', '0').returncode == 0
    old = out.read_bytes()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]), OMP_NUM_THREADS='1')
    p = subprocess.run([sys.executable, '-c', KILL_WHILE_WRITING, 'data', *map(str, args), '--seed', '1'],
                       capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert p.returncode == -9, (p.returncode, p.stdout, p.stderr)  # it was killed mid-write ...
    assert out.read_bytes() == old  # ... and the old file is whole
    left = [f.name for f in tmp_path.iterdir() if f.name.startswith('.curated.jsonl.tmp-')]
    assert len(left) == 1, left  # what it had written went to a temporary beside the target
    p = run('curate', SAMPLE, '--out', out, '--quota', 'math=100000', '--on-ratio', '0.5')  # a failed run
    assert p.returncode == 1 and out.read_bytes() == old, p.stderr
    assert run(*args, '--seed', '1').returncode == 0 and out.read_bytes() != old  # the next good run replaces it ...
    assert not [f for f in tmp_path.iterdir() if f.name.startswith('.curated')]  # ... and clears the leftover
