import json, os, sys, gc, math, time, subprocess, argparse, warnings
from dataclasses import dataclass, asdict
from pathlib import Path
import torch

GiB = 2**30
LORA_TARGETS = ('q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj')
PRESETS = ('tiny', 'qwen2.5-0.5b-instruct', 'qwen2.5-1.5b-instruct', 'qwen2.5-7b-instruct',
           'llama-3.1-8b-instruct', 'llama-3.2-3b-instruct', 'llama-2-7b')
_DTYPE_BYTES = {'fp32': 4, 'float32': 4, 'bf16': 2, 'bfloat16': 2, 'fp16': 2, 'float16': 2}

class MemoryConfigError(ValueError):
    "A model name, path or option the memory estimator cannot use."

def configs_dir():
    "Folder of the packaged transformers configs, so presets work offline."
    import reasoning_nb
    return Path(reasoning_nb.__file__).parent/'assets'/'configs'

def _tiny_dir():
    "Directory of the already built tiny base (shipped or cached), or None: never starts a build."
    try:
        from reasoning_nb import models
        dirs = [models.ASSETS/'tiny', models._cache_dir()/'tiny']
    except Exception: return None
    return next((Path(d) for d in dirs if (Path(d)/'config.json').exists()), None)

def load_config(config_or_name):
    "A transformers config from a config object, a preset name, a local path or a hub id."
    from transformers import AutoConfig, PretrainedConfig
    if isinstance(config_or_name, PretrainedConfig): return config_or_name
    if isinstance(config_or_name, dict): return AutoConfig.for_model(**config_or_name)
    name = str(config_or_name)
    if name.lower() == 'tiny' and _tiny_dir(): return AutoConfig.from_pretrained(_tiny_dir())
    if (configs_dir()/f'{name.lower()}.json').exists(): return AutoConfig.from_pretrained(configs_dir()/f'{name.lower()}.json')
    p = Path(name).expanduser()
    if p.exists(): return AutoConfig.from_pretrained(p if p.is_dir() else p.parent if p.name == 'config.json' else p)
    if name.count('/') != 1: raise MemoryConfigError(f"unknown model {name!r}: use a preset ({', '.join(PRESETS)}), a local path or a hub id")
    try: return AutoConfig.from_pretrained(name)
    except Exception as e: raise MemoryConfigError(f'cannot load the config of {name!r} from the hub: {type(e).__name__}') from e

def _dims(cfg):
    "The sizes the estimator needs from a Llama/Qwen2-style config."
    h, nh = cfg.hidden_size, cfg.num_attention_heads
    nkv = getattr(cfg, 'num_key_value_heads', None) or nh
    hd = getattr(cfg, 'head_dim', None) or h//nh
    return dict(h=h, I=cfg.intermediate_size, L=cfg.num_hidden_layers, V=cfg.vocab_size, nh=nh, q=nh*hd, kv=nkv*hd,
                qkv_bias=bool(getattr(cfg, 'attention_bias', False) or cfg.model_type == 'qwen2'),
                tied=bool(getattr(cfg, 'tie_word_embeddings', False)))

def _linears(d):
    "(in, out) of each linear layer in one decoder layer."
    h, I, q, kv = d['h'], d['I'], d['q'], d['kv']
    return {'q_proj': (h, q), 'k_proj': (h, kv), 'v_proj': (h, kv), 'o_proj': (q, h),
            'gate_proj': (h, I), 'up_proj': (h, I), 'down_proj': (I, h)}

def count_params(config_or_name):
    "Parameters of a decoder: `linear` (what 4-bit quantises), `embeddings`, `other` (norms, biases), `total`."
    d = _dims(load_config(config_or_name))
    linear = d['L']*sum(i*o for i, o in _linears(d).values())
    other = d['L']*(2*d['h'] + (d['q'] + 2*d['kv'] if d['qkv_bias'] else 0)) + d['h']
    emb = d['V']*d['h']*(1 if d['tied'] else 2)
    return dict(linear=linear, embeddings=emb, other=other, total=linear + emb + other)

