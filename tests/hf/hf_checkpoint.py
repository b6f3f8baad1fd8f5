#!/usr/bin/env python3
"""Test helper: write Hugging Face checkpoints (config.json, safetensors,
tokenizer files) holding exactly the weights and vocabulary of a GGUF file,
in each weight convention libbitnet reads (docs/formats.md).

  hf_checkpoint.py model GGUF OUTDIR --convention C [--shards N]
  hf_checkpoint.py vocab GGUF OUTDIR [--spm]
  hf_checkpoint.py big-bf16 - OUTDIR   (a 2B4T-shaped bf16 master checkpoint
                                        of random weights, ~4.8 GB, for
                                        measuring the loader's peak memory)

Conventions:
  b158-packed   BitNetForCausalLM, packed uint8 weights, weight_scale that
                multiplies (AutoBitLinear); GGUF: bitnet-b1.58, F32 weights
  b158-master   BitNetForCausalLM, bf16 master weights (ternarised on load)
  1bitllm       BitnetForCausalLM, fp16 master weights; GGUF: bitnet, F16
  llama-packed  LlamaForCausalLM, packed weights, weight_scale that divides
                (BitLinear), q/k rows in Hugging Face order; GGUF: llama, F32
'vocab' writes a weightless checkpoint with the GGUF's vocabulary as
tokenizer.json (or tokenizer.model with --spm).

python3 with numpy; the safetensors format is an 8-byte length, a JSON
header and the raw data.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

# ---- GGUF reader ----------------------------------------------------------

SCALAR = {0: '<B', 1: '<b', 2: '<H', 3: '<h', 4: '<I', 5: '<i', 6: '<f',
          7: '<?', 10: '<Q', 11: '<q', 12: '<d'}
GGML_F32, GGML_F16, GGML_BF16 = 0, 1, 30


class Reader:
    def __init__(self, data):
        self.d = data
        self.o = 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.o)[0]
        self.o += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take('<Q')
        s = self.d[self.o:self.o + n]
        self.o += n
        return s

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.take('<I'), self.take('<Q')
            return [self.value(et) for _ in range(n)]
        return self.take(SCALAR[t])


def read_gguf(path):
    data = open(path, 'rb').read()
    r = Reader(data)
    assert data[:4] == b'GGUF'
    r.o = 4
    r.take('<I')
    n_t, n_kv = r.take('<Q'), r.take('<Q')
    kv = {}
    for _ in range(n_kv):
        k = r.string().decode()
        kv[k] = r.value(r.take('<I'))
    infos = []
    for _ in range(n_t):
        name = r.string().decode()
        nd = r.take('<I')
        ne = [r.take('<Q') for _ in range(nd)]
        infos.append((name, ne, r.take('<I'), r.take('<Q')))
    align = kv.get('general.alignment', 32)
    start = (r.o + align - 1) // align * align
    tensors = {}
    for name, ne, ty, off in infos:
        n = int(np.prod(ne))
        dt = {GGML_F32: np.float32, GGML_F16: np.float16, GGML_BF16: np.uint16}[ty]
        a = np.frombuffer(data, dtype=dt, count=n, offset=start + off)
        shape = tuple(reversed(ne))     # row-major: [rows, cols]
        tensors[name] = (ty, a.reshape(shape))
    return kv, tensors


def s(v):
    return v.decode() if isinstance(v, bytes) else v

# ---- safetensors writer ---------------------------------------------------

DTYPES = {np.dtype(np.float64): 'F64', np.dtype(np.float32): 'F32', np.dtype(np.float16): 'F16',
          np.dtype(np.uint8): 'U8', np.dtype(np.uint16): 'BF16'}


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, array); uint16 arrays are bf16 bits."""
    header, blobs, off = {}, [], 0
    if metadata:
        header['__metadata__'] = metadata
    for name, a in tensors:
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {'dtype': DTYPES[a.dtype], 'shape': list(a.shape),
                        'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def bf16_bits(x):
    """float32 -> bf16 bits, round to nearest even"""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)

# ---- weight conventions ---------------------------------------------------


