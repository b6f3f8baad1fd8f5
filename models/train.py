#!/usr/bin/python3
"""Train the tiny BitNet b1.58 model bundled with libbitnet, and export it.

Run with Debian's python3 (python3-torch, python3-numpy); no other packages.

    /usr/bin/python3 models/train.py train  --data TXT --work DIR [--steps N]
    /usr/bin/python3 models/train.py export --data TXT --work DIR [--ckpt FILE]

`train` builds a byte-level BPE vocabulary on the training part of the text
(Llama-3 pre-tokenizer), then trains a `bitnet-b1.58` model with BitNet
quantisation-aware training (absmean ternary weights, per-token absmax int8
activations, straight-through estimators).  Checkpoints go to DIR.

`export` writes models/tinystories-bitnet.gguf (GGUF v3, I2_S linear weights,
F16 tied embedding) with this script's own GGUF writer, plus reference files
produced by the same fake-quantised PyTorch forward pass:

    tinystories-bitnet.ref.tokens.txt   input ids of the reference sequences
    tinystories-bitnet.ref.logits.f32   their logits, little-endian f32
    tinystories-bitnet.ref.tok.txt      tokenizer reference (texts and ids)
    tinystories-bitnet.ref.ppl.txt      held-out split and perplexity figures

The held-out split: the text is cut into stories (a story starts on a
non-blank line that follows a non-blank line, and at the top of the file);
the last N - floor(0.95 * N) stories are held out and never used for the
vocabulary or for training.
"""

import argparse
import math
import os
import struct
import sys
import time
import unicodedata

import numpy as np
import torch
import torch.nn.functional as F

# --------------------------------------------------------------------------
# Hyper-parameters (written into the GGUF; keep in one place)

HP = dict(
    n_vocab=2048,          # 256 bytes + merges + 3 specials
    n_embd=128,
    n_layer=6,
    n_head=4,
    n_head_kv=2,
    n_ff=384,
    n_ctx=256,
    rope_base=10000.0,
    eps=1e-5,
)
EMULATE_F16_QKV = False  # export-time sensitivity check only
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
HOLDOUT_FRAC = 0.05

# --------------------------------------------------------------------------
# Data split


def split_stories(text):
    """Return a list of (byte_offset, story_text) in file order.

    A story starts at the top of the file and on every non-blank line that
    follows a non-blank line.  story_text keeps the story's lines joined by
    '\n' without the final newline."""
    lines = text.split("\n")
    stories = []
    cur = []
    cur_off = 0
    off = 0
    prev_blank = True
    for i, ln in enumerate(lines):
        blank = (ln == "")
        if not blank and not prev_blank and cur:
            stories.append((cur_off, cur))
            cur = []
            cur_off = off
        if not cur and not blank:
            cur_off = off
        if cur or not blank:
            cur.append(ln)
        prev_blank = blank
        off += len(ln.encode("utf-8")) + 1
    if cur:
        stories.append((cur_off, cur))
    out = []
    for o, ls in stories:
        while ls and ls[-1] == "":
            ls = ls[:-1]
        out.append((o, "\n".join(ls)))
    return out


def load_split(path):
    raw = open(path, "rb").read()
    text = raw.decode("utf-8")
    stories = split_stories(text)
    n = len(stories)
    cut = int(math.floor((1.0 - HOLDOUT_FRAC) * n))
    held_off = stories[cut][0]
    train = [s for _, s in stories[:cut]]
    held_text = raw[held_off:].decode("utf-8")
    return dict(n_stories=n, cut=cut, held_offset=held_off, train=train,
                held=[s for _, s in stories[cut:]], held_text=held_text,
                file_bytes=len(raw))

# --------------------------------------------------------------------------
# Byte-level BPE with the Llama-3 pre-tokenizer
#
# Llama-3 regex (format.md 7.1):
# (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
#  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
# implemented below as a hand-written scanner.


def _is_l(c):
    return unicodedata.category(c)[0] == "L"


def _is_n(c):
    return unicodedata.category(c)[0] == "N"


def _is_s(c):
    return c in " \t\n\r\v\f\x1c\x1d\x1e\x1f\x85" or \
        unicodedata.category(c) in ("Zs", "Zl", "Zp")


_CONTR = ("s", "t", "re", "ve", "m", "ll", "d")