def lora_params(config_or_name, r=16, targets=LORA_TARGETS):
    "Trainable LoRA parameters: r*(in+out) for every targeted linear in every layer."
    d = _dims(load_config(config_or_name)); lin = _linears(d)
    bad = [t for t in targets if t not in lin and t != 'lm_head']
    if bad: raise MemoryConfigError(f"unknown LoRA target(s) {bad}: use {list(lin) + ['lm_head']}")
    return d['L']*sum(r*(lin[t][0] + lin[t][1]) for t in targets if t in lin) + ('lm_head' in targets)*r*(d['h'] + d['V'])

def _layer_saved(d, a, p, method, attention, s, targets, r):
    "Bytes autograd keeps per token for one HF Llama/Qwen2 decoder layer, tensor by tensor (a: compute, p: adapter bytes)."
    h, I, q, kv, nh = d['h'], d['I'], d['q'], d['kv'], d['nh']
    full, quant, sdpa = method == 'full', method == 'qlora', attention == 'sdpa'
    targets = () if full else tuple(targets)
    norms = 2*(4*h + 4 + (a*h if full else 0))  # each RMSNorm: fp32 input + rsqrt (+ normed output if its weight trains)
    attn = (a*(2*q + 2*kv) + 4*nh if sdpa      # sdpa: q, k, v, output (= o_proj input) + fp32 logsumexp per head
            else a*3*q + (4 + (a if a != 4 else 0))*nh*s)  # eager: q, repeated k and v, fp32 softmax s per head (+ cast copy)
    mlp = a*3*I                                 # SwiGLU: gate output, up output, silu output
    inputs = 0                                  # inputs of the linear layers, saved for weight / LoRA-A / 4-bit grads
    for dim, mods, is_o in ((h, ('q_proj', 'k_proj', 'v_proj'), False), (q, ('o_proj',), True),
                            (h, ('gate_proj', 'up_proj'), False), (I, ('down_proj',), False)):
        hit = [m for m in mods if m in targets]
        if hit and p != a: inputs += len(hit)*p*dim   # peft casts the input to the adapter dtype: one copy per adapter
        shared = full or quant or (hit and p == a)    # one copy in the compute dtype, shared by the group
        if shared and not (is_o and sdpa): inputs += a*dim  # sdpa's saved output already is o_proj's input
    lora = len(targets)*p*r                     # LoRA A output (r wide) saved for B's gradient
    return norms + attn + mlp + inputs + lora

def activation_bytes(config_or_name, method='lora', seq_len=512, batch=1, lora_r=16, lora_targets=LORA_TARGETS,
                     dtype='bf16', attention='sdpa', adapter_dtype='fp32', grad_ckpt=False):
    "Bytes autograd saves in one forward pass (no checkpointing): all decoder layers + final norm + fp32 log-probs."
    d = _dims(load_config(config_or_name)); a, p = _DTYPE_BYTES[dtype], _DTYPE_BYTES[adapter_dtype]
    t, full = seq_len*batch, method == 'full'
    layer = _layer_saved(d, a, p, method, attention, seq_len, lora_targets, lora_r)
    first = 0 if (full or grad_ckpt) else 4*d['h'] + 4  # frozen embeddings: layer 0's input needs no grad, its norm saves nothing
    outside = 4*d['h'] + 4 + (a*d['h'] if full else 0) + 4*d['V'] + 16  # final norm, fp32 log-softmax, labels/ids
    return t*(d['L']*layer - first + outside)

@dataclass
class MemoryEstimate:
    "Peak training memory and what it is made of at the peak (parts sum to `total_bytes`)."
    frozen_weights: int     # weights that do not train (bf16, or 4-bit + absmax for QLoRA)
    trainable_weights: int  # LoRA adapters or, for full fine-tuning, every weight
    gradients: int          # gradients alive at the peak
    optimizer_states: int   # AdamW moments (+ step temporaries when the peak is the optimiser step)
    activations: int        # tensors autograd saved for backward, plus one layer's backward working set
    logits_loss: int        # fp32 log-probs and the loss's backward copies (b*s*V each)
    overhead: int           # stated framework overhead: CUDA context + allocator slack (0 on CPU)
    total_bytes: int
    peak_phase: str         # 'loss backward', 'layer backward' or 'optimizer step'
    def parts(self): return {k: v for k, v in asdict(self).items() if k not in ('total_bytes', 'peak_phase')}
    def to_dict(self): return asdict(self)
    def __str__(self):
        rows = [f'{k:<18}{v/GiB:9.2f} GiB' for k, v in self.parts().items()]
        return '\n'.join(rows + [f"{'total':<18}{self.total_bytes/GiB:9.2f} GiB   (peak at {self.peak_phase})"])

