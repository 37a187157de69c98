"""llmsim's other personalities (`--api ollama`, `--api tfserving`): the exact
bytes of Ollama 0.5's NDJSON streams and JSON answers and of TF Serving's
REST answers, their errors, the 404s of the routes they do not have, and
that the load model, the X-Sim overrides, the faults and the /stats and
/metrics counters work in both as in the OpenAI mode.

Where an expectation comes from: perf/llmsim/README.md ("Other APIs"),
perf/llmsim/ollama.c and perf/llmsim/tfserving.c.
"""

import calendar
import json
import re
import socket
import subprocess
import time
import unittest

from harness import LLMSIM, Conn, Llmsim, build_request, check_exit, wait_for

DATE_RE = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")
# Go's RFC3339Nano: the fraction's trailing zeros are dropped.
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{0,8}[1-9])?Z$")
GO_JSON = "application/json; charset=utf-8"


class Answer:
    def __init__(self, status_line, head, chunks, body, complete):
        self.status_line = status_line  # "HTTP/1.1 200 OK"
        self.head = head                # ["Name: value", ...] in order, as sent
        self.chunks = chunks            # chunked: each chunk's bytes
        self.body = body
        self.complete = complete        # the answer ended as its framing says

    @property
    def status(self):
        return int(self.status_line.split()[1])

    def names(self):
        return [h.split(":", 1)[0] for h in self.head]

    def header(self, name):
        for h in self.head:
            k, v = h.split(":", 1)
            if k.lower() == name.lower():
                return v.strip()
        return None

    def json(self):
        return json.loads(self.body)


def read_answer(c, head_only=False):
    """Reads one response from a harness Conn, keeping the head lines as sent
    and the chunk boundaries; a close mid-body gives complete=False."""
    status_line = c._line().decode()
    head = []
    while True:
        line = c._line()
        if not line:
            break
        head.append(line.decode())
    ans = Answer(status_line, head, [], b"", True)
    if head_only or ans.status in (204, 304):
        return ans
    try:
        if (ans.header("Transfer-Encoding") or "").lower() == "chunked":
            while True:
                size = int(c._line(), 16)
                if size == 0:
                    assert c._line() == b""
                    break
                ans.chunks.append(c._exact(size))
                assert c._exact(2) == b"\r\n"
            ans.body = b"".join(ans.chunks)
        else:
            ans.body = c._exact(int(ans.header("Content-Length")))
    except (EOFError, ConnectionResetError):
        ans.body = b"".join(ans.chunks)
        ans.complete = False
    return ans


def ask(port, method, path, body=None, headers=None):
    c = Conn(port)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        c.send(build_request(method, path, body, headers))
        return read_answer(c, head_only=method == "HEAD")
    finally:
        c.close()


def pairs(text):
    """The JSON object with its key order kept (nested objects as lists)."""
    return json.loads(text, object_pairs_hook=lambda p: p)


def keys(text):
    return [k for k, _ in pairs(text)]


class SimTest(unittest.TestCase):
    """One llmsim per class; its output must show no sanitizer report."""

    args = ()

    @classmethod
    def setUpClass(cls):
        cls.sim = Llmsim(*cls.args)
        cls.port = cls.sim.port

    @classmethod
    def tearDownClass(cls):
        rc = cls.sim.stop()
        check_exit(cls.sim, rc, ok=(0,))

    def stats(self):
        return self.sim.stats()

    def assert_head(self, ans, status_line, names, ctype=None):
        self.assertEqual(ans.status_line, status_line)
        self.assertEqual(ans.names(), names)
        self.assertRegex(ans.header("Date"), DATE_RE)
        if ctype:
            self.assertEqual(ans.header("Content-Type"), ctype)


# --- Ollama ------------------------------------------------------------------

TTFT_MS = 5


