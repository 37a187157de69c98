"""Token relay through sluice: order, ids, framing, non-streaming, routes."""

import json
import re
import unittest

from harness import (CHAT, Conn, SluiceTest, build_request, chat_body, request, sse_events,
                     tokens_of)


class RelayTest(SluiceTest):
    def test_stream_every_token_once_in_order(self):
        r = self.chat(headers={"X-Sim-Tokens": "37"})
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("content-type").startswith("text/event-stream"))
        self.assertEqual(r.header("transfer-encoding"), "chunked")
        self.assertEqual(r.header("cache-control"), "no-cache")
        events = sse_events(r.body)
        self.assertEqual(tokens_of(events), [" w%d" % i for i in range(37)])
        self.assertEqual(events[-1]["data"], ["[DONE]"])
        # every event carries id: <stream-id>:<seq>, one stream id, seq 1, 2, 3...
        ids = [ev["id"][0] for ev in events]
        sid = ids[0].split(":")[0]
        self.assertRegex(sid, r"^[0-9a-f]{16}$")
        self.assertEqual(ids, ["%s:%d" % (sid, i + 1) for i in range(len(events))])

    def test_each_event_is_its_own_chunk(self):
        r = self.chat(headers={"X-Sim-Tokens": "3"})
        # chunk-size lines are fixed-width hex, as wide as the largest event
        # needs (max_event_size 256 KiB + the id line: 5 digits); each chunk
        # is exactly one event
        sizes = re.findall(rb"^([0-9a-f]+)\r\n", r.raw_body, re.M)
        self.assertEqual(sizes[-1], b"0")  # the last-chunk
        sizes = sizes[:-1]
        self.assertTrue(sizes and all(len(s) == 5 for s in sizes), sizes)
        self.assertEqual(len(sizes), len(sse_events(r.body)))

    def test_stream_ids_differ_between_streams(self):
        a = sse_events(self.chat(headers={"X-Sim-Tokens": "2"}).body)[0]["id"][0]
        b = sse_events(self.chat(headers={"X-Sim-Tokens": "2"}).body)[0]["id"][0]
        self.assertNotEqual(a.split(":")[0], b.split(":")[0])

    def test_completions_stream(self):
        c = self.conn()
        body = json.dumps({"model": "llmsim-1", "prompt": "x", "stream": True})
        r = c.request("POST", "/v1/completions", body, {"X-Sim-Tokens": "5"})
        c.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(tokens_of(sse_events(r.body)), [" w%d" % i for i in range(5)])

    def test_non_streaming(self):
        r = self.chat(stream=False, headers={"X-Sim-Tokens": "4"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "application/json")
        self.assertEqual(int(r.header("content-length")), len(r.body))
        obj = r.json()
        self.assertEqual(obj["object"], "chat.completion")
        self.assertEqual(obj["choices"][0]["message"]["content"], " w0 w1 w2 w3")

    def test_models_and_healthz(self):
        st, h, body = request("127.0.0.1", self.sluice.port, "GET", "/v1/models")
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body)["data"][0]["id"], "llmsim-1")
        st, h, body = request("127.0.0.1", self.sluice.port, "GET", "/healthz")
        self.assertEqual((st, json.loads(body)), (200, {"status": "ok"}))

    def test_request_id_echoed_or_generated(self):
        r = self.chat(headers={"X-Request-Id": "abc-123", "X-Sim-Tokens": "1"})
        self.assertEqual(r.header("x-request-id"), "abc-123")
        r = self.chat(headers={"X-Sim-Tokens": "1"})
        self.assertRegex(r.header("x-request-id"), r"^[0-9a-f]{16}$")
        # an id with characters that could break a log line or a header is replaced
        r = self.chat(headers={"X-Request-Id": 'a"b', "X-Sim-Tokens": "1"})
        self.assertRegex(r.header("x-request-id"), r"^[0-9a-f]{16}$")

    def test_keepalive_reuses_connection(self):
        c = self.conn()
        for i in range(5):
            r = c.request("POST", CHAT, chat_body(), {"X-Sim-Tokens": str(i + 1)})
            self.assertEqual(r.status, 200)
            self.assertEqual(len(tokens_of(sse_events(r.body))), i + 1)
        c.close()

    def test_pipelined_requests_answered_in_order(self):
        c = self.conn()
        reqs = b"".join(
            build_request("POST", CHAT, chat_body(), {"X-Sim-Tokens": str(n), "X-Request-Id": "p%d" % n})
            for n in (3, 1, 2))
        reqs += build_request("GET", "/healthz", headers={"X-Request-Id": "p-health"})
        c.send(reqs)
        for n in (3, 1, 2):
            r = c.read_response()
            self.assertEqual(r.header("x-request-id"), "p%d" % n)
            self.assertEqual(len(tokens_of(sse_events(r.body))), n)
        r = c.read_response()
        self.assertEqual(r.header("x-request-id"), "p-health")
        c.close()

    def test_chunked_request_body(self):
        body = chat_body().encode()
        half = len(body) // 2
        data = (b"POST " + CHAT.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                b"X-Sim-Tokens: 3\r\n\r\n"
                + b"%x\r\n" % half + body[:half] + b"\r\n"
                + b"%x;ext=1\r\n" % (len(body) - half) + body[half:] + b"\r\n0\r\n\r\n")
        c = self.conn()
        c.send(data)
        r = c.read_response()
        c.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(len(tokens_of(sse_events(r.body))), 3)

    def test_expect_100_continue(self):
        body = chat_body()
        c = self.conn()
        c.send(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nExpect: 100-continue\r\n"
                "X-Sim-Tokens: 2\r\n\r\n" % (CHAT, len(body))).encode())
        status, _ = c.read_head()
        self.assertEqual(status, 100)
        c.send(body.encode())
        r = c.read_response()
        c.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(len(tokens_of(sse_events(r.body))), 2)

    def test_query_string_forwarded(self):
        # llmsim reads sim_tokens from the query string: it must arrive unchanged
        r = self.chat(path=CHAT + "?sim_tokens=6")
        self.assertEqual(len(tokens_of(sse_events(r.body))), 6)

    def test_http10_client_gets_close_delimited_stream(self):
        body = chat_body()
        c = self.conn()
        c.send(("POST %s HTTP/1.0\r\nContent-Length: %d\r\nX-Sim-Tokens: 4\r\n\r\n%s"
                % (CHAT, len(body), body)).encode())
        r = c.read_response()
        c.close()
        self.assertEqual(r.status, 200)
        self.assertNotIn("transfer-encoding", r.headers)
        self.assertEqual(len(tokens_of(sse_events(r.body))), 4)

    def test_metrics_count_tokens_and_requests(self):
        before = self.sluice.metrics()
        self.chat(headers={"X-Sim-Tokens": "11"})
        after = self.sluice.metrics()
        self.assertEqual(after["sluice_tokens_total"] - before["sluice_tokens_total"], 11)
        k = 'sluice_requests_total{code="200"}'
        self.assertEqual(after[k] - before[k], 1)
        ttft = [k for k in after if k.startswith("sluice_ttft_seconds_count{")]
        self.assertTrue(ttft and 'backend="sim"' in ttft[0] and 'model="llmsim-1"' in ttft[0])
        self.assertEqual(after["sluice_inter_token_seconds_count"]
                         - before.get("sluice_inter_token_seconds_count", 0), 10)
        self.assertEqual(after["sluice_streams_active"], 0)


if __name__ == "__main__":
    unittest.main()


class ZeroCopyTest(SluiceTest):
    """send_zc_threshold > 0: large sends go out with SEND_ZC from the
    registered slabs; on loopback the kernel copies anyway, says so in the
    notification, and the worker falls back to plain sends."""

    sim_args = ("--ttft-ms", "5", "--itl-ms", "0", "--tokens", "3000")
    sluice_conf = {"buffers": {"send_zc_threshold": "4k"}}
    workers = 1

    def test_zero_copy_path_relays_exactly(self):
        # How many sends reach the threshold depends on how events batch up,
        # so the fallback (after 64 copied sends in a row) may take a few.
        for i in range(12):
            r = self.chat()
            self.assertEqual(tokens_of(sse_events(r.body)), [" w%d" % i for i in range(3000)])
            if i >= 2 and "copied by the kernel" in self.sluice.output():
                break
        m = self.sluice.metrics()
        self.assertGreater(m['sluice_sends_total{path="zerocopy"}'], 0)
        self.assertIn("copied by the kernel", self.sluice.output())