_OPTIMIZERS = ('adamw', 'adamw8bit', 'paged_adamw8bit')

def _check(method, optimizer, dtype, attention, adapter_dtype):
    "Raise MemoryConfigError for an option the estimator does not know."
    for name, v, ok in (('method', method, ('full', 'lora', 'qlora')), ('optimizer', optimizer, _OPTIMIZERS),
                        ('dtype', dtype, tuple(_DTYPE_BYTES)), ('attention', attention, ('sdpa', 'eager')),
                        ('adapter_dtype', adapter_dtype, tuple(_DTYPE_BYTES))):
        if v not in ok: raise MemoryConfigError(f'{name} must be one of {", ".join(ok)}, got {v!r}')

def _weights(n, n_lora, method, a, p, double_quant):
    "(frozen, trainable) weight bytes."
    if method == 'full': return 0, a*n['total']                          # every weight trains, in the compute dtype
    if method == 'lora': return a*n['total'], p*n_lora                   # bf16 base + adapters (fp32 in peft)
    q = 0.5 + (1/64 + 4/(64*256) if double_quant else 4/64)               # NF4 4 bit + absmax per 64 (8-bit + fp32 per 256 when double-quantised)
    return int(q*n['linear']) + a*(n['embeddings'] + n['other']), p*n_lora  # embeddings, norms, lm_head stay in the compute dtype

def estimate_memory(config_or_name, method='lora', lora_r=16, lora_targets=LORA_TARGETS, seq_len=4096, batch=1,
                    grad_ckpt=False, optimizer='adamw', dtype='bf16', attention='sdpa', double_quant=True,
                    adapter_dtype='fp32', loss_chunks=1, device='cuda', overhead_bytes=None):
    "Predict the peak memory of a training step (forward, backward, optimiser) from the model config alone."
    _check(method, optimizer, dtype, attention, adapter_dtype)
    cfg = load_config(config_or_name); d, n = _dims(cfg), count_params(cfg)
    a = _DTYPE_BYTES[dtype]; p = a if method == 'full' else _DTYPE_BYTES[adapter_dtype]
    t, h, V = seq_len*batch, d['h'], d['V']
    n_train = n['total'] if method == 'full' else lora_params(cfg, lora_r, lora_targets)
    frozen, trainable = _weights(n, n_train, method, a, p, double_quant)
    grads = p*n_train                                                     # one gradient per trainable weight, its dtype
    states = n_train*(2*p if optimizer == 'adamw' else 2)                 # AdamW: 2 moments in the weight dtype; 8-bit: 1 B each
    step_tmp = p*n_train if optimizer == 'adamw' and device == 'cuda' else 0  # foreach AdamW: one weight-sized temporary
    kw = dict(method=method, lora_r=lora_r, lora_targets=lora_targets, dtype=dtype, attention=attention, adapter_dtype=adapter_dtype)
    layer = t*_layer_saved(d, a, p, method, attention, seq_len, () if method == 'full' else lora_targets, lora_r)
    logp, loss_tmp = 4*V*t, 8*V*t//loss_chunks                            # saved fp32 log-probs; their backward: grad in + grad out
    work = t*a*(2*d['I'] + 2*h)                                           # one layer's backward working set: SwiGLU grads + grad flow
    saved = (t*(d['L'] + 1)*a*h + t*(4*h + 20) if grad_ckpt             # checkpointing: each layer's input + final norm
             else activation_bytes(cfg, seq_len=seq_len, batch=batch, grad_ckpt=False, **kw) - logp)
    g_early = grads if method != 'full' else p*V*h                        # LoRA grads (small) / full: lm_head grad comes first
    phases = {'loss backward':  dict(gradients=0 if method == 'full' else grads, activations=saved, logits_loss=logp + loss_tmp),
              'layer backward': dict(gradients=g_early, activations=saved + work + (layer if grad_ckpt else 0), logits_loss=0),
              'optimizer step': dict(gradients=grads, activations=0, logits_loss=0)}
    name, ph = max(phases.items(), key=lambda kv: sum(kv[1].values()) + (step_tmp if kv[0] == 'optimizer step' else 0))
    opt = states + (step_tmp if name == 'optimizer step' else 0)
    body = frozen + trainable + opt + sum(ph.values())
    over = (int(0.5*GiB + 0.05*body) if device == 'cuda' else 0) if overhead_bytes is None else int(overhead_bytes)  # context + allocator slack
    return MemoryEstimate(int(frozen), int(trainable), int(ph['gradients']), int(opt), int(ph['activations']),
                          int(ph['logits_loss']), over, int(body + over), name)

