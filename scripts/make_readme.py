"""Write README.md from nbs/index.ipynb (nbdev_readme needs Quarto, which we can't install offline).

Markdown cells are copied as they are; code cells become ```python blocks followed by their
text outputs. Cells starting with `#| hide` are left out. Run: `python scripts/make_readme.py`;
`--check` exits 1 when README.md is out of date (tests/test_readme.py runs that).
"""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def _text(x): return ''.join(x) if isinstance(x, list) else (x or '')

def _cell_md(cell):
    src = _text(cell['source']).strip('\n')
    if cell['cell_type'] == 'markdown': return src
    if cell['cell_type'] != 'code' or src.startswith('#| hide') or not src: return ''
    lines = [l for l in src.splitlines() if not l.startswith('#|')]
    out = [f"```python\n{chr(10).join(lines)}\n```"]
    for o in cell.get('outputs', []):
        txt = _text(o.get('text') or o.get('data', {}).get('text/plain', '')).rstrip('\n')
        if txt: out.append(f"```\n{txt}\n```")
    return '\n\n'.join(out)

def render(nb_path=ROOT/'nbs'/'index.ipynb'):
    "The README text for the notebook at `nb_path`."
    cells = json.loads(Path(nb_path).read_text(encoding='utf-8'))['cells']
    body = '\n\n'.join(s for s in map(_cell_md, cells) if s)
    return '<!-- Generated from nbs/index.ipynb by scripts/make_readme.py: edit the notebook, not this file. -->\n\n' + body + '\n'

if __name__ == '__main__':
    text, readme = render(), ROOT/'README.md'
    if '--check' in sys.argv:
        if readme.read_text(encoding='utf-8') != text: sys.exit('README.md is out of date: run python scripts/make_readme.py')
    else: readme.write_text(text, encoding='utf-8')
