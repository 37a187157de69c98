"""Integration-test harness: starts llmsim and sluice on free loopback ports
and talks to them with raw sockets, so tests assert on the exact bytes.

Standard library only (no PyPI on the build machines).  Binaries come from
the environment that `meson test` sets: SLUICE, LLMSIM, LLMLOAD.
"""

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import unittest

SLUICE = os.environ.get("SLUICE", "build/supervisor/sluice")
LLMSIM = os.environ.get("LLMSIM", "build/perf/llmsim/llmsim")
LLMLOAD = os.environ.get("LLMLOAD", "build/perf/loadgen/llmload")

CHAT = "/v1/chat/completions"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            v = pred()
            if v:
                return v
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


class Proc:
    """A child process whose output goes to a log file we can read."""

    def __init__(self, argv, name):
        self.log = tempfile.NamedTemporaryFile(prefix=name + "-", suffix=".log", delete=False)
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        self.name = name

    def output(self):
        with open(self.log.name, "r", errors="replace") as f:
            return f.read()

    def send_signal(self, sig):
        self.p.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


def check_exit(proc, rc, ok=(0, None)):
    """A stopped process (sluice, llmsim) fails the test class when it
    printed a sanitizer report or exited with a status not in <ok>."""
    out = proc.output()
    for bad in SANITIZER_MARKS:
        if bad in out:
            raise AssertionError("sanitizer report in %s output:\n%s" % (proc.name, out[-8000:]))
    if rc not in ok:
        raise AssertionError("%s exited with %s:\n%s" % (proc.name, rc, out[-4000:]))


class Llmsim(Proc):
    def __init__(self, *args, port=0):
        self.port_file = tempfile.mktemp(prefix="llmsim-port-")
        super().__init__([LLMSIM, "--listen", "127.0.0.1:%d" % port, "--port-file",
                          self.port_file, "--quiet", *args], "llmsim")
        self.port = int(wait_for(lambda: _read_nonempty(self.port_file), what="llmsim port"))

    def stats(self):
        st, _, body = request("127.0.0.1", self.port, "GET", "/stats")
        assert st == 200, body
        return json.loads(body)


def _read_nonempty(path):
    try:
        with open(path) as f:
            s = f.read().strip()
            return s or None
    except FileNotFoundError:
        return None


class Sluice(Proc):
    """sluice with a generated config; extra sections/keys via `conf`."""

    def __init__(self, backend_port, conf=None, workers=2):
        """backend_port None: no [backend sim]; `conf` names the backends."""
        self.port = free_port()
        self.admin_port = free_port()
        self.dir = tempfile.mkdtemp(prefix="sluice-test-")
        self.control_socket = os.path.join(self.dir, "control.sock")
        self.state_dir = os.path.join(self.dir, "state")
        sections = {
            "server": {
                "listen": "127.0.0.1:%d" % self.port,
                "admin_listen": "127.0.0.1:%d" % self.admin_port,
                "control_socket": self.control_socket,
                "state_dir": self.state_dir,
                "workers": str(workers),
                "log_level": "info",
                "drain_timeout": "10s",
            },
        }
        if backend_port is not None:
            sections["backend sim"] = {"url": "http://127.0.0.1:%d" % backend_port}
        for sec, kv in (conf or {}).items():
            sections.setdefault(sec, {}).update(kv)
        self.conf_path = tempfile.mktemp(prefix="sluice-", suffix=".ini")
        self.write_config(sections)
        self.sections = sections
        self.workers = workers
        super().__init__([SLUICE, "--config", self.conf_path], "sluice")
        self.wait_ready()

    def write_config(self, sections):
        with open(self.conf_path, "w") as f:
            for sec, kv in sections.items():
                f.write("[%s]\n" % sec)
                for k, v in kv.items():
                    f.write("%s = %s\n" % (k, v))

    def wait_ready(self, timeout=15):
        def ready():
            if self.p.poll() is not None:
                raise AssertionError("sluice exited: " + self.output())
            st, _, _ = request("127.0.0.1", self.admin_port, "GET", "/readyz", timeout=2)
            return st == 200
        wait_for(ready, timeout, "sluice /readyz")

    def metrics(self):
        st, _, body = request("127.0.0.1", self.admin_port, "GET", "/metrics")
        assert st == 200
        return parse_metrics(body.decode())

    def status(self):
        st, _, body = request("127.0.0.1", self.admin_port, "GET", "/status")
        assert st == 200
        return json.loads(body)

    def worker_pids(self):
        return sorted(w["pid"] for w in self.status()["workers"] if not w["draining"])


SLUICECTL = os.environ.get("SLUICECTL", "build/supervisor/sluicectl")


def ctl(sluice, *args, socket=None):
    """(exit code, stdout, stderr) of sluicectl against this sluice."""
    p = subprocess.run([SLUICECTL, "--socket", socket or sluice.control_socket, *args],
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def set_rollout(sluice, feature, pct):
    """Sets a feature's rollout and waits until the control plane shows it."""
    rc, out, err = ctl(sluice, "rollout", "set", feature, str(pct))
    assert rc == 0, (rc, out, err)
    wait_for(lambda: sluice.metrics().get(
        'sluice_rollout_percent{feature="%s"}' % feature) == pct, 5, "rollout applied")


def parse_metrics(text):
    """{'name{labels}': value} for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        k, v = line.rsplit(" ", 1)
        out[k] = float(v)
    return out


def chat_body(stream=True, **extra):
    b = {"model": "llmsim-1", "messages": [{"role": "user", "content": "hello"}],
         "stream": stream}
    b.update(extra)
    return json.dumps(b)


def raw(host, port, data, timeout=10.0, read_until_close=True):
    """Sends bytes, returns everything read until the peer closes."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data if isinstance(data, bytes) else data.encode())
        chunks = []
        if not read_until_close:
            return s.recv(65536)
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)