class OllamaTest(SimTest):
    args = ("--api", "ollama", "--tokens", "5", "--ttft-ms", str(TTFT_MS), "--itl-ms", "1",
            "--model", "llmsim-1,other:latest,third")

    def chat(self, messages=None, headers=None, path="/api/chat", **extra):
        body = {"model": "llmsim-1",
                "messages": messages or [{"role": "user", "content": "hello there"}]}
        body.update(extra)
        return ask(self.port, "POST", path, body, headers)

    def generate(self, prompt="hello there", headers=None, path="/api/generate", **extra):
        body = {"model": "llmsim-1", "prompt": prompt}
        body.update(extra)
        return ask(self.port, "POST", path, body, headers)

    def check_done(self, line, chat, reason, prompt_count, eval_count, content=""):
        """The done line (or non-streaming body) byte for byte; returns it parsed."""
        d = json.loads(line)
        self.assertRegex(d["created_at"], TIME_RE)
        for k in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
            self.assertIsInstance(d[k], int)
            self.assertGreater(d[k], 0, k)
        metrics = ('"total_duration":%d,"load_duration":%d,"prompt_eval_count":%d,'
                   '"prompt_eval_duration":%d,"eval_count":%d,"eval_duration":%d}' %
                   (d["total_duration"], d["load_duration"], prompt_count,
                    d["prompt_eval_duration"], eval_count, d["eval_duration"]))
        if chat:
            want = ('{"model":"llmsim-1","created_at":"%s","message":{"role":"assistant",'
                    '"content":"%s"},"done_reason":"%s","done":true,' %
                    (d["created_at"], content, reason)) + metrics
        else:
            want = ('{"model":"llmsim-1","created_at":"%s","response":"%s","done":true,'
                    '"done_reason":"%s","context":[1,2,3],' %
                    (d["created_at"], content, reason)) + metrics
        self.assertEqual(line.rstrip("\n"), want)
        self.assertEqual(d["total_duration"],
                         d["load_duration"] + d["prompt_eval_duration"] + d["eval_duration"])
        # The prefill is the TTFT (no --prefill-us-per-token).
        self.assertEqual(d["prompt_eval_duration"], TTFT_MS * 1000000)
        return d

    def check_stream(self, ans, chat, words, reason, prompt_count):
        self.assert_head(ans, "HTTP/1.1 200 OK", ["Content-Type", "Date", "Transfer-Encoding"],
                         "application/x-ndjson")
        self.assertEqual(ans.header("Transfer-Encoding"), "chunked")
        self.assertTrue(ans.complete)
        lines = [ch.decode() for ch in ans.chunks]
        # One line per chunk, each one JSON object and "\n".
        for line in lines:
            self.assertTrue(line.endswith("\n"))
            self.assertEqual(line.count("\n"), 1)
        self.assertEqual(len(lines), len(words) + 1)
        for line, w in zip(lines, words):
            created = json.loads(line)["created_at"]
            self.assertRegex(created, TIME_RE)
            if chat:
                want = ('{"model":"llmsim-1","created_at":"%s","message":{"role":"assistant",'
                        '"content":" w%d"},"done":false}\n' % (created, w))
            else:
                want = ('{"model":"llmsim-1","created_at":"%s","response":" w%d",'
                        '"done":false}\n' % (created, w))
            self.assertEqual(line, want)
        return self.check_done(lines[-1], chat, reason, prompt_count, len(words))

    def test_chat_stream_by_default(self):
        before = self.stats()
        ans = self.chat()  # no "stream": Ollama streams
        self.check_stream(ans, True, range(5), "stop", len("hello there") // 4)
        after = self.stats()
        self.assertEqual(after["requests"] - before["requests"], 1)
        self.assertEqual(after["completed"] - before["completed"], 1)
        self.assertEqual(after["tokens"] - before["tokens"], 5)

    def test_chat_stream_prompt_tokens(self):
        msgs = [{"role": "system", "content": "You are terse."},
                {"role": "user", "content": "hello there"}]
        ans = self.chat(msgs, stream=True, format="json", tools=[], keep_alive="5m")
        self.check_stream(ans, True, range(5), "stop", (14 + 11) // 4)

    def test_chat_not_streaming(self):
        ans = self.chat(stream=False)
        self.assert_head(ans, "HTTP/1.1 200 OK", ["Content-Type", "Date", "Content-Length"],
                         GO_JSON)
        self.assertEqual(int(ans.header("Content-Length")), len(ans.body))
        self.check_done(ans.body.decode(), True, "stop", 2, 5, " w0 w1 w2 w3 w4")

    def test_generate_stream_and_not(self):
        self.check_stream(self.generate(system="be brief", suffix="!"), False, range(5), "stop",
                          (11 + 8 + 1) // 4)
        ans = self.generate(stream=False, raw=True)
        self.assertEqual(ans.header("Content-Type"), GO_JSON)
        self.check_done(ans.body.decode(), False, "stop", 2, 5, " w0 w1 w2 w3 w4")

    def test_num_predict_cuts_the_answer(self):
        ans = self.chat(options={"num_predict": 2, "temperature": 0})
        self.check_stream(ans, True, range(2), "length", 2)
        ans = self.generate(stream=False, options={"num_predict": 3})
        self.check_done(ans.body.decode(), False, "length", 2, 3, " w0 w1 w2")
        # As in vLLM, a limit equal to the answer's length is reached before
        # the end of the answer is: "length"; only a longer one lets it stop.
        ans = self.generate(stream=False, options={"num_predict": 5})
        self.check_done(ans.body.decode(), False, "length", 2, 5, " w0 w1 w2 w3 w4")
        ans = self.generate(stream=False, options={"num_predict": 6})
        self.check_done(ans.body.decode(), False, "stop", 2, 5, " w0 w1 w2 w3 w4")

    def test_continuation(self):
        msgs = [{"role": "user", "content": "hi"},
                {"role": "assistant", "content": " w0 w1"}]
        self.check_stream(self.chat(msgs), True, range(2, 5), "stop", (2 + 6) // 4)
        # Not the last message: an ordinary answer.
        msgs.append({"role": "user", "content": "go on"})
        self.check_stream(self.chat(msgs), True, range(5), "stop", (2 + 6 + 5) // 4)
        ans = self.generate("story: w0 w1 w2", stream=False)
        self.check_done(ans.body.decode(), False, "stop", 3, 2, " w3 w4")

    def test_load_answers(self):
        ans = self.generate("")
        self.assert_head(ans, "HTTP/1.1 200 OK", ["Content-Type", "Date", "Content-Length"],
                         GO_JSON)
        d = ans.json()
        self.assertRegex(d["created_at"], TIME_RE)
        self.assertEqual(ans.body.decode(),
                         '{"model":"llmsim-1","created_at":"%s","response":"","done":true,'
                         '"done_reason":"load"}' % d["created_at"])
        ans = ask(self.port, "POST", "/api/chat", {"model": "llmsim-1", "messages": []})
        d = ans.json()
        self.assertEqual(ans.body.decode(),
                         '{"model":"llmsim-1","created_at":"%s","message":{"role":"assistant",'
                         '"content":""},"done_reason":"load","done":true}' % d["created_at"])

    def test_errors(self):
        ans = ask(self.port, "POST", "/api/chat",
                  {"model": "nope", "messages": [{"role": "user", "content": "x"}]})
        self.assert_head(ans, "HTTP/1.1 404 Not Found", ["Content-Type", "Date", "Content-Length"],
                         GO_JSON)
        self.assertEqual(ans.body, b'{"error":"model \\"nope\\" not found, try pulling it first"}')
        ans = ask(self.port, "POST", "/api/generate", {"prompt": "x"})
        self.assertEqual((ans.status, ans.body), (400, b'{"error":"model is required"}'))
        ans = ask(self.port, "POST", "/api/chat", '{"model":"llmsim-1","messages":x}')
        self.assertEqual((ans.status, ans.body),
                         (400, b'{"error":"invalid character \'x\' looking for beginning of '
                               b'value"}'))
        ans = ask(self.port, "POST", "/api/chat", '{"model":"llmsim-1"')
        self.assertEqual((ans.status, ans.body), (400, b'{"error":"unexpected EOF"}'))
        ans = ask(self.port, "POST", "/api/chat", "")
        self.assertEqual((ans.status, ans.body), (400, b'{"error":"missing request body"}'))
        ans = ask(self.port, "POST", "/api/chat", {"model": "llmsim-1", "stream": "yes"})
        self.assertEqual(ans.json()["error"], "json: cannot unmarshal string into Go struct "
                                              "field ChatRequest.stream of type bool")
        # Go's encoding/json escapes <, > and & in the message.
        ans = ask(self.port, "POST", "/api/chat", {"model": "a<b>&"})
        self.assertIn(b'\\"a\\u003cb\\u003e\\u0026\\"', ans.body)

    def test_status_fault(self):
        before = self.stats()
        ans = self.chat(headers={"X-Sim-Fault": "status:503"})
        self.assert_head(ans, "HTTP/1.1 503 Service Unavailable",
                         ["Content-Type", "Retry-After", "Date", "Content-Length"], GO_JSON)
        self.assertEqual(ans.body, b'{"error":"llmsim injected fault: status 503"}')
        ans = ask(self.port, "POST", "/api/generate?sim_fault=status%3A418", "{}")
        self.assertEqual(ans.status, 418)
        self.assertEqual(ans.json(), {"error": "llmsim injected fault: status 418"})
        after = self.stats()
        self.assertEqual(after["faults"] - before["faults"], 2)
        self.assertEqual(after["requests"] - before["requests"], 2)

    def test_close_after_fault_mid_stream(self):
        before = self.stats()
        ans = self.chat(headers={"X-Sim-Fault": "close_after:3"})
        self.assertEqual(ans.status, 200)
        self.assertFalse(ans.complete)  # no terminating 0-chunk
        self.assertEqual([json.loads(ch)["message"]["content"] for ch in ans.chunks],
                         [" w0", " w1", " w2"])
        after = self.stats()
        self.assertEqual(after["faults"] - before["faults"], 1)
        self.assertEqual(after["completed"], before["completed"])
        self.assertEqual(after["aborted"], before["aborted"])

    def test_slow_headers_then_lines(self):
        t0 = time.monotonic()
        ans = self.generate(headers={"X-Sim-Fault": "slow_headers:40"})
        self.assertGreaterEqual(time.monotonic() - t0, 0.04)
        self.check_stream(ans, False, range(5), "stop", 2)

    def test_overrides(self):
        ans = self.chat(headers={"X-Sim-Tokens": "2"})
        self.check_stream(ans, True, range(2), "stop", 2)
        ans = self.generate(path="/api/generate?sim_tokens=3", stream=False)
        self.check_done(ans.body.decode(), False, "stop", 2, 3, " w0 w1 w2")
        ans = self.chat(headers={"X-Sim-Tokens": "zero"})
        self.assertEqual(ans.status, 400)
        self.assertEqual(ans.json(), {"error": "invalid x-sim-tokens value 'zero'"})

    def test_head_goes_with_first_line(self):
        # Go writes the head when the handler flushes its first line.
        c = Conn(self.port)
        try:
            body = json.dumps({"model": "llmsim-1", "prompt": "x"})
            t0 = time.monotonic()
            c.send(build_request("POST", "/api/generate", body,
                                 {"X-Sim-TTFT-Ms": "150", "X-Sim-Tokens": "1"}))
            first = c.s.recv(65536)
            waited = time.monotonic() - t0
            self.assertGreaterEqual(waited, 0.14)
            self.assertIn(b"\r\n\r\n", first)
            self.assertIn(b'"response":" w0"', first)
        finally:
            c.close()

    def test_tags_version_root(self):
        ans = ask(self.port, "GET", "/api/tags")
        self.assert_head(ans, "HTTP/1.1 200 OK", ["Content-Type", "Date", "Content-Length"],
                         GO_JSON)
        models = ans.json()["models"]
        self.assertEqual([m["name"] for m in models], ["llmsim-1", "other:latest", "third"])
        m = models[0]
        self.assertRegex(m["digest"], r"^[0-9a-f]{64}$")
        self.assertRegex(m["modified_at"], TIME_RE)
        self.assertEqual(
            ans.body.decode().split("},{")[0] + "}",
            '{"models":[{"name":"llmsim-1","model":"llmsim-1","modified_at":"%s",'
            '"size":4661224676,"digest":"%s","details":{"parent_model":"","format":"gguf",'
            '"family":"llama","families":["llama"],"parameter_size":"8.0B",'
            '"quantization_level":"Q4_0"}}' % (m["modified_at"], m["digest"]))
        self.assertEqual(len({x["digest"] for x in models}), 3)
        self.assertEqual(ask(self.port, "GET", "/api/tags").body, ans.body)

        ans = ask(self.port, "GET", "/api/version")
        self.assertEqual((ans.status, ans.header("Content-Type"), ans.body),
                         (200, GO_JSON, b'{"version":"0.5.7"}'))
        ans = ask(self.port, "GET", "/")
        self.assert_head(ans, "HTTP/1.1 200 OK", ["Content-Type", "Date", "Content-Length"],
                         "text/plain; charset=utf-8")
        self.assertEqual(ans.body, b"Ollama is running")
        # HEAD: the same head, no body (the next answer on the connection parses).
        c = Conn(self.port)
        try:
            c.send(build_request("HEAD", "/", None))
            h = read_answer(c, head_only=True)
            self.assertEqual((h.status, h.header("Content-Length")), (200, "17"))
            c.send(build_request("GET", "/api/version", None))
            self.assertEqual(read_answer(c).body, b'{"version":"0.5.7"}')
        finally:
            c.close()

    def test_ps_lists_models_that_served(self):
        self.generate(stream=False)
        ask(self.port, "POST", "/api/generate", {"model": "other", "prompt": "x",
                                                 "stream": False})
        ans = ask(self.port, "GET", "/api/ps")
        self.assertEqual(ans.header("Content-Type"), GO_JSON)
        models = ans.json()["models"]
        self.assertEqual([m["name"] for m in models], ["other:latest", "llmsim-1"])
        m = pairs(ans.body)[0][1][0]
        self.assertEqual([k for k, _ in m], ["name", "model", "size", "digest", "details",
                                             "expires_at", "size_vram"])
        p = models[0]
        self.assertEqual((p["size"], p["size_vram"]), (4661224676, 4661224676))
        self.assertRegex(p["expires_at"], TIME_RE)
        expires = calendar.timegm(time.strptime(p["expires_at"][:19], "%Y-%m-%dT%H:%M:%S"))
        self.assertAlmostEqual(expires - time.time(), 300, delta=5)

    def test_foreign_routes_are_404(self):
        for method, path in (("POST", "/v1/chat/completions"), ("POST", "/v1/completions"),
                             ("GET", "/v1/models"), ("GET", "/health"), ("GET", "/api/chat"),
                             ("POST", "/api/tags")):
            ans = ask(self.port, method, path, "{}" if method == "POST" else None)
            self.assert_head(ans, "HTTP/1.1 404 Not Found",
                             ["Content-Type", "Date", "Content-Length"], "text/plain")
            self.assertEqual(ans.body, b"404 page not found", path)

    def test_stats_and_metrics(self):
        ans = ask(self.port, "GET", "/stats")
        self.assertEqual(ans.status, 200)
        self.assertIn("peak", ans.json())
        ans = ask(self.port, "GET", "/metrics")
        self.assertIn(b'vllm:num_requests_running{model_name="llmsim-1"}', ans.body)
        self.assertIn(b'vllm:num_requests_waiting{model_name="other:latest"}', ans.body)


class OllamaQueueTest(SimTest):
    """The batch slots and FIFO queue: the second request waits, and its
    queue wait is its load_duration."""

    args = ("--api", "ollama", "--max-batch", "1", "--tokens", "3", "--ttft-ms", "100",
            "--itl-ms", "1")

    def test_second_request_queues(self):
        body = json.dumps({"model": "llmsim-1", "prompt": "hi", "stream": False})
        conns = [Conn(self.port) for _ in range(2)]
        try:
            for c in conns:
                c.send(build_request("POST", "/api/generate", body))
                wait_for(lambda: self.stats()["requests"] >= conns.index(c) + 1)
            st = self.stats()
            self.assertEqual((st["running"], st["waiting"], st["peak"]), (1, 1, 2))
            metrics = ask(self.port, "GET", "/metrics").body
            self.assertIn(b'vllm:num_requests_waiting{model_name="llmsim-1"} 1.0', metrics)
            first, second = (read_answer(c).json() for c in conns)
        finally:
            for c in conns:
                c.close()
        self.assertLess(first["load_duration"], 50000000)
        self.assertGreater(second["load_duration"], 80000000)
        self.assertEqual(second["eval_count"], 3)
        st = self.stats()
        self.assertEqual((st["running"], st["waiting"], st["completed"]), (0, 0, 2))


# --- TF Serving --------------------------------------------------------------

def status_body():
    return (b'{"model_version_status":[{"version":"1","state":"AVAILABLE","status":'
            b'{"error_code":"OK","error_message":""}}]}')


class TfServingTest(SimTest):
    args = ("--api", "tfserving", "--tokens", "4", "--ttft-ms", "5", "--itl-ms", "1")

    PREDICT = "/v1/models/llmsim-1:predict"

    def predict(self, body, headers=None, path=PREDICT):
        return ask(self.port, "POST", path, body, headers)

    def test_model_status(self):
        for path in ("/v1/models/llmsim-1", "/v1/models/llmsim-1/versions/1"):
            ans = ask(self.port, "GET", path)
            self.assert_head(ans, "HTTP/1.1 200 OK", ["Content-Type", "Date", "Content-Length"],
                             "application/json")
            self.assertEqual(ans.body, status_body())
        ans = ask(self.port, "GET", "/v1/models/nope")
        self.assertEqual((ans.status, ans.body),
                         (404, b'{"error":"Servable not found for request: Latest(nope)"}'))
        ans = ask(self.port, "GET", "/v1/models/llmsim-1/versions/2")
        self.assertEqual(ans.status, 404)
        self.assertEqual(ans.json()["error"],
                         "Servable not found for request: Specific(llmsim-1, 2)")

    def test_predict_rows(self):
        before = self.stats()
        ans = self.predict({"instances": ["hello there"]})
        self.assert_head(ans, "HTTP/1.1 200 OK", ["Content-Type", "Date", "Content-Length"],
                         "application/json")
        self.assertEqual(ans.body, b'{"predictions":[" w0 w1 w2 w3"]}')
        ans = self.predict({"signature_name": "serving_default",
                            "instances": [{"prompt": "a", "max_tokens": 2}, "b",
                                          {"text": "c", "max_tokens": 9, "temperature": 0.5}]})
        self.assertEqual(ans.body, b'{"predictions":[" w0 w1"," w0 w1 w2 w3"," w0 w1 w2 w3"]}')
        ans = self.predict({"instances": ["x"]}, path="/v1/models/llmsim-1/versions/1:predict")
        self.assertEqual(ans.body, b'{"predictions":[" w0 w1 w2 w3"]}')
        after = self.stats()
        self.assertEqual(after["requests"] - before["requests"], 3)
        self.assertEqual(after["completed"] - before["completed"], 3)
        self.assertEqual(after["tokens"] - before["tokens"], 4 + (2 + 4 + 4) + 4)

    def test_predict_columns(self):
        for body, want in (({"inputs": "x"}, b'{"outputs":[" w0 w1 w2 w3"]}'),
                           ({"inputs": ["x", "y"]}, b'{"outputs":[" w0 w1 w2 w3"," w0 w1 w2 w3"]}'),
                           ({"inputs": {"prompt": ["x", "y"], "max_tokens": [1, 3]}},
                            b'{"outputs":[" w0"," w0 w1 w2"]}'),
                           ({"inputs": {"prompt": "x", "max_tokens": 2}},
                            b'{"outputs":[" w0 w1"]}')):
            ans = self.predict(body)
            self.assertEqual((ans.status, ans.body), (200, want), body)

    def test_predict_waits_for_the_whole_answer(self):
        t0 = time.monotonic()
        ans = self.predict({"instances": ["x"]}, {"X-Sim-TTFT-Ms": "100", "X-Sim-ITL-Ms": "20"})
        # TTFT + 3 gaps: no streaming, the answer comes at the end.
        self.assertGreaterEqual(time.monotonic() - t0, 0.16)
        self.assertEqual(ans.body, b'{"predictions":[" w0 w1 w2 w3"]}')

    def test_overrides(self):
        ans = self.predict({"instances": ["x"]}, path=self.PREDICT + "?sim_tokens=2")
        self.assertEqual(ans.body, b'{"predictions":[" w0 w1"]}')
        ans = self.predict({"inputs": ["x"]}, {"X-Sim-Tokens": "1"})
        self.assertEqual(ans.body, b'{"outputs":[" w0"]}')

    def test_bad_bodies(self):
        for body, status, msg in (
                ("nope", 400, None),
                ({}, 400, "Missing 'instances' or 'inputs' key"),
                ({"instances": []}, 400, "Expecting 'instances' to be a non-empty list"),
                ({"instances": ["a"], "inputs": ["b"]}, 400,
                 "Not allowed to specify both 'instances' and 'inputs' keys"),
                ({"instances": [{"a": "x", "b": "y"}]}, 400,
                 "instance 0 has more than one string input"),
                ({"signature_name": "foo", "instances": ["a"]}, 400,
                 'Serving signature name: "foo" not found in signature def')):
            ans = self.predict(body)
            self.assertEqual(ans.status, status, body)
            self.assertEqual(ans.header("Content-Type"), "application/json")
            self.assertEqual(keys(ans.body), ["error"])
            if msg:
                self.assertEqual(ans.json()["error"], msg)
            else:
                self.assertTrue(ans.json()["error"].startswith("JSON Parse error: "))
        ans = self.predict({"instances": ["a"]}, path="/v1/models/nope:predict")
        self.assertEqual((ans.status, ans.body),
                         (404, b'{"error":"Servable not found for request: Latest(nope)"}'))

    def test_faults(self):
        before = self.stats()
        ans = self.predict({"instances": ["x"]}, {"X-Sim-Fault": "status:503"})
        self.assert_head(ans, "HTTP/1.1 503 Service Unavailable",
                         ["Content-Type", "Retry-After", "Date", "Content-Length"],
                         "application/json")
        self.assertEqual(ans.body, b'{"error":"llmsim injected fault: status 503"}')
        # close_after on an answer that is not streamed: nothing, then a close.
        for fault in ("close_after:2", "close"):
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                s.sendall(build_request("POST", self.PREDICT, '{"instances":["x","y"]}',
                                        {"X-Sim-Fault": fault}))
                self.assertEqual(s.recv(65536), b"")
        # A client that leaves a predict of several instances is an abort.
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(build_request("POST", self.PREDICT, '{"instances":["x","y"]}',
                                    {"X-Sim-TTFT-Ms": "2000"}))
            wait_for(lambda: self.stats()["running"] == 1)
        wait_for(lambda: self.stats()["aborted"] == before["aborted"] + 1)
        after = self.stats()
        self.assertEqual(after["faults"] - before["faults"], 3)
        self.assertEqual(after["requests"] - before["requests"], 4)
        self.assertEqual(after["completed"], before["completed"])

    def test_foreign_routes_are_404(self):
        for method, path in (("GET", "/health"), ("POST", "/v1/chat/completions"),
                             ("POST", "/v1/completions"), ("GET", "/v1/models"),
                             ("GET", "/v1/models/llmsim-1:predict"),
                             ("POST", "/v1/models/llmsim-1"), ("POST", "/api/chat")):
            ans = ask(self.port, method, path, "{}" if method == "POST" else None)
            self.assert_head(ans, "HTTP/1.1 404 Not Found",
                             ["Content-Type", "Date", "Content-Length"], "application/json")
            self.assertEqual(ans.json(), {"error": "Malformed request: %s %s" % (method, path)})

    def test_stats_and_metrics(self):
        self.assertEqual(ask(self.port, "GET", "/stats").status, 200)
        ans = ask(self.port, "GET", "/metrics")
        self.assertIn(b'vllm:num_requests_running{model_name="llmsim-1"} 0.0', ans.body)


# --- the default ---------------------------------------------------------------

class OpenAIDefaultTest(SimTest):
    args = ("--tokens", "2", "--ttft-ms", "1", "--itl-ms", "1")

    def test_openai_routes_and_no_others(self):
        body = {"model": "llmsim-1", "messages": [{"role": "user", "content": "hi"}]}
        ans = ask(self.port, "POST", "/v1/chat/completions", body)
        self.assertEqual(ans.names(), ["date", "server", "content-length", "content-type"])
        self.assertEqual(ans.json()["choices"][0]["message"]["content"], " w0 w1")
        for method, path in (("POST", "/api/chat"), ("GET", "/api/tags")):
            ans = ask(self.port, method, path, "{}" if method == "POST" else None)
            self.assertEqual((ans.status, ans.body), (404, b'{"detail":"Not Found"}'))

    def test_bad_api_flag(self):
        p = subprocess.run([LLMSIM, "--api", "grpc"], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--api wants openai, ollama or tfserving", p.stderr)


if __name__ == "__main__":
    unittest.main()