def ternary_of(w):
    """F32 GGUF weights +-s/0 -> (int8 values, s)"""
    w = w.astype(np.float32)
    nz = np.abs(w[w != 0])
    s = np.float32(nz[0]) if nz.size else np.float32(1.0)
    assert np.all(nz == s), 'weights are not ternary with one scale'
    return np.sign(w).astype(np.int8), s


def pack(t):
    """[rows, cols] values in {-1,0,1} -> uint8 [rows/4, cols]: bit pair i of
    packed row r holds row i*(rows/4) + r, code = value + 1"""
    rows = t.shape[0]
    assert rows % 4 == 0
    p = rows // 4
    codes = (t + 1).astype(np.uint8)
    out = np.zeros((p, t.shape[1]), dtype=np.uint8)
    for i in range(4):
        out |= codes[i * p:(i + 1) * p] << (2 * i)
    return out


def divisor_for(s):
    """weight_scale w (float32) with float32(1 / double(w)) == s exactly (the
    loader divides in double)"""
    w0 = np.float32(1.0) / s
    cands, up, dn = [w0], w0, w0
    for _ in range(16):
        up = np.nextafter(up, np.float32(np.inf))
        dn = np.nextafter(dn, np.float32(0))
        cands += [up, dn]
    for c in cands:
        if np.float32(1.0 / np.float64(c)) == s:
            return c
    return None     # no float32 will do: the caller writes a float64


