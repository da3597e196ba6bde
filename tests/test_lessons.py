"""The course stands on its own: what every lesson notebook must have, and what no lesson or module may do.

A learner has only this repository, so a lesson may not lean on documents outside it; a GPU user changes one
preset cell, so no other cell may name the tiny tier; and the package stays readable, one concept per module."""
import json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(p for p in (ROOT / 'nbs').glob('*.ipynb') if p.name != 'index.ipynb')
MODULES = sorted(p for p in (ROOT / 'reasoning_nb').glob('*.py') if p.name not in ('_modidx.py', '__init__.py'))

INSTALL = '''#| eval: false
# Colab / a fresh GPU machine: install the course package (Colab already has a CUDA PyTorch).
# On a CPU-only machine put `pip install torch==2.13.0` first, as the README says.
!pip install -q "reasoning-nb[dev] @ git+https://github.com/reasoning-nb/reasoning_nb"'''
PRESET = ("PRESET = 'tiny'  # or 'qwen2.5-0.5b-instruct' (Colab T4), 'llama-3.1-8b-instruct' (4-bit, 24 GB)\n"
          "DATA = None      # None: the preset's data (tiny: the bundled sample; GPU presets: the hub dataset); "
          "or a file, directory or hub id\n"
          "RUN_DIR = Path('runs') / PRESET")
NO_PRESET = {'000_files.ipynb'}  # writes files only: no model, no data
TINY_FLAG = '# tiny tier only:'
HIDDEN = re.compile(r"\bSPEC\b|TINY_TIER|seed guide|seed's|seed-style|seed recipe|seed server"
                    r"|\bthe seed\b(?! (?:is|was|fixed|value|argument|of the|and|for the random))", re.I)
NOISE = re.compile(r'FutureWarning|DeprecationWarning|UserWarning|Loading weights|\d+it/s\]|\d+\.\d+s/it\]')


def cells(path, kind=None):
    "The cells of notebook `path` (optionally only 'code' or 'markdown' ones) as (source, cell) pairs."
    nb = json.loads(path.read_text(encoding='utf-8'))
    return [(''.join(c['source']), c) for c in nb['cells'] if kind in (None, c['cell_type'])]


def output_text(cell):
    "All text a code cell's outputs show."
    parts = []
    for o in cell.get('outputs', []):
        parts.append(''.join(o.get('text', '')))
        parts.append(''.join(o.get('data', {}).get('text/plain', '')))
        parts.append(''.join(o.get('traceback', [])))
    return '\n'.join(parts)


def ids(paths): return [p.name for p in paths]


@pytest.mark.parametrize('nb', LESSONS, ids=ids(LESSONS))
def test_install_cell(nb):
    "Every lesson has the one Colab install cell, and no other pip line."
    srcs = [s for s, _ in cells(nb, 'code')]
    test = [s for s in srcs if 'pip install' in s and s.strip() != INSTALL]
    assert INSTALL in [s.strip() for s in srcs], f'{nb.name}: the install cell is missing or differs'
    ran = [c for s, c in cells(nb, 'code') if s.strip() == INSTALL and c.get('outputs')]
    assert not ran, f'{nb.name}: the install cell has committed outputs (run lessons with scripts/run_lesson.py)'
    assert not test, f'{nb.name}: other pip install lines: {test}'


@pytest.mark.parametrize('nb', LESSONS, ids=ids(LESSONS))
def test_objectives_and_exercise(nb):
    "Every lesson says what you will learn and gives at least one exercise with a TODO cell and a check."
    md = [s for s, _ in cells(nb, 'markdown')]
    code = [s for s, _ in cells(nb, 'code')]
    assert any(s.lstrip().startswith('## Learning objectives') for s in md), f'{nb.name}: no "## Learning objectives"'
    assert any(re.match(r'\s*##+ Exercise', s) for s in md), f'{nb.name}: no "## Exercise" section'
    assert any('# TODO' in s for s in code), f'{nb.name}: no exercise cell with "# TODO"'


USES_MODEL = re.compile(r"""cached_run\(|load_trained\(|load_model\(|load_records\(|sample_path\(|tiny_run\(|['"]tiny['"]""")


