#!/usr/bin/env python3
"""Generate text with libbitnet from Python.

    BITNET_LIBRARY=/path/to/libbitnet.so.1 python3 demo.py -m model.gguf -p "Once upon a time" -n 64

Prints the generated text (not the prompt) as it streams. --ids prints the
generated token ids instead, one line, separated by spaces.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bitnet  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description="libbitnet Python demo")
    ap.add_argument("-m", "--model", required=True, help="GGUF model file")
    ap.add_argument("-p", "--prompt", default="", help="prompt text")
    ap.add_argument("-n", "--n-predict", type=int, default=64, help="tokens to generate")
    ap.add_argument("-t", "--threads", type=int, default=0, help="threads (0: all CPUs)")
    ap.add_argument("-c", "--ctx-size", type=int, default=0, help="context length (0: model's)")
    ap.add_argument("-s", "--seed", type=int, default=0, help="sampler seed")
    ap.add_argument("--temp", type=float, default=0.8, help="temperature (0: greedy)")
    ap.add_argument("--ids", action="store_true", help="print generated token ids, not text")
    a = ap.parse_args()

    try:
        with bitnet.Model(a.model) as model:
            ctx = model.context(n_ctx=a.ctx_size, n_threads=a.threads)
            smp = model.sampler(temperature=a.temp, seed=a.seed)
            if a.ids:
                ids = list(bitnet.generate_tokens(ctx, smp, a.prompt, a.n_predict))
                print(" ".join(str(t) for t in ids))
            else:
                out = sys.stdout.buffer
                for piece in bitnet.generate(ctx, smp, a.prompt, a.n_predict):
                    out.write(piece.encode("utf-8"))
                    out.flush()
                out.write(b"\n")
    except bitnet.BitnetError as e:
        print("demo.py: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
