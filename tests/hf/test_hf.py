#!/usr/bin/env python3
"""Hugging Face checkpoints end to end, through the example programs.

usage: test_hf.py EXAMPLES_BUILD_DIR PART
  PART = conventions   a checkpoint of each weight convention, written from a
                       bitnet-synth GGUF by hf_checkpoint.py: the directory,
                       its bitnet-convert output (i2_s, tq2_0, tq1_0) and the
                       synth GGUF give bit-identical logits; the vocabulary
                       (tokenizer.json) tokenizes as the GGUF's does
         vocab         the shared Llama-3, GPT-2 and SentencePiece vocabularies
                       as tokenizer.json / tokenizer.model give the GGUF's
                       tokens on the shared test texts (needs ../shared)
         shared        the shared 1bitLLM checkpoint against llama.cpp's
                       logits: cosine >= 0.995 at every position, directly
                       and after bitnet-convert (needs ../shared)
Exit 77 (skip) when ../shared is needed and absent.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

BIN = sys.argv[1]
PART = sys.argv[2]
MANY = sys.argv[3] if len(sys.argv) > 3 else None
HERE = os.path.dirname(os.path.abspath(__file__))
HELPER = os.path.join(HERE, 'hf_checkpoint.py')
SHARED = os.environ.get('BITNET_SHARED_DATA')
FAILURES = []
TOKENS = '1 5 9 300 22 7 100 3 257 40 41 42'


def run(args, **kw):
    p = subprocess.run(args, capture_output=True, timeout=600, **kw)
    if p.returncode != 0:
        raise SystemExit('command failed (%d): %s\n%s' % (
            p.returncode, ' '.join(args), p.stderr.decode('utf-8', 'replace')))
    return p.stdout


def prog(name, *args):
    return run([os.path.join(BIN, name)] + list(args))


def check(cond, what):
    print(('ok   ' if cond else 'FAIL ') + what)
    if not cond:
        FAILURES.append(what)


def logits(model, out, tokens=TOKENS):
    prog('bitnet-logits', '-m', model, '--tokens', tokens, '--all', '-t', '2', '-o', out)
    return open(out, 'rb').read()


def helper(*args):
    run([sys.executable, HELPER] + list(args))


CONVENTIONS = [
    # convention, synth arguments, compared with the synth GGUF, conversions
    # that must be bit-identical (the others: cosine >= 0.999)
    ('b158-packed', ['--type', 'f32', '--seed', '11'], True, ('i2_s', 'tq2_0', 'tq1_0')),
    # a bf16 embedding: bitnet-convert stores F16 (as the official GGUF)
    ('b158-packed', ['--type', 'f32', '--embd-type', 'bf16', '--seed', '15'], True, ()),
    # masters: absmean scales are not fp16 values, which TQ blocks store
    ('b158-master', ['--type', 'f32', '--seed', '12'], False, ('i2_s',)),
    ('1bitllm', ['--arch', 'bitnet', '--type', 'f16', '--seed', '13'], True,
     ('i2_s', 'tq2_0', 'tq1_0')),
    ('llama-packed', ['--arch', 'llama', '--type', 'f32', '--n-head-kv', '2', '--seed', '14'],
     True, ('i2_s', 'tq2_0', 'tq1_0')),
    # bf16 weight_scale as published: the scale is rounded, so the synth
    # file is matched closely, the conversion exactly
    ('b158-packed', ['--type', 'f32', '--seed', '16'], 'close', ('i2_s',), 'bf16'),
    ('llama-packed', ['--arch', 'llama', '--type', 'f32', '--seed', '17'], 'close',
     ('i2_s',), 'bf16'),
]


def conventions(tmp):
    for k, row in enumerate(CONVENTIONS):
        conv, sargs, vs_synth, exact = row[:4]
        sdt = row[4] if len(row) > 4 else 'f32'
        g = os.path.join(tmp, '%s%d.gguf' % (conv, k))
        d = os.path.join(tmp, '%s%d' % (conv, k))
        prog('bitnet-synth', '-o', g, '--n-layer', '2', *sargs)
        extra = ['--shards', '2'] if conv == '1bitllm' else []
        extra += ['--merges-as-pairs'] if conv == 'llama-packed' else []
        helper('model', g, d, '--convention', conv, '--scale-dtype', sdt, *extra)
        ld = logits(d, d + '.f32')
        check(len(ld) > 0, '%s: the directory loads and evaluates' % conv)
        n = len(TOKENS.split())
        if vs_synth == 'close':
            a = np.frombuffer(ld, dtype=np.float32).reshape(n, -1)
            b = np.frombuffer(logits(g, g + '.f32'), dtype=np.float32).reshape(n, -1)
            check(cosines(a, b).min() >= 0.999,
                  '%s (%s weight_scale): directory close to the synth GGUF' % (conv, sdt))
        elif vs_synth:
            check(ld == logits(g, g + '.f32'),
                  '%s: directory and synth GGUF give bit-identical logits' % conv)
        for ty in ('i2_s', 'tq2_0', 'tq1_0'):
            c = os.path.join(tmp, '%s.%s.gguf' % (conv, ty))
            prog('bitnet-convert', d, '-o', c, '--type', ty)
            lc = logits(c, c + '.f32')
            if ty in exact:
                check(lc == ld, '%s: bitnet-convert --type %s gives bit-identical logits' %
                      (conv, ty))
            else:
                a = np.frombuffer(ld, dtype=np.float32).reshape(n, -1)
                b = np.frombuffer(lc, dtype=np.float32).reshape(n, -1)
                check(cosines(a, b).min() >= 0.999,
                      '%s: bitnet-convert --type %s gives logits with cosine >= 0.999' %
                      (conv, ty))
        # the single-file form of the path
        st = os.path.join(d, 'model.safetensors.index.json' if conv == '1bitllm'
                          else 'model.safetensors')
        check(logits(st, d + '.f2') == ld, '%s: %s loads like its directory' %
              (conv, os.path.basename(st)))
        text = 'Hello world, this is a test: 1234567 "quoted"\n\tnew line'
        a = prog('bitnet-tokenize', '-m', g, '-p', text)
        b = prog('bitnet-tokenize', '-m', d, '-p', text)
        check(a == b and len(a.split()) > 3,
              '%s: tokenizer.json tokenizes as the GGUF vocabulary' % conv)


def read_tests(path):
    inp = open(path + '.inp', 'rb').read().split(b'\n__ggml_vocab_test__\n')
    return [t for t in inp if t != b'']


def vocab(tmp):
    vd = os.path.join(SHARED, 'vocab')
    for name, spm in (('ggml-vocab-llama-bpe.gguf', False),
                      ('ggml-vocab-gpt-2.gguf', False),
                      ('ggml-vocab-llama-spm.gguf', True)):
        g = os.path.join(vd, name)
        if not os.path.exists(g):
            print('skip %s: not in the shared data' % name)
            continue
        d = os.path.join(tmp, name + '.dir')
        helper('vocab', g, d, *(['--spm'] if spm else []))
        texts = []
        if os.path.exists(g + '.inp'):
            texts = read_tests(g)
        texts += [b'Hello world', b' Hello World!', b'\xc3\x84pfel 12345 <|eot_id|> \xf0\x9f\xa6\x99',
                  b'  leading spaces\n\n\ttabs', b'']
        files = []
        for i, t in enumerate(texts):
            f = os.path.join(tmp, 'text%d' % i)
            open(f, 'wb').write(t)
            files.append(f)
        ra = run([MANY, g] + files).split(b'\n')
        rb = run([MANY, d] + files).split(b'\n')
        same = 0
        for i in range(2 * len(texts)):
            if ra[i] == rb[i] and (ra[i] or texts[i // 2] == b''):
                same += 1
            else:
                print('     text %r: %s vs %s' % (texts[i // 2][:40], ra[i][:80], rb[i][:80]))
        check(same == 2 * len(texts), '%s: %d/%d tokenizations identical from %s' % (
            name, same, 2 * len(texts), 'tokenizer.model' if spm else 'tokenizer.json'))


def cosines(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def shared(tmp):
    d = os.path.join(SHARED, 'hf', 'bitnet-1bitllm')
    toks = open(os.path.join(SHARED, 'hf', 'bitnet-1bitllm.tokens.txt')).read().strip()
    n = len(toks.split())
    refs = {}
    for r in ('f32-graph', 'tq2_0'):
        refs[r] = np.fromfile(os.path.join(SHARED, 'hf', 'bitnet-1bitllm.logits-%s.f32' % r),
                              dtype=np.float32).reshape(n, -1)
    models = [('directory', d)]
    for ty in ('i2_s', 'tq2_0'):
        c = os.path.join(tmp, 'shared.%s.gguf' % ty)
        prog('bitnet-convert', d, '-o', c, '--type', ty)
        models.append(('bitnet-convert --type ' + ty, c))
    for what, m in models:
        out = os.path.join(tmp, 'shared.f32')
        ours = np.frombuffer(logits(m, out, toks), dtype=np.float32).reshape(n, -1)
        for r, ref in refs.items():
            c = cosines(ours, ref)
            top = (ours.argmax(1) == ref.argmax(1)).mean()
            print('     %s vs llama.cpp %s: min cosine %.5f, top-1 agreement %.2f' % (
                what, r, c.min(), top))
            check(c.min() >= 0.995, '%s: cosine >= 0.995 at every position vs %s' % (what, r))


def main():
    if PART in ('vocab', 'shared') and not (SHARED and os.path.isdir(SHARED)):
        print('SKIP: needs the shared test material (BITNET_SHARED_DATA, ../shared/data)')
        sys.exit(77)
    with tempfile.TemporaryDirectory() as tmp:
        {'conventions': conventions, 'vocab': vocab, 'shared': shared}[PART](tmp)
    if FAILURES:
        print('%d failure(s)' % len(FAILURES))
        sys.exit(1)


if __name__ == '__main__':
    main()
