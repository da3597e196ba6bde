"""scripts/gpu_check.py (the real-size GPU check) parses its arguments and lists its settings and estimates without a GPU."""
import subprocess, sys
from pathlib import Path
SCRIPT = Path(__file__).parents[1] / 'scripts' / 'gpu_check.py'

def _run(*a): return subprocess.run([sys.executable, str(SCRIPT), *a], capture_output=True, text=True, timeout=300)

def test_help_and_list():
    h = _run('--help'); assert h.returncode == 0 and '--steps' in h.stdout and '--cpu-smoke' in h.stdout
    l = _run('--list'); assert l.returncode == 0, l.stderr[-1000:]
    rows = [r for r in l.stdout.splitlines() if r.startswith(('qwen2.5-1.5b-instruct', 'llama-3.1-8b-instruct'))]
    assert {r.split()[1] for r in rows} == {'lora', 'qlora'} and {r.split()[0] for r in rows} == {'qwen2.5-1.5b-instruct', 'llama-3.1-8b-instruct'}
    assert 'tok/s' in l.stdout
    bad = _run('--steps', '0', '--list'); assert bad.returncode == 2 and 'at least 1' in bad.stderr