def hf_rows_from_gguf(w, heads):
    """undo the converters' q/k row reordering (GGUF -> Hugging Face)"""
    rows, cols = w.shape
    hd = rows // heads
    return w.reshape(heads, hd // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


LAYER = {'attn_norm': 'input_layernorm', 'attn_q': 'self_attn.q_proj',
         'attn_k': 'self_attn.k_proj', 'attn_v': 'self_attn.v_proj',
         'attn_output': 'self_attn.o_proj', 'ffn_norm': 'post_attention_layernorm',
         'ffn_gate': 'mlp.gate_proj', 'ffn_up': 'mlp.up_proj',
         'ffn_down': 'mlp.down_proj'}
LINEAR = ('attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down')


def write_model(kv, tensors, out, conv, shards, seed, scale_dtype='f32'):
    arch = s(kv['general.architecture'])
    want = {'b158-packed': 'bitnet-b1.58', 'b158-master': 'bitnet-b1.58',
            '1bitllm': 'bitnet', 'llama-packed': 'llama'}[conv]
    if arch != want:
        raise SystemExit('%s needs a %s GGUF, not %s' % (conv, want, arch))
    E = kv[arch + '.embedding_length']
    H = kv[arch + '.attention.head_count']
    HKV = kv.get(arch + '.attention.head_count_kv', H)
    sub = {'b158-packed': ('attn_sub_norm', 'ffn_sub_norm'),
           'b158-master': ('attn_sub_norm', 'ffn_sub_norm'),
           '1bitllm': ('inner_attn_ln', 'ffn_layernorm')}.get(conv)
    rng = np.random.default_rng(seed)
    st = []
    for name, (ty, a) in tensors.items():
        if ty == GGML_BF16:
            a = a.view(np.uint16)
        if name == 'token_embd.weight':
            st.append(('model.embed_tokens.weight', a))
            continue
        if name == 'output.weight':
            st.append(('lm_head.weight', a))
            continue
        if name == 'output_norm.weight':
            st.append(('model.norm.weight', a))
            continue
        _, i, short, _ = name.split('.')
        if short in ('attn_sub_norm', 'ffn_sub_norm'):
            part = 'self_attn' if short == 'attn_sub_norm' else 'mlp'
            st.append(('model.layers.%s.%s.%s.weight' % (i, part, sub[short != 'attn_sub_norm']), a))
            continue
        hf = 'model.layers.%s.%s' % (i, LAYER[short])
        if short not in LINEAR:
            st.append((hf + '.weight', a))
            continue
        if conv == '1bitllm':
            st.append((hf + '.weight', a))          # fp16 masters as they are
            continue
        t, sc = ternary_of(a)
        if conv == 'b158-master':
            # full-precision masters: ternary * scale with noise, as bf16
            w = t.astype(np.float32) * sc * rng.uniform(0.6, 1.4, t.shape).astype(np.float32)
            w += rng.normal(0, float(sc) * 0.05, t.shape).astype(np.float32)
            st.append((hf + '.weight', bf16_bits(w)))
            continue
        if conv == 'llama-packed' and short in ('attn_q', 'attn_k'):
            t = hf_rows_from_gguf(t, H if short == 'attn_q' else HKV)
        if scale_dtype == 'bf16':
            # as the published checkpoints: one bf16 value (rounded)
            ws = bf16_bits(np.array([sc if conv == 'b158-packed' else 1.0 / sc],
                                    dtype=np.float32))
        elif conv == 'b158-packed':
            ws = np.array([sc], dtype=np.float32)
        else:
            ws = divisor_for(sc)
            ws = np.array([ws], dtype=np.float32) if ws is not None else \
                np.array([1.0 / np.float64(sc)], dtype=np.float64)
        st.append((hf + '.weight', pack(t)))
        st.append((hf + '.weight_scale', ws))

    cfg = {
        'vocab_size': int(tensors['token_embd.weight'][1].shape[0]),
        'hidden_size': E,
        'num_hidden_layers': kv[arch + '.block_count'],
        'intermediate_size': kv[arch + '.feed_forward_length'],
        'num_attention_heads': H,
        'num_key_value_heads': HKV,
        'max_position_embeddings': kv[arch + '.context_length'],
        'rms_norm_eps': float(np.float32(kv[arch + '.attention.layer_norm_rms_epsilon'])),
        'rope_theta': float(np.float32(kv.get(arch + '.rope.freq_base', 10000.0))),
        'tie_word_embeddings': 'output.weight' not in tensors,
        'attention_bias': False,
    }
    if conv.startswith('b158'):
        cfg.update(architectures=['BitNetForCausalLM'], model_type='bitnet',
                   hidden_act='relu2', torch_dtype='bfloat16')
        if conv == 'b158-packed':
            cfg['quantization_config'] = {'quant_method': 'bitnet',
                                          'linear_class': 'autobitlinear',
                                          'quantization_mode': 'offline'}
    elif conv == '1bitllm':
        cfg.update(architectures=['BitnetForCausalLM'], model_type='llama',
                   hidden_act='silu', torch_dtype='float16', input_bits=8,
                   weight_bits=1)
    else:
        cfg.update(architectures=['LlamaForCausalLM'], model_type='llama',
                   hidden_act='silu', torch_dtype='bfloat16',
                   quantization_config={'quant_method': 'bitnet'})
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'config.json'), 'w') as f:
        json.dump(cfg, f, indent=2)
    if shards <= 1:
        write_safetensors(os.path.join(out, 'model.safetensors'), st, {'format': 'pt'})
    else:
        per = (len(st) + shards - 1) // shards
        wmap = {}
        for k in range(shards):
            fn = 'model-%05d-of-%05d.safetensors' % (k + 1, shards)
            part = st[k * per:(k + 1) * per]
            write_safetensors(os.path.join(out, fn), part, {'format': 'pt'})
            for n, _ in part:
                wmap[n] = fn
        with open(os.path.join(out, 'model.safetensors.index.json'), 'w') as f:
            json.dump({'metadata': {}, 'weight_map': wmap}, f, indent=2)
    return cfg

# ---- vocabularies ---------------------------------------------------------

LLAMA3_RE = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
             " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
GPT2_RE = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"


def tok_name(kv, key):
    i = kv.get(key)
    return None if i is None else s(kv['tokenizer.ggml.tokens'][i])