def pretokenize(t):
    out = []
    i = 0
    n = len(t)
    while i < n:
        c = t[i]
        # 1. contractions, case-insensitive
        if c == "'":
            hit = None
            for s in _CONTR:
                if t[i + 1:i + 1 + len(s)].lower() == s:
                    hit = s
                    break
            if hit is not None:
                out.append(t[i:i + 1 + len(hit)])
                i += 1 + len(hit)
                continue
        # 2. [^\r\n\p{L}\p{N}]?\p{L}+
        j = -1
        if _is_l(c):
            j = i
        elif c not in "\r\n" and not _is_n(c) and i + 1 < n and _is_l(t[i + 1]):
            j = i + 1
        if j >= 0:
            while j < n and _is_l(t[j]):
                j += 1
            out.append(t[i:j])
            i = j
            continue
        # 3. \p{N}{1,3}
        if _is_n(c):
            j = i
            while j < n and j < i + 3 and _is_n(t[j]):
                j += 1
            out.append(t[i:j])
            i = j
            continue
        # 4.  ?[^\s\p{L}\p{N}]+[\r\n]*
        j = i + 1 if c == " " else i

        def other(ch):
            return not (_is_s(ch) or _is_l(ch) or _is_n(ch))
        if j < n and other(t[j]):
            while j < n and other(t[j]):
                j += 1
            while j < n and t[j] in "\r\n":
                j += 1
            out.append(t[i:j])
            i = j
            continue
        # whitespace alternatives
        e = i
        while e < n and _is_s(t[e]):
            e += 1
        assert e > i
        # 5. \s*[\r\n]+ : ends after the last \r or \n of the run
        last = -1
        for k in range(i, e):
            if t[k] in "\r\n":
                last = k
        if last >= 0:
            out.append(t[i:last + 1])
            i = last + 1
            continue
        # 6. \s+(?!\S)
        if e == n:
            out.append(t[i:e])
            i = e
            continue
        if e - 1 > i:
            out.append(t[i:e - 1])
            i = e - 1
            continue
        # 7. \s+
        out.append(t[i:e])
        i = e
    return out


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + \
        list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    k = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + k)
            k += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = bytes_to_unicode()


def word_symbols(w):
    return [B2U[b] for b in w.encode("utf-8")]


def train_bpe(texts, n_merges, log=print):
    """Classic BPE on pre-tokenized words: repeatedly merge the most frequent
    adjacent pair (ties: smallest pair string).  Returns the merge list."""
    from collections import Counter, defaultdict
    wc = Counter()
    for t in texts:
        wc.update(pretokenize(t))
    words = [word_symbols(w) for w in wc]
    freqs = [wc[w] for w in wc]
    pairs = Counter()
    where = defaultdict(set)
    for wi, sy in enumerate(words):
        f = freqs[wi]
        for a, b in zip(sy, sy[1:]):
            pairs[(a, b)] += f
            where[(a, b)].add(wi)
    merges = []
    for m in range(n_merges):
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: kv[1])
        (a, b), cnt = best
        if cnt < 2:
            break
        merges.append((a, b))
        ab = a + b
        for wi in list(where[(a, b)]):
            sy = words[wi]
            f = freqs[wi]
            for x, y in zip(sy, sy[1:]):
                pairs[(x, y)] -= f
                if pairs[(x, y)] <= 0:
                    del pairs[(x, y)]
                where[(x, y)].discard(wi)
            ns = []
            k = 0
            while k < len(sy):
                if k + 1 < len(sy) and sy[k] == a and sy[k + 1] == b:
                    ns.append(ab)
                    k += 2
                else:
                    ns.append(sy[k])
                    k += 1
            words[wi] = ns
            for x, y in zip(ns, ns[1:]):
                pairs[(x, y)] += f
                where[(x, y)].add(wi)
        if m % 200 == 0:
            log("bpe merge %d: %r + %r (%d)" % (m, a, b, cnt))
    return merges


