"""Bad input: every malformed or unacceptable request gets its documented
status and OpenAI-shaped error body (dataplane/api_error.c), the connection
is kept or closed as the error demands, nothing reaches the backend, the
counters count it exactly once, and sluice keeps serving.

Where an expectation comes from:
  - statuses, `type` and `code` strings: dataplane/api_error.c, with the
    mapping of parser errors in dataplane/h1_parser.c (err_table);
  - strictness and smuggling rules: dataplane/h1_parser.h, RFC 9112 §2.2,
    §3.2, §5.1, §5.2, §6.1, §6.3, §7.1;
  - "an error found while reading the request: answer, then close" and the
    graceful close (shut the write side, read until the client closes):
    dataplane/client.c;
  - timeouts: the [http] keys in shared/config.h and `sluice --help-config`.
"""

import json
import random
import re
import select
import socket
import struct
import threading
import time
import unittest

from harness import (CHAT, Conn, Response, SluiceTest, build_request, chat_body, sse_events,
                     tokens_of,
                     wait_for)

MAX_BODY = 64 * 1024
MAX_LINE = 1024
MAX_HEAD = 4096
MAX_HEADERS = 20

ERROR_KEYS = {"message", "type", "param", "code"}
INVALID = "invalid_request_error"
SERVER = "server_error"

GOOD_BODY = json.dumps({"model": "llmsim-1", "messages": [{"role": "user", "content": "hi"}],
                        "stream": True})
# A pipelined request that must never be answered after a framing error.
SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: smuggled\r\n\r\n"


def post_head(path=CHAT, extra=b"", version=b"HTTP/1.1", host=True):
    h = b"POST " + path.encode() + b" " + version + b"\r\n"
    if host:
        h += b"Host: sluice\r\n"
    return h + b"Content-Type: application/json\r\n" + extra


def chat_body_of_size(n):
    """A valid streaming chat body of exactly n bytes."""
    base = {"model": "llmsim-1", "messages": [{"role": "user", "content": ""}], "stream": True}
    pad = n - len(json.dumps(base))
    assert pad >= 0
    base["messages"][0]["content"] = "x" * pad
    b = json.dumps(base).encode()
    assert len(b) == n
    return b


def read_final_response(c):
    """The first response on c, which must be final (no 100 Continue before
    an error) and framed by Content-Length, as every error response is."""
    status, headers = c.read_head()
    assert status >= 200, "interim %d response before the error" % status
    assert "content-length" in headers, headers
    return Response(status, headers, c._exact(int(headers["content-length"])), b"")


def chunked(body, size):
    out = b""
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
    return out + b"0\r\n\r\n"


