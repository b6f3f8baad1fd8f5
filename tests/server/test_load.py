#!/usr/bin/env python3
"""Load test of bitnet-server: 64 requests from 16 concurrent clients on 4
slots. Every request has a fixed seed; each must complete (200) with exactly
the text it gets when it runs alone on a one-slot server. Bounded in time.

usage: test_load.py SERVER_EXE MODEL
"""
import concurrent.futures
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvtest import FAILURES, Server, check, completion_text, finish, metrics  # noqa: E402

EXE, MODEL = sys.argv[1], sys.argv[2]
N_REQ, N_CLIENTS, N_SLOTS = 64, 16, 4
DEADLINE_S = 240

tmp = tempfile.mkdtemp(prefix="bitnet-server-load-")
os.chdir(tmp)

STARTS = ["once upon a time", "one day, a little girl", "the big dog",
          "tom and sue went to the park", "there was a cat who",
          "a boy named tim had a red ball", "in a small house", "the sun was"]
SYSTEM = "you tell short stories for children about animals and friends."


def make_request(i):
    """A varied but fixed request: kind, prompt, sampling, stream, stop."""
    start = STARTS[i % len(STARTS)]
    body = {"seed": 1000 + i, "max_tokens": 16 + (i * 7) % 48,
            "temperature": [0.0, 0.7, 1.0, 1.3][i % 4], "stream": i % 3 == 0}
    if i % 5 == 4:
        body["stop"] = ["."]
    if i % 7 == 3:
        body["top_k"] = 5
        body["presence_penalty"] = 0.5
    if i % 2:
        # a shared system prompt: slots reuse its cached prefix
        body["messages"] = [{"role": "system", "content": SYSTEM},
                            {"role": "user", "content": start}]
        return "/v1/chat/completions", body
    body["prompt"] = start
    return "/v1/completions", body


reqs = [make_request(i) for i in range(N_REQ)]

alone = Server(EXE, ["-m", MODEL, "-t", "1", "--parallel", "1"], log="alone.log")
expected = []
for path, body in reqs:
    st, text, fin = completion_text(alone.base, path, body)
    expected.append((st, text, fin))
alone.stop()
check(all(e[0] == 200 and e[1] is not None for e in expected), "64 requests alone: all 200")
check(len(set(e[1] for e in expected)) > N_REQ // 2, "the requests produce varied texts")

srv = Server(EXE, ["-m", MODEL, "-t", "2", "--parallel", str(N_SLOTS)], log="load.log")
m0 = metrics(srv.base)
t0 = time.time()
results = [None] * N_REQ
with concurrent.futures.ThreadPoolExecutor(max_workers=N_CLIENTS) as ex:
    futs = {ex.submit(completion_text, srv.base, p, b, 120): i for i, (p, b) in enumerate(reqs)}
    try:
        for f in concurrent.futures.as_completed(futs, timeout=DEADLINE_S):
            i = futs[f]
            try:
                results[i] = f.result()
            except Exception as e:  # noqa: BLE001 - report any client failure
                results[i] = ("exception", repr(e), None)
    except concurrent.futures.TimeoutError:
        print("load test: deadline of %d s passed" % DEADLINE_S)
elapsed = time.time() - t0
m1 = metrics(srv.base)
print("64 requests from 16 clients on 4 slots in %.2f s" % elapsed)

done = [r for r in results if r is not None and r[0] == 200]
check(len(done) == N_REQ, "all %d requests completed with 200 (%d did)" % (N_REQ, len(done)))
same = sum(1 for r, e in zip(results, expected) if r is not None and r[1:] == e[1:])
for i, (r, e) in enumerate(zip(results, expected)):
    if r is None or r[1:] != e[1:]:
        print("request %d differs:\n  alone: %r\n  load:  %r" % (i, e, r))
check(same == N_REQ, "every text equals the text of the request run alone (%d/%d)" % (same, N_REQ))
steps = m1["bitnet_batch_steps_total"] - m0["bitnet_batch_steps_total"]
gen = m1["bitnet_generated_tokens_total"] - m0["bitnet_generated_tokens_total"]
print("%d tokens generated in %d batched steps" % (gen, steps))
check(steps < gen, "slots advanced together (fewer steps than tokens)")
check(m1["bitnet_prompt_tokens_cached_total"] > m0["bitnet_prompt_tokens_cached_total"],
      "the shared system prompt was reused from slot caches")
check(m1["bitnet_slots_busy"] == 0 and m1["bitnet_queue_length"] == 0, "idle after the load")
srv.stop()
check(srv.proc.returncode == 0, "clean exit")
if not FAILURES:
    shutil.rmtree(tmp, ignore_errors=True)
finish()
