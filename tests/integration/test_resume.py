"""Resumable streams: a client that drops comes back with
GET /v1/streams/<id> and Last-Event-ID, on any worker, and what it reads
over all its connections is the whole stream: no gap, no duplicate."""

import hashlib
import json
import random
import signal
import socket
import time
import unittest

import h2.config
import h2.connection
import h2.events

from harness import (CHAT, Conn, SluiceTest, build_request, chat_body, ctl, request,
                     set_rollout, wait_for)

RESUME = {"rollout": {"stream_resume": "100"}}
KEY_A = "sk-resume-a"
KEY_B = "sk-resume-b"


class SseConn(Conn):
    """One SSE response read event by event: sluice sends each event as one
    HTTP chunk, a resumed stream too."""

    def open(self, method, path, body=None, headers=None):
        self.send(build_request(method, path, body, headers))
        self.status, self.headers = self.read_head()
        self.ended = False
        return self.status

    def next_event(self):
        """(id, data lines, raw) of the next event, or None at the end."""
        size = int(self._line().split(b";")[0], 16)
        if size == 0:
            while self._line():
                pass
            self.ended = True
            return None
        raw = self._exact(size)
        assert self._exact(2) == b"\r\n"
        return parse_event(raw)

    def rest(self):
        """Every event up to the end of the stream."""
        out = []
        while True:
            ev = self.next_event()
            if ev is None:
                return out
            out.append(ev)

    def body_json(self):
        n = int(self.headers["content-length"])
        return json.loads(self._exact(n))


def parse_event(raw):
    text = raw.decode()
    assert text.endswith("\n\n"), repr(text)
    eid, data, kind = None, [], None
    for line in text[:-2].split("\n"):
        k, _, v = line.partition(": ")
        if k == "id":
            eid = v
        elif k == "data":
            data.append(v)
        elif k == "event":
            kind = v
    return eid, data, kind, raw


def token_of(data):
    if data == ["[DONE]"]:
        return "[DONE]"
    obj = json.loads(data[0])
    return obj["choices"][0]["delta"].get("content", "")