class Response:
    def __init__(self, status, headers, body, raw_body):
        self.status = status
        self.headers = headers
        self.body = body
        self.raw_body = raw_body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())


class Conn:
    """A keep-alive HTTP/1.1 client connection that reads responses exactly
    (Content-Length, chunked, or until close), keeping leftover bytes."""

    def __init__(self, port, host="127.0.0.1", timeout=15.0):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self._b = bytearray()
        self._off = 0

    @property
    def buf(self):
        return bytes(self._b[self._off:])

    @buf.setter
    def buf(self, v):
        self._b = bytearray(v)
        self._off = 0

    def close(self):
        self.s.close()

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def _fill(self):
        b = self.s.recv(262144)
        if not b:
            raise EOFError("connection closed")
        if self._off > 65536 and self._off * 2 > len(self._b):
            del self._b[:self._off]
            self._off = 0
        self._b += b

    def _line(self):
        while True:
            i = self._b.find(b"\r\n", self._off)
            if i >= 0:
                line = bytes(self._b[self._off:i])
                self._off = i + 2
                return line
            self._fill()

    def _exact(self, n):
        while len(self._b) - self._off < n:
            self._fill()
        out = bytes(self._b[self._off:self._off + n])
        self._off += n
        return out

    def read_head(self):
        line = self._line()
        m = re.match(rb"HTTP/1\.[01] (\d{3}) ?(.*)", line)
        assert m, "bad status line %r" % line
        headers = {}
        while True:
            h = self._line()
            if not h:
                break
            k, v = h.split(b":", 1)
            headers[k.decode().strip().lower()] = v.decode().strip()
        return int(m.group(1)), headers

    def read_response(self, on_chunk=None):
        while True:
            status, headers = self.read_head()
            if status >= 200:
                break
        raw_body = bytearray()
        body = bytearray()
        if status in (204, 304):
            pass  # no body, whatever the fields say (RFC 9112 6.3)
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size_line = self._line()
                raw_body += size_line + b"\r\n"
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                data = self._exact(size)
                assert self._exact(2) == b"\r\n"
                body += data
                if on_chunk:
                    on_chunk(data)
        elif "content-length" in headers:
            body = self._exact(int(headers["content-length"]))
        else:
            try:
                while True:
                    self._fill()
            except (EOFError, ConnectionResetError):
                pass
            body, self.buf = self.buf, b""
        return Response(status, headers, bytes(body), bytes(raw_body))

    def request(self, method, path, body=None, headers=None):
        self.send(build_request(method, path, body, headers))
        return self.read_response()


def build_request(method, path, body=None, headers=None, host="sluice"):
    h = {"Host": host}
    if body is not None:
        h["Content-Type"] = "application/json"
        h["Content-Length"] = str(len(body.encode() if isinstance(body, str) else body))
    h.update(headers or {})
    head = "%s %s HTTP/1.1\r\n" % (method, path)
    head += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
    data = head.encode()
    if body is not None:
        data += body.encode() if isinstance(body, str) else body
    return data


def request(host, port, method, path, body=None, headers=None, timeout=15.0):
    c = Conn(port, host, timeout)
    try:
        r = c.request(method, path, body, headers)
        return r.status, r.headers, r.body
    finally:
        c.close()


def sse_events(body):
    """Splits an SSE body into events: list of dicts of field -> list of values."""
    text = body.decode() if isinstance(body, bytes) else body
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    events = []
    for block in text.split("\n\n"):
        if not block.strip("\n"):
            continue
        ev = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            k, _, v = line.partition(":")
            if v.startswith(" "):
                v = v[1:]
            ev.setdefault(k, []).append(v)
        events.append(ev)
    return events


def tokens_of(events):
    out = []
    for ev in events:
        for d in ev.get("data", []):
            if d == "[DONE]":
                continue
            obj = json.loads(d)
            for ch in obj.get("choices", []):
                t = ch.get("delta", {}).get("content") if "delta" in ch else ch.get("text")
                if t:
                    out.append(t)
    return out


class SluiceTest(unittest.TestCase):
    """Starts one llmsim and one sluice per test class."""

    sim_args = ("--ttft-ms", "10", "--itl-ms", "2", "--tokens", "20")
    sluice_conf = None
    workers = 2

    @classmethod
    def setUpClass(cls):
        cls.sim = Llmsim(*cls.sim_args)
        try:
            cls.sluice = Sluice(cls.sim.port, cls.sluice_conf, cls.workers)
        except Exception:
            cls.sim.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        rc = cls.sluice.stop()
        cls.sim.stop()
        check_exit(cls.sluice, rc)

    def conn(self):
        return Conn(self.sluice.port)

    def chat(self, stream=True, headers=None, path=CHAT, **extra):
        c = self.conn()
        try:
            return c.request("POST", path, chat_body(stream, **extra), headers)
        finally:
            c.close()
