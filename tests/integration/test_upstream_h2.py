"""HTTP/2 to backends ([backend] http2 = true): a front sluice speaks h2c
to a back sluice (a real HTTP/2 server) in front of llmsim.  Many streams go
over few connections; a client that leaves resets only its stream (the
backend stops that generation, the connection stays); a client that does
not read stops only its own stream (flow control); a lost connection fails
its streams over."""

import json
import socket
import threading
import time
import unittest

from harness import (CHAT, Conn, Llmsim, Sluice, build_request, chat_body, check_exit, request,
                     sse_events, tokens_of, wait_for)


def expected(n):
    return [" w%d" % i for i in range(n)]


class H2UpstreamTest(unittest.TestCase):
    workers = 2

    @classmethod
    def setUpClass(cls):
        cls.sim = Llmsim("--ttft-ms", "5", "--itl-ms", "5", "--tokens", "12")
        cls.back = Sluice(cls.sim.port, {"stream": {"stream_buffer_max": "64k", "max_event_size": "16k"}},
                          workers=1)
        cls.front = Sluice(None, {
            "backend back": {"url": "http://127.0.0.1:%d" % cls.back.port, "http2": "true"},
            "stream": {"stream_buffer_max": "64k", "max_event_size": "16k",
                       "slow_consumer_timeout": "30s"},
            "upstream": {"health_interval": "0"}}, workers=cls.workers)

    @classmethod
    def tearDownClass(cls):
        rcs = [cls.front.stop(), cls.back.stop()]
        cls.sim.stop()
        check_exit(cls.front, rcs[0])
        check_exit(cls.back, rcs[1])

    def chat(self, stream=True, headers=None):
        c = Conn(self.front.port)
        try:
            return c.request("POST", CHAT, chat_body(stream), headers)
        finally:
            c.close()

    def test_a_many_streams_over_few_connections(self):
        b0 = self.back.metrics()
        results = []
        ts = [threading.Thread(target=lambda: results.append(self.chat())) for _ in range(24)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(len(results), 24)
        for r in results:
            self.assertEqual(r.status, 200, r.body)
            evs = sse_events(r.body)
            self.assertEqual(tokens_of(evs), expected(12))
            # one id per event, the front's: the back's became a comment,
            # so a client resumes against the sluice it talks to
            sid = evs[0]["id"][0].split(":")[0]
            self.assertEqual([e["id"] for e in evs],
                             [["%s:%d" % (sid, i + 1)] for i in range(len(evs))])
            self.assertIn(b"\n:id ", r.body)
        b1 = self.back.metrics()
        streams = b1["sluice_http2_streams_total"] - b0.get("sluice_http2_streams_total", 0)
        conns = b1["sluice_http2_connections_total"] - b0.get("sluice_http2_connections_total", 0)
        self.assertEqual(streams, 24)
        # at most one session per front worker (more only past 128 streams)
        self.assertLessEqual(conns, self.workers)
        self.assertLessEqual(self.front.metrics()["sluice_upstream_connects_total"], self.workers)

    def test_non_streaming_and_bodyless_requests(self):
        r = self.chat(stream=False)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["choices"][0]["message"]["content"], "".join(expected(12)))
        st, _, body = request("127.0.0.1", self.front.port, "GET", "/v1/models")
        self.assertEqual(st, 200, body)
        self.assertEqual([m["id"] for m in json.loads(body)["data"]], ["llmsim-1"])

    def test_backend_error_status_passes(self):
        r = self.chat(headers={"X-Sim-Fault": "status:400"})
        self.assertEqual(r.status, 400, r.body)
        self.assertIn("llmsim injected fault", r.body.decode())

    def test_client_gone_resets_only_its_stream(self):
        aborted = self.sim.stats()["aborted"]
        cancels = self.front.metrics()["sluice_upstream_cancellations_total"]
        c = Conn(self.front.port)
        c.send(build_request("POST", CHAT, chat_body(), {"X-Sim-Tokens": "2000",
                                                         "X-Sim-ITL-Ms": "10"}))
        status, _ = c.read_head()
        self.assertEqual(status, 200)
        c._fill()
        others = []
        t = threading.Thread(target=lambda: others.append(self.chat()))
        t.start()
        c.close()
        wait_for(lambda: self.sim.stats()["aborted"] == aborted + 1, 10, "llmsim abort")
        wait_for(lambda: self.front.metrics()["sluice_upstream_cancellations_total"]
                 == cancels + 1, 5, "cancellation counted")
        t.join()
        self.assertEqual(tokens_of(sse_events(others[0].body)), expected(12))

    def test_slow_reader_stops_only_its_stream(self):
        # A client that reads nothing of a long fast stream: its backend
        # stream stops at the window, the others on the connection go on.
        s = socket.create_connection(("127.0.0.1", self.front.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(build_request("POST", CHAT, chat_body(), {"X-Sim-Tokens": "200000",
                                                            "X-Sim-ITL-Ms": "0"}))
        wait_for(lambda: self.sim.stats()["running"] >= 1, 5, "slow stream running")
        time.sleep(0.5)
        tok0 = self.sim.stats()["tokens"]
        time.sleep(0.5)
        # paused: llmsim's socket fills and it stops generating too
        self.assertLess(self.sim.stats()["tokens"] - tok0, 2000)
        t0 = time.monotonic()
        for _ in range(4):
            r = self.chat()
            self.assertEqual(tokens_of(sse_events(r.body)), expected(12))
        self.assertLess(time.monotonic() - t0, 10)
        s.close()

    def test_z_lost_backend_fails_streams_and_comes_back(self):
        # After the back sluice restarts, new requests open a new session.
        r = self.chat()
        self.assertEqual(r.status, 200)
        self.back.stop()
        r = self.chat()
        self.assertEqual(r.status, 502, r.body)
        self.assertEqual(r.json()["error"]["code"], "backend_unavailable")


if __name__ == "__main__":
    unittest.main()
