"""HTTP/2 (h2c) through sluice: prior knowledge and Upgrade, the same token
stream as HTTP/1.1, many streams on one connection, flow control as
backpressure, resets, the defences (rapid reset, settings flood, header
limits), the http2_transport rollout and drain.

curl and nghttp (Debian's curl and nghttp2-client) drive the ordinary
cases; python3-h2 (hyper-h2) builds exact frames for the rest."""

import os
import signal
import socket
import struct
import subprocess
import time
import unittest

import h2.config
import h2.connection
import h2.errors
import h2.exceptions
import h2.events
import h2.settings

from harness import (CHAT, SluiceTest, chat_body, set_rollout, sse_events, tokens_of, wait_for)


def curl(*args, timeout=30):
    p = subprocess.run(["curl", "-sS", "-N", "--max-time", str(timeout), *args],
                       capture_output=True, timeout=timeout + 10)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


class H2Client:
    """A hyper-h2 client on a plain socket, read in a loop with a deadline."""

    def __init__(self, port, settings=None, timeout=20.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.h2.initiate_connection()
        if settings:
            self.h2.update_settings(settings)
        self.flush()
        self.headers, self.data, self.ended, self.reset = {}, {}, set(), {}
        self.goaway = None
        self.closed = False

    def flush(self):
        out = self.h2.data_to_send()
        if out:
            self.sock.sendall(out)

    def request(self, body, headers=(), path=CHAT, method="POST", end=True):
        sid = self.h2.get_next_available_stream_id()
        hdrs = [(":method", method), (":path", path), (":authority", "sluice"),
                (":scheme", "http"), ("content-type", "application/json"), *headers]
        self.h2.send_headers(sid, hdrs, end_stream=body is None and end)
        if body is not None:
            self.h2.send_data(sid, body.encode(), end_stream=end)
        self.flush()
        return sid

    def pump(self, until, timeout=20.0, ack=True):
        """Reads frames until until() is true; acks DATA (opens the window)
        only when `ack`."""
        deadline = time.monotonic() + timeout
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for HTTP/2 frames")
            self.sock.settimeout(left)
            try:
                b = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not b:
                self.closed = True
                return
            try:
                events = self.h2.receive_data(b)
            except h2.exceptions.ProtocolError:
                # hyper-h2 takes nothing after a GOAWAY it received
                if self.goaway is None:
                    raise
                self.closed = True
                return
            for ev in events:
                if isinstance(ev, h2.events.ResponseReceived):
                    self.headers[ev.stream_id] = dict(ev.headers)
                elif isinstance(ev, h2.events.DataReceived):
                    self.data[ev.stream_id] = self.data.get(ev.stream_id, b"") + ev.data
                    if ack:
                        self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    self.ended.add(ev.stream_id)
                elif isinstance(ev, h2.events.StreamReset):
                    self.reset[ev.stream_id] = ev.error_code
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    self.goaway = ev
            self.flush()

    def done(self, sid):
        return sid in self.ended or sid in self.reset

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def norm(data):
    """An event's data without what llmsim makes up anew for each request."""
    import re
    return [re.sub(r'"created":\d+', '"created":0', re.sub(r"chatcmpl-[0-9a-f]+", "chatcmpl-x", d))
            for d in data]


def events_of(body):
    return [e for e in sse_events(body) if "data" in e]


class Http2Test(SluiceTest):
    workers = 2
    sim_args = ("--ttft-ms", "5", "--itl-ms", "2", "--tokens", "8")
    sluice_conf = {"stream": {"slow_consumer_timeout": "1s", "stream_buffer_max": "32k",
                              "max_event_size": "16k"},
                   "http": {"body_timeout": "1s"},
                   "http2": {"max_concurrent_streams": "64"}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        set_rollout(cls.sluice, "http2_transport", 100)

    def url(self, path=CHAT):
        return "http://127.0.0.1:%d%s" % (self.sluice.port, path)

    def curl_chat(self, proto, tokens=6, stream=True):
        return curl(proto, "-D", "-", "-H", "content-type: application/json",
                    "-H", "X-Sim-Tokens: %d" % tokens, "-d", chat_body(stream), self.url())

    def split(self, out):
        """(status line(s) + head, body) of curl -D - output."""
        text = out.decode()
        heads = []
        while text.startswith("HTTP/"):
            head, _, text = text.partition("\r\n\r\n")
            heads.append(head)
        return heads, text

    def test_prior_knowledge_streams_every_token_in_order(self):
        m0 = self.sluice.metrics()
        rc, out, err = self.curl_chat("--http2-prior-knowledge", tokens=12)
        self.assertEqual(rc, 0, err)
        heads, body = self.split(out)
        self.assertEqual(len(heads), 1)
        self.assertTrue(heads[0].startswith("HTTP/2 200"), heads[0])
        self.assertIn("content-type: text/event-stream", heads[0].lower())
        self.assertNotIn("transfer-encoding", heads[0].lower())
        evs = events_of(body)
        self.assertEqual(tokens_of(evs), [" w%d" % i for i in range(12)])
        self.assertEqual(evs[-1]["data"], ["[DONE]"])
        ids = [e["id"][0] for e in evs]
        sid = ids[0].split(":")[0]
        self.assertEqual(ids, ["%s:%d" % (sid, i + 1) for i in range(len(ids))])
        m = self.sluice.metrics()
        self.assertEqual(m["sluice_http2_connections_total"] - m0["sluice_http2_connections_total"], 1)
        self.assertEqual(m["sluice_http2_streams_total"] - m0["sluice_http2_streams_total"], 1)

    def test_upgrade_h2c_answers_the_first_request_over_http2(self):
        rc, out, err = self.curl_chat("--http2", tokens=5)
        self.assertEqual(rc, 0, err)
        heads, body = self.split(out)
        self.assertTrue(heads[0].startswith("HTTP/1.1 101"), heads)
        self.assertIn("upgrade: h2c", heads[0].lower())
        self.assertTrue(heads[1].startswith("HTTP/2 200"), heads)
        self.assertEqual(tokens_of(events_of(body)), [" w%d" % i for i in range(5)])

    def test_same_events_over_every_protocol(self):
        bodies = {}
        for proto in ("--http1.1", "--http2", "--http2-prior-knowledge"):
            rc, out, err = self.curl_chat(proto, tokens=7)
            self.assertEqual(rc, 0, err)
            evs = events_of(self.split(out)[1])
            # the same data lines; ids differ only by stream id
            bodies[proto] = ([norm(e["data"]) for e in evs],
                             [e["id"][0].split(":")[1] for e in evs])
        self.assertEqual(bodies["--http1.1"], bodies["--http2"])
        self.assertEqual(bodies["--http1.1"], bodies["--http2-prior-knowledge"])

    def test_non_streaming_and_local_answers(self):
        rc, out, err = self.curl_chat("--http2-prior-knowledge", tokens=3, stream=False)
        self.assertEqual(rc, 0, err)
        heads, body = self.split(out)
        self.assertTrue(heads[0].startswith("HTTP/2 200"))
        self.assertIn("content-length: %d" % len(body), heads[0].lower())
        import json
        self.assertEqual(json.loads(body)["choices"][0]["message"]["content"], " w0 w1 w2")
        rc, out, _ = curl("--http2-prior-knowledge", "-D", "-", self.url("/nope"))
        heads, body = self.split(out)
        self.assertTrue(heads[0].startswith("HTTP/2 404"))
        self.assertEqual(json.loads(body)["error"]["code"], "not_found")
        rc, out, _ = curl("--http2-prior-knowledge", "-D", "-", "-d", "{bad", self.url())
        heads, body = self.split(out)
        self.assertTrue(heads[0].startswith("HTTP/2 400"))
        self.assertEqual(json.loads(body)["error"]["code"], "invalid_json")
        rc, out, _ = curl("--http2-prior-knowledge", self.url("/v1/models"))
        self.assertEqual(json.loads(out)["data"][0]["id"], "llmsim-1")

    def test_many_streams_on_one_connection(self):
        m0 = self.sluice.metrics()
        c = H2Client(self.sluice.port)
        try:
            want = {}
            for i in range(20):
                n = 3 + i % 7
                sid = c.request(chat_body(), [("x-sim-tokens", str(n))])
                want[sid] = n
            c.pump(lambda: all(c.done(s) for s in want))
            for sid, n in want.items():
                self.assertEqual(c.headers[sid][":status"], "200")
                self.assertNotIn(sid, c.reset)
                evs = events_of(c.data[sid])
                self.assertEqual(tokens_of(evs), [" w%d" % i for i in range(n)], sid)
                self.assertEqual(evs[-1]["data"], ["[DONE]"])
            # ids are distinct per stream
            first_ids = {events_of(c.data[s])[0]["id"][0].split(":")[0] for s in want}
            self.assertEqual(len(first_ids), len(want))
        finally:
            c.close()
        m = self.sluice.metrics()
        self.assertEqual(m["sluice_http2_streams_total"] - m0["sluice_http2_streams_total"], 20)
        self.assertEqual(m["sluice_http2_connections_total"] - m0["sluice_http2_connections_total"], 1)

    def test_request_body_in_several_data_frames(self):
        c = H2Client(self.sluice.port)
        try:
            body = chat_body().encode()
            sid = c.h2.get_next_available_stream_id()
            c.h2.send_headers(sid, [(":method", "POST"), (":path", CHAT), (":authority", "x"),
                                    (":scheme", "http"), ("x-sim-tokens", "4")])
            for i in range(0, len(body), 7):
                c.h2.send_data(sid, body[i:i + 7])
                c.flush()
            c.h2.end_stream(sid)
            c.flush()
            c.pump(lambda: c.done(sid))
            self.assertEqual(tokens_of(events_of(c.data[sid])), [" w%d" % i for i in range(4)])
        finally:
            c.close()

    def test_closed_window_stops_the_upstream(self):
        """A client that never opens its window: sluice buffers up to
        stream_buffer_max, pauses the backend, and after
        slow_consumer_timeout resets the stream and cancels the upstream;
        the connection's other streams go on."""
        before = self.sim.stats()
        m0 = self.sluice.metrics()
        c = H2Client(self.sluice.port,
                     settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1024})
        try:
            sid = c.request(chat_body(), [("x-sim-tokens", "100000"), ("x-sim-itl-ms", "0")])
            c.pump(lambda: c.done(sid), timeout=20, ack=False)
            self.assertIn(sid, c.reset, "the stream is reset, not ended")
            self.assertLessEqual(len(c.data.get(sid, b"")), 1024)
            wait_for(lambda: self.sim.stats()["aborted"] > before["aborted"], 10, "upstream cancel")
            m = self.sluice.metrics()
            self.assertGreater(m["sluice_slow_consumers_total"], m0["sluice_slow_consumers_total"])
            # the connection still serves
            sid2 = c.request(chat_body(), [("x-sim-tokens", "3")])
            c.pump(lambda: c.done(sid2))
            self.assertEqual(tokens_of(events_of(c.data[sid2])), [" w0", " w1", " w2"])
        finally:
            c.close()

    def test_client_reset_cancels_the_upstream(self):
        before = self.sim.stats()
        m0 = self.sluice.metrics()
        c = H2Client(self.sluice.port)
        try:
            sid = c.request(chat_body(), [("x-sim-tokens", "5000"), ("x-sim-itl-ms", "5")])
            c.pump(lambda: len(c.data.get(sid, b"")) > 500)
            c.h2.reset_stream(sid, error_code=8)  # CANCEL
            c.flush()
            wait_for(lambda: self.sim.stats()["aborted"] > before["aborted"], 10, "upstream cancel")
            sid2 = c.request(chat_body(), [("x-sim-tokens", "2")])
            c.pump(lambda: c.done(sid2))
            self.assertEqual(tokens_of(events_of(c.data[sid2])), [" w0", " w1"])
        finally:
            c.close()
        m = self.sluice.metrics()
        self.assertEqual(
            m["sluice_http2_client_resets_total"] - m0["sluice_http2_client_resets_total"], 1)
        self.assertGreater(m["sluice_upstream_cancellations_total"],
                           m0["sluice_upstream_cancellations_total"])

    def test_stalled_request_is_reset_after_body_timeout(self):
        """HEADERS without END_STREAM and no DATA: the stream is reset once
        body_timeout (1 s here) passes; the connection serves on."""
        c = H2Client(self.sluice.port)
        try:
            sid = c.request(chat_body(), end=False)  # body sent, END_STREAM never
            c.pump(lambda: c.done(sid), timeout=10)
            self.assertIn(sid, c.reset)
            sid2 = c.request(chat_body(), [("x-sim-tokens", "2")])
            c.pump(lambda: c.done(sid2))
            self.assertEqual(tokens_of(events_of(c.data[sid2])), [" w0", " w1"])
        finally:
            c.close()

    def test_settings_advertise_the_limits(self):
        c = H2Client(self.sluice.port)
        try:
            c.pump(lambda: c.h2.remote_settings.max_concurrent_streams == 64, timeout=5)
            self.assertEqual(c.h2.remote_settings.enable_push, 0)
        finally:
            c.close()

    def test_headers_over_the_limit_get_431(self):
        c = H2Client(self.sluice.port)
        try:
            # 40 fields of 1000 bytes: over max_header_bytes (32k) once
            # assembled, under the HPACK frame limits
            big = [("x-big-%d" % i, "v" * 1000) for i in range(40)]
            sid = c.request(chat_body(), big)
            c.pump(lambda: c.done(sid))
            self.assertEqual(c.headers[sid][":status"], "431")
            import json
            self.assertEqual(json.loads(c.data[sid])["error"]["code"], "headers_too_large")
        finally:
            c.close()

    def test_hpack_bomb_resets_the_stream(self):
        # one 4000-byte field indexed once, then referenced 200 times: a
        # few hundred bytes on the wire, 800 KB decoded
        c = H2Client(self.sluice.port)
        try:
            sid = c.request(chat_body(), [("x-bomb", "b" * 4000)] * 200)
            c.pump(lambda: c.done(sid) or c.goaway is not None or c.closed)
            self.assertIn(sid, c.reset)
            sid2 = c.request(chat_body(), [("x-sim-tokens", "2")])
            c.pump(lambda: c.done(sid2))
            self.assertEqual(tokens_of(events_of(c.data[sid2])), [" w0", " w1"])
        finally:
            c.close()

    def test_rapid_reset_gets_goaway_and_others_are_served(self):
        m0 = self.sluice.metrics()
        c = H2Client(self.sluice.port)
        try:
            for _ in range(400):
                sid = c.request(chat_body(), [("x-sim-tokens", "1000"), ("x-sim-itl-ms", "50")])
                c.h2.reset_stream(sid, error_code=8)
                c.flush()
                if c.closed:
                    break
            c.pump(lambda: c.goaway is not None or c.closed, timeout=10)
            self.assertIsNotNone(c.goaway, "GOAWAY before the close")
            self.assertEqual(c.goaway.error_code, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        finally:
            c.close()
        m = self.sluice.metrics()
        self.assertGreaterEqual(m["sluice_http2_abuse_total"] - m0["sluice_http2_abuse_total"], 1)
        rc, out, err = self.curl_chat("--http2-prior-knowledge", tokens=2)
        self.assertEqual(rc, 0, err)
        self.assertEqual(tokens_of(events_of(self.split(out)[1])), [" w0", " w1"])

    def test_settings_flood_gets_goaway(self):
        s = socket.create_connection(("127.0.0.1", self.sluice.port), timeout=10)
        try:
            entries = b"".join(struct.pack(">HI", 0x3, 100) for _ in range(64))  # > max_settings
            frame = struct.pack(">I", len(entries))[1:] + b"\x04\x00" + struct.pack(">I", 0)
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame + entries)
            got = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                got += b
            # a GOAWAY frame (type 7) is in what came back before the close
            off, types = 0, []
            while off + 9 <= len(got):
                ln = int.from_bytes(got[off:off + 3], "big")
                types.append(got[off + 3])
                off += 9 + ln
            self.assertIn(7, types, got)
        finally:
            s.close()

    def test_garbage_after_the_preface_closes_only_that_connection(self):
        s = socket.create_connection(("127.0.0.1", self.sluice.port), timeout=10)
        try:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 64)
            while s.recv(65536):
                pass
        finally:
            s.close()
        rc, out, err = self.curl_chat("--http2-prior-knowledge", tokens=1)
        self.assertEqual(rc, 0, err)