_TORCH_DTYPES = {'fp32': torch.float32, 'float32': torch.float32, 'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16,
                 'fp16': torch.float16, 'float16': torch.float16}

def _quantize_4bit(model, double_quant=True, device='cuda'):
    "Swap every decoder nn.Linear (not lm_head) for a bitsandbytes NF4 Linear4bit holding the same weights."
    import bitsandbytes as bnb
    for mod in list(model.modules()):
        for name, child in list(mod.named_children()):
            if type(child) is torch.nn.Linear and name != 'lm_head':
                q = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None, compute_dtype=child.weight.dtype,
                                      compress_statistics=double_quant, quant_type='nf4', device='meta')
                q.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, compress_statistics=double_quant, quant_type='nf4').to(device)
                if child.bias is not None: q.bias = torch.nn.Parameter(child.bias.data.to(device), requires_grad=False)
                setattr(mod, name, q); del child
    return model

def build_model(config_or_name, method='lora', lora_r=16, lora_targets=LORA_TARGETS, dtype='fp32', attention='sdpa',
                grad_ckpt=False, double_quant=True, device='cpu', seed=0):
    "A randomly initialised model of this architecture, ready to train with `method` (no download)."
    from transformers import AutoModelForCausalLM
    cfg = load_config(config_or_name); cfg._attn_implementation = attention; cfg.use_cache = False
    torch.manual_seed(seed); warnings.filterwarnings('ignore', message='.*is_gradient_checkpointing.*')
    with torch.device(device): model = AutoModelForCausalLM.from_config(cfg, dtype=_TORCH_DTYPES[dtype], attn_implementation=attention)
    if method == 'qlora': _quantize_4bit(model, double_quant, device)
    if method != 'full':
        from peft import LoraConfig, get_peft_model
        for q in model.parameters(): q.requires_grad_(False)
        model = get_peft_model(model, LoraConfig(r=lora_r, lora_alpha=2*lora_r, lora_dropout=0.0, target_modules=list(lora_targets)))
    if grad_ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={'use_reentrant': False})
        if method != 'full': model.enable_input_require_grads()
    return model.train()

def _proc_status(field):
    "A /proc/self/status memory field (VmRSS, VmHWM) in bytes."
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(field + ':'): return int(line.split()[1])*1024
    raise MemoryConfigError(f'{field} not in /proc/self/status')

def _reset_peak_rss():
    "Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0, `clear_refs` 5)."
    Path('/proc/self/clear_refs').write_text('5')

def _make_optimizer(model, name):
    "The optimiser a run would use, over the trainable weights."
    ps = [q for q in model.parameters() if q.requires_grad]
    if name == 'adamw': return torch.optim.AdamW(ps, lr=1e-4)
    import bitsandbytes as bnb
    return (bnb.optim.AdamW8bit if name == 'adamw8bit' else bnb.optim.PagedAdamW8bit)(ps, lr=1e-4)

def _train_step(model, opt, ids):
    "One forward + backward (+ optimiser step when `opt`), gradients freed after."
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    if opt is not None: opt.step(); opt.zero_grad(set_to_none=True)
    else: model.zero_grad(set_to_none=True)
    return loss.item()

def _model_bytes(model):
    "Bytes held by the weights and buffers."
    return sum(t.numel()*t.element_size() for t in (*model.parameters(), *model.buffers()))