def write_tokenizer_json(kv, out, merges_as_pairs):
    toks = [s(t) for t in kv['tokenizer.ggml.tokens']]
    types = kv.get('tokenizer.ggml.token_type', [1] * len(toks))
    vocab, added = {}, []
    for i, (t, ty) in enumerate(zip(toks, types)):
        if ty in (3, 4):
            added.append({'id': i, 'content': t, 'single_word': False, 'lstrip': False,
                          'rstrip': False, 'normalized': ty == 4, 'special': ty == 3})
        else:
            vocab[t] = i
    merges = [s(m) for m in kv.get('tokenizer.ggml.merges', [])]
    if merges_as_pairs:
        merges = [m.split(' ', 1) for m in merges]
    pre = s(kv.get('tokenizer.ggml.pre', b'gpt-2'))
    if pre == 'llama-bpe':
        pt = {'type': 'Sequence', 'pretokenizers': [
            {'type': 'Split', 'pattern': {'Regex': LLAMA3_RE}, 'behavior': 'Isolated',
             'invert': False},
            {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True,
             'use_regex': False}]}
    else:
        pt = {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True,
              'use_regex': True}
    tj = {'version': '1.0', 'truncation': None, 'padding': None, 'added_tokens': added,
          'normalizer': None, 'pre_tokenizer': pt, 'post_processor': None,
          'decoder': {'type': 'ByteLevel'},
          'model': {'type': 'BPE', 'dropout': None, 'unk_token': None,
                    'byte_fallback': False, 'vocab': vocab, 'merges': merges}}
    with open(os.path.join(out, 'tokenizer.json'), 'w', encoding='utf-8') as f:
        json.dump(tj, f, ensure_ascii=False)


def pb_varint(n):
    b = bytearray()
    while True:
        c = n & 0x7F
        n >>= 7
        b.append(c | (0x80 if n else 0))
        if not n:
            return bytes(b)


def pb_field(num, wt, payload):
    key = pb_varint(num << 3 | wt)
    if wt == 2:
        return key + pb_varint(len(payload)) + payload
    return key + payload


def write_tokenizer_model(kv, out):
    toks = kv['tokenizer.ggml.tokens']
    scores = kv.get('tokenizer.ggml.scores', [0.0] * len(toks))
    types = kv.get('tokenizer.ggml.token_type', [1] * len(toks))
    b = bytearray()
    for t, sc, ty in zip(toks, scores, types):
        piece = pb_field(1, 2, t) + pb_field(2, 5, struct.pack('<f', sc))
        if ty != 1:
            piece += pb_field(3, 0, pb_varint(ty))
        b += pb_field(1, 2, piece)
    b += pb_field(2, 2, pb_field(3, 0, pb_varint(2)))            # BPE
    adp = kv.get('tokenizer.ggml.add_space_prefix', True)
    b += pb_field(3, 2, pb_field(1, 2, b'identity') + pb_field(3, 0, pb_varint(int(bool(adp)))))
    with open(os.path.join(out, 'tokenizer.model'), 'wb') as f:
        f.write(bytes(b))


def write_tokenizer_config(kv, out):
    tc = {}
    for key, name in (('tokenizer.ggml.bos_token_id', 'bos_token'),
                      ('tokenizer.ggml.eos_token_id', 'eos_token'),
                      ('tokenizer.ggml.unknown_token_id', 'unk_token')):
        t = tok_name(kv, key)
        if t is not None:
            tc[name] = t
    for key, name in (('tokenizer.ggml.add_bos_token', 'add_bos_token'),
                      ('tokenizer.ggml.add_eos_token', 'add_eos_token')):
        if key in kv:
            tc[name] = bool(kv[key])
    if 'tokenizer.chat_template' in kv:
        tc['chat_template'] = s(kv['tokenizer.chat_template'])
    with open(os.path.join(out, 'tokenizer_config.json'), 'w', encoding='utf-8') as f:
        json.dump(tc, f, ensure_ascii=False, indent=1)


def write_vocab(kv, out, spm, merges_as_pairs):
    os.makedirs(out, exist_ok=True)
    if spm or s(kv['tokenizer.ggml.model']) == 'llama':
        write_tokenizer_model(kv, out)
    else:
        write_tokenizer_json(kv, out, merges_as_pairs)
    write_tokenizer_config(kv, out)