class Http2DefaultTest(SluiceTest):
    """Out of the box ([rollout] http2_transport = 100, no state file): h2c
    is served without any sluicectl command."""
    workers = 1
    sim_args = ("--ttft-ms", "1", "--itl-ms", "1", "--tokens", "2")

    def test_h2c_on_by_default(self):
        url = "http://127.0.0.1:%d%s" % (self.sluice.port, CHAT)
        rc, out, err = curl("--http2-prior-knowledge", "-D", "-", "-d", chat_body(), url)
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith(b"HTTP/2 200"), out[:100])


class Http2RolloutTest(SluiceTest):
    """http2_transport at 0 %: the h2c preface gets GOAWAY(HTTP_1_1_REQUIRED),
    an Upgrade is ignored (HTTP/1.1 answers); at 100 % both work."""
    workers = 1
    sim_args = ("--ttft-ms", "1", "--itl-ms", "1", "--tokens", "2")

    def test_zero_percent_refuses_and_hundred_serves(self):
        url = "http://127.0.0.1:%d%s" % (self.sluice.port, CHAT)
        set_rollout(self.sluice, "http2_transport", 0)
        m0 = self.sluice.metrics()
        c = H2Client(self.sluice.port)
        try:
            c.pump(lambda: c.goaway is not None or c.closed, timeout=10)
            self.assertIsNotNone(c.goaway)
            self.assertEqual(c.goaway.error_code, h2.errors.ErrorCodes.HTTP_1_1_REQUIRED)
        finally:
            c.close()
        rc, out, err = curl("--http2", "-D", "-", "-d", chat_body(), url)
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith(b"HTTP/1.1 200"), out[:100])
        m = self.sluice.metrics()
        self.assertEqual(m["sluice_http2_refused_total"] - m0["sluice_http2_refused_total"], 2)
        self.assertEqual(m["sluice_http2_connections_total"], m0["sluice_http2_connections_total"])
        set_rollout(self.sluice, "http2_transport", 100)
        rc, out, err = curl("--http2-prior-knowledge", "-d", chat_body(), url)
        self.assertEqual(rc, 0, err)
        self.assertEqual(tokens_of(events_of(out)), [" w0", " w1"])


