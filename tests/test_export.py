"""`reasoning-nb export RUN --out DIR`: a plain model directory that `transformers` (and so vLLM/SGLang/TGI) loads
unchanged and that replies exactly like the run; the printed commands name the right vLLM flags; the directory is
written in one step, so a killed export leaves the previous one (or nothing)."""
import json, os, signal, subprocess, sys, time

import pytest
import torch
from safetensors.torch import load_file

EXPORT = [sys.executable, '-m', 'reasoning_nb', 'export']


@pytest.fixture(scope='module')
def run():
    from reasoning_nb.runs import cached_run
    return cached_run('tiny')


def test_export_cli_and_plain_transformers_reload(run, tmp_path):
    out = tmp_path / 'served'
    p = subprocess.run(EXPORT + [str(run), '--out', str(out), '--served-model-name', 'tiny-r', '--tensor-parallel-size', '2'],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    want = (f'vllm serve {out.resolve()} --served-model-name tiny-r --reasoning-parser deepseek_r1 --enable-prefix-caching'
            ' --tensor-parallel-size 2')
    assert want in p.stdout, p.stdout
    assert sorted(f.name for f in out.iterdir() if f.suffix in ('.safetensors', '.md') or f.stem == 'generation_config') \
        == ['SERVE.md', 'generation_config.json', 'model.safetensors']

    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline
    from reasoning_nb.runs import load_trained
    from reasoning_nb.thinking import encode_prompt
    model, tok = load_trained(run)
    m2, t2 = AutoModelForCausalLM.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    assert m2.dtype == model.dtype, (m2.dtype, model.dtype)
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
    p = subprocess.run(EXPORT + [str(run), '--out', str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 1 and 'not an exported model directory' in p.stderr, p.stderr[-2000:]
    assert 'Traceback' not in p.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ['mine.txt']


def test_dtype_is_the_merge_cast_once(run, tmp_path):
    "`--dtype bfloat16` gives exactly the default (base-dtype) export's weights cast to bf16, and a bf16 config."
    from reasoning_nb.export import export_for_serving
    a, b = export_for_serving(run, tmp_path / 'a'), export_for_serving(run, tmp_path / 'b', dtype='bfloat16')
    wa, wb = load_file(a / 'model.safetensors'), load_file(b / 'model.safetensors')
    assert sorted(wa) == sorted(wb)
    assert {str(t.dtype) for t in wb.values()} == {'torch.bfloat16'}
    diffs = [k for k in wa if not torch.equal(wa[k].to(torch.bfloat16), wb[k])]
    assert diffs == [], diffs[:5]
    assert json.loads((b / 'config.json').read_text())['dtype'] == 'bfloat16'


def test_model_directory_export_keeps_its_turn_ends(tmp_path):
    "A model directory that is not a run (a shrunk Qwen2.5) exports without a merge, with ChatML's turn ends as stops."
    from transformers import AutoTokenizer
    from reasoning_nb.export import export_for_serving
    from reasoning_nb.models import shrunk_model
    src = shrunk_model('qwen2.5-0.5b-instruct', tmp_path / 'qwen', layers=1)
    out = export_for_serving(src, tmp_path / 'served')
    tok = AutoTokenizer.from_pretrained(out)
    gen = json.loads((out / 'generation_config.json').read_text())
    assert tok.convert_ids_to_tokens(gen['eos_token_id']) == ['<|endoftext|>', '<|im_end|>']
    assert json.loads((out / 'config.json').read_text())['dtype'] == 'bfloat16'   # as stored, not fp32
    prompt = tok.apply_chat_template([{'role': 'user', 'content': 'hi'}], tokenize=False, add_generation_prompt=True,
                                     enable_thinking=False)
    assert prompt.endswith('<|im_start|>assistant\n<think>\n</think>\n\n'), prompt


def _temporaries(out): return sorted(out.parent.glob(f'.{out.name}.tmp-*'))

STALLED_EXPORT = """import sys, time
import reasoning_nb.export as export
write = export._write_weights
def write_and_stall(*args):  # a real export that stalls once the weights are in its temporary directory
    write(*args)
    time.sleep(600)
export._write_weights = write_and_stall
export.export_for_serving(sys.argv[1], sys.argv[2], name=sys.argv[3])
"""


def _kill_while_writing(run, out, name):
    "Start an export of `run` to `out` that stalls inside its write; SIGKILL it there. True if it was caught writing."
    p = subprocess.Popen([sys.executable, '-c', STALLED_EXPORT, str(run), str(out), name],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not _temporaries(out) and p.poll() is None and time.time() - t0 < 300: time.sleep(0.05)
    caught = p.poll() is None and bool(_temporaries(out))
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    return caught


def test_killed_export_leaves_the_old_one(run, tmp_path):
    "A kill during the first export leaves no directory; during a re-export, the old export byte for byte."
    out = tmp_path / 'served'
    assert _kill_while_writing(run, out, 'first')
    assert not out.exists()
    subprocess.run(EXPORT + [str(run), '--out', str(out), '--served-model-name', 'first'], check=True,
                   capture_output=True, timeout=600)
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    assert _kill_while_writing(run, out, 'second')
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before
    subprocess.run(EXPORT + [str(run), '--out', str(out), '--served-model-name', 'third'], check=True,
                   capture_output=True, timeout=600)
    assert (out / 'SERVE.md').read_text().count(f'{out.resolve()} --served-model-name third') == 3  # vllm, sglang, ours
    assert _temporaries(out) == []
