"""Lesson 05's RL run end to end on the micro base: rewards, a few GRPO steps, resume after a kill, measure, CLI."""
import json, os, shutil, subprocess, sys, warnings
from dataclasses import replace
from pathlib import Path
import pytest
import torch

torch.set_num_threads(1)
from reasoning_nb.runs import micro_base, checkpoint_complete
from reasoning_nb.rl import (rl_config, train_rl, measure_run, cached_rl_run, load_results, rl_summary, rl_table,
                             Rewards, reward_weights, is_malformed, thinking_tokens, guided_modes)
from reasoning_nb.models import load_model, turn_end_ids


@pytest.fixture(scope='module')
def micro(tmp_path_factory):
    return micro_base(tmp_path_factory.mktemp('micro') / 'base')


def quick(micro, **kw):
    "A few-second RL recipe on the micro base."
    return rl_config('tiny', sft=str(micro), **{**dict(max_steps=2, save_steps=1, prompts_per_step=2, num_generations=4,
                     guided=2, max_completion_length=8, n_prompts=16, eval_n=3), **kw})


def test_rewards(micro):
    "Each part of the reward on hand-written replies, and the weighted total."
    _, tok = load_model(str(micro))
    rw = Rewards(tok, {tok.convert_tokens_to_ids('<|im_end|>'), tok.pad_token_id})
    ids = [tok(r + '<|im_end|>', add_special_tokens=False)['input_ids']
           for r in ['<think>\n</think>\n\n7', '<think>\n3+4+0=07\n</think>\n\n7', '<think>\n3+4', '8']]
    c, m, t = rw.correct(ids, ['7'] * 4), rw.malformed(ids), rw.thinking(ids)
    assert c == [1.0, 1.0, 0.0, 0.0], c
    assert m == [0.0, 0.0, 1.0, 1.0], m
    assert t[0] == 0 and t[1] == thinking_tokens(tok, '<think>\n3+4+0=07\n</think>\n\n7') > 0, t
    w = reward_weights(rl_config('tiny', think_cost=0.5, format_penalty=2.0))
    assert w == [1.0, -2.0, -0.5], w
    assert is_malformed('<think>\n</think>\n\n') and not is_malformed('<think>\n</think>\n\n5')
    assert guided_modes([['a']] * 4 + [['b']] * 4, 4, 2) == ['on', 'off', 'auto', 'auto'] * 2


def test_train_resume_measure(micro, tmp_path):
    "Two GRPO steps write a complete run; a kill inside the last save resumes from the checkpoint before it."
    cfg = quick(micro)
    run = train_rl(cfg, tmp_path / 'run')
    log = [json.loads(l) for l in (run / 'metrics.jsonl').read_text().splitlines()]
    assert [e['step'] for e in log if 'kl' in e] == [1, 2], log
    assert all(k in log[0] for k in ('reward', 'rewards/correct/mean', 'rewards/thinking/mean')), log[0]
    assert (run / 'merged' / 'model.safetensors').exists() and (run / 'adapter' / 'adapter_model.safetensors').exists()
    with pytest.raises(ValueError, match='already holds'): train_rl(cfg, run)
    shutil.copytree(run, tmp_path / 'killed')
    killed = tmp_path / 'killed'
    (killed / 'checkpoints' / 'checkpoint-2' / 'trainer_state.json').unlink()
    shutil.rmtree(killed / 'adapter')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        train_rl(None, killed, resume=True)
    log2 = [json.loads(l) for l in (killed / 'metrics.jsonl').read_text().splitlines()]
    assert [e['step'] for e in log2 if 'kl' in e] == [1, 2], log2
    assert checkpoint_complete(killed / 'checkpoints' / 'checkpoint-2')
    more = train_rl(replace(cfg, max_steps=3), killed, resume=True)  # longer: only max_steps may change
    assert [json.loads(l)['step'] for l in (more / 'metrics.jsonl').read_text().splitlines() if 'kl' in l] == [1, 2, 3]
    with pytest.raises(ValueError, match='cannot change'): train_rl(replace(cfg, beta=0.5), killed, resume=True)
    results = measure_run(run)
    info = json.loads((run / 'rl.json').read_text())
    assert info['table'] == rl_table(rl_summary(load_results(run))), info['table']
    assert set(results) == {'easy', 'hard'} and set(results['hard']) == {'sft-on', 'sft-off', 'rl-auto'}


def test_cached_and_cli(micro, tmp_path):
    "cached_rl_run trains once; `reasoning-nb rl` prints the table of a run of its own."
    a = cached_rl_run('tiny', cache=tmp_path / 'cache', **vars(quick(micro, max_steps=1)) | {'sft_overrides': {}})
    b = cached_rl_run('tiny', cache=tmp_path / 'cache', **vars(quick(micro, max_steps=1)) | {'sft_overrides': {}})
    assert a == b and (a / 'rl.json').exists() and not (a / 'checkpoints').exists()
    cmd = [sys.executable, '-m', 'reasoning_nb', 'rl', '--sft', str(micro), '--out', str(tmp_path / 'cli'),
           '--max-steps', '1', '--prompts-per-step', '2', '--num-generations', '4', '--guided', '2',
           '--max-completion-length', '8', '--eval-n', '2', '--save-steps', '1', '--threads', '1']
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert r.returncode == 0, r.stderr[-2000:]
    assert '| hard | rl-auto |' in r.stdout, r.stdout
    h = subprocess.run([sys.executable, '-m', 'reasoning_nb', 'rl', '--help'], capture_output=True, text=True)
    assert h.returncode == 0 and '--resume' in h.stdout
