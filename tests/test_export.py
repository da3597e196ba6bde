"""`reasoning-nb export RUN --out DIR`: a plain model directory that `transformers` (and so vLLM/SGLang/TGI) loads
unchanged and that replies exactly like the run; the printed commands name the right vLLM flags."""
import subprocess, sys

import pytest
import torch


@pytest.fixture(scope='module')
def run():
    from reasoning_nb.train import tiny_run
    return tiny_run()


def test_export_cli_and_plain_transformers_reload(run, tmp_path):
    out = tmp_path / 'served'
    p = subprocess.run([sys.executable, '-m', 'reasoning_nb', 'export', str(run), '--out', str(out), '--served-model-name', 'tiny-r',
                        '--tensor-parallel-size', '2'], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert f'vllm serve {out.resolve()} --served-model-name tiny-r --reasoning-parser deepseek_r1 --enable-prefix-caching --tensor-parallel-size 2' in p.stdout
    assert (out / 'model.safetensors').is_file() and (out / 'generation_config.json').is_file() and (out / 'SERVE.md').is_file()

    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline
    from reasoning_nb.serve import encode_prompt
    from reasoning_nb.train import load_trained
    model, tok = load_trained(run)
    m2, t2 = AutoModelForCausalLM.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    assert m2.dtype == model.dtype
    pipe = pipeline('text-generation', model=m2, tokenizer=t2)
    for q, think in [('What is 347+589?', True), ('What is 12+30?', False)]:
        msgs = ([] if think else [{'role': 'system', 'content': 'detailed thinking off'}]) + [{'role': 'user', 'content': q}]
        got = pipe(msgs, max_new_tokens=60, do_sample=False, return_full_text=False)[0]['generated_text']
        ids = torch.tensor([encode_prompt(tok, msgs, think)])
        ref = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=60, do_sample=False)[0, ids.shape[1]:]
        assert got == tok.decode(ref, skip_special_tokens=True), (q, got)
        kw = t2.apply_chat_template(msgs[-1:], tokenize=False, add_generation_prompt=True, enable_thinking=think)
        assert t2(kw, add_special_tokens=False)['input_ids'] == ids[0].tolist()   # vLLM's switch gives the same prompt


def test_export_refuses_a_busy_directory(run, tmp_path):
    (tmp_path / 'mine.txt').write_text('x')
    p = subprocess.run([sys.executable, '-m', 'reasoning_nb', 'export', str(run), '--out', str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 1 and 'not an exported model directory' in p.stderr and 'Traceback' not in p.stderr