class ErrorAsserts:
    """Mixed into test classes that have self.sluice / self.sim."""

    # -- counters: every test says what it sent, checked exactly at its end --

    def setUp(self):
        self.m0 = self.sluice.metrics()
        self.sim0 = self.sim.stats()["requests"]
        self.expect = {}
        self.expect_backend = 0

    def count(self, status, n=1):
        self.expect[str(status)] = self.expect.get(str(status), 0) + n

    def codes_delta(self):
        m = self.sluice.metrics()
        out = {}
        for k, v in m.items():
            mm = re.match(r'sluice_requests_total\{code="([^"]+)"\}$', k)
            if mm:
                d = v - self.m0.get(k, 0)
                if d:
                    out[mm.group(1)] = int(d)
        return out

    def check_counters(self):
        """sluice_requests_total{code} rose by exactly what this test sent,
        and the backend saw exactly the good completions."""
        want = {k: v for k, v in self.expect.items() if v}

        def reached():
            d = self.codes_delta()
            return all(d.get(k, 0) >= v for k, v in want.items())
        try:
            wait_for(reached, 20, "request counters")
        except AssertionError:
            pass  # the exact comparison below says what is wrong
        self.assertEqual(self.codes_delta(), want, "sluice_requests_total deltas")
        self.assertEqual(self.sim.stats()["requests"] - self.sim0, self.expect_backend,
                         "requests that reached the backend")

    # -- responses ----------------------------------------------------------

    def assert_error(self, r, status, code, etype=INVALID, reqid=None):
        self.assertEqual(r.status, status, r.body)
        self.assertTrue((r.header("content-type") or "").startswith("application/json"),
                        r.headers)
        self.assertTrue(r.header("x-request-id"), "X-Request-Id missing: %r" % r.headers)
        if reqid is not None:
            self.assertEqual(r.header("x-request-id"), reqid)
        self.assertEqual(int(r.header("content-length")), len(r.body))
        obj = json.loads(r.body)
        self.assertEqual(set(obj), {"error"}, obj)
        err = obj["error"]
        self.assertEqual(set(err), ERROR_KEYS, obj)
        self.assertIsNone(err["param"])
        self.assertIsInstance(err["message"], str)
        self.assertTrue(err["message"])
        self.assertEqual((err["type"], err["code"]), (etype, code), obj)
        return err

    def assert_closed(self, c, timeout=15):
        """Nothing more comes (no answer to a pipelined request) and the
        peer closes cleanly: reading returns EOF."""
        extra = c.buf
        c.buf = b""
        c.s.settimeout(timeout)
        while True:
            try:
                b = c.s.recv(65536)
            except socket.timeout:
                self.fail("connection still open %ds after the error response" % timeout)
            if not b:
                break
            extra += b
        self.assertEqual(extra, b"", "bytes after the error response")

    def good_on(self, c, tokens=2):
        """A good streaming request on connection c."""
        r = c.request("POST", CHAT, chat_body(), {"X-Sim-Tokens": str(tokens)})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(tokens_of(sse_events(r.body)), [" w%d" % i for i in range(tokens)])
        self.assertEqual(sse_events(r.body)[-1]["data"], ["[DONE]"])
        self.count(200)
        self.expect_backend += 1
        return r

    def good_new(self, tokens=3):
        """A good streaming request on a new connection."""
        c = Conn(self.sluice.port)
        try:
            self.good_on(c, tokens)
        finally:
            c.close()

    def send_bad(self, data, status, code, etype=INVALID, keep=False, reqid=None, check=None):
        """Sends raw bytes on a new connection and checks the error answer.
        keep: the connection must stay usable (the next request on it works);
        else it must close after the response."""
        c = Conn(self.sluice.port)
        try:
            c.send(data)
            r = read_final_response(c)
            err = self.assert_error(r, status, code, etype, reqid)
            if check:
                check(r)
            self.count(status)
            if keep:
                self.assertNotEqual((r.header("connection") or "").lower(), "close", r.headers)
                self.good_on(c)
            else:
                self.assertEqual((r.header("connection") or "").lower(), "close", r.headers)
                self.assert_closed(c)
        finally:
            c.close()
        self.good_new()
        return err


