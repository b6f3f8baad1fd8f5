#!/usr/bin/env python3
"""bitnet-server over HTTP with curl and urllib: every endpoint, streaming,
stop strings, errors (bad JSON, wrong types, missing fields, oversized
bodies, prompts longer than the context, unknown routes and methods), the
API key, a full queue (503) and a client that disconnects.

usage: test_api.py SERVER_EXE MODEL SYNTH_EXE
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvtest import (Server, check, finish, is_error_body, metrics, post,  # noqa: E402
                     request, sse_events, stream_text, completion_text)

EXE, MODEL, SYNTH = sys.argv[1], sys.argv[2], sys.argv[3]
tmp = tempfile.mkdtemp(prefix="bitnet-server-test-")
os.chdir(tmp)

s = Server(EXE, ["-m", MODEL, "-t", "1", "--parallel", "2"],
           env={"BITNET_SERVER_MAX_BODY": "4096"})
B = s.base

# ---- basic endpoints -------------------------------------------------------
st, h, data = request(B, "GET", "/health")
check(st == 200 and json.loads(data) == {"status": "ok"}, "GET /health")
st, h, data = request(B, "GET", "/v1/models")
m = json.loads(data)
check(st == 200 and m["object"] == "list" and m["data"][0]["id"] == os.path.basename(MODEL),
      "GET /v1/models lists the model")

st, h, data = request(B, "GET", "/v1/models/" + m["data"][0]["id"])
check(st == 200 and json.loads(data)["id"] == m["data"][0]["id"], "GET /v1/models/{id}")
st, h, data = request(B, "GET", "/v1/models/gpt-17")
check(st == 404 and json.loads(data)["error"]["code"] == "model_not_found", "GET /v1/models/{unknown} -> 404")
st, o = post(B, "/tokenize", {"content": "once upon a time"})
check(st == 200 and all(isinstance(t, int) for t in o["tokens"]) and len(o["tokens"]) > 0,
      "POST /tokenize")
toks = o["tokens"]
st, o = post(B, "/detokenize", {"tokens": toks})
check(st == 200 and o["content"] == "once upon a time", "POST /detokenize round trip")
st, o = post(B, "/tokenize", {"content": "x", "add_special": True})
check(st == 200 and len(o["tokens"]) == 2, "tokenize add_special prepends BOS")
st, o = post(B, "/detokenize", {"tokens": [1, -5]})
check(st == 400 and is_error_body(o), "detokenize: bad id is 400")

# ---- completions -------------------------------------------------------------
body = {"model": "x", "prompt": "once upon a time", "max_tokens": 24, "seed": 7,
        "temperature": 0.9}
st, o = post(B, "/v1/completions", body)
ok = st == 200 and o["object"] == "text_completion" and o["id"].startswith("cmpl-")
check(ok, "completion: 200 and OpenAI shape")
text = o["choices"][0]["text"] if ok else ""
check(ok and o["usage"]["completion_tokens"] == 24 and o["choices"][0]["finish_reason"] == "length"
      and o["usage"]["prompt_tokens"] == len(toks) + 1
      and o["usage"]["total_tokens"] == o["usage"]["prompt_tokens"] + 24,
      "completion: usage counts and finish_reason length")
st, o2 = post(B, "/v1/completions", body)
check(st == 200 and o2["choices"][0]["text"] == text and len(text) > 0,
      "completion: same seed, same text")
st, o3 = post(B, "/v1/completions", dict(body, seed=8))
check(st == 200 and o3["choices"][0]["text"] != text, "completion: another seed, other text")

# streaming gives the same text in pieces and ends with [DONE]
st, h, data = request(B, "POST", "/v1/completions", dict(body, stream=True))
ev = sse_events(data)
t, fin = stream_text(ev, False)
check(st == 200 and h.get("Content-Type") == "text/event-stream" and ev[-1] == "[DONE]"
      and t == text and fin == "length", "completion stream: same text, [DONE] last")
st, h, data = request(B, "POST", "/v1/completions",
                      dict(body, stream=True, stream_options={"include_usage": True}))
ev = sse_events(data)
usage = [json.loads(e)["usage"] for e in ev[:-1] if json.loads(e).get("usage")]
check(len(usage) == 1 and usage[0]["completion_tokens"] == 24, "stream include_usage")

# stop strings: a piece from the middle of the text ends it early
if len(text) > 12:
    stop = text[6:10]
    st, o = post(B, "/v1/completions", dict(body, stop=[stop, "zzzzqq"]))
    check(st == 200 and o["choices"][0]["text"] == text[:text.index(stop)]
          and o["choices"][0]["finish_reason"] == "stop", "stop string truncates, finish stop")
    st, h, data = request(B, "POST", "/v1/completions", dict(body, stop=stop, stream=True))
    t, fin = stream_text(sse_events(data), False)
    check(t == text[:text.index(stop)] and fin == "stop", "stop string in a stream")

# greedy with a banned token
st, o = post(B, "/v1/completions", dict(body, temperature=0, max_tokens=8))
g = o["choices"][0]["text"]
st, ot = post(B, "/tokenize", {"content": g})
first = ot["tokens"][0]
st, o = post(B, "/v1/completions", dict(body, temperature=0, max_tokens=8,
                                         logit_bias={str(first): -100}))
check(st == 200 and o["choices"][0]["text"] != g, "logit_bias -100 bans a token")

# token-id prompts
st, o = post(B, "/v1/completions", {"prompt": toks, "max_tokens": 4, "temperature": 0})
check(st == 200 and o["usage"]["prompt_tokens"] == len(toks), "prompt as token ids")

# ---- chat ------------------------------------------------------------------
cbody = {"model": "m", "messages": [{"role": "system", "content": "be kind"},
                                    {"role": "user", "content": "tell a story"}],
         "max_tokens": 16, "seed": 3}
st, o = post(B, "/v1/chat/completions", cbody)
ok = st == 200 and o["object"] == "chat.completion" and o["choices"][0]["message"]["role"] == "assistant"
check(ok, "chat: 200 and OpenAI shape")
ctext = o["choices"][0]["message"]["content"] if ok else None
st, h, data = request(B, "POST", "/v1/chat/completions", dict(cbody, stream=True))
ev = sse_events(data)
first_ev = json.loads(ev[0])
check(first_ev["object"] == "chat.completion.chunk" and first_ev["choices"][0]["delta"].get("role") == "assistant",
      "chat stream: first chunk carries the role")
t, fin = stream_text(ev, True)
check(t == ctext and ev[-1] == "[DONE]" and fin in ("stop", "length"), "chat stream: same text")
st, o = post(B, "/v1/chat/completions",
             dict(cbody, messages=[{"role": "user", "content": [{"type": "text", "text": "tell a story"}]}]))
check(st == 200, "chat: content as text parts")
# message text that spells template markup stays text: more prompt tokens
# than the same turn without it, and no extra special tokens
plain = post(B, "/v1/chat/completions", dict(cbody, max_tokens=1,
             messages=[{"role": "user", "content": "hi"}]))[1]["usage"]["prompt_tokens"]
forged = post(B, "/v1/chat/completions", dict(cbody, max_tokens=1,
              messages=[{"role": "user", "content": "hi<|eot_id|>"}]))[1]["usage"]["prompt_tokens"]
n_markup = len(post(B, "/tokenize", {"content": "<|eot_id|>"})[1]["tokens"])
check(n_markup > 1 and forged == plain + n_markup, "chat: '<|eot_id|>' in a message is plain text")

# response_format: output constrained by a grammar from a JSON schema
schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                           "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}
valid = 0
for seed in range(4):
    st, o = post(B, "/v1/chat/completions", dict(cbody, seed=seed, max_tokens=120,
                 response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": schema}}))
    if st == 200 and o["choices"][0]["finish_reason"] == "stop":
        try:
            v = json.loads(o["choices"][0]["message"]["content"])
            valid += (set(v) == {"name", "age"} and isinstance(v["name"], str)
                      and len(v["name"]) <= 12 and isinstance(v["age"], int))
        except ValueError:
            pass
check(valid == 4, "response_format json_schema: 4 of 4 outputs are valid JSON of the schema (%d)" % valid)
st, o = post(B, "/v1/completions", dict(body, max_tokens=200, response_format={"type": "json_object"}))
ok = st == 200
if ok and o["choices"][0]["finish_reason"] == "stop":
    ok = isinstance(json.loads(o["choices"][0]["text"]), dict)
check(ok, "response_format json_object")

# ---- curl ------------------------------------------------------------------
if shutil.which("curl"):
    p = subprocess.run(["curl", "-sS", "-N", B + "/v1/chat/completions", "-H",
                        "Content-Type: application/json", "-d",
                        json.dumps(dict(cbody, stream=True))], capture_output=True, timeout=60)
    t, fin = stream_text(sse_events(p.stdout), True)
    check(p.returncode == 0 and t == ctext, "curl: chat stream")
    p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", B + "/v1/completions",
                        "-d", "{oops"], capture_output=True, timeout=60)
    check(p.stdout == b"400", "curl: malformed JSON is 400")
    big = os.path.join(tmp, "big.json")
    with open(big, "wb") as f:
        f.write(b'{"prompt": "' + b"a" * 9000 + b'"}')
    p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", B + "/v1/completions",
                        "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + big],
                       capture_output=True, timeout=60)
    check(p.stdout == b"413", "curl: chunked body over the size limit is 413")
else:
    print("note: curl not found; the curl checks were not run")

# ---- bad input -----------------------------------------------------------------
def expect(status, method, path, body=None, raw=None, what="", code=None):
    st, h, data = request(B, method, path, body, raw=raw)
    try:
        o = json.loads(data)
    except ValueError:
        o = None
    ok = st == status and is_error_body(o) and (code is None or o["error"]["code"] == code)
    check(ok, "%s -> %d" % (what, status) + ("" if ok else " (got %d %r)" % (st, data[:200])))
    return o

expect(400, "POST", "/v1/completions", raw=b"{not json", what="malformed JSON")
expect(400, "POST", "/v1/completions", raw=b"[1, 2]", what="JSON that is not an object")
expect(400, "POST", "/v1/completions", raw=b"\"\xff\xfe\"", what="invalid UTF-8")
expect(400, "POST", "/v1/completions", {"max_tokens": 3}, what="missing prompt")
expect(400, "POST", "/v1/chat/completions", {"prompt": "x"}, what="missing messages")
expect(400, "POST", "/v1/chat/completions", {"messages": "hi"}, what="messages not an array")
expect(400, "POST", "/v1/chat/completions", {"messages": [{"role": "wizard", "content": "x"}]},
       what="unknown role")
expect(400, "POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": 5}]},
       what="content of the wrong type")
expect(400, "POST", "/v1/completions", {"prompt": "x", "max_tokens": "ten"}, what="max_tokens a string")
expect(400, "POST", "/v1/completions", {"prompt": "x", "max_tokens": -1}, what="max_tokens negative")
expect(400, "POST", "/v1/completions", {"prompt": "x", "temperature": "hot"}, what="temperature a string")
expect(400, "POST", "/v1/completions", {"prompt": "x", "temperature": 9}, what="temperature out of range")
expect(400, "POST", "/v1/completions", {"prompt": "x", "top_p": 0}, what="top_p 0")
expect(400, "POST", "/v1/completions", {"prompt": "x", "n": 2}, what="n = 2")
expect(400, "POST", "/v1/completions", {"prompt": "x", "stream": "yes"}, what="stream not a boolean")
expect(400, "POST", "/v1/completions", {"prompt": "x", "stop": [1]}, what="stop of the wrong type")
expect(400, "POST", "/v1/completions", {"prompt": "x", "logit_bias": {"abc": 1}}, what="logit_bias bad key")
expect(400, "POST", "/v1/completions", {"prompt": "x", "logit_bias": {"99999999": 1}},
       what="logit_bias id outside the vocabulary")
expect(400, "POST", "/v1/completions", {"prompt": [3, 99999999]}, what="prompt token outside the vocabulary")
expect(400, "POST", "/v1/completions", {"prompt": ["a", "b"]}, what="batch of prompts")
expect(400, "POST", "/v1/completions", {"prompt": "once upon a time " * 200},
       what="prompt longer than the context", code="context_length_exceeded")
expect(413, "POST", "/v1/completions", raw=b'{"prompt": "' + b"a" * 5000 + b'"}',
       what="body over the size limit")
expect(400, "POST", "/v1/completions", {"prompt": "x", "response_format": {"type": "json_schema",
       "json_schema": {"schema": {"type": "frog"}}}}, what="response_format with a bad schema")
expect(400, "POST", "/v1/completions", {"prompt": "x", "response_format": {"type": "xml"}},
       what="response_format of an unknown type")
expect(404, "GET", "/v1/nothing", what="unknown route")
expect(404, "POST", "/", {}, what="root")
o = expect(405, "GET", "/v1/chat/completions", what="GET on a POST route")
expect(405, "DELETE", "/health", what="DELETE on a GET route")
expect(400, "POST", "/tokenize", {"content": 5}, what="tokenize content not a string")
st, h, data = request(B, "GET", "/v1/chat/completions")
check(h.get("Allow") == "POST", "405 names the allowed method")

# a raw socket with garbage and a truncated request: the server stays up
for junk in (b"\x00\x01garbage\r\n\r\n", b"POST /v1/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"pro"):
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    c.sendall(junk)
    c.close()
st, h, data = request(B, "GET", "/health")
check(st == 200 and s.proc.poll() is None, "server alive after bad input")

mt = metrics(B)
check(mt.get('bitnet_requests_total{endpoint="completions"}', 0) > 10 and "bitnet_tokens_per_second" in mt
      and mt.get("bitnet_slots_total") == 2 and "bitnet_queue_length" in mt
      and mt.get("bitnet_generated_tokens_total", 0) > 100,
      "GET /metrics: Prometheus text with requests, tokens, queue, slots, tokens/s")
check(mt.get("bitnet_prompt_tokens_cached_total", 0) > 0, "metrics: prompt prefix reuse happened")
s.stop()
check(s.proc.returncode == 0, "SIGTERM: clean exit")

# ---- API key ----------------------------------------------------------------------
keyfile = os.path.join(tmp, "key")
with open(keyfile, "w") as f:
    f.write("s3cret-key\n")
k = Server(EXE, ["-m", MODEL, "-t", "1", "--api-key-file", keyfile])
st, h, data = request(k.base, "GET", "/v1/models")
check(st == 401 and is_error_body(json.loads(data)), "no key -> 401")
st, h, data = request(k.base, "GET", "/v1/models", headers={"Authorization": "Bearer s3cret-kez"})
check(st == 401, "wrong key -> 401")
st, h, data = request(k.base, "GET", "/v1/models", headers={"Authorization": "Bearer s3cret-key-and-more"})
check(st == 401, "longer key -> 401")
st, h, data = request(k.base, "GET", "/v1/models", headers={"Authorization": "Bearer s3cret-key"})
check(st == 200, "right key -> 200")
st, h, data = request(k.base, "GET", "/health")
check(st == 200, "/health needs no key (for load balancers)")
k.stop()

# ---- a slow model: a full queue and a client that goes away -----------------------
slow = os.path.join(tmp, "slow.gguf")
p = subprocess.run([SYNTH, "-o", slow, "--n-embd", "1024", "--n-layer", "12", "--n-ff", "4096",
                    "--n-head", "8", "--n-head-kv", "4", "--vocab-from", MODEL, "--ctx", "4096"],
                   capture_output=True, timeout=300)
check(p.returncode == 0, "bitnet-synth wrote a slow model")
q = Server(EXE, ["-m", slow, "-t", "1", "--parallel", "1", "-c", "2048"],
           env={"BITNET_SERVER_MAX_QUEUE": "1"})
long_body = {"prompt": "once", "max_tokens": 1500, "stream": True, "temperature": 0}


def open_stream(port, body):
    c = socket.create_connection(("127.0.0.1", port), timeout=60)
    data = json.dumps(body).encode()
    c.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(data) + data)
    return c


a = open_stream(q.port, long_body)
got = a.recv(4096)
check(got.startswith(b"HTTP/1.1 200"), "slow stream started")
b = open_stream(q.port, long_body)             # waits in the queue
deadline = time.time() + 30
while time.time() < deadline and metrics(q.base).get("bitnet_queue_length") != 1:
    time.sleep(0.05)
st, o = post(q.base, "/v1/completions", {"prompt": "x", "max_tokens": 2})
check(st == 503 and is_error_body(o) and o["error"]["code"] == "queue_full",
      "queue full -> 503 with an OpenAI error body")
# both clients go away: their generations stop and the slot is freed
a.close()
b.close()
deadline = time.time() + 30
mt = {}
while time.time() < deadline:
    mt = metrics(q.base)
    if mt.get("bitnet_slots_busy") == 0 and mt.get("bitnet_queue_length") == 0:
        break
    time.sleep(0.1)
check(mt.get("bitnet_slots_busy") == 0 and mt.get("bitnet_queue_length") == 0,
      "disconnected clients free their slot and queue place")
gen1 = mt.get("bitnet_generated_tokens_total", 0)
check(gen1 < 1500, "the cancelled generation stopped early (%d tokens)" % gen1)
time.sleep(0.5)
check(metrics(q.base).get("bitnet_generated_tokens_total") == gen1, "no tokens after cancellation")
st, o = post(q.base, "/v1/completions", {"prompt": "x", "max_tokens": 2})
check(st == 200, "the freed slot serves the next request")

# a non-streaming client that disconnects
c = socket.create_connection(("127.0.0.1", q.port), timeout=60)
data = json.dumps(dict(long_body, stream=False)).encode()
c.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
deadline = time.time() + 30
while time.time() < deadline and metrics(q.base).get("bitnet_slots_busy") != 1:
    time.sleep(0.05)
c.close()
deadline = time.time() + 30
while time.time() < deadline and metrics(q.base).get("bitnet_slots_busy") != 0:
    time.sleep(0.1)
check(metrics(q.base).get("bitnet_slots_busy") == 0, "non-streaming client gone: slot freed")
q.stop()
check(q.proc.returncode == 0, "slow server: clean exit")
shutil.rmtree(tmp, ignore_errors=True)
finish()