class Http2DrainTest(SluiceTest):
    """SIGTERM with a stream open on an HTTP/2 connection: GOAWAY (NO_ERROR)
    comes, the stream finishes with every token, then the connection
    closes.  nghttp is the client (hyper-h2 takes no frame after GOAWAY)."""
    workers = 1
    sim_args = ("--ttft-ms", "5", "--itl-ms", "20", "--tokens", "50")

    def test_drain_sends_goaway_and_finishes_streams(self):
        import re
        set_rollout(self.sluice, "http2_transport", 100)
        body = os.path.join(self.sluice.dir, "body.json")
        with open(body, "w") as f:
            f.write(chat_body())
        p = subprocess.Popen(["nghttp", "-v", "-d", body, "-H", "content-type: application/json",
                              "http://127.0.0.1:%d%s" % (self.sluice.port, CHAT)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            out = b""
            while b" w0" not in out:
                line = p.stdout.readline()
                self.assertTrue(line, out[-2000:])
                out += line
            self.sluice.p.send_signal(signal.SIGTERM)
            rest, _ = p.communicate(timeout=30)
            out += rest
        finally:
            if p.poll() is None:
                p.kill()
        text = out.decode(errors="replace")
        self.assertEqual(p.returncode, 0, text[-2000:])
        self.assertRegex(text, r"recv GOAWAY frame[^\n]*\n[^\n]*error_code=NO_ERROR")
        toks = re.findall(r'"content":" (w\d+)"', text)
        self.assertEqual(toks, ["w%d" % i for i in range(50)])
        self.assertIn("data: [DONE]", text)
        self.sluice.p.wait(timeout=20)


if __name__ == "__main__":
    unittest.main()
