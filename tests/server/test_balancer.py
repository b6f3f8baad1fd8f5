#!/usr/bin/env python3
"""Two bitnet-server replicas behind HAProxy on loopback, configured as in
docs/serving.md (health checks on /health, retries on another replica).
One replica is killed (SIGKILL) in the middle of a run of requests; every
request must still succeed, with the same text as before the kill (the
replicas serve the same model, and a fixed seed fixes the text).

usage: test_balancer.py SERVER_EXE MODEL
"""
import concurrent.futures
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvtest import PROCS, Server, check, completion_text, finish, request, skip  # noqa: E402

EXE, MODEL = sys.argv[1], sys.argv[2]
haproxy = shutil.which("haproxy") or (os.path.exists("/usr/sbin/haproxy") and "/usr/sbin/haproxy")
if not haproxy:
    skip("haproxy is not installed (apt-get install haproxy)")
tmp = tempfile.mkdtemp(prefix="bitnet-server-lb-")
os.chdir(tmp)

r1 = Server(EXE, ["-m", MODEL, "-t", "1", "--parallel", "2"], log="r1.log")
r2 = Server(EXE, ["-m", MODEL, "-t", "1", "--parallel", "2"], log="r2.log")

# A free loopback port for the balancer (bound and released just before).
s = socket.socket()
s.bind(("127.0.0.1", 0))
lb_port = s.getsockname()[1]
s.close()

# The configuration of docs/serving.md, with loopback ports and short check
# intervals so that the test is quick.
cfg = """
global
    maxconn 512
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    option http-buffer-request
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout
frontend openai
    bind 127.0.0.1:%d
    default_backend bitnet
backend bitnet
    balance leastconn
    option httpchk GET /health
    http-check expect status 200
    default-server inter 200ms fall 1 rise 2
    server r1 127.0.0.1:%d check
    server r2 127.0.0.1:%d check
""" % (lb_port, r1.port, r2.port)
with open("haproxy.cfg", "w") as f:
    f.write(cfg)
lb_log = open("haproxy.log", "w+b")
lb = subprocess.Popen([haproxy, "-f", "haproxy.cfg", "-db"], stdout=lb_log, stderr=subprocess.STDOUT)
base = "http://127.0.0.1:%d" % lb_port
up = False
deadline = time.time() + 30
while time.time() < deadline and lb.poll() is None:
    try:
        if request(base, "GET", "/health", timeout=5)[0] == 200:
            up = True
            break
    except OSError:
        pass
    time.sleep(0.1)
if not check(up, "haproxy forwards /health"):
    lb.kill()
    lb_log.seek(0)
    print(lb_log.read().decode("utf-8", "replace"))
    finish()
time.sleep(0.6)                     # both replicas pass their first checks

N = 48
reqs = [("/v1/completions", {"prompt": "once upon a time", "seed": i, "max_tokens": 48,
                             "temperature": 0.9}) for i in range(N)]
expected = [completion_text(r2.base, p, b)[1] for p, b in reqs]

done = [0]
mu = threading.Lock()
killed = threading.Event()


def run(i):
    r = completion_text(base, *reqs[i], timeout=120)
    with mu:
        done[0] += 1
        if done[0] == 12 and not killed.is_set():
            killed.set()
            r1.proc.send_signal(signal.SIGKILL)     # a replica dies mid-run
    return r


with concurrent.futures.ThreadPoolExecutor(max_workers=6) as ex:
    futs = [ex.submit(run, i) for i in range(N)]
    results = []
    for f in futs:
        try:
            results.append(f.result(timeout=180))
        except Exception as e:  # noqa: BLE001 - any failure is a result
            results.append(("exception", repr(e), None))

check(killed.is_set() and r1.proc.wait(timeout=10) == -signal.SIGKILL, "replica r1 was killed mid-run")
ok = sum(1 for r in results if r[0] == 200)
check(ok == N, "all %d requests through the balancer succeeded (%d did)" % (N, ok))
same = sum(1 for r, e in zip(results, expected) if r[1] == e)
check(same == N, "every text equals the replica's direct answer (%d/%d)" % (same, N))
st, h, data = request(base, "GET", "/health")
check(st == 200, "the balancer still answers after the kill")
lb.terminate()
lb.wait(timeout=10)
r2.stop()
PROCS.remove(r1)
shutil.rmtree(tmp, ignore_errors=True)
finish()
