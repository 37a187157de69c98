"""Failures around a stream: the client leaves, the client stops reading,
the backend fails before or after the first token, the backend hangs."""

import json
import socket
import time
import unittest

from harness import (CHAT, Conn, Llmsim, Sluice, SluiceTest, build_request, chat_body,
                     free_port, sse_events, tokens_of, wait_for)


def error_event(events):
    errs = [ev for ev in events if ev.get("event") == ["error"]]
    return json.loads(errs[0]["data"][0]) if errs else None


class CancelTest(SluiceTest):
    sim_args = ("--ttft-ms", "10", "--itl-ms", "20", "--tokens", "1000")

    def test_client_disconnect_cancels_upstream(self):
        before = self.sluice.metrics()["sluice_upstream_cancellations_total"]
        aborted = self.sim.stats()["aborted"]
        c = self.conn()
        c.send(build_request("POST", CHAT, chat_body()))
        status, _ = c.read_head()
        self.assertEqual(status, 200)
        c._fill()  # first events arrived: the backend is generating
        c.close()
        # the backend sees the request aborted (vLLM stops generating) ...
        wait_for(lambda: self.sim.stats()["aborted"] == aborted + 1, 5, "llmsim abort")
        # ... and sluice counts it
        wait_for(lambda: self.sluice.metrics()["sluice_upstream_cancellations_total"]
                 == before + 1, 5, "cancellation counter")
        wait_for(lambda: self.sluice.metrics()["sluice_streams_active"] == 0, 5, "no stream")
        self.assertEqual(self.sim.stats()["running"], 0)

    def test_disconnect_before_first_token(self):
        aborted = self.sim.stats()["aborted"]
        c = self.conn()
        c.send(build_request("POST", CHAT, chat_body(), {"X-Sim-TTFT-Ms": "3000"}))
        wait_for(lambda: self.sim.stats()["running"] + self.sim.stats()["waiting"] >= 1, 5,
                 "request at the backend")
        c.close()
        wait_for(lambda: self.sim.stats()["aborted"] == aborted + 1, 5, "llmsim abort")
        m = self.sluice.metrics()
        self.assertGreaterEqual(m['sluice_requests_total{code="499"}'], 1)

    def test_many_disconnects_leave_nothing_behind(self):
        aborted = self.sim.stats()["aborted"]
        conns = []
        for _ in range(20):
            c = self.conn()
            c.send(build_request("POST", CHAT, chat_body()))
            conns.append(c)
        for c in conns:
            c.read_head()
        for c in conns:
            c.close()
        wait_for(lambda: self.sim.stats()["aborted"] == aborted + 20, 10, "20 aborts")
        wait_for(lambda: self.sluice.metrics()["sluice_streams_active"] == 0, 5, "no stream")
        r = self.chat(headers={"X-Sim-Tokens": "3"})
        self.assertEqual(len(tokens_of(sse_events(r.body))), 3)


class SlowConsumerTest(SluiceTest):
    sim_args = ("--ttft-ms", "5", "--itl-ms", "0", "--tokens", "200000")
    sluice_conf = {
        "stream": {"stream_buffer_max": "64k", "slow_consumer_timeout": "1s",
                   "max_event_size": "16k"},
        "buffers": {"slab_size": "16k"},
    }

    def test_slow_consumer_is_cut_and_counted(self):
        before = self.sluice.metrics()
        aborted = self.sim.stats()["aborted"]
        s = socket.create_connection(("127.0.0.1", self.sluice.port))
        # a tiny receive window: the client reads nothing at all
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(build_request("POST", CHAT, chat_body()))
        # the client reads nothing; sluice cuts it after slow_consumer_timeout
        wait_for(lambda: self.sluice.metrics()["sluice_slow_consumers_total"]
                 == before["sluice_slow_consumers_total"] + 1, 15, "slow consumer counted")
        after = self.sluice.metrics()
        self.assertEqual(after["sluice_upstream_cancellations_total"],
                         before["sluice_upstream_cancellations_total"] + 1)
        wait_for(lambda: self.sim.stats()["aborted"] == aborted + 1, 5, "backend aborted")
        # cut with a reset: the bytes it never read are dropped at once, not
        # held by the kernel against a closed window
        s.settimeout(10)
        with self.assertRaises(ConnectionResetError):
            while s.recv(1 << 16):
                pass
        s.close()

    def test_fast_reader_of_a_big_stream_is_not_cut(self):
        before = self.sluice.metrics()["sluice_slow_consumers_total"]
        r = self.chat(headers={"X-Sim-Tokens": "20000"})
        self.assertEqual(len(tokens_of(sse_events(r.body))), 20000)
        self.assertEqual(self.sluice.metrics()["sluice_slow_consumers_total"], before)