class Tokenizer:
    def __init__(self, merges):
        self.merges = merges
        toks = [B2U[b] for b in range(256)]
        for a, b in merges:
            toks.append(a + b)
        toks += SPECIALS
        self.tokens = toks
        self.id = {t: i for i, t in enumerate(toks)}
        assert len(self.id) == len(toks), "duplicate token strings"
        self.rank = {m: i for i, m in enumerate(merges)}
        self.bos = self.id[SPECIALS[0]]
        self.eos = self.id[SPECIALS[1]]
        self.eot = self.id[SPECIALS[2]]
        self.cache = {}

    def encode_word(self, w):
        r = self.cache.get(w)
        if r is not None:
            return r
        sy = word_symbols(w)
        s = "".join(sy)
        if s in self.id and s not in SPECIALS:   # llama-bpe: ignore_merges
            r = [self.id[s]]
        else:
            while len(sy) > 1:
                best = None
                for k in range(len(sy) - 1):
                    rk = self.rank.get((sy[k], sy[k + 1]))
                    if rk is not None and (best is None or rk < best[0]):
                        best = (rk, k)
                if best is None:
                    break
                k = best[1]
                sy = sy[:k] + [sy[k] + sy[k + 1]] + sy[k + 2:]
            r = [self.id[x] for x in sy]
        self.cache[w] = r
        return r

    def encode(self, text, bos=False):
        ids = [self.bos] if bos else []
        for w in pretokenize(text):
            ids += self.encode_word(w)
        return ids

    def decode(self, ids):
        u2b = {u: b for b, u in B2U.items()}
        out = bytearray()
        for i in ids:
            t = self.tokens[i]
            if t in SPECIALS:
                continue
            out += bytes(u2b[c] for c in t)
        return out.decode("utf-8", errors="replace")

# --------------------------------------------------------------------------
# Model


def act_quant(x):
    """Per-token absmax int8 fake quantisation (format.md 4.4)."""
    s = 127.0 / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
    return (x * s).round().clamp(-128, 127) / s


def weight_quant(w):
    """Absmean ternary fake quantisation; returns (w_q, ternary, scale)."""
    scale = w.abs().mean().clamp(min=1e-5)
    t = (w / scale).round().clamp(-1, 1)
    return t * scale, t, scale


class BitLinear(torch.nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(n_out, n_in))
        torch.nn.init.normal_(self.weight, std=0.02)

    def forward(self, xq):
        # xq: already fake-quantised activations (shared by q/k/v, gate/up)
        w = self.weight
        wq = w + (weight_quant(w)[0] - w).detach()
        return F.linear(xq, wq)


def aq_ste(x):
    return x + (act_quant(x) - x).detach()


