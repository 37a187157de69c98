"""TLS (wolfSSL) through sluice: HTTP/1.1 and h2 by ALPN, the http2_transport
rollout in ALPN, session tickets, WebSocket over TLS, bad input, a clear
error for a bad or mismatched certificate at start and at reload, and a new
certificate on SIGHUP without dropping the streams already open.  The tests
make their own self-signed certificates with openssl."""

import json
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import (CHAT, SLUICE, Llmsim, Sluice, SluiceTest, chat_body, free_port, set_rollout,
                     sse_events, tokens_of, wait_for)



def make_cert(d, name, cn="localhost"):
    cert, key = os.path.join(d, name + ".pem"), os.path.join(d, name + "-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


CERT_DIR = tempfile.mkdtemp(prefix="sluice-tls-")


CERT, KEY = make_cert(CERT_DIR, "a")
TLS_PORT = free_port()


def client_ctx(alpn=("h2", "http/1.1")):
    ctx = ssl.create_default_context(cafile=CERT)
    ctx.check_hostname = True
    ctx.set_alpn_protocols(list(alpn))
    return ctx


def tls_conn(port, alpn=("http/1.1",), session=None, ctx=None):
    ctx = ctx or client_ctx(alpn)
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    return ctx.wrap_socket(s, server_hostname="localhost", session=session)


def read_all(t):
    out = b""
    while True:
        try:
            b = t.recv(65536)
        except (ssl.SSLError, OSError):
            break
        if not b:
            break
        out += b
    return out


def curl(*args):
    p = subprocess.run(["curl", "-sS", "-N", "--max-time", "30", "--cacert", CERT, *args],
                       capture_output=True, timeout=40)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def url(path=CHAT):
    return "https://localhost:%d%s" % (TLS_PORT, path)


def resolve():
    return "--resolve", "localhost:%d:127.0.0.1" % TLS_PORT


class TlsTest(SluiceTest):
    workers = 2
    sim_args = ("--ttft-ms", "2", "--itl-ms", "2", "--tokens", "6")
    sluice_conf = {"server": {"tls_listen": "127.0.0.1:%d" % TLS_PORT, "tls_cert": CERT,
                              "tls_key": KEY}}

    def test_http11_over_tls(self):
        rc, out, err = curl(*resolve(), "--http1.1", "-D", "-", "-d", chat_body(), url())
        self.assertEqual(rc, 0, err)
        head, _, body = out.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        self.assertEqual(tokens_of(sse_events(body)), [" w%d" % i for i in range(6)])

    def test_h2_by_alpn(self):
        rc, out, err = curl(*resolve(), "--http2", "-D", "-", "-d", chat_body(), url())
        self.assertEqual(rc, 0, err)
        head, _, body = out.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/2 200"), head)
        self.assertEqual(tokens_of(sse_events(body)), [" w%d" % i for i in range(6)])
        t = tls_conn(TLS_PORT, alpn=("h2", "http/1.1"))
        try:
            self.assertEqual(t.selected_alpn_protocol(), "h2")
            self.assertIn(t.version(), ("TLSv1.3", "TLSv1.2"))
        finally:
            t.close()

    def test_h2load_over_tls(self):
        body = os.path.join(CERT_DIR, "body.json")
        with open(body, "w") as f:
            f.write(chat_body())
        p = subprocess.run(["h2load", "-n", "60", "-c", "3", "-m", "10", "-d", body,
                            "https://127.0.0.1:%d%s" % (TLS_PORT, CHAT)],
                           capture_output=True, text=True, timeout=60)
        self.assertIn("60 succeeded", p.stdout, p.stdout + p.stderr)
        self.assertIn("Application protocol: h2", p.stdout)

    def test_session_tickets_resume(self):
        ctx = client_ctx(("http/1.1",))
        t = tls_conn(TLS_PORT, ctx=ctx)
        t.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertIn(b'{"status":"ok"}', read_all(t))
        sess = t.session
        t.close()
        m0 = self.sluice.metrics()
        # two workers: whichever takes the connection can open the ticket
        for _ in range(4):
            t = tls_conn(TLS_PORT, ctx=ctx, session=sess)
            try:
                self.assertTrue(t.session_reused)
            finally:
                t.close()
        wait_for(lambda: self.sluice.metrics()["sluice_tls_resumed_total"] -
                 m0["sluice_tls_resumed_total"] >= 4, 5, "resumptions counted")

    def test_websocket_over_tls(self):
        import base64
        t = tls_conn(TLS_PORT)
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            t.sendall(("GET /v1/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n" % key).encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += t.recv(4096)
            self.assertTrue(buf.startswith(b"HTTP/1.1 101"), buf)
            msg = json.dumps({"model": "llmsim-1",
                              "messages": [{"role": "user", "content": "hi"}]}).encode()
            mask = os.urandom(4)
            self.assertLess(len(msg), 126)  # one length byte (lengths are minimal)
            t.sendall(bytes([0x81, 0x80 | len(msg)]) + mask +
                      bytes(b ^ mask[i % 4] for i, b in enumerate(msg)))
            buf = buf.partition(b"\r\n\r\n")[2]
            deadline = time.monotonic() + 15
            while b'{"type":"done"}' not in buf and time.monotonic() < deadline:
                buf += t.recv(65536)
            self.assertIn(b'{"type":"done"}', buf)
            self.assertIn(b'" w5"', buf)
        finally:
            t.close()

    def test_garbage_and_plaintext_on_the_tls_port(self):
        for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\xff\xff" + b"\0" * 64):
            s = socket.create_connection(("127.0.0.1", TLS_PORT), timeout=10)
            try:
                s.sendall(junk)
                s.settimeout(10)
                try:
                    while s.recv(4096):
                        pass
                except ConnectionResetError:
                    pass
            finally:
                s.close()
        rc, out, err = curl(*resolve(), "--http1.1", "-d", chat_body(), url())
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(tokens_of(sse_events(out))), 6)
        self.assertGreaterEqual(self.sluice.metrics()["sluice_tls_failures_total"], 2)

    def test_tls12_refused_by_default(self):
        ctx = client_ctx(("http/1.1",))
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with self.assertRaises((ssl.SSLError, ConnectionResetError)):
            tls_conn(TLS_PORT, ctx=ctx).close()
        t = tls_conn(TLS_PORT)
        try:
            self.assertEqual(t.version(), "TLSv1.3")
        finally:
            t.close()

    def test_plain_port_still_serves(self):
        r = self.chat(headers={"X-Sim-Tokens": "2"})
        self.assertEqual(tokens_of(sse_events(r.body)), [" w0", " w1"])


class TlsRolloutTest(SluiceTest):
    """http2_transport at 0 %: ALPN offers only http/1.1."""
    workers = 1
    sim_args = ("--ttft-ms", "1", "--itl-ms", "1", "--tokens", "2")
    port = free_port()
    sluice_conf = {"server": {"tls_listen": "127.0.0.1:%d" % port, "tls_cert": CERT,
                              "tls_key": KEY},
                   "rollout": {"http2_transport": "0"}}

    def test_alpn_follows_the_rollout(self):
        t = tls_conn(self.port, alpn=("h2", "http/1.1"))
        try:
            self.assertEqual(t.selected_alpn_protocol(), "http/1.1")
        finally:
            t.close()
        set_rollout(self.sluice, "http2_transport", 100)
        t = tls_conn(self.port, alpn=("h2", "http/1.1"))
        try:
            self.assertEqual(t.selected_alpn_protocol(), "h2")
        finally:
            t.close()


class Tls12Test(SluiceTest):
    """tls_min_version = 1.2: older clients get TLS 1.2 and are served."""
    workers = 1
    sim_args = ("--ttft-ms", "1", "--itl-ms", "1", "--tokens", "2")
    port = free_port()
    sluice_conf = {"server": {"tls_listen": "127.0.0.1:%d" % port, "tls_cert": CERT,
                              "tls_key": KEY, "tls_min_version": "1.2"}}

    def test_tls12_client_served(self):
        ctx = client_ctx(("http/1.1",))
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        t = tls_conn(self.port, ctx=ctx)
        try:
            self.assertEqual(t.version(), "TLSv1.2")
            t.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            self.assertIn(b'{"status":"ok"}', read_all(t))
        finally:
            t.close()


class TlsCertErrorsTest(unittest.TestCase):
    """A bad or mismatched certificate: a clear error at start (sluice exits
    non-zero), and at reload (the old config and certificate stay)."""

    def start(self, cert, key, port):
        conf = tempfile.mktemp(suffix=".ini")
        d = tempfile.mkdtemp()
        with open(conf, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:%d\nadmin_listen = 127.0.0.1:%d\n"
                    "tls_listen = 127.0.0.1:%d\ntls_cert = %s\ntls_key = %s\nworkers = 1\n"
                    "control_socket = %s/ctl.sock\nstate_dir = %s\n"
                    "[backend sim]\nurl = http://127.0.0.1:9\n"
                    % (free_port(), free_port(), port, cert, key, d, d))
        return conf

    def test_bad_and_mismatched_at_start(self):
        other_cert, other_key = make_cert(CERT_DIR, "other")
        junk = os.path.join(CERT_DIR, "junk.pem")
        with open(junk, "w") as f:
            f.write("not a certificate\n")
        for cert, key, want in ((junk, KEY, "tls_cert"), (CERT, junk, "tls_key"),
                                (CERT, other_key, "does not match")):
            conf = self.start(cert, key, free_port())
            p = subprocess.run([SLUICE, "--config", conf], capture_output=True, text=True,
                               timeout=30)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(want, p.stdout + p.stderr)

    def test_reload_takes_a_new_certificate_and_keeps_streams(self):
        sim = Llmsim("--ttft-ms", "5", "--itl-ms", "50", "--tokens", "40")
        port = free_port()
        d = tempfile.mkdtemp()
        live_cert, live_key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        new_cert, new_key = make_cert(d, "new")
        for src, dst in ((CERT, live_cert), (KEY, live_key)):
            with open(src) as f, open(dst, "w") as g:
                g.write(f.read())
        s = Sluice(sim.port, {"server": {"tls_listen": "127.0.0.1:%d" % port,
                                         "tls_cert": live_cert, "tls_key": live_key}}, workers=1)
        try:
            def peer_cert():
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
                try:
                    return t.getpeercert(binary_form=True)
                finally:
                    t.close()
            first = peer_cert()
            # a stream open across the reload
            t = tls_conn(port)
            t.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                       % (CHAT, len(chat_body()), chat_body())).encode())
            got = t.recv(65536)
            self.assertIn(b"200", got)
            # a broken key first: refused, the old certificate stays
            with open(live_key, "w") as f:
                f.write("broken\n")
            s.send_signal(signal.SIGHUP)
            wait_for(lambda: "tls_key" in s.output(), 10, "reload refused")
            self.assertEqual(peer_cert(), first)
            # then the new pair: new connections get it
            for src, dst in ((new_cert, live_cert), (new_key, live_key)):
                with open(src) as f, open(dst, "w") as g:
                    g.write(f.read())
            s.send_signal(signal.SIGHUP)
            wait_for(lambda: peer_cert() != first, 15, "new certificate served")
            # the old stream went on to its end
            body = got + read_all(t)
            t.close()
            self.assertEqual(len(tokens_of(sse_events(body.partition(b"\r\n\r\n")[2]))), 40)
        finally:
            s.stop()
            sim.stop()


if __name__ == "__main__":
    unittest.main()