class BackendFaultTest(SluiceTest):
    sim_args = ("--ttft-ms", "5", "--itl-ms", "5", "--tokens", "20")
    sluice_conf = {"stream": {"first_token_timeout": "1s", "token_idle_timeout": "1s"}}

    def assert_next_request_works(self):
        r = self.chat(headers={"X-Sim-Tokens": "3"})
        self.assertEqual(tokens_of(sse_events(r.body)), [" w0", " w1", " w2"])

    def test_backend_closes_mid_stream(self):
        r = self.chat(headers={"X-Sim-Fault": "close_after:5", "X-Sim-Tokens": "20"})
        self.assertEqual(r.status, 200)
        events = sse_events(r.body)
        # every token received before the failure is delivered, then the error
        self.assertEqual(tokens_of(events), [" w%d" % i for i in range(5)])
        err = error_event(events)
        self.assertEqual(err["error"]["code"], "backend_closed")
        self.assertEqual(err["error"]["type"], "server_error")
        self.assertNotIn(["[DONE]"], [ev.get("data") for ev in events])
        self.assert_next_request_works()

    def test_backend_resets_mid_stream(self):
        r = self.chat(headers={"X-Sim-Fault": "reset_after:3", "X-Sim-Tokens": "20"})
        events = sse_events(r.body)
        self.assertEqual(tokens_of(events)[:3], [" w0", " w1", " w2"])
        self.assertIsNotNone(error_event(events))
        self.assert_next_request_works()

    def test_backend_closes_before_response(self):
        for fault in ("close", "reset"):
            r = self.chat(headers={"X-Sim-Fault": fault})
            self.assertEqual(r.status, 502, fault)
            self.assertEqual(r.json()["error"]["code"], "backend_unavailable")
            self.assertEqual(r.header("retry-after"), "1")
        self.assert_next_request_works()

    def test_backend_hangs_before_first_token(self):
        t0 = time.monotonic()
        r = self.chat(headers={"X-Sim-Fault": "hang"})
        self.assertEqual(r.status, 504)
        self.assertEqual(r.json()["error"]["code"], "first_token_timeout")
        self.assertLess(time.monotonic() - t0, 30)
        self.assert_next_request_works()

    def test_backend_stalls_after_first_token(self):
        r = self.chat(headers={"X-Sim-Fault": "hang_after:4", "X-Sim-Tokens": "20"})
        events = sse_events(r.body)
        self.assertEqual(tokens_of(events), [" w0", " w1", " w2", " w3"])
        self.assertEqual(error_event(events)["error"]["code"], "token_timeout")
        self.assert_next_request_works()

    def test_backend_error_status_passes_through(self):
        for code in (500, 503, 429):
            r = self.chat(headers={"X-Sim-Fault": "status:%d" % code})
            self.assertEqual(r.status, code)
            self.assertIn("error", r.json())
            if code in (503, 429):
                self.assertEqual(r.header("retry-after"), "1")
        self.assert_next_request_works()

    def test_slow_response_head_is_fine(self):
        r = self.chat(headers={"X-Sim-Fault": "slow_headers:300", "X-Sim-Tokens": "4"})
        self.assertEqual(r.status, 200)
        self.assertEqual(len(tokens_of(sse_events(r.body))), 4)

    def test_unknown_model_is_backend_404(self):
        r = self.chat(model="no-such-model")
        self.assertEqual(r.status, 404)
        self.assertIn("error", r.json())


class BackendGoneTest(unittest.TestCase):
    """The backend dies with streams in flight, then comes back."""

    def test_backend_killed_mid_stream(self):
        sim = Llmsim("--ttft-ms", "5", "--itl-ms", "20", "--tokens", "500")
        sl = Sluice(sim.port)
        try:
            conns = []
            for _ in range(4):
                c = Conn(sl.port)
                c.send(build_request("POST", CHAT, chat_body()))
                self.assertEqual(c.read_head()[0], 200)
                conns.append(c)
            time.sleep(0.3)
            sim.stop(9)
            for c in conns:
                body = b""
                # rest of the chunked body, until the terminating chunk
                while not body.endswith(b"0\r\n\r\n"):
                    c._fill()
                    body, c.buf = body + c.buf, b""
                text = body.decode()
                self.assertIn("event: error", text)
                self.assertIn("backend_closed", text)
                c.close()
            # with the backend gone, new requests get 502 at once
            c = Conn(sl.port)
            r = c.request("POST", CHAT, chat_body())
            self.assertEqual(r.status, 502)
            c.close()
        finally:
            sl.stop()
            sim.stop()
        self.assertEqual(sl.p.returncode, 0)


class ConnectTimeoutTest(unittest.TestCase):
    def test_backend_that_never_accepts(self):
        # a listener whose backlog is full: SYNs go unanswered
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(0)
        port = lst.getsockname()[1]
        fillers = []
        for _ in range(4):
            f = socket.socket()
            f.setblocking(False)
            try:
                f.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(f)
        time.sleep(0.2)
        sl = Sluice(port, {"upstream": {"connect_timeout": "500ms"}})
        try:
            c = Conn(sl.port)
            r = c.request("POST", CHAT, chat_body())
            c.close()
            self.assertEqual(r.status, 504)
            self.assertEqual(r.json()["error"]["code"], "backend_connect_timeout")
        finally:
            sl.stop()
            for f in fillers:
                f.close()
            lst.close()


if __name__ == "__main__":
    unittest.main()
