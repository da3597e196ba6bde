"""Execute lesson notebooks in place the way `nbdev_test` runs them, so their outputs can be committed.

Cells marked `#| eval: false` (the Colab install cell) and cells flagged `#| gpu` / `#| hub` are not run and keep no
outputs; everything else runs in order in one kernel from the `nbs/` folder. Then `nbdev_clean` tidies the file.
Run: `python scripts/run_lesson.py nbs/01_train.ipynb [more.ipynb ...]`.
"""
import re, subprocess, sys
from pathlib import Path
import nbformat
from nbclient import NotebookClient

SKIP = re.compile(r'^#\|\s*(eval:\s*false|gpu|hub)\b', re.M)


def run_lesson(path, timeout=1800):
    "Execute notebook `path` in place, leaving skipped cells without outputs."
    path = Path(path).resolve()
    nb = nbformat.read(path, as_version=4)
    skipped = {}
    for i, c in enumerate(nb.cells):
        if c.cell_type == 'code' and SKIP.search(c.source):
            skipped[i] = c.source
            c.source = 'pass'
    NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}}).execute()
    for i, src in skipped.items():
        nb.cells[i].source, nb.cells[i].outputs, nb.cells[i].execution_count = src, [], None
    nbformat.write(nb, path)
    subprocess.run(['nbdev_clean', '--fname', str(path)], check=True)


if __name__ == '__main__':
    for p in sys.argv[1:]:
        run_lesson(p)
        print('executed', p)