def _measure_here(config_or_name='tiny', method='lora', lora_r=16, lora_targets=LORA_TARGETS, seq_len=256, batch=4,
                  grad_ckpt=False, optimizer='adamw', dtype='fp32', attention='sdpa', double_quant=True, steps=2, device='cpu'):
    "Peak memory of `steps` real training steps in this process: CUDA allocator peak, or weights + peak-RSS growth on CPU."
    model = build_model(config_or_name, method, lora_r, lora_targets, dtype, attention, grad_ckpt, double_quant, device)
    ids = torch.randint(0, model.config.vocab_size, (batch, seq_len), device=device)
    _train_step(model, None, ids[:1, :16])          # warm-up: kernels and thread pools load before the baseline
    opt, weights, t0 = _make_optimizer(model, optimizer), _model_bytes(model), time.time()
    gc.collect()
    if device == 'cuda':
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
        for _ in range(steps): _train_step(model, opt, ids)
        torch.cuda.synchronize(); peak, how = torch.cuda.max_memory_allocated(), 'torch.cuda.max_memory_allocated'
    else:
        _reset_peak_rss(); base = _proc_status('VmRSS')
        for _ in range(steps): _train_step(model, opt, ids)
        peak, how = weights + _proc_status('VmHWM') - base, 'weights + peak RSS growth (VmHWM after clear_refs)'
    return dict(peak_bytes=int(peak), weights_bytes=int(weights), how=how, seconds=round(time.time() - t0, 2))

def _measure_worker():
    "Subprocess side of `measure_peaks`: read a JSON list of runs on stdin, print one JSON result per line."
    torch.set_num_threads(1)
    for kw in json.loads(sys.stdin.read()):
        print(json.dumps(_measure_here(**kw)), flush=True); gc.collect()

def measure_peaks(runs, timeout=900):
    "Measure each run (dict of `measure_peak` arguments) in one fresh CPU subprocess whose freed tensors go back to the OS."
    env = dict(os.environ, OMP_NUM_THREADS='1', MALLOC_MMAP_THRESHOLD_='65536', MALLOC_TRIM_THRESHOLD_='0', PYTHONWARNINGS='ignore')
    code = 'from reasoning_nb.memory import _measure_worker; _measure_worker()'
    r = subprocess.run([sys.executable, '-c', code], input=json.dumps(list(runs)), capture_output=True, text=True, env=env, timeout=timeout)
    out = [json.loads(l) for l in r.stdout.splitlines() if l.startswith('{')]
    if r.returncode or len(out) != len(runs): raise RuntimeError(f'measurement subprocess failed: {r.stderr.strip()[-500:]}')
    return out

def measure_peak(config_or_name='tiny', device=None, isolate=None, **kw):
    "Peak training memory of real steps: on CUDA in this process, on CPU (by default) in a fresh subprocess."
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if isolate if isolate is not None else device == 'cpu': return measure_peaks([dict(config_or_name=str(config_or_name), device=device, **kw)])[0]
    return _measure_here(config_or_name, device=device, **kw)

def _pin_malloc():
    "Make glibc give freed large blocks straight back to the OS, so RSS follows live tensors (no-op elsewhere)."
    try:
        import ctypes; libc = ctypes.CDLL('libc.so.6')
        libc.mallopt(-3, 65536); libc.mallopt(-1, 0)  # M_MMAP_THRESHOLD fixed at 64 KiB, M_TRIM_THRESHOLD 0
    except (OSError, AttributeError): pass

def _try_batch(model, batch, seq_len, device):
    "Peak bytes of one real forward+backward at this micro-batch, or None on CUDA out-of-memory; frees everything after."
    ids, oom, peak = torch.randint(0, model.config.vocab_size, (batch, seq_len), device=device), False, None
    if device == 'cuda': torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    else: _pin_malloc(); gc.collect(); _reset_peak_rss(); base = _proc_status('VmRSS')
    try:
        _train_step(model, None, ids)
        peak = torch.cuda.max_memory_allocated() if device == 'cuda' else _model_bytes(model) + _proc_status('VmHWM') - base
    except torch.OutOfMemoryError: oom = True   # free outside the except: its traceback still holds the tensors
    del ids; model.zero_grad(set_to_none=True); gc.collect()
    if device == 'cuda': torch.cuda.empty_cache()
    return None if oom else peak

