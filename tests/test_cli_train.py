"""`reasoning-nb train` as a user runs it: help, a short run that writes every run file (with a progress bar),
and one clear error line (exit 1) for the mistakes a user makes. Uses the 170k-parameter micro base."""
import json, os, subprocess, sys
from pathlib import Path
import pytest, torch
from reasoning_nb.runs import micro_base
from reasoning_nb.data import sample_path

ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false'}
def cli(*args, timeout=300):
    return subprocess.run([sys.executable, '-m', 'reasoning_nb', 'train', *map(str, args)], env=ENV, capture_output=True,
                          text=True, timeout=timeout)

@pytest.fixture(scope='module')
def base(tmp_path_factory): return micro_base(tmp_path_factory.mktemp('cli') / 'micro')

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    p = tmp_path_factory.mktemp('clidata') / 'data.jsonl'
    p.write_text(''.join(sample_path().read_text().splitlines(keepends=True)[:300])); return p

FAST = ['--max-steps', 6, '--save-steps', 3, '--batch-size', 8, '--val-size', 8, '--logging-steps', 1, '--threads', 1]

def test_help():
    r = cli('--help')
    assert r.returncode == 0
    for flag in ('--preset', '--data', '--out', '--resume', '--max-steps', '--no-pack', '--quant', '--merge'): assert flag in r.stdout

def test_run_writes_run_dir(base, data, tmp_path):
    out = tmp_path / 'run'
    r = cli('--preset', 'tiny', '--model', base, '--data', data, '--out', out, '--merge', *FAST)
    assert r.returncode == 0, r.stderr[-2000:]
    assert '6/6' in r.stderr  # the terminal progress bar reached the last step
    assert 'done:' in r.stdout
    for f in ('config.json', 'metrics.jsonl', 'training.png', 'adapter/adapter_model.safetensors', 'adapter/adapter_config.json',
              'merged/model.safetensors', 'merged/config.json'):
        assert (out / f).exists(), f
    cfg = json.loads((out / 'config.json').read_text())
    assert cfg['config']['max_steps'] == 6 and cfg['config']['model'] == str(base) and cfg['data'] == str(data)
    log = [json.loads(l) for l in (out / 'metrics.jsonl').read_text().splitlines()]
    assert [e['step'] for e in log if 'loss' in e] == [1, 2, 3, 4, 5, 6]
    assert any('eval_loss' in e for e in log)
    from transformers import AutoModelForCausalLM
    assert type(AutoModelForCausalLM.from_pretrained(out / 'merged')).__name__ == 'LlamaForCausalLM'
    # the same directory again without --resume: refused, not overwritten
    again = cli('--model', base, '--data', data, '--out', out, *FAST)
    assert again.returncode == 1 and 'already holds a run' in again.stderr

def test_padded_and_checkpointed_options(base, data, tmp_path):
    r = cli('--model', base, '--data', data, '--out', tmp_path / 'padded', '--no-pack', '--grad-ckpt', '--quiet', *FAST)
    assert r.returncode == 0, r.stderr[-2000:]
    cfg = json.loads((tmp_path / 'padded' / 'config.json').read_text())['config']
    assert cfg['pack'] is False and cfg['grad_ckpt'] is True
    losses = [json.loads(l)['loss'] for l in (tmp_path / 'padded' / 'metrics.jsonl').read_text().splitlines() if '"loss"' in l]
    assert len(losses) == 6 and all(l == l for l in losses)  # no NaN
    from safetensors.torch import load_file
    w = load_file(tmp_path / 'padded' / 'adapter' / 'adapter_model.safetensors')
    lora_b = [v for k, v in w.items() if 'lora_B' in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: gradients reached every adapter through checkpointing

@pytest.mark.parametrize('args,msg', [
    (['--data', 'no/such/file.jsonl'], 'no such file'),
    (['--optim', 'sgd'], "optim must be"),
    (['--max-steps', '0'], 'max_steps'),
])
def test_user_errors(base, tmp_path, args, msg, capsys):  # in-process: the same dispatch, without a 10 s start-up
    from reasoning_nb.cli import main
    assert main(['train', '--model', str(base), '--out', str(tmp_path / 'x'), '--quiet', *args]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith('reasoning-nb train: error:') and msg in last, last

@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the message shown where there is no GPU')
@pytest.mark.parametrize('args,msg', [(['--quant', '4bit'], '4-bit QLoRA'), (['--optim', 'adamw_8bit'], '8-bit AdamW')])
def test_gpu_only_features_explain_themselves(base, tmp_path, args, msg, capsys):
    from reasoning_nb.cli import main
    assert main(['train', '--model', str(base), '--out', str(tmp_path / 'x'), *args]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert msg in last and 'needs a CUDA GPU' in last, last
