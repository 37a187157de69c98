"""Token counts come from the backend: a streaming request that did not ask
for usage gets stream_options.include_usage added on its way to the backend,
the usage chunk is taken out of the client's stream, and its count is what
sluice charges ([upstream] request_usage, on by default)."""

import json
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import CHAT, Sluice, chat_body, request, sse_events, tokens_of

USAGE_TOKENS = 10  # the backend says it generated 10, in 3 content events


class FakeVllm(BaseHTTPRequestHandler):
    bodies = []
    hosts = []

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeVllm.bodies.append(body)
        FakeVllm.hosts.append(self.headers["Host"])
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m"}
        for t in (" a", " b", " c"):
            c = dict(chunk, choices=[{"index": 0, "delta": {"content": t}}])
            self.wfile.write(b"data: " + json.dumps(c).encode() + b"\n\n")
        if (body.get("stream_options") or {}).get("include_usage"):
            u = dict(chunk, choices=[], usage={"prompt_tokens": 5,
                                               "completion_tokens": USAGE_TOKENS,
                                               "total_tokens": 5 + USAGE_TOKENS})
            self.wfile.write(b"data: " + json.dumps(u).encode() + b"\n\n")
        self.wfile.write(b"data: [DONE]\n\n")


class UsageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.backend = ThreadingHTTPServer(("127.0.0.1", 0), FakeVllm)
        threading.Thread(target=cls.backend.serve_forever, daemon=True).start()
        cls.sluice = Sluice(cls.backend.server_address[1], {}, 1)

    @classmethod
    def tearDownClass(cls):
        cls.sluice.stop()
        cls.backend.shutdown()

    def chat(self, **extra):
        st, _, body = request("127.0.0.1", self.sluice.port, "POST", CHAT,
                              chat_body(True, **extra))
        self.assertEqual(st, 200)
        return sse_events(body)

    def test_usage_asked_for_and_kept_from_the_client(self):
        t0 = self.sluice.metrics()["sluice_tokens_total"]
        FakeVllm.bodies.clear()
        evs = self.chat()
        sent = FakeVllm.bodies[-1]
        self.assertEqual(sent["stream_options"], {"include_usage": True})
        self.assertEqual(sent["messages"], json.loads(chat_body(True))["messages"])
        self.assertEqual(tokens_of(evs), [" a", " b", " c"])
        self.assertFalse([e for e in evs if "usage" in e["data"][0]])
        ids = [int(e["id"][0].split(":")[1]) for e in evs]
        self.assertEqual(ids, [1, 2, 3, 4])  # the usage chunk took no id
        self.assertEqual(self.sluice.metrics()["sluice_tokens_total"] - t0, USAGE_TOKENS)
        self.assertEqual(FakeVllm.hosts[-1], "127.0.0.1:%d" % self.backend.server_address[1])

    def test_a_client_that_asks_gets_it(self):
        FakeVllm.bodies.clear()
        evs = self.chat(stream_options={"include_usage": True})
        self.assertEqual(FakeVllm.bodies[-1]["stream_options"], {"include_usage": True})
        usage = [json.loads(e["data"][0]) for e in evs if '"usage"' in e["data"][0]]
        self.assertEqual(usage[0]["usage"]["completion_tokens"], USAGE_TOKENS)

    def test_a_client_that_declines_is_left_alone(self):
        FakeVllm.bodies.clear()
        t0 = self.sluice.metrics()["sluice_tokens_total"]
        self.chat(stream_options={"include_usage": False})
        self.assertEqual(FakeVllm.bodies[-1]["stream_options"], {"include_usage": False})
        self.assertEqual(self.sluice.metrics()["sluice_tokens_total"] - t0, 3)


if __name__ == "__main__":
    unittest.main()
