"""The shipped tiny base (reasoning_nb/assets/tiny) is reproducible: rebuilding it with the seed and settings recorded in
its build_info.json gives the same tokenizer and the same weights. The full rebuild takes a few minutes on 2 cores."""
import json
import pytest, torch
from safetensors.torch import load_file
from reasoning_nb.models import build_tiny, tiny_path
from reasoning_nb.tasks import ASSETS

SHIPPED = ASSETS/'tiny'

def _max_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)

def test_short_build_is_deterministic(tmp_path):
    "Two short builds with the same seed are identical; another seed differs."
    a, b, c = (build_tiny(tmp_path/n, seed=s, steps=3, batch_size=8, verbose=False) for n, s in [('a', 0), ('b', 0), ('c', 1)])
    wa, wb, wc = (load_file(p/'model.safetensors') for p in (a, b, c))
    assert _max_diff(wa, wb) == 0
    assert _max_diff(wa, wc) > 1e-3

def test_tiny_rebuild_matches_shipped(tmp_path):
    "A full rebuild reproduces the shipped tokenizer exactly and the shipped weights within a small tolerance."
    assert tiny_path() == SHIPPED, 'the package should ship its built tiny base'
    info = json.loads((SHIPPED/'build_info.json').read_text())
    out = build_tiny(tmp_path/'tiny', seed=info['seed'], steps=info['steps'], batch_size=info['batch_size'], lr=info['lr'],
                     threads=info['threads'], verbose=False)
    assert (out/'tokenizer.json').read_text() == (SHIPPED/'tokenizer.json').read_text()
    assert (out/'config.json').read_text() == (SHIPPED/'config.json').read_text()
    rebuilt = json.loads((out/'build_info.json').read_text())
    assert [r['loss'] for r in rebuilt['log']] == pytest.approx([r['loss'] for r in info['log']], abs=1e-3)
    assert _max_diff(load_file(out/'model.safetensors'), load_file(SHIPPED/'model.safetensors')) < 1e-4
