"""Shared helpers of the bitnet-server tests (python3 standard library only).

Every server is started on a free loopback port (--port 0; the port is read
from the server's "listening on" line) and killed at exit.
"""
import atexit
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

FAILURES = []
PROCS = []


def check(cond, what):
    """Record a failed assertion (the test continues, then exits 1)."""
    if cond:
        print("ok   " + what)
    else:
        print("FAIL " + what)
        FAILURES.append(what)
    return cond


def finish():
    stop_all()
    if FAILURES:
        print("%d failure(s):" % len(FAILURES))
        for f in FAILURES:
            print("  " + f)
        sys.exit(1)
    print("all passed")
    sys.exit(0)


def skip(why):
    print("SKIP: " + why)
    stop_all()
    sys.exit(77)


class Server:
    def __init__(self, exe, args, env=None, log=None):
        e = dict(os.environ)
        if env:
            e.update(env)
        self.log = log or ("server-%d.log" % (len(PROCS) + 1))
        self.logf = open(self.log, "w+b")
        self.proc = subprocess.Popen([exe, "--host", "127.0.0.1", "--port", "0"] + args,
                                     stdout=self.logf, stderr=subprocess.STDOUT, env=e)
        PROCS.append(self)
        self.port = None
        deadline = time.time() + 60
        while time.time() < deadline and self.proc.poll() is None:
            with open(self.log, "rb") as f:
                m = re.search(rb"listening on http://[^:]+:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.05)
        if self.port is None:
            with open(self.log, "rb") as f:
                sys.stdout.write(f.read().decode("utf-8", "replace"))
            raise RuntimeError("server did not start")
        self.base = "http://127.0.0.1:%d" % self.port

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def output(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")


def stop_all():
    for s in PROCS:
        s.stop()


atexit.register(stop_all)


def request(base, method, path, body=None, headers=None, raw=None, timeout=120):
    """(status, headers, bytes) of one request; never raises on HTTP errors."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    h = {"Content-Type": "application/json"}
    if headers:
        h.update(headers)
    req = urllib.request.Request(base + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def post(base, path, body, **kw):
    st, h, data = request(base, "POST", path, body, **kw)
    try:
        return st, json.loads(data)
    except ValueError:
        return st, data


def sse_events(data):
    """The data: payloads of a Server-Sent Events body, in order."""
    out = []
    for block in data.decode("utf-8").split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                out.append(line[6:])
    return out


def stream_text(events, chat):
    """Concatenated text and the finish_reason of parsed stream events."""
    text, finish = "", None
    for e in events:
        if e == "[DONE]":
            break
        o = json.loads(e)
        for c in o.get("choices", []):
            if chat:
                text += c["delta"].get("content") or ""
            else:
                text += c.get("text") or ""
            if c.get("finish_reason"):
                finish = c["finish_reason"]
    return text, finish


def is_error_body(obj, status=None):
    e = obj.get("error") if isinstance(obj, dict) else None
    return (isinstance(e, dict) and isinstance(e.get("message"), str)
            and isinstance(e.get("type"), str) and "code" in e)


def metrics(base):
    st, h, data = request(base, "GET", "/metrics")
    out = {}
    for line in data.decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def completion_text(base, path, body, timeout=120):
    """Text of a completion, streamed or not (by body['stream'])."""
    chat = path.endswith("chat/completions")
    if body.get("stream"):
        st, h, data = request(base, "POST", path, body, timeout=timeout)
        if st != 200:
            return st, None, None
        return (st,) + stream_text(sse_events(data), chat)
    st, obj = post(base, path, body, timeout=timeout)
    if st != 200:
        return st, None, None
    c = obj["choices"][0]
    return st, (c["message"]["content"] if chat else c["text"]), c["finish_reason"]
