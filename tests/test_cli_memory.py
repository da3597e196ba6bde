"""`reasoning-nb memory` run as a user would: a subprocess, offline, preset names and a local config path."""
import json, subprocess, sys
from pathlib import Path
import pytest

GiB = 2**30

def memory(*args):
    "Run `python -m reasoning_nb memory ARGS`; returns the CompletedProcess."
    return subprocess.run([sys.executable, '-m', 'reasoning_nb', 'memory', *args], capture_output=True, text=True, timeout=300,
                          env={**__import__('os').environ, 'HF_HUB_OFFLINE': '1'})

@pytest.fixture(scope='module')
def guide_json():
    r = memory('--model', 'llama-3.1-8b-instruct', '--method', 'qlora', '--lora-r', '64', '--seq-len', '4096', '--batch', '1',
               '--grad-ckpt', '--gpu-gb', '24', '--json')
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)

def test_json_has_total_and_parts(guide_json):
    parts = ['frozen_weights', 'trainable_weights', 'gradients', 'optimizer_states', 'activations', 'logits_loss', 'overhead']
    assert all(isinstance(guide_json[p], int) and guide_json[p] >= 0 for p in parts)
    assert guide_json['total_bytes'] == sum(guide_json[p] for p in parts)
    assert guide_json['fits'] is True and guide_json['gpu_gb'] == 24

def test_json_matches_library(guide_json):
    from reasoning_nb.memory import estimate_memory
    e = estimate_memory('llama-3.1-8b-instruct', 'qlora', lora_r=64, seq_len=4096, batch=1, grad_ckpt=True)
    assert guide_json['total_bytes'] == e.total_bytes
    assert 4*GiB < guide_json['frozen_weights'] < 7*GiB  # 8B params in NF4 + bf16 embeddings

def test_text_verdict_does_not_fit():
    r = memory('--model', 'llama-3.1-8b-instruct', '--method', 'lora', '--lora-r', '64', '--seq-len', '4096', '--gpu-gb', '24')
    assert r.returncode == 3, r.stderr
    assert 'does not fit on a 24 GiB card' in r.stdout and 'gradient checkpointing' in r.stdout
    assert 'frozen_weights' in r.stdout and 'total' in r.stdout

def test_fits_and_checkpointing_lowers_total():
    on = memory('--model', 'qwen2.5-0.5b-instruct', '--seq-len', '2048', '--grad-ckpt', '--json')
    off = memory('--model', 'qwen2.5-0.5b-instruct', '--seq-len', '2048', '--json')
    assert on.returncode == off.returncode == 0
    assert json.loads(on.stdout)['total_bytes'] < json.loads(off.stdout)['total_bytes']

def test_local_config_path(tmp_path):
    cfg = Path(__import__('reasoning_nb.memory', fromlist=['x']).configs_dir())/'qwen2.5-1.5b-instruct.json'
    d = tmp_path/'model'; d.mkdir(); (d/'config.json').write_text(cfg.read_text())
    r = memory('--model', str(d), '--method', 'full', '--seq-len', '512', '--gpu-gb', '80', '--json')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)['trainable_weights'] == 2*1_543_714_304  # every bf16 weight trains

def test_user_errors_are_one_line():
    for args in (['--model', 'no-such-model'], ['--model', 'tiny', '--targets', 'qkv_proj,fc1']):
        r = memory(*args)
        assert r.returncode == 1 and 'Traceback' not in r.stderr
        assert r.stderr.startswith('reasoning-nb memory: error:') or 'reasoning-nb memory: error:' in r.stderr.splitlines()[-1]

def test_help():
    r = memory('--help')
    assert r.returncode == 0 and '--seq-len' in r.stdout and '--gpu-gb' in r.stdout