def needs_preset(nb):
    "A notebook that loads a model, data or a run (a pure-logic part such as the protocol needs none)."
    return nb.name not in NO_PRESET and any(USES_MODEL.search(s) for s, _ in cells(nb, 'code'))


WITH_PRESET = [p for p in LESSONS if needs_preset(p)]


@pytest.mark.parametrize('nb', WITH_PRESET, ids=ids(WITH_PRESET))
def test_one_preset_cell(nb):
    "Exactly one preset cell; no other code cell names the tiny tier unless it is flagged as tiny-only."
    code = [s for s, _ in cells(nb, 'code')]
    presets = [s for s in code if s.startswith(PRESET)]
    assert len(presets) == 1, f'{nb.name}: {len(presets)} preset cells (want 1, starting with the three standard lines)'
    bad = [s.splitlines()[0] for s in code
           if not s.startswith((PRESET, TINY_FLAG, '#| export'))  # library code may define the tiny preset
           and re.search(r"""['"]tiny['"]|tiny_run\(""", s)]
    assert not bad, f"{nb.name}: cells that hard-code the tiny tier (first lines): {bad}"


@pytest.mark.parametrize('nb', LESSONS + [ROOT / 'nbs' / 'index.ipynb'], ids=ids(LESSONS) + ['index.ipynb'])
def test_no_hidden_references(nb):
    "No lesson points at documents a learner does not have."
    hits = []
    for s, c in cells(nb):
        for m in HIDDEN.finditer(s + '\n' + output_text(c)): hits.append(m.group(0))
    assert not hits, f'{nb.name}: mentions {sorted(set(hits))}'


@pytest.mark.parametrize('nb', LESSONS, ids=ids(LESSONS))
def test_clean_outputs(nb):
    "No warnings or progress-bar debris committed; every figure committed as an image."
    noise, bare_figs = [], 0
    for s, c in cells(nb, 'code'):
        noise += NOISE.findall(output_text(c))
        for o in c.get('outputs', []):
            d = o.get('data', {})
            if ''.join(d.get('text/plain', '')).startswith('<Figure size') and 'image/png' not in d: bare_figs += 1
    assert not noise, f'{nb.name}: committed noise {sorted(set(noise))}'
    assert bare_figs == 0, f'{nb.name}: {bare_figs} figure outputs without an image'


@pytest.mark.parametrize('nb', LESSONS, ids=ids(LESSONS))
def test_tests_show_values(nb):
    "`test_eq(cond, True)` hides the values on failure: test the values themselves."
    bad = [l.strip() for s, _ in cells(nb, 'code') for l in s.splitlines() if re.search(r'test_eq\(.*,\s*True\)\s*$', l)]
    assert not bad, f'{nb.name}: {bad}'


@pytest.mark.parametrize('mod', MODULES, ids=ids(MODULES))
def test_module_readable(mod):
    "Modules small enough to read in one sitting, with short lines and no private names from other modules."
    lines = mod.read_text(encoding='utf-8').splitlines()
    long = [i + 1 for i, l in enumerate(lines)  # nbdev writes line 1 (the summary) and __all__ on one line each
            if len(l) > 120 and i > 0 and not l.startswith('__all__')]
    private = [l for l in lines if re.match(r'\s*from (?:\.|reasoning_nb\.)\w* import .*\b_[a-z]', l)]
    ours = '|'.join(p.stem for p in MODULES)
    private += [l for l in lines if re.search(rf'\b(?:{ours})\._[a-z]', l) and not l.lstrip().startswith('#')]
    assigned = [l for l in lines if re.match(r'^[A-Z]\w*\._\w+\s*(?:,\s*[A-Z]\w*\._\w+\s*)*=', l)]
    assert len(lines) <= 420, f'{mod.name}: {len(lines)} lines (keep modules to ~400)'
    assert not long, f'{mod.name}: lines over 120 characters: {long[:10]}'
    assert not private, f'{mod.name}: imports private names: {private}'
    assert not assigned, f'{mod.name}: methods assigned after the class (use fastcore.basics.patch): {assigned}'