class RMSNorm(torch.nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Block(torch.nn.Module):
    def __init__(self, hp):
        super().__init__()
        d, f = hp["n_embd"], hp["n_ff"]
        self.nh, self.nkv = hp["n_head"], hp["n_head_kv"]
        self.hd = d // self.nh
        e = hp["eps"]
        self.attn_norm = RMSNorm(d, e)
        self.wq = BitLinear(d, d)
        self.wk = BitLinear(d, self.nkv * self.hd)
        self.wv = BitLinear(d, self.nkv * self.hd)
        self.attn_sub_norm = RMSNorm(d, e)
        self.wo = BitLinear(d, d)
        self.ffn_norm = RMSNorm(d, e)
        self.wg = BitLinear(d, f)
        self.wu = BitLinear(d, f)
        self.ffn_sub_norm = RMSNorm(f, e)
        self.wd = BitLinear(f, d)

    def forward(self, x, cos, sin, mask):
        B, T, D = x.shape
        h = aq_ste(self.attn_norm(x))
        q = self.wq(h).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.wk(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.wv(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = rope_neox(q, cos, sin)
        k = rope_neox(k, cos, sin)
        if EMULATE_F16_QKV:
            # what an engine with an F16 KV cache (and F16 Q for K.Q) sees
            q, k, v = q.half().float(), k.half().float(), v.half().float()
        rep = self.nh // self.nkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        sc = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.hd))
        sc = sc.masked_fill(mask[:T, :T], float("-inf"))
        a = torch.softmax(sc, dim=-1) @ v
        a = a.transpose(1, 2).reshape(B, T, D)
        a = aq_ste(self.attn_sub_norm(a))
        x = x + self.wo(a)
        h2 = aq_ste(self.ffn_norm(x))
        g = self.wg(h2)
        u = self.wu(h2)
        f = F.relu(g).square() * u
        f = aq_ste(self.ffn_sub_norm(f))
        return x + self.wd(f)


def rope_tables(T, hd, base):
    inv = base ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    return ang.cos().float(), ang.sin().float()


def rope_neox(x, cos, sin):
    # x: [B, H, T, hd]; dim i rotates with i + hd/2
    h = x.shape[-1] // 2
    T = x.shape[2]
    c, s = cos[:T], sin[:T]
    x0, x1 = x[..., :h], x[..., h:]
    return torch.cat([x0 * c - x1 * s, x0 * s + x1 * c], dim=-1)


class Model(torch.nn.Module):
    def __init__(self, hp):
        super().__init__()
        self.hp = hp
        self.tok = torch.nn.Embedding(hp["n_vocab"], hp["n_embd"])
        torch.nn.init.normal_(self.tok.weight, std=0.02)
        self.blocks = torch.nn.ModuleList(Block(hp) for _ in range(hp["n_layer"]))
        self.norm = RMSNorm(hp["n_embd"], hp["eps"])
        cos, sin = rope_tables(hp["n_ctx"], hp["n_embd"] // hp["n_head"], hp["rope_base"])
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        mask = torch.ones(hp["n_ctx"], hp["n_ctx"], dtype=torch.bool).triu(1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, idx):
        x = self.tok(idx)
        for b in self.blocks:
            x = b(x, self.cos, self.sin, self.mask)
        return F.linear(self.norm(x), self.tok.weight)

# --------------------------------------------------------------------------
# Training


def log_to(path):
    f = open(path, "a")

    def log(*a):
        s = " ".join(str(x) for x in a)
        print(s, flush=True)
        f.write(s + "\n")
        f.flush()
    return log


def build_vocab(args, sp, log):
    vpath = os.path.join(args.work, "merges.txt")
    if os.path.exists(vpath):
        merges = [tuple(l.rstrip("\n").split(" ")) for l in open(vpath, encoding="utf-8")]
    else:
        t0 = time.time()
        n_merges = HP["n_vocab"] - 256 - len(SPECIALS)
        merges = train_bpe(sp["train"], n_merges, log)
        with open(vpath, "w", encoding="utf-8") as f:
            for a, b in merges:
                f.write(a + " " + b + "\n")
        log("bpe: %d merges in %.1f s" % (len(merges), time.time() - t0))
    assert len(merges) == HP["n_vocab"] - 256 - len(SPECIALS)
    return Tokenizer(merges)


def encode_stories(tk, stories):
    ids = []
    for s in stories:
        ids.append(tk.bos)
        ids += tk.encode(s)
        ids.append(tk.eos)
    return np.array(ids, dtype=np.int32)


def get_data(args, log):
    sp = load_split(args.data)
    log("stories %d, training %d, held out %d from byte %d" %
        (sp["n_stories"], sp["cut"], sp["n_stories"] - sp["cut"], sp["held_offset"]))
    tk = build_vocab(args, sp, log)
    cache = os.path.join(args.work, "train_ids.npy")
    if os.path.exists(cache):
        tr = np.load(cache)
    else:
        tr = encode_stories(tk, sp["train"])
        np.save(cache, tr)
    held = tk.encode(sp["held_text"])
    return sp, tk, tr, np.array(held, dtype=np.int32)


def ppl_windows(ids, ctx, bos, n_windows=None):
    """Perplexity windows, the rule of examples/bitnet-perplexity: the text's
    ids with BOS in front are cut into non-overlapping windows of ctx tokens
    (a partial last window is dropped), the first token of every window is
    replaced by BOS, and positions ctx/2 .. ctx-2 are scored (each predicts
    the token after it)."""
    seq = [bos] + [int(i) for i in ids]
    n = len(seq) // ctx
    if n_windows is not None:
        n = min(n, n_windows)
    ws = []
    for w in range(n):
        win = seq[w * ctx:(w + 1) * ctx]
        win[0] = bos
        ws.append(win)
    return torch.tensor(ws, dtype=torch.long)


@torch.no_grad()
def eval_ppl(model, wins, bs=8):
    ctx = wins.shape[1]
    tot = 0.0
    cnt = 0
    for i in range(0, len(wins), bs):
        w = wins[i:i + bs]
        lg = model(w).double()
        lp = torch.log_softmax(lg[:, ctx // 2:-1], dim=-1)
        tg = w[:, ctx // 2 + 1:]
        tot -= lp.gather(-1, tg[..., None]).sum().item()
        cnt += tg.numel()
    return math.exp(tot / cnt), tot, cnt


def cmd_train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.work, exist_ok=True)
    log = log_to(os.path.join(args.work, "train.log"))
    log("hp", HP, "args", vars(args))
    sp, tk, tr, held = get_data(args, log)
    log("train tokens %d, held-out tokens %d" % (len(tr), len(held)))
    ctx = HP["n_ctx"]
    model = Model(HP)
    nparam = sum(p.numel() for p in model.parameters())
    log("params %d" % nparam)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and "tok" not in n]
    nodecay = [p for n, p in model.named_parameters() if not (p.dim() == 2 and "tok" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": nodecay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    hwins = ppl_windows(held, ctx, tk.bos, 16)
    rng = np.random.default_rng(args.seed)
    start = 0
    ck = os.path.join(args.work, "ckpt.pt")
    if args.resume and os.path.exists(ck):
        st = torch.load(ck)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        start = st["step"]
        rng = np.random.default_rng(args.seed + start)
        log("resumed at step", start)
    # Schedule: linear warm-up over the first `warm` steps, then cosine decay
    # to 10 % of the peak.  With --steps N the decay runs over N steps; with
    # --steps 0 it runs over the wall-clock budget --minutes (progress =
    # elapsed / budget), and training stops when the budget is spent.
    steps = args.steps
    budget = args.minutes * 60.0
    warm = 100
    elapsed0 = 0.0

    def lr_at(s, el):
        if s < warm:
            return args.lr * (s + 1) / warm
        p = (s - warm) / max(1, steps - warm) if steps > 0 else el / budget
        p = min(1.0, p)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))
    t0 = time.time()
    ema = None
    if args.resume and os.path.exists(ck):
        elapsed0 = st.get("elapsed", 0.0)
    step = start
    while True:
        el = elapsed0 + time.time() - t0
        if (steps > 0 and step >= steps) or (steps <= 0 and el >= budget):
            break
        lr = lr_at(step, el)
        for g in opt.param_groups:
            g["lr"] = lr
        pos = rng.integers(0, len(tr) - ctx - 1, args.batch)
        x = torch.from_numpy(np.stack([tr[i:i + ctx + 1] for i in pos]).astype(np.int64))
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, HP["n_vocab"]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        step += 1
        el = elapsed0 + time.time() - t0
        last = (steps > 0 and step >= steps) or (steps <= 0 and el >= budget)
        if step % 50 == 0 or last:
            log("step %d loss %.4f ema %.4f lr %.2e %.1f s" % (step, loss.item(), ema, lr, el))
        if step % args.ckpt_every == 0 or last:
            model.eval()
            ppl = eval_ppl(model, hwins)[0]
            model.train()
            log("step %d held-out ppl (16 windows) %.3f" % (step, ppl))
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                        "step": step, "steps": steps, "hp": HP,
                        "train_ema": ema, "elapsed": el}, ck + ".tmp")
            os.replace(ck + ".tmp", ck)
    log("done: %d steps in %.1f s" % (step, elapsed0 + time.time() - t0))

# --------------------------------------------------------------------------
# GGUF writer (format.md section 1) and export


GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STR, GGUF_ARR = 4, 5, 6, 7, 8, 9
T_F32, T_F16, T_I2S = 0, 1, 36
ALIGN = 32


def _gstr(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _kv(key, typ, val):
    out = _gstr(key) + struct.pack("<I", typ)
    if typ == GGUF_U32:
        out += struct.pack("<I", val)
    elif typ == GGUF_F32:
        out += struct.pack("<f", val)
    elif typ == GGUF_BOOL:
        out += struct.pack("<B", 1 if val else 0)
    elif typ == GGUF_STR:
        out += _gstr(val)
    elif typ == GGUF_ARR:
        et, items = val
        out += struct.pack("<IQ", et, len(items))
        if et == GGUF_STR:
            out += b"".join(_gstr(s) for s in items)
        elif et == GGUF_I32:
            out += struct.pack("<%di" % len(items), *items)
        else:
            raise ValueError(et)
    else:
        raise ValueError(typ)
    return out


def pack_i2s(t, scale):
    """t: int ternary array [out, in]; returns ne0*ne1/4 + 32 bytes."""
    c = (t.astype(np.int64) + 1).reshape(-1)
    assert c.size % 128 == 0 and c.min() >= 0 and c.max() <= 2
    blk = c.reshape(-1, 4, 32)  # [block][j/32][j%32]
    by = (blk[:, 0] << 6) | (blk[:, 1] << 4) | (blk[:, 2] << 2) | blk[:, 3]
    return by.astype(np.uint8).tobytes() + struct.pack("<f", scale) + b"\0" * 28


def write_gguf(path, kvs, tensors):
    """kvs: list of encoded kv bytes; tensors: list of (name, ne, type, bytes)."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    off = 0
    infos = b""
    for name, ne, typ, data in tensors:
        infos += _gstr(name) + struct.pack("<I", len(ne)) + \
            b"".join(struct.pack("<Q", n) for n in ne) + struct.pack("<IQ", typ, off)
        off += (len(data) + ALIGN - 1) // ALIGN * ALIGN
    blob = head + infos
    blob += b"\0" * ((-len(blob)) % ALIGN)
    with open(path, "wb") as f:
        f.write(blob)
        for _, _, _, data in tensors:
            f.write(data)
            f.write(b"\0" * ((-len(data)) % ALIGN))


def export_model(model, tk, path):
    hp = HP
    a = "bitnet-b1.58"
    hd = hp["n_embd"] // hp["n_head"]
    kvs = [
        _kv("general.architecture", GGUF_STR, a),
        _kv("general.name", GGUF_STR, "tinystories-bitnet-b1.58"),
        _kv("general.license", GGUF_STR, "CDLA-Sharing-1.0"),
        _kv(a + ".context_length", GGUF_U32, hp["n_ctx"]),
        _kv(a + ".embedding_length", GGUF_U32, hp["n_embd"]),
        _kv(a + ".block_count", GGUF_U32, hp["n_layer"]),
        _kv(a + ".feed_forward_length", GGUF_U32, hp["n_ff"]),
        _kv(a + ".rope.dimension_count", GGUF_U32, hd),
        _kv(a + ".attention.head_count", GGUF_U32, hp["n_head"]),
        _kv(a + ".attention.head_count_kv", GGUF_U32, hp["n_head_kv"]),
        _kv(a + ".attention.layer_norm_rms_epsilon", GGUF_F32, hp["eps"]),
        _kv(a + ".rope.freq_base", GGUF_F32, hp["rope_base"]),
        _kv(a + ".vocab_size", GGUF_U32, hp["n_vocab"]),
        _kv("general.file_type", GGUF_U32, 40),
        _kv("general.quantization_version", GGUF_U32, 2),
        _kv("tokenizer.ggml.model", GGUF_STR, "gpt2"),
        _kv("tokenizer.ggml.pre", GGUF_STR, "llama-bpe"),
        _kv("tokenizer.ggml.tokens", GGUF_ARR, (GGUF_STR, tk.tokens)),
        _kv("tokenizer.ggml.token_type", GGUF_ARR,
            (GGUF_I32, [3 if t in SPECIALS else 1 for t in tk.tokens])),
        _kv("tokenizer.ggml.merges", GGUF_ARR, (GGUF_STR, [x + " " + y for x, y in tk.merges])),
        _kv("tokenizer.ggml.bos_token_id", GGUF_U32, tk.bos),
        _kv("tokenizer.ggml.eos_token_id", GGUF_U32, tk.eos),
        _kv("tokenizer.ggml.add_bos_token", GGUF_BOOL, True),
        _kv("tokenizer.ggml.add_eos_token", GGUF_BOOL, False),
    ]

    def f32(p):
        return p.detach().float().numpy().astype("<f4").tobytes()

    def i2s(lin):
        _, t, s = weight_quant(lin.weight.detach().float())
        return pack_i2s(t.numpy().astype(np.int8), float(s))

    ts = []
    emb = model.tok.weight.detach().numpy().astype("<f2")
    ts.append(("token_embd.weight", [hp["n_embd"], hp["n_vocab"]], T_F16, emb.tobytes()))
    ts.append(("output_norm.weight", [hp["n_embd"]], T_F32, f32(model.norm.weight)))
    for i, b in enumerate(model.blocks):
        p = "blk.%d." % i

        def lin(name, m):
            ts.append((p + name + ".weight", [m.weight.shape[1], m.weight.shape[0]], T_I2S, i2s(m)))
        ts.append((p + "attn_norm.weight", [hp["n_embd"]], T_F32, f32(b.attn_norm.weight)))
        lin("attn_q", b.wq)
        lin("attn_k", b.wk)
        lin("attn_v", b.wv)
        lin("attn_output", b.wo)
        ts.append((p + "attn_sub_norm.weight", [hp["n_embd"]], T_F32, f32(b.attn_sub_norm.weight)))
        ts.append((p + "ffn_norm.weight", [hp["n_embd"]], T_F32, f32(b.ffn_norm.weight)))
        lin("ffn_gate", b.wg)
        lin("ffn_up", b.wu)
        lin("ffn_down", b.wd)
        ts.append((p + "ffn_sub_norm.weight", [hp["n_ff"]], T_F32, f32(b.ffn_sub_norm.weight)))
    write_gguf(path, kvs, ts)


TOK_TEXTS = [
    "once upon a time, there was a little dog named max.",
    "\"what's that?\" asked tom. \"it's a big, red ball!\"",
    "she said, \"i'll help you,\" and they'd play all day.\n\nthe end.",
    "in 2023 there were 12345 apples   and  3 cats\tand 7.5 birds\n",
    "  leading spaces, trailing spaces  ",
    "Mixed CASE Words, Don't SHOUT!! ...and (brackets) [x] {y} <z>",
    "caf\u00e9 na\u00efve \u00fcber \u2014 \u201cquotes\u201d \u00a1hola!",
]


@torch.no_grad()
def sample(model, tk, prompt, n, temp=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = tk.encode(prompt, bos=True)
    for _ in range(n):
        lg = model(torch.tensor([ids[-HP["n_ctx"]:]]))[0, -1]
        if temp <= 0:
            nx = int(lg.argmax())
        else:
            nx = int(torch.multinomial(torch.softmax(lg / temp, -1), 1, generator=g))
        if nx in (tk.eos, tk.eot):
            break
        ids.append(nx)
    return tk.decode(ids)


def cmd_export(args):
    torch.set_num_threads(args.threads)
    log = log_to(os.path.join(args.work, "export.log"))
    sp, tk, tr, held = get_data(args, log)
    st = torch.load(args.ckpt or os.path.join(args.work, "ckpt.pt"))
    model = Model(HP)
    model.load_state_dict(st["model"])
    model.eval()
    # the shipped embedding is F16: use exactly those values for the references
    with torch.no_grad():
        model.tok.weight.copy_(model.tok.weight.half().float())
    out = args.out
    os.makedirs(out, exist_ok=True)
    base = os.path.join(out, "tinystories-bitnet")
    export_model(model, tk, base + ".gguf")
    log("wrote %s (%d bytes)" % (base + ".gguf", os.path.getsize(base + ".gguf")))

    # reference logits: the first 64 tokens (BOS + 63) of a few held-out stories
    seqs = []
    for k in args.ref_stories:
        seqs.append(tk.encode(sp["held"][k], bos=True)[:args.ref_len])
    with open(base + ".ref.tokens.txt", "w") as f:
        for s in seqs:
            assert len(s) == args.ref_len
            f.write(" ".join(str(i) for i in s) + "\n")
    with torch.no_grad():
        lg = model(torch.tensor(seqs)).float().numpy()
    lg.astype("<f4").tofile(base + ".ref.logits.f32")
    log("reference logits %s" % (lg.shape,))
    # Sensitivity: the same forward with Q, K and V rounded to fp16, as an
    # engine with an F16 KV cache computes; its distance from the fp32
    # reference shows what tolerance the C test needs.
    global EMULATE_F16_QKV
    EMULATE_F16_QKV = True
    with torch.no_grad():
        lg2 = model(torch.tensor(seqs)).float().numpy()
    EMULATE_F16_QKV = False
    lg2.astype("<f4").tofile(os.path.join(args.work, "emulated-f16qkv.logits.f32"))
    a = lg.reshape(-1, lg.shape[-1]).astype(np.float64)
    b = lg2.reshape(-1, lg.shape[-1]).astype(np.float64)
    cos = (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))
    srt = np.sort(a, 1)
    log("fp16-QKV emulation vs reference: max abs %.4f, mean abs %.5f, min cosine %.6f, "
        "top-1 agree %d/%d, reference top1-top2 margin min %.4f median %.4f, logit std %.3f" %
        (np.abs(a - b).max(), np.abs(a - b).mean(), cos.min(),
         int((a.argmax(1) == b.argmax(1)).sum()), a.shape[0],
         (srt[:, -1] - srt[:, -2]).min(), np.median(srt[:, -1] - srt[:, -2]), a.std()))

    # tokenizer reference
    with open(base + ".ref.tok.txt", "w", encoding="utf-8") as f:
        f.write("# tokenizer reference: pairs of lines, the text as a JSON-style\n"
                "# escaped string (\\n \\t \\\" \\\\ \\uXXXX), then its ids without BOS\n")
        for t in TOK_TEXTS:
            esc = "".join(c if (32 <= ord(c) < 127 and c not in "\\\"") else
                          {"\n": "\\n", "\t": "\\t", "\"": "\\\"", "\\": "\\\\"}.get(c, "\\u%04x" % ord(c))
                          for c in t)
            f.write("\"" + esc + "\"\n")
            f.write(" ".join(str(i) for i in tk.encode(t)) + "\n")

    # perplexity: full held-out text and the fixed slice the test uses
    ctx = HP["n_ctx"]
    t0 = time.time()
    full = eval_ppl(model, ppl_windows(held, ctx, tk.bos))
    sl = eval_ppl(model, ppl_windows(held, ctx, tk.bos, args.test_windows))
    tr_w = ppl_windows(tr[:len(held)], ctx, tk.bos)
    trp = eval_ppl(model, tr_w)
    log("held-out ppl %.4f over %d scored tokens; slice (%d windows) %.4f; train-prefix ppl %.4f (%.1f s)" %
        (full[0], full[2], args.test_windows, sl[0], trp[0], time.time() - t0))
    h = 0
    for i in held:
        h = (h * 1000003 + int(i)) % (1 << 61)
    with open(base + ".ref.ppl.txt", "w") as f:
        f.write("# held-out split of tinystories-subset-lowercase.txt and PyTorch perplexity\n")
        f.write("held_offset %d\n" % sp["held_offset"])
        f.write("file_bytes %d\n" % sp["file_bytes"])
        f.write("stories %d\n" % sp["n_stories"])
        f.write("held_stories %d\n" % (sp["n_stories"] - sp["cut"]))
        f.write("held_tokens %d\n" % len(held))
        f.write("held_ids_hash %d\n" % h)
        f.write("held_first_ids %s\n" % " ".join(str(int(i)) for i in held[:32]))
        f.write("ctx %d\n" % ctx)
        f.write("slice_windows %d\n" % args.test_windows)
        f.write("slice_ppl %.6f\n" % sl[0])
        f.write("slice_nll %.6f\n" % sl[1])
        f.write("slice_scored %d\n" % sl[2])
        f.write("full_windows %d\n" % ((len(held) + 1) // ctx))
        f.write("full_ppl %.6f\n" % full[0])
        f.write("full_scored %d\n" % full[2])
        f.write("train_prefix_ppl %.6f\n" % trp[0])
        f.write("train_step %d\n" % st["step"])
    for p in ["once upon a time", "one day, a little girl named lily"]:
        log("greedy %r: %s" % (p, sample(model, tk, p, 120)))
        log("T=0.8 %r: %s" % (p, sample(model, tk, p, 120, 0.8, 1)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["train", "export", "bench"])
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "..", "..", "shared", "data", "text",
                                                   "tinystories-subset-lowercase.txt"))
    ap.add_argument("--work", default="/tmp/tinystories-bitnet")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--steps", type=int, default=0, help="0: derive from --minutes")
    ap.add_argument("--minutes", type=float, default=50.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ckpt-every", type=int, default=100)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--ckpt", default=None)
    ap.add_argument("--ref-stories", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--ref-len", type=int, default=64)
    ap.add_argument("--test-windows", type=int, default=8)
    args = ap.parse_args()
    if args.cmd == "train":
        cmd_train(args)
    elif args.cmd == "export":
        cmd_export(args)


if __name__ == "__main__":
    main()
