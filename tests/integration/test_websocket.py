"""WebSocket (GET /v1/stream) through sluice: a chat request as a text
message, each token event back as a text message, then {"type":"done"};
cancel; errors; one stream at a time; ping/pong heartbeat; the close codes
of protocol errors, unmasked frames, binary and oversize messages; Origin
checked against [cors]; drain.  The client is written here, frame by frame,
so that it can also send what a browser never would."""

import base64
import hashlib
import json
import os
import signal
import socket
import struct
import time
import unittest

from harness import SluiceTest, chat_body, wait_for

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WS:
    def __init__(self, port, headers=None, timeout=20.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        h = {"Host": "sluice", "Upgrade": "websocket", "Connection": "Upgrade",
             "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}
        h.update(headers or {})
        req = "GET /v1/stream HTTP/1.1\r\n" + "".join(
            "%s: %s\r\n" % kv for kv in h.items() if kv[1] is not None) + "\r\n"
        self.sock.sendall(req.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            b = self.sock.recv(65536)
            if not b:
                break
            self.buf += b
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, v in
                        (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        self.accept_ok = self.headers.get("sec-websocket-accept") == base64.b64encode(
            hashlib.sha1((key + GUID).encode()).digest()).decode()
        if self.status != 101:
            # the error body (Content-Length)
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                b = self.sock.recv(65536)
                if not b:
                    break
                self.buf += b
            self.body = self.buf[:n]

    def send(self, payload, opcode=1, mask=True, fin=True):
        if isinstance(payload, str):
            payload = payload.encode()
        b0 = (0x80 if fin else 0) | opcode
        n = len(payload)
        if n < 126:
            hdr = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
        if mask:
            k = os.urandom(4)
            payload = bytes(b ^ k[i % 4] for i, b in enumerate(payload))
            hdr += k
        self.sock.sendall(hdr + payload)

    def _need(self, n):
        while len(self.buf) < n:
            b = self.sock.recv(65536)
            if not b:
                raise EOFError
            self.buf += b

    def recv(self):
        """(opcode, payload) of the next frame; server frames are unmasked."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "server frames must not be masked"
        n, off = b1 & 0x7f, 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(off + n)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return b0 & 0x0f, payload

    def messages(self, until_type=("done", "error", "cancelled"), limit=100000):
        """Text messages as parsed JSON, until one of the given types."""
        out = []
        for _ in range(limit):
            op, p = self.recv()
            if op == 9:  # ping: answer as a browser does
                self.send(p, opcode=10)
                continue
            if op == 8:
                raise AssertionError("closed: %r" % p)
            assert op == 1, op
            m = json.loads(p)
            out.append(m)
            if m.get("type") in until_type:
                return out
        return out

    def close_code(self):
        """Reads until a close frame; its status code."""
        while True:
            op, p = self.recv()
            if op == 8:
                return struct.unpack("!H", p[:2])[0] if len(p) >= 2 else None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def tokens(msgs):
    return [m["choices"][0]["delta"]["content"] for m in msgs
            if m.get("choices") and m["choices"][0].get("delta", {}).get("content")]


class WebSocketTest(SluiceTest):
    workers = 1
    sim_args = ("--ttft-ms", "2", "--itl-ms", "2", "--tokens", "6")
    sluice_conf = {"websocket": {"ping_interval": "1s", "pong_timeout": "1s",
                                 "max_message": "4k"},
                   "cors": {"allow_origins": "https://app.example.com"}}

    def req(self, tokens=None, **extra):
        b = json.loads(chat_body(False, **extra))
        del b["stream"]  # sluice makes it a stream
        if tokens is not None:
            b["max_tokens"] = tokens
        return json.dumps(b)

    def test_handshake_and_a_stream(self):
        m0 = self.sluice.metrics()
        ws = WS(self.sluice.port)
        try:
            self.assertEqual(ws.status, 101)
            self.assertTrue(ws.accept_ok)
            ws.send(self.req())
            msgs = ws.messages()
            self.assertEqual(msgs[-1], {"type": "done"})
            self.assertEqual(tokens(msgs), [" w%d" % i for i in range(6)])
            # the same connection serves the next request
            ws.send(self.req())
            msgs = ws.messages()
            self.assertEqual(tokens(msgs), [" w%d" % i for i in range(6)])
        finally:
            ws.close()
        m = self.sluice.metrics()
        self.assertEqual(m["sluice_websocket_connections_total"] -
                         m0["sluice_websocket_connections_total"], 1)
        self.assertEqual(m['sluice_websocket_messages_total{dir="in"}'] -
                         m0['sluice_websocket_messages_total{dir="in"}'], 2)
        self.assertGreaterEqual(m['sluice_websocket_messages_total{dir="out"}'] -
                                m0['sluice_websocket_messages_total{dir="out"}'], 16)

    def test_errors_come_as_messages(self):
        ws = WS(self.sluice.port)
        try:
            ws.send("{not json")
            m = ws.messages()[-1]
            self.assertEqual(m["type"], "error")
            self.assertEqual(m["status"], 400)
            self.assertEqual(m["error"]["code"], "invalid_json")
            ws.send(json.dumps({"model": "llmsim-1"}))
            m = ws.messages()[-1]
            self.assertEqual((m["status"], m["error"]["code"]), (400, "missing_field"))
            ws.send(json.dumps({"type": "cancel"}))
            m = ws.messages()[-1]
            self.assertEqual(m["error"]["code"], "no_stream")
            # still serving
            ws.send(self.req())
            self.assertEqual(ws.messages()[-1], {"type": "done"})
        finally:
            ws.close()

    def test_one_stream_at_a_time(self):
        ws = WS(self.sluice.port)
        try:
            ws.send(self.req())
            ws.send(self.req())
            msgs = ws.messages(until_type=("done",))
            errs = [m for m in msgs if m.get("type") == "error"]
            self.assertEqual(len(errs), 1, msgs)
            self.assertEqual(errs[0]["error"]["code"], "stream_in_progress")
            self.assertEqual(tokens(msgs), [" w%d" % i for i in range(6)])
        finally:
            ws.close()

    def test_ping_and_pong_timeout(self):
        ws = WS(self.sluice.port)
        try:
            op, p = ws.recv()  # after 1 s of silence
            self.assertEqual(op, 9)
            ws.send(p, opcode=10)
            op, p = ws.recv()  # and again a second later
            self.assertEqual(op, 9)
            # no pong this time: closed with 1011
            self.assertEqual(ws.close_code(), 1011)
        finally:
            ws.close()

    def test_protocol_errors_close_with_their_codes(self):
        cases = [
            (lambda ws: ws.send(self.req(), mask=False), 1002),  # unmasked
            (lambda ws: ws.send(b"\x00\x01", opcode=2), 1003),  # binary
            (lambda ws: ws.send("x" * 5000), 1009),  # over max_message
            (lambda ws: ws.send("x", opcode=3), 1002),  # reserved opcode
        ]
        for act, code in cases:
            ws = WS(self.sluice.port)
            try:
                act(ws)
                self.assertEqual(ws.close_code(), code)
            finally:
                ws.close()
        # the worker still serves
        ws = WS(self.sluice.port)
        try:
            ws.send(self.req())
            self.assertEqual(ws.messages()[-1], {"type": "done"})
        finally:
            ws.close()

    def test_fragmented_message(self):
        ws = WS(self.sluice.port)
        try:
            r = self.req()
            ws.send(r[:10], opcode=1, fin=False)
            ws.send(r[10:], opcode=0, fin=True)
            self.assertEqual(tokens(ws.messages()), [" w%d" % i for i in range(6)])
        finally:
            ws.close()

    def test_bad_handshakes(self):
        ws = WS(self.sluice.port, {"Sec-WebSocket-Version": "8"})
        self.assertEqual(ws.status, 400)
        ws.close()
        ws = WS(self.sluice.port, {"Upgrade": None, "Connection": None})
        self.assertEqual(ws.status, 400)
        self.assertIn("WebSocket", json.loads(ws.body)["error"]["message"])
        ws.close()
        ws = WS(self.sluice.port, {"Origin": "https://evil.example"})
        self.assertEqual(ws.status, 403)
        ws.close()
        ws = WS(self.sluice.port, {"Origin": "https://app.example.com"})
        self.assertEqual(ws.status, 101)
        ws.close()


class WebSocketCancelTest(SluiceTest):
    """{"type":"cancel"} in the middle of a long stream: "cancelled" comes
    back, the backend request is cancelled, the connection serves on."""
    workers = 1
    sim_args = ("--ttft-ms", "2", "--itl-ms", "5", "--tokens", "100000")

    def test_cancel_stops_the_upstream(self):
        before = self.sim.stats()
        m0 = self.sluice.metrics()
        ws = WS(self.sluice.port)
        try:
            ws.send(json.dumps({"model": "llmsim-1",
                                "messages": [{"role": "user", "content": "hi"}]}))
            got = 0
            while got < 5:
                op, p = ws.recv()
                self.assertEqual(op, 1)
                got += 1
            ws.send(json.dumps({"type": "cancel"}))
            msgs = ws.messages(until_type=("cancelled", "done", "error"))
            self.assertEqual(msgs[-1], {"type": "cancelled"})
            wait_for(lambda: self.sim.stats()["aborted"] > before["aborted"], 10,
                     "upstream cancel")
            m = self.sluice.metrics()
            self.assertGreater(m["sluice_upstream_cancellations_total"],
                               m0["sluice_upstream_cancellations_total"])
            # the connection goes on: another request, cancelled too
            ws.send(json.dumps({"model": "llmsim-1",
                                "messages": [{"role": "user", "content": "hi"}]}))
            op, p = ws.recv()
            self.assertEqual(op, 1)
            self.assertIn("choices", json.loads(p))
            ws.send(json.dumps({"type": "cancel"}))
            self.assertEqual(ws.messages(until_type=("cancelled",))[-1], {"type": "cancelled"})
        finally:
            ws.close()


class WebSocketAuthTest(SluiceTest):
    workers = 1
    sim_args = ("--ttft-ms", "1", "--itl-ms", "1", "--tokens", "2")
    sluice_conf = {"auth": {"enabled": "true"},
                   "tenant t1": {"key_sha256": hashlib.sha256(b"sk-ws").hexdigest()}}

    def test_upgrade_needs_a_key_and_requests_use_it(self):
        ws = WS(self.sluice.port)
        self.assertEqual(ws.status, 401)
        ws.close()
        ws = WS(self.sluice.port, {"Authorization": "Bearer sk-ws"})
        try:
            self.assertEqual(ws.status, 101)
            ws.send(json.dumps({"model": "llmsim-1",
                                "messages": [{"role": "user", "content": "hi"}]}))
            msgs = ws.messages()
            self.assertEqual(msgs[-1], {"type": "done"})
            self.assertEqual(tokens(msgs), [" w0", " w1"])
        finally:
            ws.close()


class WebSocketDrainTest(SluiceTest):
    workers = 1
    sim_args = ("--ttft-ms", "5", "--itl-ms", "20", "--tokens", "40")

    def test_drain_finishes_the_stream_then_closes_1001(self):
        ws = WS(self.sluice.port)
        try:
            ws.send(json.dumps({"model": "llmsim-1",
                                "messages": [{"role": "user", "content": "hi"}]}))
            op, p = ws.recv()
            self.assertEqual(op, 1)
            self.sluice.p.send_signal(signal.SIGTERM)
            msgs = ws.messages()
            self.assertEqual(msgs[-1], {"type": "done"})
            self.assertEqual(len(tokens([json.loads(p)] + msgs)), 40)
            self.assertEqual(ws.close_code(), 1001)
        finally:
            ws.close()
        self.sluice.p.wait(timeout=20)


if __name__ == "__main__":
    unittest.main()
