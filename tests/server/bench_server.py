#!/usr/bin/env python3
"""Aggregate throughput of bitnet-server (a benchmark, not a test): for each
slot count P, P clients send one greedy completion each at the same time;
prints completion tokens per second of wall time and the batched steps.
End-of-generation tokens are banned with logit_bias so that every request
generates exactly --tokens tokens (ids from --ban, default the bundled
vocabulary's 2045-2047).

usage: bench_server.py SERVER_EXE MODEL [--parallel 1,4,8] [--tokens 64] [-t 2]
"""
import argparse
import concurrent.futures
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvtest import Server, metrics, post  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("exe")
ap.add_argument("model")
ap.add_argument("--parallel", default="1,4,8")
ap.add_argument("--tokens", type=int, default=64)
ap.add_argument("-t", "--threads", default="2")
ap.add_argument("--ban", default="2045,2046,2047")
a = ap.parse_args()

body = {"prompt": "once upon a time", "max_tokens": a.tokens, "temperature": 0,
        "logit_bias": {t: -100 for t in a.ban.split(",") if t}}
for p in [int(x) for x in a.parallel.split(",")]:
    s = Server(a.exe, ["-m", a.model, "-t", a.threads, "--parallel", str(p), "-c", "512"],
               log="bench-server-%d.log" % p)
    post(s.base, "/v1/completions", dict(body, max_tokens=4))          # warm up
    m0 = metrics(s.base)
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(p) as ex:
        rs = list(ex.map(lambda i: post(s.base, "/v1/completions", dict(body, seed=i)), range(p)))
    dt = time.time() - t0
    m1 = metrics(s.base)
    n = sum(r[1]["usage"]["completion_tokens"] for r in rs if r[0] == 200)
    print("parallel %3d: %5d tokens in %7.2f s = %8.1f tokens/s, %d batched steps"
          % (p, n, dt, n / dt, m1["bitnet_batch_steps_total"] - m0["bitnet_batch_steps_total"]),
          flush=True)
    s.stop()
    os.remove(s.log)
