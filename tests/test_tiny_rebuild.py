"""The shipped tiny base (reasoning_nb/assets/tiny) is reproducible: rebuilding it with the seed and settings recorded in
its build_info.json gives the same tokenizer, the same loss curve and the same weights.

The full rebuild (1,000 steps, one torch thread) takes ~6 min on an idle 2-core machine and much longer on a busy one;
set REASONING_NB_SKIP_FULL_REBUILD=1 to skip it. The first-100-steps check below covers the same code path in ~40 s."""
import json, os
import pytest
from safetensors.torch import load_file
from reasoning_nb.models import build_tiny, tiny_path
from reasoning_nb.tasks import ASSETS

SHIPPED = ASSETS/'tiny'
INFO = json.loads((SHIPPED/'build_info.json').read_text())

def _max_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)

def _config(d):
    "The model config of directory `d`, without the transformers version that wrote it."
    cfg = json.loads((d/'config.json').read_text())
    cfg.pop('transformers_version', None)
    return cfg

def _rebuild(out, **kw):
    return build_tiny(out, seed=INFO['seed'], steps=INFO['steps'], batch_size=INFO['batch_size'], lr=INFO['lr'],
                      threads=INFO['threads'], verbose=False, **kw)

def test_short_build_is_deterministic(tmp_path):
    "Two short builds with the same seed are identical; another seed differs."
    a, b, c = (build_tiny(tmp_path/n, seed=s, steps=3, batch_size=8, verbose=False) for n, s in [('a', 0), ('b', 0), ('c', 1)])
    wa, wb, wc = (load_file(p/'model.safetensors') for p in (a, b, c))
    assert _max_diff(wa, wb) == 0
    assert _max_diff(wa, wc) > 1e-3

def test_rebuild_start_matches_shipped(tmp_path):
    "The first 100 steps of a rebuild give the shipped tokenizer, config and loss curve."
    assert tiny_path() == SHIPPED, 'the package should ship its built tiny base'
    out = _rebuild(tmp_path/'tiny', stop_after=100)
    assert (out/'tokenizer.json').read_text() == (SHIPPED/'tokenizer.json').read_text()
    assert _config(out) == _config(SHIPPED)
    log = json.loads((out/'build_info.json').read_text())['log']
    assert [r['step'] for r in log] == [1, 50, 100]
    assert [r['loss'] for r in log] == pytest.approx([r['loss'] for r in INFO['log'][:3]], abs=1e-3)

@pytest.mark.skipif(bool(os.environ.get('REASONING_NB_SKIP_FULL_REBUILD')), reason='REASONING_NB_SKIP_FULL_REBUILD is set')
def test_tiny_rebuild_matches_shipped(tmp_path):
    "A full rebuild reproduces the shipped loss curve and weights within a small tolerance."
    out = _rebuild(tmp_path/'tiny')
    assert (out/'tokenizer.json').read_text() == (SHIPPED/'tokenizer.json').read_text()
    log = json.loads((out/'build_info.json').read_text())['log']
    assert [r['loss'] for r in log] == pytest.approx([r['loss'] for r in INFO['log']], abs=1e-3)
    assert _max_diff(load_file(out/'model.safetensors'), load_file(SHIPPED/'model.safetensors')) < 1e-4


def test_tiny_path_builds_once_into_the_cache(tmp_path, monkeypatch):
    """Without the shipped copy, tiny_path builds into files.cache_dir() once, through a temporary beside it; a build
    that fails leaves no model directory behind."""
    from reasoning_nb import models
    calls = []
    def short_build(out, verbose=False):
        calls.append(out)
        return build_tiny(out, steps=2, batch_size=4, verbose=False)
    monkeypatch.setattr(models, 'ASSETS', tmp_path / 'no-assets')
    monkeypatch.setenv('REASONING_NB_CACHE', str(tmp_path / 'cache'))
    monkeypatch.setattr(models, 'build_tiny', short_build)
    first, second = models.tiny_path(), models.tiny_path()
    assert first == second == tmp_path / 'cache' / 'tiny'
    assert len(calls) == 1 and calls[0].parent == first.parent and calls[0].name.startswith('.tiny.tmp-'), calls
    assert sorted(p.name for p in first.parent.iterdir()) == ['tiny', 'tiny.lock']
    assert (first / 'model.safetensors').is_file()

    def broken(out, verbose=False):
        out.mkdir()
        (out / 'config.json').write_text('{}')
        raise RuntimeError('killed half way')
    monkeypatch.setenv('REASONING_NB_CACHE', str(tmp_path / 'cache2'))
    monkeypatch.setattr(models, 'build_tiny', broken)
    with pytest.raises(RuntimeError, match='killed half way'): models.tiny_path()
    assert sorted(p.name for p in (tmp_path / 'cache2').iterdir()) == ['tiny.lock']