class ErrorsTest(ErrorAsserts, SluiceTest):
    sluice_conf = {"http": {"max_body_size": str(MAX_BODY), "max_request_line": str(MAX_LINE),
                            "max_header_bytes": str(MAX_HEAD), "max_headers": str(MAX_HEADERS)}}

    # ---- 400 on the JSON body: well framed, so the connection stays -------

    JSON_CASES = [
        # (path, body, code)
        (CHAT, '{"model": "llmsim-1", "messages": [', "invalid_json"),
        (CHAT, "not json at all", "invalid_json"),
        (CHAT, "", "invalid_json"),
        (CHAT, '[{"model": "llmsim-1"}]', "invalid_json"),
        (CHAT, '"a string"', "invalid_json"),
        (CHAT, '{"model": "a", "model": "b", "messages": [{"role": "user", "content": "x"}]}',
         "invalid_json"),
        (CHAT, '{"messages": [{"role": "user", "content": "x"}]}', "missing_field"),
        (CHAT, '{"model": "", "messages": [{"role": "user", "content": "x"}]}', "invalid_field"),
        (CHAT, '{"model": 7, "messages": [{"role": "user", "content": "x"}]}', "invalid_field"),
        (CHAT, '{"model": null, "messages": [{"role": "user", "content": "x"}]}',
         "invalid_field"),
        (CHAT, '{"model": ["llmsim-1"], "messages": [{"role": "user", "content": "x"}]}',
         "invalid_field"),
        (CHAT, '{"model": "llmsim-1"}', "missing_field"),
        (CHAT, '{"model": "llmsim-1", "messages": []}', "invalid_field"),
        (CHAT, '{"model": "llmsim-1", "messages": "hello"}', "invalid_field"),
        (CHAT, '{"model": "llmsim-1", "messages": [{"role": "user", "content": "x"}], '
               '"stream": "yes"}', "invalid_field"),
        (CHAT, '{"model": "llmsim-1", "messages": [{"role": "user", "content": "x"}], '
               '"stream": 1}', "invalid_field"),
        ("/v1/completions", '{"model": "llmsim-1"}', "missing_field"),
        ("/v1/completions", '{"model": "llmsim-1", "messages": [{"role": "user"}]}',
         "missing_field"),
        ("/v1/completions", '{"model": "llmsim-1", "prompt": 5}', "invalid_field"),
        ("/v1/completions", '{"prompt": "x"}', "missing_field"),
        ("/v1/completions", '{"model": "llmsim-1", "prompt": "x", "stream": "true"}',
         "invalid_field"),
    ]

    def test_bad_json_400_keeps_connection(self):
        for i, (path, body, code) in enumerate(self.JSON_CASES):
            with self.subTest(path=path, body=body):
                rid = "bad-json-%d" % i
                data = build_request("POST", path, body, {"X-Request-Id": rid})
                self.send_bad(data, 400, code, keep=True, reqid=rid)
        self.check_counters()

    def test_bad_json_in_chunked_body_keeps_connection(self):
        body = b'{"model": "llmsim-1", "messages": "nope"}'
        data = post_head(extra=b"Transfer-Encoding: chunked\r\n\r\n") + chunked(body, 7)
        self.send_bad(data, 400, "invalid_field", keep=True)
        self.check_counters()

    def test_null_stream_is_accepted(self):
        # route.h: `stream` a boolean when present; route.c lets null through
        c = Conn(self.sluice.port)
        body = json.dumps({"model": "llmsim-1", "messages": [{"role": "user", "content": "x"}],
                           "stream": None})
        r = c.request("POST", CHAT, body, {"X-Sim-Tokens": "2"})
        c.close()
        self.assertEqual(r.status, 200, r.body)
        self.count(200)
        self.expect_backend += 1
        self.check_counters()

    # ---- 404 / 405 ----------------------------------------------------------

    def test_404_unknown_path(self):
        for path in ("/nope", "/v1/chat", "/v1/chat/completionsX", "/v2/chat/completions",
                     "/v1/models/llmsim-1"):
            with self.subTest(path=path):
                self.send_bad(build_request("GET", path), 404, "not_found", keep=True)
        self.check_counters()

    def test_404_with_body_discards_body_and_keeps_connection(self):
        # The body must be read and dropped, not taken for the next request.
        body = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        self.send_bad(build_request("POST", "/nope", body), 404, "not_found", keep=True)
        body = chunked(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 5)
        data = b"POST /nope HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body
        self.send_bad(data, 404, "not_found", keep=True)
        self.check_counters()

    def test_404_with_expect_continue_is_refused_before_the_body(self):
        # client.c: a request already refused gets its answer instead of
        # "100 Continue" (RFC 9110 §10.1.1), and the connection closes.
        data = (b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                b"Expect: 100-continue\r\n\r\n")
        self.send_bad(data, 404, "not_found")
        self.check_counters()

    def test_405_with_allow(self):
        cases = [("GET", CHAT, "POST"), ("PUT", CHAT, "POST"),
                 ("DELETE", "/v1/completions", "POST"),
                 ("GET", "/v1/completions", "POST"), ("POST", "/v1/models", "GET"),
                 ("DELETE", "/v1/models", "GET"), ("POST", "/healthz", "GET")]
        for method, path, allow in cases:
            with self.subTest(method=method, path=path):
                def check(r, allow=allow):
                    self.assertEqual(r.header("allow"), allow)
                self.send_bad(build_request(method, path), 405, "method_not_allowed", keep=True,
                              check=check)
        # with a body, which is read and dropped
        self.send_bad(build_request("POST", "/v1/models", GOOD_BODY), 405, "method_not_allowed",
                      keep=True, check=lambda r: self.assertEqual(r.header("allow"), "GET"))
        self.check_counters()

    # ---- 413 ----------------------------------------------------------------

    def test_413_content_length_over_max(self):
        # head only: refused before the body
        self.send_bad(post_head(extra=b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1)), 413,
                      "body_too_large")
        # head and the whole body
        body = chat_body_of_size(MAX_BODY + 1)
        self.send_bad(post_head(extra=b"Content-Length: %d\r\n\r\n" % len(body)) + body, 413,
                      "body_too_large")
        # far over, and with Expect: no 100 Continue first
        self.send_bad(post_head(extra=b"Content-Length: 1000000000\r\n"
                                      b"Expect: 100-continue\r\n\r\n"),
                      413, "body_too_large")
        self.check_counters()

    def test_body_of_exactly_max_is_accepted(self):
        body = chat_body_of_size(MAX_BODY)
        c = Conn(self.sluice.port)
        c.send(post_head(extra=b"Content-Length: %d\r\nX-Sim-Tokens: 2\r\n\r\n" % len(body)) + body)
        r = c.read_response()
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(len(tokens_of(sse_events(r.body))), 2)
        self.count(200)
        self.expect_backend += 1
        c.send(post_head(extra=b"Transfer-Encoding: chunked\r\nX-Sim-Tokens: 2\r\n\r\n")
               + chunked(body, 10000))
        r = c.read_response()
        c.close()
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(len(tokens_of(sse_events(r.body))), 2)
        self.count(200)
        self.expect_backend += 1
        self.check_counters()

    def test_413_chunked_body_growing_over_max(self):
        body = chat_body_of_size(MAX_BODY + 1)
        data = post_head(extra=b"Transfer-Encoding: chunked\r\n\r\n") + chunked(body, 16384)
        self.send_bad(data, 413, "body_too_large")
        # many small chunks, far over
        data = (post_head(extra=b"Transfer-Encoding: chunked\r\n\r\n")
                + chunked(b"x" * (MAX_BODY * 2), 1000))
        self.send_bad(data, 413, "body_too_large")
        self.check_counters()

    # ---- 414 / 431 ----------------------------------------------------------

    def test_414_request_line_over_max(self):
        def line(n):  # a request line of n bytes including CRLF
            fixed = len("GET / HTTP/1.1\r\n")
            return b"GET /" + b"a" * (n - fixed) + b" HTTP/1.1\r\n"
        self.assertEqual(len(line(MAX_LINE)), MAX_LINE)
        # exactly max_request_line: fine (an unknown path)
        self.send_bad(line(MAX_LINE) + b"Host: x\r\n\r\n", 404, "not_found", keep=True)
        self.send_bad(line(MAX_LINE + 1) + b"Host: x\r\n\r\n", 414, "uri_too_long")
        self.send_bad(line(MAX_LINE * 8) + b"Host: x\r\n\r\n", 414, "uri_too_long")
        # no line end at all yet
        self.send_bad(b"GET /" + b"a" * (MAX_LINE * 2), 414, "uri_too_long")
        self.check_counters()

    def test_431_head_over_max_header_bytes(self):
        def head(total):
            start = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: "
            pad = total - len(start) - len(b"\r\n\r\n")
            return start + b"p" * pad + b"\r\n\r\n"
        self.assertEqual(len(head(MAX_HEAD)), MAX_HEAD)
        c = Conn(self.sluice.port)
        r = c.request("GET", "/healthz", headers={"X-Pad": "p" * (MAX_HEAD - 60)})
        self.assertEqual(r.status, 200, r.body)
        c.send(head(MAX_HEAD))
        r = c.read_response()
        self.assertEqual(r.status, 200, r.body)
        c.close()
        self.count(200, 2)
        self.send_bad(head(MAX_HEAD + 1), 431, "headers_too_large")
        # many fields that together are too large
        fields = b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 300) for i in range(15))
        self.send_bad(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n", 431,
                      "headers_too_large")
        # a head that never ends
        self.send_bad(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * (MAX_HEAD * 2), 431,
                      "headers_too_large")
        self.check_counters()

    def test_431_too_many_fields(self):
        def head(n):  # n fields, Host included
            return (b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                    + b"".join(b"X-H%d: %d\r\n" % (i, i) for i in range(n - 1)) + b"\r\n")
        c = Conn(self.sluice.port)
        c.send(head(MAX_HEADERS))
        r = c.read_response()
        c.close()
        self.assertEqual(r.status, 200, r.body)
        self.count(200)
        self.send_bad(head(MAX_HEADERS + 1), 431, "headers_too_large")
        self.send_bad(head(MAX_HEADERS * 5), 431, "headers_too_large")
        self.check_counters()

    # ---- 400 / 501 / 505: framing and smuggling; always closes -------------

    FRAMING_CASES = [
        # (name, bytes, status, code)
        ("CL and TE",
         post_head(extra=b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
         400, "bad_request"),
        ("TE and CL",
         post_head(extra=b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"),
         400, "bad_request"),
        ("two differing CL",
         post_head(extra=b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
         400, "bad_request"),
        ("CL list differing",
         post_head(extra=b"Content-Length: 5, 6\r\n\r\nhello!"), 400, "bad_request"),
        ("CL +5", post_head(extra=b"Content-Length: +5\r\n\r\nhello"), 400, "bad_request"),
        ("CL -1", post_head(extra=b"Content-Length: -1\r\n\r\n"), 400, "bad_request"),
        ("CL hex", post_head(extra=b"Content-Length: 0x5\r\n\r\nhello"), 400, "bad_request"),
        ("CL empty", post_head(extra=b"Content-Length: \r\n\r\n"), 400, "bad_request"),
        ("CL 5 5", post_head(extra=b"Content-Length: 5 5\r\n\r\nhello"), 400, "bad_request"),
        ("CL overflow", post_head(extra=b"Content-Length: 99999999999999999999999\r\n\r\n"),
         400, "bad_request"),
        ("TE chunked, gzip",
         post_head(extra=b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"), 400,
         "bad_request"),
        ("TE chunked twice",
         post_head(extra=b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"0\r\n\r\n"), 400, "bad_request"),
        ("TE chunked, chunked",
         post_head(extra=b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"), 400,
         "bad_request"),
        ("TE in HTTP/1.0",
         post_head(version=b"HTTP/1.0", extra=b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
         400, "bad_request"),
        ("TE gzip", post_head(extra=b"Transfer-Encoding: gzip\r\n\r\n"), 501, "not_implemented"),
        ("TE gzip, chunked",
         post_head(extra=b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), 501,
         "not_implemented"),
        ("obs-fold",
         b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Foo: a\r\n b\r\n\r\n", 400, "bad_request"),
        ("obs-fold tab",
         b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Foo: a\r\n\tb\r\n\r\n", 400, "bad_request"),
        ("obs-fold on CL",
         post_head(extra=b"Content-Length:\r\n 5\r\n\r\nhello"), 400, "bad_request"),
        ("bare LF everywhere", b"GET /healthz HTTP/1.1\nHost: x\n\n", 400, "bad_request"),
        ("bare LF request line", b"GET /healthz HTTP/1.1\nHost: x\r\n\r\n", 400, "bad_request"),
        ("bare LF field", b"GET /healthz HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", 400,
         "bad_request"),
        ("bare LF end of head", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\n", 400, "bad_request"),
        ("leading bare LF", b"\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
        ("space before colon", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Foo : bar\r\n\r\n", 400,
         "bad_request"),
        ("space before colon on CL",
         post_head(extra=b"Content-Length : 5\r\n\r\nhello"), 400, "bad_request"),
        ("tab before colon", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Foo\t: bar\r\n\r\n", 400,
         "bad_request"),
        ("NUL in value", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Foo: a\x00b\r\n\r\n", 400,
         "bad_request"),
        ("CR in value", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Foo: a\rb\r\n\r\n", 400,
         "bad_request"),
        ("DEL in value", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Foo: a\x7fb\r\n\r\n", 400,
         "bad_request"),
        ("bad field name", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX(Foo): a\r\n\r\n", 400,
         "bad_request"),
        ("empty field name", b"GET /healthz HTTP/1.1\r\nHost: x\r\n: a\r\n\r\n", 400,
         "bad_request"),
        ("missing Host", b"GET /healthz HTTP/1.1\r\nX-A: b\r\n\r\n", 400, "bad_request"),
        ("missing Host POST", post_head(host=False, extra=b"Content-Length: 2\r\n\r\n{}"), 400,
         "bad_request"),
        ("two Host", b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "bad_request"),
        ("two equal Host", b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400,
         "bad_request"),
        ("Host with space", b"GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "bad_request"),
        ("bad chunk size",
         post_head(extra=b"Transfer-Encoding: chunked\r\n\r\n") + b"zz\r\nhello\r\n0\r\n\r\n",
         400, "bad_request"),
        ("empty chunk size",
         post_head(extra=b"Transfer-Encoding: chunked\r\n\r\n") + b"\r\nhello\r\n0\r\n\r\n",
         400, "bad_request"),
        ("negative chunk size",
         post_head(extra=b"Transfer-Encoding: chunked\r\n\r\n") + b"-5\r\nhello\r\n0\r\n\r\n",
         400, "bad_request"),
        ("chunk size too long",
         post_head(extra=b"Transfer-Encoding: chunked\r\n\r\n") + b"1" + b"0" * 17
         + b"\r\nhello\r\n0\r\n\r\n", 400, "bad_request"),
        ("chunk data without CRLF",
         post_head(extra=b"Transfer-Encoding: chunked\r\n\r\n") + b"5\r\nhelloXX\r\n0\r\n\r\n",
         400, "bad_request"),
        ("chunk data with bare LF",
         post_head(extra=b"Transfer-Encoding: chunked\r\n\r\n") + b"5\r\nhello\n0\r\n\r\n",
         400, "bad_request"),
        ("chunk size with bare LF",
         post_head(extra=b"Transfer-Encoding: chunked\r\n\r\n") + b"5\nhello\r\n0\r\n\r\n",
         400, "bad_request"),
        ("bad method", b"G@T /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
        ("bad target", b"GET healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
        ("space in target", b"GET /health z HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
        ("two spaces", b"GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
        ("no version", b"GET /healthz\r\nHost: x\r\n\r\n", 400, "bad_request"),
        ("lowercase version", b"GET /healthz http/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
        ("HTTP/2.0", b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505,
         "http_version_not_supported"),
        ("HTTP/3.0", b"GET /healthz HTTP/3.0\r\nHost: x\r\n\r\n", 505,
         "http_version_not_supported"),
        ("HTTP/2.0 POST", post_head(version=b"HTTP/2.0", extra=b"Content-Length: 2\r\n\r\n{}"),
         505, "http_version_not_supported"),
    ]

    def test_framing_errors_answer_and_close(self):
        for name, data, status, code in self.FRAMING_CASES:
            with self.subTest(case=name):
                # A well-formed request pipelined behind the bad one must never
                # be answered: after a framing error there is no boundary.
                self.send_bad(data + SMUGGLED, status, code)
        self.check_counters()

    def test_framing_errors_split_into_single_bytes(self):
        # The verdict must not depend on how the bytes arrive.
        for name, data, status, code in self.FRAMING_CASES[::4]:
            with self.subTest(case=name):
                c = Conn(self.sluice.port)
                try:
                    for i in range(len(data)):
                        try:
                            c.send(data[i:i + 1])
                        except (BrokenPipeError, ConnectionResetError):
                            break
                        # stop sending once sluice has answered
                        if select.select([c.s], [], [], 0)[0]:
                            break
                    r = c.read_response()
                    self.assert_error(r, status, code)
                    self.count(status)
                    self.assert_closed(c)
                finally:
                    c.close()
        self.good_new()
        self.check_counters()

    def test_bad_chunk_after_valid_chunks(self):
        body = GOOD_BODY.encode()
        data = (post_head(extra=b"Transfer-Encoding: chunked\r\n\r\n")
                + b"%x\r\n" % 10 + body[:10] + b"\r\n" + b"q\r\n")
        self.send_bad(data + SMUGGLED, 400, "bad_request")
        self.check_counters()

    def test_smuggled_request_in_body_is_not_answered(self):
        # CL.TE and TE.CL: whichever way the body is read, sluice refuses both
        # framings and the hidden request never gets an answer.
        hidden = (b"POST " + CHAT.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                  % len(GOOD_BODY) + GOOD_BODY.encode())
        data = post_head(extra=b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                         % (5 + len(hidden))) + hidden
        self.send_bad(data, 400, "bad_request")
        data = post_head(extra=b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
                         + b"%x\r\n" % len(hidden) + hidden + b"\r\n0\r\n\r\n")
        self.send_bad(data, 400, "bad_request")
        self.check_counters()

    # ---- garbage, silence, floods ------------------------------------------

    def test_random_binary_gets_400_and_close(self):
        rng = random.Random(20240917)
        inputs = [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + rng.randbytes(500)]  # TLS hello
        for n in (1, 16, 300, 3000, 20000):
            inputs.append(bytes([0x80 | rng.randrange(128)]) + rng.randbytes(n))
        inputs.append(b"\x00" * 64)
        inputs.append(b"\xff\xfe\xfd")
        for data in inputs:
            with self.subTest(first=data[:4], n=len(data)):
                self.send_bad(data, 400, "bad_request")
        self.check_counters()

    def test_many_silent_connections(self):
        """Thousands of connections that open and close without a byte (some
        with a reset) leave sluice serving, count no request and leak no
        connection."""
        rng = random.Random(7)
        total = 0
        for _ in range(20):
            socks = []
            for _ in range(100):
                s = socket.create_connection(("127.0.0.1", self.sluice.port), timeout=15)
                socks.append(s)
            rng.shuffle(socks)
            for i, s in enumerate(socks):
                if i % 3 == 0:  # RST instead of FIN
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            total += len(socks)
        self.assertEqual(total, 2000)
        wait_for(lambda: self.sluice.metrics()["sluice_connections_active"] == 0, 60,
                 "every silent connection closed")
        self.assertEqual(self.codes_delta(), {})
        for _ in range(4):
            self.good_new()
        self.check_counters()

    def test_closed_error_connections_do_not_touch_new_ones(self):
        """A client that reads its error response and closes at once, while
        new connections keep arriving: the graceful close of the old
        connection (shutdown of the write side, client.c begin_linger) must
        never reach a new connection, which gets its whole response."""
        bad = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Foo : bar\r\n\r\n"
        failures = []
        done = []

        def loop():
            for i in range(1000):
                conns = []
                try:
                    a = Conn(self.sluice.port)
                    conns.append(a)
                    a.send(bad)
                    r = a.read_response()
                    a.close()
                    if r.status != 400:
                        failures.append("bad request got %d" % r.status)
                    b = Conn(self.sluice.port)
                    conns.append(b)
                    b.send(build_request("GET", "/healthz", headers={"X-Request-Id": "n%d" % i}))
                    r = b.read_response()
                    if r.status != 200 or r.header("x-request-id") != "n%d" % i:
                        failures.append("good request got %d %r" % (r.status, r.headers))
                    done.append(1)
                except (EOFError, ConnectionResetError, BrokenPipeError) as e:
                    failures.append("iteration %d (%s connection): %r"
                                    % (i, "new" if len(conns) == 2 else "error", e))
                    return
                finally:
                    for x in conns:
                        x.close()
        threads = [threading.Thread(target=loop) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
            self.assertFalse(t.is_alive(), "client hung")
        self.assertEqual(failures, [])
        self.count(400, len(done))
        self.count(200, len(done))
        self.check_counters()

    def test_parallel_bad_and_good(self):
        """Bad requests on many connections at once, interleaved with good
        streams: every good stream is whole, every bad one answered."""
        bad = [d for _, d, st, _ in self.FRAMING_CASES if st == 400][:12]
        errors = []
        good_done = []

        def bad_client(data):
            try:
                for _ in range(3):
                    c = Conn(self.sluice.port)
                    c.send(data)
                    r = c.read_response()
                    c.close()
                    if r.status != 400:
                        errors.append(r.status)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        def good_client():
            try:
                c = Conn(self.sluice.port)
                for _ in range(3):
                    r = c.request("POST", CHAT, chat_body(), {"X-Sim-Tokens": "5"})
                    if tokens_of(sse_events(r.body)) != [" w%d" % i for i in range(5)]:
                        errors.append("bad stream %r" % r.body[:200])
                    good_done.append(1)
                c.close()
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        threads = [threading.Thread(target=bad_client, args=(d,)) for d in bad]
        threads += [threading.Thread(target=good_client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
            self.assertFalse(t.is_alive(), "client hung")
        self.assertEqual(errors, [])
        self.count(400, 3 * len(bad))
        self.count(200, len(good_done))
        self.expect_backend += len(good_done)
        self.check_counters()


class TimeoutTest(ErrorAsserts, SluiceTest):
    sluice_conf = {"http": {"header_timeout": "1s", "body_timeout": "1s"}}

    def test_incomplete_head_gets_408(self):
        for partial in (b"P", b"POST " + CHAT.encode() + b" HTTP/1.1\r\nHost: x\r\n",
                        post_head(extra=b"Content-Length: 10\r\n")):
            with self.subTest(partial=partial):
                self.send_bad(partial, 408, "request_timeout")
        self.check_counters()

    def test_trickled_head_gets_408(self):
        """header_timeout bounds the whole head: bytes that keep trickling in
        do not extend it (client.c, config help)."""
        head = build_request("GET", "/healthz", headers={"X-Pad": "p" * 200})
        c = Conn(self.sluice.port)
        try:
            answered = False
            for i in range(len(head) - 4):  # never complete
                try:
                    c.send(head[i:i + 1])
                except (BrokenPipeError, ConnectionResetError):
                    answered = True
                    break
                if select.select([c.s], [], [], 0.1)[0]:
                    answered = True
                    break
            self.assertTrue(answered, "no answer after %.1f s of trickling" % (0.1 * len(head)))
            r = c.read_response()
            self.assert_error(r, 408, "request_timeout")
            self.count(408)
            self.assert_closed(c)
        finally:
            c.close()
        self.good_new()
        self.check_counters()

    def test_stalled_body_gets_408(self):
        for data in (post_head(extra=b"Content-Length: 100\r\n\r\n") + b'{"model": ',
                     post_head(extra=b"Content-Length: 100\r\n\r\n"),
                     post_head(extra=b"Transfer-Encoding: chunked\r\n\r\n") + b"a\r\n{\"model\":",
                     post_head(extra=b"Transfer-Encoding: chunked\r\n\r\n")
                     + chunked(b'{"model": "x"}', 5)[:-5]):
            with self.subTest(data=data[-20:]):
                self.send_bad(data, 408, "request_timeout")
        self.check_counters()

    def test_silent_connection_closed_without_bytes(self):
        s = socket.create_connection(("127.0.0.1", self.sluice.port), timeout=20)
        try:
            try:
                got = s.recv(65536)
            except socket.timeout:
                self.fail("a silent connection was not closed")
            self.assertEqual(got, b"")
        finally:
            s.close()
        self.good_new()
        self.check_counters()  # in particular: no 408 counted

    def test_partial_second_request_gets_408(self):
        c = Conn(self.sluice.port)
        try:
            self.good_on(c)
            c.send(b"GET /healthz HTTP/1.1\r\nHo")
            r = c.read_response()
            self.assert_error(r, 408, "request_timeout")
            self.count(408)
            self.assert_closed(c)
        finally:
            c.close()
        self.good_new()
        self.check_counters()

    def test_idle_keepalive_outlives_header_timeout(self):
        """Between requests keepalive_timeout (75 s) applies, not
        header_timeout: an idle pause longer than 1 s is fine."""
        c = Conn(self.sluice.port)
        try:
            self.good_on(c)
            time.sleep(2.5)
            self.good_on(c)
        finally:
            c.close()
        self.check_counters()


class ShortHeaderTimeoutTest(ErrorAsserts, SluiceTest):
    """header_timeout is the time allowed to receive a whole head, counted
    from the connection's start: a client that sends its complete request at
    once must be served however short the timeout (within reason)."""
    sluice_conf = {"http": {"header_timeout": "250ms"}}
    workers = 1

    def test_request_sent_at_once_is_answered(self):
        failures = []
        for i in range(8):
            # Let the worker sit idle between connections (an idle worker
            # waits for completions up to a second at a time), so that the
            # connection arrives in the middle of such a wait.
            time.sleep(1.6)
            c = Conn(self.sluice.port)
            try:
                c.send(build_request("POST", CHAT, chat_body(), {"X-Sim-Tokens": "2"}))
                r = c.read_response()
                self.assertEqual(r.status, 200, r.body)
                self.assertEqual(tokens_of(sse_events(r.body)), [" w0", " w1"])
                self.count(200)
                self.expect_backend += 1
            except (EOFError, ConnectionResetError) as e:
                failures.append("connection %d: %r before any response byte" % (i, e))
            finally:
                c.close()
        self.assertEqual(failures, [], "complete requests dropped as if idle")
        self.check_counters()


class BackendDownTest(ErrorAsserts, SluiceTest):
    """The only backend is a port that refuses connections."""

    @classmethod
    def setUpClass(cls):
        # Bound but not listening: connect() is refused, and nobody else can
        # take the port while the class runs.
        cls.dead = socket.socket()
        cls.dead.bind(("127.0.0.1", 0))
        cls.sluice_conf = {"backend sim": {
            "url": "http://127.0.0.1:%d" % cls.dead.getsockname()[1]}}
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.dead.close()

    def check_502(self, r):
        ra = r.header("retry-after")
        self.assertIsNotNone(ra, r.headers)
        self.assertRegex(ra, r"^\d+$")

    def test_502_backend_unavailable(self):
        for stream in (True, False):
            with self.subTest(stream=stream):
                c = Conn(self.sluice.port)
                try:
                    for i in range(2):  # well framed: the connection stays
                        r = c.request("POST", CHAT, chat_body(stream),
                                      {"X-Request-Id": "down-%d" % i})
                        self.assert_error(r, 502, "backend_unavailable", SERVER, "down-%d" % i)
                        self.check_502(r)
                        self.count(502)
                        self.assertNotEqual((r.header("connection") or "").lower(), "close")
                    body = json.dumps({"model": "llmsim-1", "prompt": "x", "stream": stream})
                    r = c.request("POST", "/v1/completions", body)
                    self.assert_error(r, 502, "backend_unavailable", SERVER)
                    self.check_502(r)
                    self.count(502)
                finally:
                    c.close()
        # local routes still work
        c = Conn(self.sluice.port)
        r = c.request("GET", "/healthz")
        c.close()
        self.assertEqual(r.status, 200)
        self.count(200)
        self.check_counters()

    def test_bad_request_still_400_when_backend_down(self):
        c = Conn(self.sluice.port)
        r = c.request("POST", CHAT, '{"model": 1}')
        c.close()
        self.assert_error(r, 400, "invalid_field")
        self.count(400)
        self.check_counters()


if __name__ == "__main__":
    unittest.main()
