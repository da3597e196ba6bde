"README.md is generated from nbs/index.ipynb and gives the exact test command that CI runs."
import re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def _ci_test_command():
    lines = (ROOT/'.ci'/'run').read_text().splitlines()
    return next(l.split('=', 1)[1].strip().strip("'\"") for l in lines if l.startswith('TEST_COMMAND='))

def test_readme_in_sync_with_index():
    r = subprocess.run([sys.executable, 'scripts/make_readme.py', '--check'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

def test_readme_has_ci_test_command():
    readme = (ROOT/'README.md').read_text()
    blocks = re.findall(r'```(?:bash|sh)\n(.*?)```', readme, re.S)
    assert any(_ci_test_command() in b for b in blocks), 'README test command and .ci/run differ'

def test_readme_has_demo_command():
    assert 'reasoning-nb demo' in (ROOT/'README.md').read_text()