def find_batch_size(model, seq_len, global_batch=8, byte_budget=None, max_batch=None):
    "Largest micro-batch (dividing `global_batch`) whose real step fits, and the gradient accumulation keeping the global batch."
    device = next(model.parameters()).device.type
    if device != 'cuda' and byte_budget is None: raise MemoryConfigError('on CPU give byte_budget: there is no out-of-memory error to catch')
    tried = []
    for b in [d for d in range(min(global_batch, max_batch or global_batch), 0, -1) if global_batch % d == 0]:
        peak = _try_batch(model, b, seq_len, device)
        fits = peak is not None and (byte_budget is None or peak <= byte_budget)
        tried.append(dict(micro_batch=b, peak_bytes=peak, fits=fits))
        if fits: return dict(micro_batch=b, grad_accum=global_batch//b, tried=tried)
    raise MemoryConfigError(f'micro-batch 1 at length {seq_len} does not fit: turn on gradient checkpointing, 4-bit or a shorter length')

_TT = dict(adapter_dtype='bf16', loss_chunks=8, grad_ckpt=True)  # torchtune: bf16 adapters and states, chunked cross-entropy
_TT_LORA = ('q_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj')
PUBLISHED = [  # SPEC §6 measured peaks; `est` holds the estimator arguments (assumptions where the source is silent)
    dict(row='Llama-3.1-8B LoRA 2048x2', published=16.2*GiB, unit='GiB', source='torchtune README (4090)',
         est=dict(config_or_name='llama-3.1-8b-instruct', method='lora', lora_r=8, lora_targets=_TT_LORA, seq_len=2048, batch=2, **_TT)),
    dict(row='Llama-3.1-8B QLoRA 2048x2', published=7.4*GiB, unit='GiB', source='torchtune README (4090)',
         est=dict(config_or_name='llama-3.1-8b-instruct', method='qlora', lora_r=8, lora_targets=_TT_LORA, seq_len=2048, batch=2, **_TT)),
    dict(row='Llama-2-7B LoRA r64 all layers', published=17.0e9, unit='GB', source='torchtune LoRA tutorial',
         est=dict(config_or_name='llama-2-7b', method='lora', lora_r=64, lora_targets=LORA_TARGETS + ('lm_head',), seq_len=512, batch=2, **_TT)),
    dict(row='Llama-2-7B QLoRA r8', published=9.3e9, unit='GB', source='torchtune QLoRA tutorial',
         est=dict(config_or_name='llama-2-7b', method='qlora', lora_r=8, lora_targets=LORA_TARGETS, seq_len=512, batch=2, **_TT)),
    *[dict(row=f'Llama-2-7B QLoRA r8 HF+FA2 {s//1024}k', published=g*1e9, unit='GB', source='LLaMA-Factory wiki',
           est=dict(config_or_name='llama-2-7b', method='qlora', lora_r=8, lora_targets=('q_proj', 'v_proj'), seq_len=s, batch=1, grad_ckpt=True))
      for s, g in ((1024, 6), (2048, 7), (4096, 9), (8192, 12), (16384, 19))],
    dict(row='Llama-3.2-3B LoRA 4096x2', published=8.5*GiB, unit='GiB', source='torchtune README',
         est=dict(config_or_name='llama-3.2-3b-instruct', method='lora', lora_r=64, lora_targets=_TT_LORA, seq_len=4096, batch=2, **_TT)),
    dict(row='Llama-3.2-3B QLoRA 4096x2', published=4.6*GiB, unit='GiB', source='torchtune README',
         est=dict(config_or_name='llama-3.2-3b-instruct', method='qlora', lora_r=64, lora_targets=_TT_LORA, seq_len=4096, batch=2, **_TT)),
]

def check_published(rows=PUBLISHED):
    "Each published peak next to the estimate, with the relative error and the largest part of the estimate."
    out = []
    for r in rows:
        e = estimate_memory(**r['est']); scale = GiB if r['unit'] == 'GiB' else 1e9
        big = max(e.parts(), key=e.parts().get)
        out.append(dict(row=r['row'], published=round(r['published']/scale, 1), estimated=round(e.total_bytes/scale, 1), unit=r['unit'],
                        error=e.total_bytes/r['published'] - 1, largest_part=big, source=r['source']))
    return out

def fits(est, gpu_gb):
    "Does the estimate fit a card of `gpu_gb` (GiB, as cards are sold: a '24 GB' 4090 holds 24 GiB)?"
    return est.total_bytes <= gpu_gb*GiB

def what_to_turn_on(config_or_name, gpu_gb, **kw):
    "Switches to turn on, in order (checkpointing, 4-bit, 8-bit AdamW, micro-batch 1), until it fits: [] if it fits, None if nothing does."
    steps = [('gradient checkpointing', dict(grad_ckpt=True)), ('4-bit QLoRA', dict(method='qlora')),
             ('8-bit AdamW', dict(optimizer='adamw8bit')), ('micro-batch 1', dict(batch=1))]
    cur, on = dict(kw), []
    if fits(estimate_memory(config_or_name, **cur), gpu_gb): return on
    for name, change in steps:
        k, v = next(iter(change.items()))
        if cur.get(k, v if k != 'method' else 'lora') == v or (k == 'method' and cur.get(k) == 'full'): continue
        cur.update(change); on.append(name)
        if fits(estimate_memory(config_or_name, **cur), gpu_gb): return on
    return None

def add_cli(p):
    "Arguments of `reasoning-nb memory`."
    p.add_argument('--model', default='llama-3.1-8b-instruct', help=f"preset ({', '.join(PRESETS)}), config path or hub id")
    p.add_argument('--method', default='lora', choices=['full', 'lora', 'qlora'])
    p.add_argument('--lora-r', type=int, default=16); p.add_argument('--targets', default=','.join(LORA_TARGETS), help='comma-separated LoRA targets')
    p.add_argument('--seq-len', type=int, default=4096); p.add_argument('--batch', type=int, default=1, help='micro-batch')
    p.add_argument('--grad-ckpt', action='store_true', help='gradient checkpointing')
    p.add_argument('--optimizer', default='adamw', choices=list(_OPTIMIZERS)); p.add_argument('--dtype', default='bf16', choices=['bf16', 'fp16', 'fp32'])
    p.add_argument('--attention', default='sdpa', choices=['sdpa', 'eager']); p.add_argument('--no-double-quant', action='store_true')
    p.add_argument('--gpu-gb', type=float, help='card memory in GiB: print whether it fits'); p.add_argument('--json', action='store_true')
    p.set_defaults(func=run_cli)

def _advice(steps):
    "One line saying what to turn on."
    return ' + '.join(steps) if steps else 'nothing here is enough: a bigger card or a shorter length'

def run_cli(args):
    "Print the estimate (text or JSON) and, with --gpu-gb, a fits verdict; exit 0 if it fits (or no card given), 3 if not."
    kw = dict(method=args.method, lora_r=args.lora_r, lora_targets=tuple(t for t in args.targets.split(',') if t), seq_len=args.seq_len,
              batch=args.batch, grad_ckpt=args.grad_ckpt, optimizer=args.optimizer, dtype=args.dtype, attention=args.attention,
              double_quant=not args.no_double_quant)
    est = estimate_memory(args.model, **kw); ok = None if args.gpu_gb is None else fits(est, args.gpu_gb)
    if args.json:
        print(json.dumps(dict(model=str(args.model), **{k: v for k, v in kw.items() if k != 'lora_targets'}, lora_targets=list(kw['lora_targets']),
                              **est.to_dict(), gpu_gb=args.gpu_gb, fits=ok)))
    else:
        print(f'{args.model}: {args.method}, r={args.lora_r}, length {args.seq_len} x micro-batch {args.batch}, checkpointing {"on" if args.grad_ckpt else "off"}')
        print(est)
        if ok is not None:
            print(f'{"fits" if ok else "does not fit"} on a {args.gpu_gb:g} GiB card' +
                  ('' if ok else f'; turn on: {_advice(what_to_turn_on(args.model, args.gpu_gb, **kw))}'))
    return 0 if ok in (None, True) else 3
