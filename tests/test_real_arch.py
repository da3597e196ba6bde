"""The GPU-tier code path on the CPU: shrunk Qwen2.5 (tied embeddings, qkv bias, GQA, vocab 151,936) and Llama-3.1
(llama3 rope scaling, no pad token, vocab 128,256) built from the shipped configs with random weights and real-shaped
tokenizers (BPE, the real special tokens, ChatML / Llama-3 header templates without a {% generation %} block), saved
in bf16 as local directories, then: curate -> encode (mask) -> train (packed, padded) -> resume -> load_trained ->
export_merged (base dtype) -> evaluate -> serve one request."""
import json
from collections import Counter
import pytest, torch
from safetensors import safe_open
from reasoning_nb.models import shrunk_model, load_model
from reasoning_nb.data import load_records, sample_path, to_messages
from reasoning_nb.curation import curate
from reasoning_nb.tokens import encode
from reasoning_nb.train import train_config
from reasoning_nb.runs import train, load_trained, export_merged
from reasoning_nb.evaluate import evaluate, load_task

ARCHS = ['qwen2.5-0.5b-instruct', 'llama-3.1-8b-instruct']
STEP = dict(max_steps=3, save_steps=3, batch_size=4, val_size=8, logging_steps=1, warmup_steps=1, max_length=256)

@pytest.mark.parametrize('arch', ARCHS)
def test_real_arch_path(arch, tmp_path):
    torch.set_num_threads(1)
    base = shrunk_model(arch, tmp_path / 'base')
    cfg = json.loads((base / 'config.json').read_text())
    assert cfg['dtype'] == 'bfloat16' and cfg['vocab_size'] == {'qwen2.5-0.5b-instruct': 151936, 'llama-3.1-8b-instruct': 128256}[arch]
    model, tok = load_model(base)
    assert '{% generation %}' not in tok.chat_template

    # curate, then encode: labels cover exactly the final reply and its end-of-turn token
    recs = load_records(sample_path(), limit=400)
    n = Counter((r.category, r.reasoning) for r in recs)
    quotas = {c: 2 * (min(n[c, 'on'], n[c, 'off']) // 2) for c, _ in n if min(n[c, 'on'], n[c, 'off']) >= 2}
    cur = curate(recs, quotas, on_ratio=0.5, tokenizer=tok, max_tokens=4096).records
    assert len(cur) > 40
    data = tmp_path / 'curated.jsonl'
    data.write_text(''.join(json.dumps(r.to_dict()) + '\n' for r in cur))
    r = cur[0]; ex = encode(r, tok)
    trained = tok.decode([i for i, l in zip(ex['input_ids'], ex['labels']) if l != -100])
    assert trained == to_messages(r)[-1]['content'].strip() + tok.eos_token or trained == to_messages(r)[-1]['content'] + tok.eos_token, trained[-80:]

    # train packed, extend by resuming, train padded
    run = train(train_config(model=str(base), **STEP), data, tmp_path / 'packed', plot=False, progress=False)
    train(None, None, run, resume=True, plot=False, progress=False, overrides=dict(max_steps=4))
    steps = [e['step'] for e in map(json.loads, (run / 'metrics.jsonl').read_text().splitlines()) if 'loss' in e]
    assert steps == [1, 2, 3, 4]
    pad = train(train_config(model=str(base), pack=False, **{**STEP, 'max_steps': 2, 'save_steps': 2}), data, tmp_path / 'padded', plot=False, progress=False)
    assert (pad / 'adapter' / 'adapter_model.safetensors').exists()

    # export in the base model's dtype; load_trained reads it back
    dest = export_merged(run)
    with safe_open(dest / 'model.safetensors', 'pt') as f: dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert dtypes == {torch.bfloat16}, dtypes
    m, t = load_trained(run)
    assert t.chat_template == tok.chat_template

    # the serving export: same weights, the thinking switch in the real-shaped template, the family's turn ends
    from transformers import AutoTokenizer
    from reasoning_nb.export import export_for_serving
    served = export_for_serving(run, tmp_path / 'served')
    with safe_open(served / 'model.safetensors', 'pt') as f: served_dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert served_dtypes == {torch.bfloat16}, served_dtypes
    st = AutoTokenizer.from_pretrained(served)
    off = st.apply_chat_template([{'role': 'user', 'content': 'hi'}], tokenize=False, add_generation_prompt=True,
                                 enable_thinking=False)
    assert off.endswith('<think>\n</think>\n\n') and 'detailed thinking off' in off, off[-120:]
    gen = json.loads((served / 'generation_config.json').read_text())
    assert tok.eos_token_id in gen['eos_token_id'], (gen, tok.eos_token)

    # evaluate (a few items, a few tokens) and serve one request
    res = evaluate(m, t, load_task('tiny-mcq', n=2), max_new_tokens=8)
    assert res['summary']['n'] == 2
    from fastapi.testclient import TestClient
    from reasoning_nb.serve import create_app
    with TestClient(create_app(m, t)) as c:
        resp = c.post('/v1/chat/completions', json=dict(messages=[{'role': 'user', 'content': 'What is 2+2?'}], max_tokens=8))
    assert resp.status_code == 200, resp.text
    assert resp.json()['choices'][0]['message']['role'] == 'assistant'

@pytest.mark.parametrize('arch', ARCHS)
def test_packed_attention_matches_per_sample(arch, tmp_path):
    "sdpa_varlen with boundaries, and without them (transformers' mask from position_ids), equals one sample at a time."
    from reasoning_nb.train import make_collator, packed_attention
    model, tok = load_model(shrunk_model(arch, tmp_path / 'base'))
    exs = [encode(r, tok) for r in load_records(sample_path(), limit=3)]
    alone = torch.cat([model(input_ids=torch.tensor([e['input_ids']])).logits[0] for e in exs])
    pk = {k: v for k, v in make_collator(tok)(exs).items() if k != 'labels'}
    model.config.use_cache = False; model.set_attn_implementation(packed_attention(model.dtype))
    torch.testing.assert_close(model(**pk).logits[0], alone, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(model(input_ids=pk['input_ids'], position_ids=pk['position_ids']).logits[0], alone, atol=1e-4, rtol=1e-4)
