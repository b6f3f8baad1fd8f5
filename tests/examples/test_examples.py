#!/usr/bin/env python3
"""Run every example program on a small synthetic model.

usage: test_examples.py EXAMPLES_BUILD_DIR [MODELS_DIR]

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
# the bundled model (English text, for the checks that need real words)
BUNDLED = os.path.join(sys.argv[2] if len(sys.argv) > 2 else "models",
                       "tinystories-bitnet.gguf")
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
    # no inherited stdin: bitnet-cli reads a piped stdin as its prompt
    p = subprocess.run([exe(name)] + args, input=stdin, capture_output=True,
                       timeout=TIMEOUT, env=e,
                       stdin=subprocess.DEVNULL if stdin is None else None)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def run_tty(name, args):
    """Run with stdout and stderr on a pseudo-terminal; the bytes it shows."""
    import pty
    master, slave = pty.openpty()
    p = subprocess.Popen([exe(name)] + args, stdin=subprocess.DEVNULL, stdout=slave,
                         stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:            # EIO: the program closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return p.wait(timeout=TIMEOUT), out.decode("utf-8", "replace")


def screen_lines(text):
    """The lines a terminal ends up showing: a carriage return goes back to
    the start of the line, ESC[K clears the rest of it."""
    lines = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        cur = ""
        for part in raw.split("\r")[-1:]:
            cur = part
        lines.append(cur.replace("\x1b[K", ""))
    return lines


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
    # bitnet-cli's start-up line and notes come before any failure
    lines = [l for l in err.splitlines() if l.strip() and
             not re.match(r"bitnet-cli: (model '|note: )", l)]
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
    _, _, err = expect_fail(name, ["-m", model, "-n", "abc"], "non-numeric -n (range)")
    check("an integer from -1 to" in err, "bitnet-cli: a rejected number prints the range")
    test_cli_more(model, tmp, prompt, out1)


def generated(out, prompt):
    """The generated text of a one-shot run (stdout minus the echoed prompt)."""
    return out[len(prompt.encode()):].rstrip(b"\n")


def test_cli_more(model, tmp, prompt, greedy):
    """The llama-cli / run_inference.py habits (issue 17)."""
    name = "bitnet-cli"
    base = ["-m", model, "-n", "8", "--temp", "0"]
    rc, out, _ = expect_ok(name, ["--version"], "--version")
    check(re.match(rb"bitnet-cli \(libbitnet \d+\.\d+\.\d+\)", out) is not None,
          "bitnet-cli: --version prints the library version")

    # run_inference.py's command line: -ngl and -b are accepted and ignored
    _, out, err = expect_ok(name, base + ["-p", prompt, "-t", "2", "-ngl", "0", "-b", "1",
                                          "-c", "2048", "-temp", "0"],
                            "run_inference.py options")
    check(out == greedy, "bitnet-cli: -ngl/-b change nothing")
    check("note: -ngl 0 ignored" in err and "note: -b 1 ignored" in err,
          "bitnet-cli: ignored options are noted")

    # start-up line; --log-disable silences it
    _, _, err = expect_ok(name, base + ["-p", prompt], "start-up line")
    m = re.search(r"^bitnet-cli: model '(.*)': (\S+), ([\d.]+) MiB, .*kernels (\S+)", err, re.M)
    check(m is not None and m.group(1) == model and float(m.group(3)) > 0,
          "bitnet-cli: start-up line names the model, its size and the kernels")
    _, _, err = expect_ok(name, base + ["-p", prompt, "--log-disable"], "--log-disable")
    check("bitnet-cli: model '" not in err, "bitnet-cli: --log-disable hides the start-up line")

    # the prompt from stdin: -f - and a plain pipe
    _, out, _ = expect_ok(name, base + ["-f", "-"], "-f -", stdin=(prompt + "\n").encode())
    check(out == greedy, "bitnet-cli: -f - reads the prompt from stdin")
    _, out, _ = expect_ok(name, base, "piped prompt", stdin=prompt.encode())
    check(out == greedy, "bitnet-cli: a piped stdin is the prompt")

    # --no-mmap loads the same model
    _, out, _ = expect_ok(name, base + ["-p", prompt, "--no-mmap"], "--no-mmap")
    check(out == greedy, "bitnet-cli: --no-mmap gives the same result")

    # -c above the training context (4096) warns
    _, _, err = expect_ok(name, base + ["-p", prompt, "-c", "8192"], "-c above training")
    check("warning: -c 8192 is above the model's training context" in err,
          "bitnet-cli: -c above the training context warns")

    # --logit-bias: a large bias makes greedy decoding repeat one token
    rc, ids, _ = run("bitnet-tokenize", ["-m", model, "-p", "a", "--no-bos"])
    tok_a = ids.split()[0].decode() if rc == 0 and ids.split() else "0"
    _, out, _ = expect_ok(name, base + ["-p", prompt, "--logit-bias", tok_a + "+1000"],
                          "--logit-bias T+B")
    check(generated(out, prompt) == b"a" * 8, "bitnet-cli: --logit-bias forces token 'a'")
    _, out, _ = expect_ok(name, base + ["-p", prompt, "--logit-bias", tok_a + "+1000",
                                        "--logit-bias", tok_a + "-inf"], "--logit-bias T-inf")
    check(b"a" not in generated(out, prompt), "bitnet-cli: T-inf bans the token")
    expect_fail(name, base + ["-p", prompt, "--logit-bias", "12*3"], "malformed --logit-bias")
    # penalties count the prompt too, whose " a " is token 'a' once: a
    # presence penalty above the bias bans it at once; a frequency penalty
    # of 600 allows one more (1000 - 600 > 0 > 1000 - 2 * 600)
    _, out, _ = expect_ok(name, base + ["-p", prompt, "--logit-bias", tok_a + "+1000",
                                        "--presence-penalty", "5000"], "--presence-penalty")
    check(generated(out, prompt).count(b"a") == 0, "bitnet-cli: --presence-penalty applies")
    _, out, _ = expect_ok(name, base + ["-p", prompt, "--logit-bias", tok_a + "+1000",
                                        "--frequency-penalty", "600"], "--frequency-penalty")
    check(generated(out, prompt).count(b"a") == 1, "bitnet-cli: --frequency-penalty applies")

    # --prompt-cache: the second run restores the prompt instead of evaluating it
    cache = os.path.join(tmp, "prompt.cache")
    long_prompt = prompt + " there was a little girl named lily"
    _, ref, _ = expect_ok(name, base + ["-p", long_prompt], "reference for --prompt-cache")
    _, out1, err1 = expect_ok(name, base + ["-p", long_prompt, "--prompt-cache", cache],
                              "--prompt-cache (write)")
    check(os.path.exists(cache), "bitnet-cli: --prompt-cache writes the file")
    _, out2, err2 = expect_ok(name, base + ["-p", long_prompt, "--prompt-cache", cache],
                              "--prompt-cache (read)")
    n1 = re.search(r"^prompt:\s+(\d+) tokens", err1, re.M)
    n2 = re.search(r"^prompt:\s+(\d+) tokens", err2, re.M)
    check(n1 and n2 and int(n2.group(1)) == 1 and int(n1.group(1)) > 1 and
          "prompt tokens restored" in err2,
          "bitnet-cli: a cached prompt is not evaluated again")
    check(out1 == ref and out2 == ref, "bitnet-cli: --prompt-cache does not change the text")
    _, out3, err3 = expect_ok(name, base + ["-p", prompt + " there was a big dog",
                                            "--prompt-cache", cache],
                              "--prompt-cache (common prefix)")
    n3 = re.search(r"^prompt:\s+(\d+) tokens", err3, re.M)
    _, ref3, _ = expect_ok(name, base + ["-p", prompt + " there was a big dog"],
                           "reference for the prefix")
    check(n3 and 1 < int(n3.group(1)) < int(n1.group(1)) and out3 == ref3,
          "bitnet-cli: --prompt-cache reuses a common prefix")
    with open(cache, "wb") as f:
        f.write(b"not a cache")
    _, out4, _ = expect_ok(name, base + ["-p", long_prompt, "--prompt-cache", cache],
                           "--prompt-cache over a foreign file")
    check(out4 == ref, "bitnet-cli: a foreign cache file is ignored and rewritten")

    # -cnv keeps going when the conversation outgrows the context
    turns = b"".join(b"tell me a story number %d please\n" % i for i in range(12))
    rc, out, err = expect_ok(name, ["-m", model, "-cnv", "--system", "be kind", "-n", "8",
                                    "--temp", "0", "-c", "128"], "-cnv context shifting",
                             stdin=turns)
    check(out.count(b"\n> ") >= 13 and "dropped" in err,
          "bitnet-cli: -cnv drops the oldest turns instead of stopping")

    # -i with a reverse prompt (English text needs the bundled model)
    if os.path.exists(BUNDLED):
        args = ["-m", BUNDLED, "-p", "Once upon a time", "-n", "64", "--temp", "0",
                "-i", "-r", ".", "--in-prefix", " [", "--in-suffix", "] ", "-t", "1"]
        rc, out, err = expect_ok(name, args, "-i -r --in-prefix --in-suffix",
                                 stdin=b"and then\n")
        text = out.decode("utf-8", "replace")
        first, _, rest = text.partition(" [")
        check(first.startswith("Once upon a time") and first.endswith(".") and
              first.count(".") == 1,
              "bitnet-cli: -r stops generation at the reverse prompt")
        check(rest.startswith("and then\n] "), "bitnet-cli: -i adds prefix, line and suffix")
        m = re.search(r"^generation:\s+(\d+) tokens", err, re.M)
        check(m is not None and int(m.group(1)) > 0, "bitnet-cli: -i generates after the input")
    else:
        print("skip the -i check: %s not found" % BUNDLED)


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
    expect_fail(name, ["-f", tf], "no model and no default model",
                env={"BITNET_DEFAULT_MODEL": os.path.join(tmp, "absent.gguf")})
    _, out, _ = expect_ok(name, ["-f", tf, "-c", "64", "-t", "1"], "default model",
                          env={"BITNET_DEFAULT_MODEL": model})
    check(finals and out.decode().splitlines()[-1:] == finals[:1],
          "bitnet-perplexity: the default model gives the same result")
    _, _, err = expect_ok(name, ["-m", model, "-f", tf, "-c", "64", "-t", "0"], "-t 0")
    rc, _, err = run(name, ["-m", model, "-f", tf, "-c", "8192"])
    check("warning: -c 8192 is above the model's training context" in err,
          "bitnet-perplexity: -c above the training context warns")
    _, _, err = expect_fail(name, ["-m", model, "-f", tf, "-t", "999"], "-t out of range")
    check("from 0 to 256" in err, "bitnet-perplexity: a rejected number prints the range")
    expect_fail(name, ["-m", model, "-f", os.path.join(tmp, "absent.txt")], "missing text file")
    expect_fail(name, ["-m", os.path.join(tmp, "absent.gguf"), "-f", tf], "missing model file")
    expect_fail(name, ["-m", model, "-f", tf, "-c", "4"], "-c too small")
    expect_fail(name, ["-m", model, "-f", tf, "-c", "x"], "non-numeric -c")

    # on a terminal the progress bar never shares a line with a result
    rc, shown = run_tty(name, ["-m", model, "-f", tf, "-c", "64", "-t", "1"])
    results = [l for l in screen_lines(shown) if "running perplexity" in l]
    check(rc == 0 and results and all(re.match(r"\[\d+/\d+\] running", l) for l in results),
          "bitnet-perplexity: on a terminal the result lines stay intact")


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
    expect_ok(name, ["--tokens", "1 2 3 4", "-t", "0", "-o", of], "default model, -t 0",
              env={"BITNET_DEFAULT_MODEL": model})
    check(os.path.getsize(of) == 4 * n_vocab, "bitnet-logits: default model used")


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
    check("from 1 to 1000" in err, "bitnet-bench: a rejected number prints the range")
    rc, out, err = expect_ok(name, ["-m", model, "--json", "-p", "8", "-n", "0", "-r", "1",
                                    "-t", "0"], "-t 0 (all CPUs)")
    try:
        rows = json.loads(out)
    except ValueError:
        rows = []
    check(len(rows) == 1 and rows[0].get("threads", 0) >= 1,
          "bitnet-bench: -t 0 runs with the CPU count")
    absent = os.path.join(os.path.dirname(model), "absent.gguf")
    _, _, err = expect_fail(name, ["-m", absent], "missing model file")
    check(absent in err, "bitnet-bench: names the file that failed")
    _, out, _ = expect_ok(name, ["--json", "-p", "8", "-n", "0", "-r", "1", "-t", "1"],
                          "default model", env={"BITNET_DEFAULT_MODEL": model})


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
    absent = os.path.join(os.path.dirname(model), "absent.gguf")
    rc, _, err = expect_fail(name, ["-m", absent, "-p", "x"], "missing model file")
    check(rc == 1 and ("cannot load '%s'" % absent) in err,
          "bitnet-tokenize: exit 1 and 'cannot load' for a missing file")
    rc, _, _ = expect_fail(name, ["--no-such-flag"], "unknown flag (exit 1)")
    check(rc == 1, "bitnet-tokenize: usage errors exit 1 like the other programs")
    rc, out2, _ = expect_ok(name, ["-p", "hello world"], "default model",
                            env={"BITNET_DEFAULT_MODEL": model})
    check(out2 == out, "bitnet-tokenize: the default model is used without -m")


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
        check(err == "", "bitnet-synth: silent when stderr is not a terminal")
        rc, shown = run_tty("bitnet-synth", ["-o", os.path.join(tmp, "tty.gguf"),
                                             "--n-layer", "1"])
        check(rc == 0 and re.search(r"bitnet-synth: wrote '.*tty\.gguf' after [\d.]+ s", shown),
              "bitnet-synth: progress on a terminal")
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