def write_big_bf16(out, seed):
    """BitNet b1.58 2B4T shapes, bf16 masters, written tensor by tensor"""
    E, F, L, V, KV = 2560, 6912, 30, 128256, 640
    shapes = [('model.embed_tokens.weight', (V, E)), ('model.norm.weight', (E,))]
    for i in range(L):
        p = 'model.layers.%d.' % i
        shapes += [(p + 'input_layernorm.weight', (E,)),
                   (p + 'self_attn.q_proj.weight', (E, E)),
                   (p + 'self_attn.k_proj.weight', (KV, E)),
                   (p + 'self_attn.v_proj.weight', (KV, E)),
                   (p + 'self_attn.o_proj.weight', (E, E)),
                   (p + 'self_attn.attn_sub_norm.weight', (E,)),
                   (p + 'post_attention_layernorm.weight', (E,)),
                   (p + 'mlp.gate_proj.weight', (F, E)),
                   (p + 'mlp.up_proj.weight', (F, E)),
                   (p + 'mlp.down_proj.weight', (E, F)),
                   (p + 'mlp.ffn_sub_norm.weight', (F,))]
    header, off = {}, 0
    for n, sh in shapes:
        nb = int(np.prod(sh)) * 2
        header[n] = {'dtype': 'BF16', 'shape': list(sh), 'data_offsets': [off, off + nb]}
        off += nb
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    with open(os.path.join(out, 'model.safetensors'), 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for n, sh in shapes:
            if len(sh) == 1:
                a = rng.uniform(0.5, 1.5, sh).astype(np.float32)
            else:
                a = rng.standard_normal(sh, dtype=np.float32) * np.float32(0.02)
            f.write(bf16_bits(a).tobytes())
    cfg = {'architectures': ['BitNetForCausalLM'], 'model_type': 'bitnet',
           'hidden_act': 'relu2', 'hidden_size': E, 'intermediate_size': F,
           'num_attention_heads': 20, 'num_key_value_heads': 5, 'num_hidden_layers': L,
           'vocab_size': V, 'max_position_embeddings': 4096, 'rms_norm_eps': 1e-5,
           'rope_theta': 500000.0, 'tie_word_embeddings': True, 'torch_dtype': 'bfloat16'}
    with open(os.path.join(out, 'config.json'), 'w') as f:
        json.dump(cfg, f, indent=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('what', choices=['model', 'vocab', 'big-bf16'])
    ap.add_argument('gguf')
    ap.add_argument('out')
    ap.add_argument('--convention', default='b158-packed',
                    choices=['b158-packed', 'b158-master', '1bitllm', 'llama-packed'])
    ap.add_argument('--shards', type=int, default=1)
    ap.add_argument('--seed', type=int, default=7)
    ap.add_argument('--spm', action='store_true')
    ap.add_argument('--scale-dtype', default='f32', choices=['f32', 'bf16'],
                    help='weight_scale dtype of packed conventions (f32: exact)')
    ap.add_argument('--merges-as-pairs', action='store_true')
    a = ap.parse_args()
    if a.what == 'big-bf16':
        write_big_bf16(a.out, a.seed)
        return
    kv, tensors = read_gguf(a.gguf)
    if a.what == 'model':
        write_model(kv, tensors, a.out, a.convention, a.shards, a.seed, a.scale_dtype)
        if 'tokenizer.ggml.tokens' in kv:
            write_vocab(kv, a.out, False, a.merges_as_pairs)
    else:
        # a weightless checkpoint: config with the vocabulary size, no tensors
        n = len(kv['tokenizer.ggml.tokens'])
        cfg = {'architectures': ['BitnetForCausalLM'], 'model_type': 'llama',
               'hidden_act': 'silu', 'vocab_size': n, 'hidden_size': 64,
               'num_hidden_layers': 1, 'intermediate_size': 128,
               'num_attention_heads': 2, 'max_position_embeddings': 256,
               'rms_norm_eps': 1e-5}
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, 'config.json'), 'w') as f:
            json.dump(cfg, f)
        write_safetensors(os.path.join(a.out, 'model.safetensors'), [])
        write_vocab(kv, a.out, a.spm, a.merges_as_pairs)


if __name__ == '__main__':
    main()
