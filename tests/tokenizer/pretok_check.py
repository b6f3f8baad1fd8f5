#!/usr/bin/env python3
"""Differential test of the byte-level pre-tokenizers against the Python
`regex` module running the same regexes with llama.cpp's semantics (each
regex of a sequence splits the pieces of the one before; the text between
matches is kept as pieces). Skips (exit 77) without the `regex` module.

usage: pretok_check.py PRETOK_SPLIT_BINARY [SEED] [CASES]
"""
import random
import subprocess
import sys

try:
    import regex
except ImportError:
    print("SKIP: the Python 'regex' module is not installed")
    sys.exit(77)

GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
          r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
DEFAULT = [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"]

POOL = list("abcXYZ  \n\r\t'._-!$<|>+=^~0123456789") + [
    "\u00a0", "\u2009", "\u3000", "\u0660", "\u00b2", "\u0301", "\u00e9", "\u00df", "\u0416",
    "\u05d0", "\u0627", "\u0915", "\u4e2d", "\u3042", "\uac00", "\U0001F600", "\u200d", "\u2764",
    "\ufe0f", "\u2014", "\u00ab", "\u2028", "\u0085", "\u00bd", "\u2160", "\u00a7", "\u00b7",
    "\u2581", "'S", "'LL", "'re", "'ve", "'d",
]


def split(pieces, pat):
    out = []
    for s in pieces:
        pos = 0
        for m in regex.finditer(pat, s):
            if m.start() > pos:
                out.append(s[pos:m.start()])
            if m.end() > m.start():
                out.append(m.group())
            pos = m.end()
        if pos < len(s):
            out.append(s[pos:])
    return out


def reference(kind, s):
    if kind == 1:
        return split([s], LLAMA3)
    if kind == 2:
        return split([s], GPT2)
    pieces = [s]
    for pat in DEFAULT:
        pieces = split(pieces, pat)
    return pieces


def main():
    exe = sys.argv[1]
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    cases = []
    for _ in range(n):
        s = "".join(rng.choice(POOL) for _ in range(rng.randint(1, 40)))
        cases += [(k, s) for k in (0, 1, 2)]
    inp = "".join("%d %s\n" % (k, s.encode().hex()) for k, s in cases)
    res = subprocess.run([exe], input=inp.encode(), capture_output=True, check=True)
    lines = res.stdout.decode().split("\n")
    bad = 0
    for (kind, s), line in zip(cases, lines):
        got = [int(x) for x in line.split()]
        want = [len(p.encode()) for p in reference(kind, s)]
        if got != want:
            bad += 1
            if bad <= 5:
                print("MISMATCH kind %d %r\n  got  %s\n  want %s" % (kind, s, got, want))
    print("%d cases, %d mismatches" % (len(cases), bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
