#!/usr/bin/env python3
"""Run every example program on a small synthetic model.

usage: test_examples.py EXAMPLES_BUILD_DIR

Writes a model with bitnet-synth, then runs bitnet-cli, bitnet-perplexity,
bitnet-logits, bitnet-bench and bitnet-tokenize (each one only if it is
built), checking exit codes, the shape of the output, reproducibility, and
that bad flags or files give a non-zero exit with a one-line message.
Python standard library only.
"""
import json
import math
import os
import re
import subprocess
import sys
import tempfile

BIN = sys.argv[1] if len(sys.argv) > 1 else "examples"
FAILURES = []
TIMEOUT = 120


def exe(name):
    return os.path.join(BIN, name)


def have(name):
    return os.access(exe(name), os.X_OK)


def run(name, args, stdin=None, env=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run([exe(name)] + args, input=stdin, capture_output=True,
                       timeout=TIMEOUT, env=e)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def check(cond, what):
    if cond:
        print("ok   " + what)
    else:
        print("FAIL " + what)
        FAILURES.append(what)
    return cond


def expect_ok(name, args, what, **kw):
    rc, out, err = run(name, args, **kw)
    if not check(rc == 0, "%s: %s exits 0" % (name, what)):
        print("     args: %r\n     stderr: %s" % (args, err.strip()[-2000:]))
    return rc, out, err


def expect_fail(name, args, what, **kw):
    """A failure must exit non-zero with exactly one non-empty stderr line
    naming the program."""
    rc, out, err = run(name, args, **kw)
    lines = [l for l in err.splitlines() if l.strip()]
    ok = rc != 0 and len(lines) == 1 and lines[0].startswith(name + ":")
    if not check(ok, "%s: %s fails with a one-line message" % (name, what)):
        print("     args: %r rc=%d\n     stderr: %r" % (args, rc, err[-2000:]))
    return rc, out, err


def check_help(name):
    rc, out, err = expect_ok(name, ["--help"], "--help")
    check(b"usage" in out.lower(), "%s: --help prints a usage text" % name)
    expect_fail(name, ["--no-such-flag"], "unknown flag")


def sample_text():
    """Deterministic English-like text, a few thousand bytes."""
    words = ("once upon a time there was a little girl named lily she liked "
             "to play in the park with her big red ball one day the sun was "
             "warm and the birds sang happy songs").split()
    x = 12345
    out = []
    for i in range(900):
        x = (x * 1103515245 + 12345) & 0x7fffffff
        out.append(words[x % len(words)])
        if i % 13 == 12:
            out.append(".\n")
    return " ".join(out)


def test_cli(model, tmp):
    name = "bitnet-cli"
    check_help(name)
    prompt = "once upon a time"
    args = ["-m", model, "-p", prompt, "-n", "8", "--temp", "0"]
    rc, out1, err = expect_ok(name, args + ["-t", "2"], "one-shot greedy")
    check(out1.startswith(prompt.encode()), "bitnet-cli: output starts with the prompt")
    m = re.search(r"^generation:\s+(\d+) tokens in\s+[\d.]+ s \(\s*[\d.]+ tokens/s\)$",
                  err, re.M)
    check(m is not None and 1 <= int(m.group(1)) <= 8,
          "bitnet-cli: timing summary with 1..8 generated tokens")
    check(re.search(r"^prompt:\s+\d+ tokens in .* tokens/s\)$", err, re.M) is not None,
          "bitnet-cli: prompt timing line")
    rc, out2, err = expect_ok(name, args + ["-t", "1"], "one-shot greedy, 1 thread")
    check(out1 == out2, "bitnet-cli: greedy output does not depend on the thread count")

    # seeded sampling is reproducible
    sargs = ["-m", model, "-p", prompt, "-n", "12", "-s", "7", "--temp", "0.9",
             "--top-k", "0", "--top-p", "1", "--min-p", "0"]
    _, s1, _ = expect_ok(name, sargs, "seeded sampling")
    _, s2, _ = expect_ok(name, sargs, "seeded sampling again")
    check(s1 == s2, "bitnet-cli: same seed, same text")

    # every sampling flag is accepted
    expect_ok(name, ["-m", model, "-p", prompt, "-n", "4", "-s", "1", "--temp", "0.7",
                     "--top-k", "20", "--top-p", "0.9", "--min-p", "0.1",
                     "--repeat-penalty", "1.1", "--repeat-last-n", "16", "-c", "128",
                     "-t", "1"], "all sampling flags")

    # prompt from a file (one trailing newline dropped)
    pf = os.path.join(tmp, "prompt.txt")
    with open(pf, "w") as f:
        f.write(prompt + "\n")
    _, out3, _ = expect_ok(name, ["-m", model, "-f", pf, "-n", "8", "--temp", "0"],
                           "prompt from -f")
    check(out3 == out1, "bitnet-cli: -f gives the same result as -p")

    # the default model comes from BITNET_DEFAULT_MODEL
    _, out4, _ = expect_ok(name, ["-p", prompt, "-n", "8", "--temp", "0"],
                           "default model from BITNET_DEFAULT_MODEL",
                           env={"BITNET_DEFAULT_MODEL": model})
    check(out4 == out1, "bitnet-cli: default model gives the same result")

    # chat mode reads turns from stdin until EOF
    rc, out5, err = expect_ok(name, ["-m", model, "-cnv", "--system", "be kind", "-n", "6",
                                     "--temp", "0", "-c", "512"], "-cnv",
                              stdin=b"hello\nhow are you\n")
    check(out5.count(b"> ") >= 3, "bitnet-cli: -cnv shows a prompt per turn")
    check(b"hello" in out5 and b"how are you" in out5, "bitnet-cli: -cnv echoes piped turns")
    expect_ok(name, ["-m", model, "-cnv", "-n", "4", "--temp", "0",
                     "--chat-template", "chatml"], "-cnv with --chat-template",
              stdin=b"hi\n")
    expect_fail(name, ["-m", model, "-cnv", "--chat-template", "nope"],
                "unknown chat template", stdin=b"hi\n")

    # errors
    expect_fail(name, ["-p", "x"], "missing default model",
                env={"BITNET_DEFAULT_MODEL": os.path.join(tmp, "absent.gguf")})
    expect_fail(name, ["-m", os.path.join(tmp, "absent.gguf"), "-p", "x"], "missing model file")
    bad = os.path.join(tmp, "bad.gguf")
    with open(bad, "wb") as f:
        f.write(b"GGUF\x03\x00\x00\x00garbage")
    expect_fail(name, ["-m", bad, "-p", "x"], "corrupt model file")
    expect_fail(name, ["-m", model, "-f", os.path.join(tmp, "absent.txt")], "missing prompt file")
    expect_fail(name, ["-m", model, "-n"], "flag without its value")
    expect_fail(name, ["-m", model, "-n", "abc"], "non-numeric -n")
    expect_fail(name, ["-m", model, "--temp", "x1"], "non-numeric --temp")
    expect_fail(name, ["-m", model, "-t", "-3"], "negative -t")
    expect_fail(name, ["-m", model, "-p", "x", "--top-p", "1.5"], "--top-p out of range")
    expect_fail(name, ["-m", model, "-p", "x", "--min-p", "-1"], "--min-p out of range")
    expect_fail(name, ["-m", model, "-p", "x", "--repeat-penalty", "0"],
                "--repeat-penalty out of range")
    expect_fail(name, ["-m", model, "-p", "x", "-f", pf], "-p and -f together")
    expect_fail(name, ["-m", model, "-p", prompt * 8, "-c", "16"], "prompt longer than -c")


def test_perplexity(model, tmp):
    name = "bitnet-perplexity"
    check_help(name)
    tf = os.path.join(tmp, "text.txt")
    with open(tf, "w") as f:
        f.write(sample_text())
    finals = []
    for t in ("1", "2"):
        rc, out, err = expect_ok(name, ["-m", model, "-f", tf, "-c", "64", "-t", t],
                                 "perplexity, %s thread(s)" % t)
        lines = out.decode().splitlines()
        m = re.fullmatch(r"perplexity: (\d+\.\d{4}) \((\d+) tokens scored\)",
                         lines[-1] if lines else "")
        if not check(m is not None, "bitnet-perplexity: final line format"):
            continue
        ppl, n = float(m.group(1)), int(m.group(2))
        # 64-token windows score positions 32..62: 31 tokens each
        check(n > 0 and n % 31 == 0, "bitnet-perplexity: %d tokens scored, 31 per window" % n)
        windows = [l for l in lines if re.fullmatch(r"\[\d+/\d+\] running perplexity \d+\.\d{4}", l)]
        check(len(windows) == n // 31, "bitnet-perplexity: one running line per window")
        check(1.0 < ppl < 1e6 and math.isfinite(ppl), "bitnet-perplexity: plausible value %.4f" % ppl)
        check("tokens/s" in err, "bitnet-perplexity: speed on stderr")
        finals.append(lines[-1])
    check(len(finals) == 2 and finals[0] == finals[1],
          "bitnet-perplexity: result does not depend on the thread count")
    short = os.path.join(tmp, "short.txt")
    with open(short, "w") as f:
        f.write("a tiny text")
    expect_fail(name, ["-m", model, "-f", short, "-c", "512"], "text shorter than a window")
    expect_fail(name, ["-m", model], "no text file")
    expect_fail(name, ["-f", tf], "no model")
    expect_fail(name, ["-m", model, "-f", os.path.join(tmp, "absent.txt")], "missing text file")
    expect_fail(name, ["-m", os.path.join(tmp, "absent.gguf"), "-f", tf], "missing model file")
    expect_fail(name, ["-m", model, "-f", tf, "-c", "4"], "-c too small")
    expect_fail(name, ["-m", model, "-f", tf, "-c", "x"], "non-numeric -c")


def test_logits(model, tmp, n_vocab):
    name = "bitnet-logits"
    rc, out, err = run(name, ["--help"])
    check(rc == 0, "bitnet-logits: --help exits 0")
    rc, _, err = run(name, ["--no-such-flag"])
    check(rc != 0 and err.strip() != "", "bitnet-logits: unknown flag fails with a message")
    of = os.path.join(tmp, "out.f32")
    expect_ok(name, ["-m", model, "--tokens", "1 2 3 4", "-o", of], "last-position logits")
    check(os.path.getsize(of) == 4 * n_vocab, "bitnet-logits: one row of n_vocab floats")
    expect_ok(name, ["-m", model, "--tokens", "1 2 3 4", "--all", "-o", of], "--all")
    check(os.path.getsize(of) == 4 * 4 * n_vocab, "bitnet-logits: --all writes 4 rows")
    rc, _, err = run(name, ["-m", model, "--tokens", "1 x", "-o", of])
    check(rc != 0 and err.strip() != "", "bitnet-logits: bad token list fails with a message")


def test_bench(model):
    name = "bitnet-bench"
    rc, out, err = run(name, ["--help"])
    check(rc == 0, "bitnet-bench: --help exits 0")
    rc, out, err = expect_ok(name, ["-m", model, "--json", "-p", "8", "-n", "4", "-r", "1",
                                    "-t", "1"], "--json")
    try:
        rows = json.loads(out)
    except ValueError:
        rows = None
    if check(isinstance(rows, list), "bitnet-bench: --json prints a JSON array"):
        tests = sorted(r.get("test") for r in rows)
        check(tests == ["pp8", "tg4"], "bitnet-bench: pp8 and tg4 rows")
        check(all(r.get("tokens_per_s", 0) > 0 for r in rows),
              "bitnet-bench: positive tokens/s")
    rc, _, err = run(name, ["-m", model, "-r", "zero"])
    check(rc != 0 and err.strip() != "", "bitnet-bench: bad -r fails with a message")


def test_tokenize(model, n_vocab):
    name = "bitnet-tokenize"
    rc, out, err = run(name, ["--help"])
    check(rc == 0, "bitnet-tokenize: --help exits 0")
    rc, _, err = run(name, ["--no-such-flag"])
    check(rc != 0 and err.strip() != "", "bitnet-tokenize: unknown flag fails with a message")
    if b"-p" in out:
        rc, out, err = run(name, ["-m", model, "-p", "hello world"])
        check(rc == 0 and out.strip() != b"", "bitnet-tokenize: tokenizes a prompt")
        try:
            ids = [int(x) for x in out.split()]
        except ValueError:
            ids = []
        check(len(ids) > 0 and all(0 <= i < n_vocab for i in ids),
              "bitnet-tokenize: prints ids inside the vocabulary")


def main():
    if not have("bitnet-synth"):
        print("bitnet-synth is not built in %s: cannot make a model; skipping" % BIN)
        return 77
    with tempfile.TemporaryDirectory(prefix="bitnet-examples-") as tmp:
        model = os.path.join(tmp, "m.gguf")
        n_vocab = 300
        rc, _, err = run("bitnet-synth", ["-o", model, "--n-embd", "128", "--n-layer", "2",
                                          "--n-ff", "256", "--n-head", "4", "--n-head-kv", "2",
                                          "--vocab-size", str(n_vocab), "--seed", "1"])
        if not check(rc == 0 and os.path.exists(model), "bitnet-synth writes a model"):
            print(err)
            return 1
        for prog, fn in (("bitnet-cli", lambda: test_cli(model, tmp)),
                         ("bitnet-perplexity", lambda: test_perplexity(model, tmp)),
                         ("bitnet-logits", lambda: test_logits(model, tmp, n_vocab)),
                         ("bitnet-bench", lambda: test_bench(model)),
                         ("bitnet-tokenize", lambda: test_tokenize(model, n_vocab))):
            if have(prog):
                fn()
            else:
                print("skip %s: not built" % prog)
    if FAILURES:
        print("\n%d check(s) failed:" % len(FAILURES))
        for f in FAILURES:
            print("  " + f)
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