def hard_close(sock):
    """Drops the connection the way a phone losing its network does not:
    at once, unread bytes and all (RST)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


class ResumeTest(SluiceTest):
    sim_args = ("--ttft-ms", "10", "--itl-ms", "15", "--tokens", "30")
    sluice_conf = RESUME
    workers = 2

    def start(self, headers=None, tokens=None):
        c = SseConn(self.sluice.port)
        extra = {"max_tokens": tokens} if tokens else {}
        self.assertEqual(c.open("POST", CHAT, chat_body(True, **extra), headers), 200)
        return c

    def resume(self, sid, last, headers=None):
        c = SseConn(self.sluice.port)
        h = {"Last-Event-ID": last} if last is not None else {}
        h.update(headers or {})
        c.open("GET", "/v1/streams/" + sid, None, h)
        return c

    def read(self, c, n, seen):
        """Reads up to n events into seen; False at the end of the stream."""
        for _ in range(n):
            ev = c.next_event()
            if ev is None:
                return False
            seen.append(ev)
        return True

    def check_whole(self, seen, ntokens=30):
        ids = [e[0] for e in seen]
        sid = ids[0].split(":")[0]
        self.assertEqual(ids, ["%s:%d" % (sid, i + 1) for i in range(len(ids))],
                         "ids not consecutive: a gap or a duplicate")
        toks = [token_of(e[1]) for e in seen]
        self.assertEqual(toks[0], "")  # the role event
        self.assertEqual(toks[1:], [" w%d" % i for i in range(ntokens)] + ["[DONE]"])

    def metric(self, name):
        return self.sluice.metrics().get(name, 0)

    def test_one_drop_resumes_without_gap_or_duplicate(self):
        seen = []
        c = self.start()
        self.assertTrue(self.read(c, 6, seen))
        hard_close(c.s)
        time.sleep(0.2)  # events go on while nobody listens
        sid, last = seen[0][0].split(":")[0], seen[-1][0]
        r = self.resume(sid, last)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "text/event-stream")
        self.assertFalse(self.read(r, 1000, seen))
        r.close()
        self.check_whole(seen)

    def test_many_drops_on_any_worker(self):
        for attempt in range(3):
            relayed0 = self.metric('sluice_resume_requests_total{result="relayed"}')
            seen = []
            c = self.start()
            self.assertTrue(self.read(c, 2, seen))
            sid = seen[0][0].split(":")[0]
            rng = random.Random(attempt)
            while True:
                hard_close(c.s)
                if rng.random() < 0.5:
                    time.sleep(rng.random() * 0.1)
                c = self.resume(sid, seen[-1][0])
                self.assertEqual(c.status, 200)
                if not self.read(c, rng.randrange(0, 4), seen):
                    break
            c.close()
            self.check_whole(seen)
            if self.metric('sluice_resume_requests_total{result="relayed"}') > relayed0:
                return
        self.fail("no resume ever landed on the other worker")

    def test_reconnect_lands_on_another_worker(self):
        # SO_REUSEPORT picks the worker: keep resuming until one landed on
        # the worker that does not hold the stream, and one on the one that does.
        got = set()
        for _ in range(40):
            ok0 = self.metric('sluice_resume_requests_total{result="ok"}')
            rel0 = self.metric('sluice_resume_requests_total{result="relayed"}')
            seen = []
            c = self.start()
            self.read(c, 3, seen)
            hard_close(c.s)
            r = self.resume(seen[0][0].split(":")[0], seen[-1][0])
            self.assertEqual(r.status, 200)
            self.read(r, 1000, seen)
            r.close()
            self.check_whole(seen)
            m = self.sluice.metrics()
            if m['sluice_resume_requests_total{result="relayed"}'] > rel0:
                got.add("relayed")
            elif m['sluice_resume_requests_total{result="ok"}'] > ok0:
                got.add("local")
            if got == {"relayed", "local"}:
                return
        self.fail("resumes only ever landed on one worker: %s" % got)

    def test_stream_goes_on_while_detached_and_replays_after_its_end(self):
        cancels0 = self.metric("sluice_upstream_cancellations_total")
        seen = []
        c = self.start()
        self.read(c, 3, seen)
        hard_close(c.s)
        wait_for(lambda: self.metric("sluice_resume_streams") >= 1, 5, "stream retained")
        self.assertGreater(self.metric("sluice_resume_buffer_bytes"), 0)
        time.sleep(0.8)  # the backend finishes meanwhile (30 x 15 ms)
        sid = seen[0][0].split(":")[0]
        r = self.resume(sid, seen[-1][0])
        self.assertFalse(self.read(r, 1000, seen))
        self.assertTrue(r.ended)
        r.close()
        self.check_whole(seen)
        self.assertEqual(self.metric("sluice_upstream_cancellations_total"), cancels0)
        # Retained after its end, too: a second client replays it all.
        again = []
        r = self.resume(sid, None)
        self.assertEqual(r.status, 200)
        self.assertFalse(self.read(r, 1000, again))
        r.close()
        self.assertEqual([e[3] for e in again], [e[3] for e in seen])

    def test_takeover_of_a_connection_that_is_not_seen_dead(self):
        seen = []
        old = self.start()
        self.read(old, 4, seen)
        # The old connection stays open (its client vanished without a FIN).
        r = self.resume(seen[0][0].split(":")[0], seen[-1][0])
        self.assertEqual(r.status, 200)
        self.assertFalse(self.read(r, 1000, seen))
        r.close()
        self.check_whole(seen)
        # sluice closed the old one; whatever it had queued, it ends there.
        old.s.settimeout(5)
        with self.assertRaises((EOFError, ConnectionResetError, AssertionError, ValueError)):
            while old.next_event() is not None:
                pass
            raise EOFError  # ended cleanly also counts as ended
        old.close()
        self.assertGreaterEqual(self.metric("sluice_resume_takeovers_total"), 1)

    def test_unknown_bad_and_malformed_resumes(self):
        st, _, body = request("127.0.0.1", self.sluice.port, "GET", "/v1/streams/0123456789abcdef")
        self.assertEqual(st, 404)
        err = json.loads(body)["error"]
        self.assertEqual((err["type"], err["code"]), ("invalid_request_error", "stream_not_found"))
        for path in ("/v1/streams/xyz", "/v1/streams/0123456789ABCDEF", "/v1/streams/0123456789abcdef0"):
            st, _, body = request("127.0.0.1", self.sluice.port, "GET", path)
            self.assertEqual(st, 404, path)
            self.assertEqual(json.loads(body)["error"]["code"], "stream_not_found")
        st, h, _ = request("127.0.0.1", self.sluice.port, "POST", "/v1/streams/0123456789abcdef",
                           "{}")
        self.assertEqual((st, h.get("allow")), (405, "GET, DELETE"))
        seen = []
        c = self.start()
        self.read(c, 3, seen)
        sid = seen[0][0].split(":")[0]
        for bad in ("0123456789abcdef:1", sid + ":x", sid + ":", sid + "-3", sid + ":99999"):
            r = self.resume(sid, bad)
            self.assertEqual(r.status, 400, bad)
            self.assertEqual(r.body_json()["error"]["code"], "invalid_last_event_id")
            r.close()
        # And the stream is none the worse for it.
        self.assertFalse(self.read(c, 1000, seen))
        c.close()
        self.check_whole(seen)

    def test_outside_the_rollout_the_upstream_is_cancelled_and_nothing_kept(self):
        set_rollout(self.sluice, "stream_resume", 0)
        try:
            cancels0 = self.metric("sluice_upstream_cancellations_total")
            seen = []
            c = self.start()
            self.read(c, 3, seen)
            hard_close(c.s)
            wait_for(lambda: self.metric("sluice_upstream_cancellations_total") > cancels0, 5,
                     "upstream cancelled")
            r = self.resume(seen[0][0].split(":")[0], seen[-1][0])
            self.assertEqual(r.status, 404)
            r.close()
        finally:
            set_rollout(self.sluice, "stream_resume", 100)

    def test_delete_cancels_a_stream_for_good(self):
        cancels0 = self.metric("sluice_upstream_cancellations_total")
        seen = []
        c = self.start()
        self.read(c, 3, seen)
        hard_close(c.s)
        sid = seen[0][0].split(":")[0]
        wait_for(lambda: self.metric("sluice_resume_streams") >= 1, 5, "stream retained")
        st, _, body = request("127.0.0.1", self.sluice.port, "DELETE", "/v1/streams/" + sid)
        self.assertEqual((st, body), (204, b""))
        wait_for(lambda: self.metric("sluice_upstream_cancellations_total") > cancels0, 5,
                 "upstream cancelled")
        r = self.resume(sid, seen[-1][0])
        self.assertEqual(r.status, 404)
        r.close()
        st, _, _ = request("127.0.0.1", self.sluice.port, "DELETE", "/v1/streams/" + sid)
        self.assertEqual(st, 404)

    def test_delete_while_another_connection_reads_it(self):
        seen = []
        c = self.start()
        self.read(c, 3, seen)
        sid = seen[0][0].split(":")[0]
        st, _, _ = request("127.0.0.1", self.sluice.port, "DELETE", "/v1/streams/" + sid)
        self.assertEqual(st, 204)
        self.assertFalse(self.read(c, 1000, seen))  # ends, after the error event
        c.close()
        self.assertEqual(seen[-1][2], "error")
        self.assertEqual(json.loads(seen[-1][1][0])["error"]["code"], "cancelled")
        ids = [e[0] for e in seen]
        self.assertEqual(ids, ["%s:%d" % (sid, i + 1) for i in range(len(ids))])

    def test_http2_reset_is_a_cancel_not_a_drop(self):
        cancels0 = self.metric("sluice_upstream_cancellations_total")
        retained0 = self.metric("sluice_resume_retained_total")
        s = socket.create_connection(("127.0.0.1", self.sluice.port), timeout=15)
        conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        conn.send_headers(1, [(":method", "POST"), (":path", CHAT), (":authority", "sluice"),
                              (":scheme", "http"), ("content-type", "application/json")])
        conn.send_data(1, chat_body(True).encode(), end_stream=True)
        s.sendall(conn.data_to_send())
        body = b""
        while body.count(b"\n\n") < 3:
            for ev in conn.receive_data(s.recv(65536)):
                if isinstance(ev, h2.events.DataReceived):
                    body += ev.data
            s.sendall(conn.data_to_send())
        conn.reset_stream(1)
        s.sendall(conn.data_to_send())
        wait_for(lambda: self.metric("sluice_upstream_cancellations_total") > cancels0, 5,
                 "upstream cancelled")
        s.close()
        self.assertEqual(self.metric("sluice_resume_retained_total"), retained0)
        sid = parse_event(body.split(b"\n\n")[0] + b"\n\n")[0].split(":")[0]
        st, _, _ = request("127.0.0.1", self.sluice.port, "GET", "/v1/streams/" + sid)
        self.assertEqual(st, 404)

    def test_operator_cancels_a_detached_stream(self):
        cancels0 = self.metric("sluice_upstream_cancellations_total")
        seen = []
        c = self.start()
        self.read(c, 3, seen)
        hard_close(c.s)
        sid = seen[0][0].split(":")[0]
        wait_for(lambda: self.metric("sluice_resume_streams") >= 1, 5, "stream retained")
        rc, out, err = ctl(self.sluice, "cancel", sid)
        self.assertEqual(rc, 0, (out, err))
        wait_for(lambda: self.metric("sluice_upstream_cancellations_total") > cancels0, 5,
                 "upstream cancelled")
        # A client that comes back reads up to the cancellation, then its error.
        r = self.resume(sid, seen[-1][0])
        self.assertEqual(r.status, 200)
        self.assertFalse(self.read(r, 1000, seen))
        r.close()
        self.assertEqual(seen[-1][2], "error")
        self.assertEqual(json.loads(seen[-1][1][0])["error"]["code"], "cancelled")
        ids = [e[0] for e in seen]
        self.assertEqual(ids, ["%s:%d" % (sid, i + 1) for i in range(len(ids))])

    def test_resume_over_http2(self):
        seen = []
        c = self.start()
        self.read(c, 5, seen)
        hard_close(c.s)
        sid = seen[0][0].split(":")[0]
        s = socket.create_connection(("127.0.0.1", self.sluice.port), timeout=15)
        conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        conn.send_headers(1, [(":method", "GET"), (":path", "/v1/streams/" + sid),
                              (":authority", "sluice"), (":scheme", "http"),
                              ("last-event-id", seen[-1][0])], end_stream=True)
        s.sendall(conn.data_to_send())
        body, status, done = b"", None, False
        deadline = time.monotonic() + 15
        while not done and time.monotonic() < deadline:
            data = s.recv(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    status = dict(ev.headers)[":status"]
                elif isinstance(ev, h2.events.DataReceived):
                    body += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    done = True
            s.sendall(conn.data_to_send())
        s.close()
        self.assertEqual(status, "200")
        self.assertTrue(done)
        for block in body.split(b"\n\n")[:-1]:
            seen.append(parse_event(block + b"\n\n"))
        self.check_whole(seen)


class ResumeReloadTest(SluiceTest):
    """After a reload the old worker drains, but a stream it holds for a
    client that left is still resumed, through a new worker."""

    sim_args = ("--ttft-ms", "10", "--itl-ms", "100", "--tokens", "40")
    sluice_conf = RESUME
    workers = 2

    def test_resume_reaches_a_draining_worker(self):
        c = SseConn(self.sluice.port)
        c.open("POST", CHAT, chat_body(True))
        seen = [c.next_event() for _ in range(3)]
        hard_close(c.s)
        m = lambda k: self.sluice.metrics().get(k, 0)  # noqa: E731
        wait_for(lambda: m("sluice_resume_streams") >= 1, 5, "stream retained")
        old = {w["pid"] for w in self.sluice.status()["workers"]}
        self.sluice.write_config(self.sluice.sections)
        self.sluice.send_signal(signal.SIGHUP)
        wait_for(lambda: len([w for w in self.sluice.status()["workers"]
                              if w["pid"] not in old and not w["draining"]]) == 2, 30,
                 "new workers")
        # The old workers share the listening sockets until they drain: only
        # then is a new connection sure to reach a new worker.
        wait_for(lambda: all(w["draining"] for w in self.sluice.status()["workers"]
                             if w["pid"] in old), 30, "old workers draining")
        relayed0 = m('sluice_resume_requests_total{result="relayed"}')
        r = SseConn(self.sluice.port)
        sid = seen[0][0].split(":")[0]
        self.assertEqual(r.open("GET", "/v1/streams/" + sid, None,
                                {"Last-Event-ID": seen[-1][0]}), 200)
        seen += r.rest()
        r.close()
        self.assertGreater(m('sluice_resume_requests_total{result="relayed"}'), relayed0)
        ids = [e[0] for e in seen]
        self.assertEqual(ids, ["%s:%d" % (sid, i + 1) for i in range(len(ids))])
        toks = [token_of(e[1]) for e in seen]
        self.assertEqual(toks[1:], [" w%d" % i for i in range(40)] + ["[DONE]"])


class ResumeRetentionTest(SluiceTest):
    """A short retention and a small log: expiry, the gap, the full log."""

    sim_args = ("--ttft-ms", "10", "--itl-ms", "5", "--tokens", "200")
    sluice_conf = {
        "rollout": {"stream_resume": "100"},
        "stream": {"resume_retention_s": "1", "resume_buffer_max": "8k"},
    }
    workers = 1

    def test_not_resumed_in_time_is_cancelled_and_freed(self):
        m0 = self.sluice.metrics()
        c = SseConn(self.sluice.port)
        c.open("POST", CHAT, chat_body(True, max_tokens=200))
        ev = c.next_event()
        hard_close(c.s)
        wait_for(lambda: self.sluice.metrics()["sluice_resume_expired_total"] >
                 m0["sluice_resume_expired_total"] and
                 self.sluice.metrics()["sluice_resume_streams"] == 0, 10, "expiry")
        cancels0 = m0["sluice_upstream_cancellations_total"]
        m = self.sluice.metrics()
        self.assertEqual(m["sluice_resume_streams"], 0)
        self.assertEqual(m["sluice_resume_buffer_bytes"], 0)
        self.assertGreater(m["sluice_upstream_cancellations_total"], cancels0)
        r = SseConn(self.sluice.port)
        self.assertEqual(r.open("GET", "/v1/streams/" + ev[0].split(":")[0], None,
                                {"Last-Event-ID": ev[0]}), 404)
        r.close()

    def test_gap_is_410_and_a_full_log_holds_the_backend(self):
        # Read 60 events live: an 8 KiB log keeps only the last ~30.
        c = SseConn(self.sluice.port)
        c.open("POST", CHAT, chat_body(True))
        seen = [c.next_event() for _ in range(60)]
        sid = seen[0][0].split(":")[0]
        full0 = self.sluice.metrics()["sluice_resume_log_full_total"]
        hard_close(c.s)
        # Detached, the log fills and the backend is held, not dropped.
        wait_for(lambda: self.sluice.metrics()["sluice_resume_log_full_total"] > full0, 5,
                 "backend held by a full log")
        r = SseConn(self.sluice.port)
        self.assertEqual(r.open("GET", "/v1/streams/" + sid, None,
                                {"Last-Event-ID": sid + ":1"}), 410)
        self.assertEqual(r.body_json()["error"]["code"], "resume_gap")
        r.close()
        r = SseConn(self.sluice.port)
        self.assertEqual(r.open("GET", "/v1/streams/" + sid, None,
                                {"Last-Event-ID": seen[-1][0]}), 200)
        seen += r.rest()
        r.close()
        ids = [e[0] for e in seen]
        self.assertEqual(ids, ["%s:%d" % (sid, i + 1) for i in range(len(ids))])
        self.assertEqual(token_of(seen[-1][1]), "[DONE]")
        self.assertEqual(len(seen), 202)


class ResumeMemoryTest(SluiceTest):
    """resume_memory_max is a bound: finished streams retained for clients
    that left give their memory to running ones, oldest first."""

    sim_args = ("--ttft-ms", "5", "--itl-ms", "1", "--tokens", "60")
    sluice_conf = {
        "rollout": {"stream_resume": "100"},
        "stream": {"resume_buffer_max": "8k", "resume_memory_max": "16k"},
    }
    workers = 1

    def test_finished_streams_make_room_oldest_first(self):
        ids = []
        for _ in range(3):
            c = SseConn(self.sluice.port)
            c.open("POST", CHAT, chat_body(True))
            evs = c.rest()
            c.close()
            self.assertEqual(len(evs), 62)
            ids.append(evs[-1][0])
        m = self.sluice.metrics()
        self.assertGreaterEqual(m['sluice_resume_dropped_total{reason="memory"}'], 1)
        self.assertLessEqual(m["sluice_resume_buffer_bytes"], 16 * 1024)
        first, last = ids[0].split(":")[0], ids[2].split(":")[0]
        st, _, _ = request("127.0.0.1", self.sluice.port, "GET", "/v1/streams/" + first)
        self.assertEqual(st, 404)
        r = SseConn(self.sluice.port)
        n = int(ids[2].split(":")[1])
        self.assertEqual(r.open("GET", "/v1/streams/" + last, None,
                                {"Last-Event-ID": "%s:%d" % (last, n - 2)}), 200)
        tail = [r.next_event(), r.next_event(), r.next_event()]
        r.close()
        self.assertEqual([e[0] for e in tail[:2]], ["%s:%d" % (last, n - 1), ids[2]])
        self.assertIsNone(tail[2])


class ResumeTenantTest(SluiceTest):
    sim_args = ("--ttft-ms", "10", "--itl-ms", "20", "--tokens", "20")
    sluice_conf = {
        "rollout": {"stream_resume": "100"},
        "auth": {"enabled": "true"},
        "tenant a": {"key_sha256": hashlib.sha256(KEY_A.encode()).hexdigest()},
        "tenant b": {"key_sha256": hashlib.sha256(KEY_B.encode()).hexdigest()},
    }
    workers = 2

    def test_only_the_tenant_that_opened_a_stream_resumes_it(self):
        a = {"Authorization": "Bearer " + KEY_A}
        b = {"Authorization": "Bearer " + KEY_B}
        c = SseConn(self.sluice.port)
        c.open("POST", CHAT, chat_body(True), a)
        seen = [c.next_event(), c.next_event()]
        hard_close(c.s)
        sid = seen[0][0].split(":")[0]
        for h in (b, {}):
            # Several tries: each may land on either worker, and both must refuse.
            for _ in range(4):
                r = SseConn(self.sluice.port)
                st = r.open("GET", "/v1/streams/" + sid, None, dict(h, **{"Last-Event-ID": seen[-1][0]}))
                self.assertEqual(st, 404 if h else 401, h)
                r.close()
        r = SseConn(self.sluice.port)
        self.assertEqual(r.open("GET", "/v1/streams/" + sid, None,
                                dict(a, **{"Last-Event-ID": seen[-1][0]})), 200)
        seen += r.rest()
        r.close()
        toks = [token_of(e[1]) for e in seen]
        self.assertEqual(toks[1:], [" w%d" % i for i in range(20)] + ["[DONE]"])


if __name__ == "__main__":
    unittest.main()
