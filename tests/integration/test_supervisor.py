"""The supervisor: restarting dead children, reloading on SIGHUP, draining on
SIGTERM, and the command line.

Where an expectation comes from:
  - DESIGN.md "Processes": the supervisor restarts a child that dies, reloads
    on SIGHUP (a bad config is refused and the old one kept), drains
    gracefully on SIGTERM; workers keep serving without the control plane;
  - shared/shm.h: counters never go backwards across a restart, a dead
    worker's gauges vanish with it;
  - shared/config.h and DESIGN.md "Config": `--check-config` prints every
    error as FILE:LINE: and exits non-zero; supervisor/main.c: exit statuses
    (1 for a bad config, 2 for a bad command line, 0 for --help);
  - [server] drain_timeout: "how long draining workers may keep serving on
    reload or shutdown".
"""

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (CHAT, SANITIZER_MARKS, SLUICE, Conn, Llmsim, Sluice, SluiceTest, build_request, chat_body,
                     request, sse_events, tokens_of, wait_for)



def expected_tokens(n):
    return [" w%d" % i for i in range(n)]


def children_of(ppid):
    """Pids whose parent is ppid (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[1]) == ppid:
            out.append(int(d))
    return sorted(out)


def wait_until(pred, timeout, what):
    """wait_for, where an admin or client request that fails (the process
    answering it may just have been killed) counts as "not yet"."""
    def safe():
        try:
            return pred()
        except (OSError, EOFError, ValueError):
            return None
    return wait_for(safe, timeout, what)


def try_or_none(fn):
    try:
        return fn()
    except (OSError, AssertionError, ValueError, EOFError):
        return None


def totals(m):
    """(sum of sluice_requests_total over codes, sluice_tokens_total)."""
    req = sum(v for k, v in m.items() if k.startswith("sluice_requests_total{"))
    return req, m["sluice_tokens_total"]


def render(sections):
    """Config lines for sections, in order (so line numbers are known)."""
    lines = []
    for sec, kv in sections.items():
        lines.append("[%s]" % sec)
        for k, v in kv.items():
            lines.append("%s = %s" % (k, v))
    return lines


def write_lines(path, lines):
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


class StreamReader(threading.Thread):
    """One streaming request on its own connection, read to its end (or to
    the connection's end) in a thread; keeps every byte of the body."""

    def __init__(self, port, tokens, itl_ms):
        super().__init__(daemon=True)
        self.port = port
        self.ntok = tokens
        self.itl = itl_ms
        self.data = b""
        self.first = threading.Event()
        self.response = None
        self.error = None

    def run(self):
        c = None
        try:
            c = Conn(self.port, timeout=60)
            c.send(build_request("POST", CHAT, chat_body(),
                                 {"X-Sim-Tokens": str(self.ntok), "X-Sim-ITL-Ms": str(self.itl)}))

            def on_chunk(d):
                self.data += d
                self.first.set()
            self.response = c.read_response(on_chunk)
        except Exception as e:  # noqa: BLE001 - the test looks at it
            self.error = e
        finally:
            self.first.set()
            if c:
                c.close()

    def tokens(self):
        """Tokens of the complete events received (a cut stream may end
        inside an event)."""
        data = self.data
        cut = data.rfind(b"\n\n")
        data = data[:cut + 2] if cut >= 0 else b""
        return tokens_of(sse_events(data))

    def whole(self):
        if self.error is not None or self.response is None or self.response.status != 200:
            return False
        evs = sse_events(self.response.body)
        return (tokens_of(evs) == expected_tokens(self.ntok) and evs
                and evs[-1].get("data") == ["[DONE]"])

    def describe(self):
        st = self.response.status if self.response else None
        return "status=%s error=%r tokens=%d" % (st, self.error, len(self.tokens()))


def good_request(port, tokens=3):
    """One streaming request on a new connection; returns an error string or None."""
    try:
        c = Conn(port, timeout=30)
        try:
            r = c.request("POST", CHAT, chat_body(), {"X-Sim-Tokens": str(tokens)})
        finally:
            c.close()
    except Exception as e:  # noqa: BLE001
        return repr(e)
    if r.status != 200:
        return "status %d: %r" % (r.status, r.body[:300])
    evs = sse_events(r.body)
    if tokens_of(evs) != expected_tokens(tokens) or evs[-1].get("data") != ["[DONE]"]:
        return "broken stream %r" % r.body[:300]
    return None


class ClientLoop(threading.Thread):
    """Good requests back to back, each on a new connection, until stopped."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.ok = 0
        self.failures = []
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            err = good_request(self.port)
            if err:
                self.failures.append(err)
            else:
                self.ok += 1

    def stop(self):
        self.stop_ev.set()
        self.join(60)


def wait_workers_running(sluice, n=2, timeout=30):
    """/status lists exactly n workers, none draining, each with its pid and
    a heartbeat (its event loop runs).  /readyz alone is not enough: it
    counts a worker as soon as its slot is claimed, before the fork."""
    def ok():
        ws = sluice.status()["workers"]
        return (len(ws) == n and all(w["pid"] > 0 and w["heartbeat_age_ms"] >= 0
                                     and not w["draining"] for w in ws) and ws)
    return wait_until(ok, timeout, "%d running workers" % n)


def check_no_sanitizer_report(tc, out):
    for bad in SANITIZER_MARKS:
        if bad in out:
            tc.fail("sanitizer report in sluice output:\n" + out[-8000:])


# ---------------------------------------------------------------------------
# (a), (f), (g): children killed with SIGKILL
# ---------------------------------------------------------------------------

class RestartTest(SluiceTest):
    workers = 2

    def workers_status(self):
        return [w for w in self.sluice.status()["workers"]]

    def wait_both_workers(self, timeout=30):
        return wait_workers_running(self.sluice, 2, timeout)

    def wait_ready(self):
        wait_until(lambda: request("127.0.0.1", self.sluice.admin_port, "GET", "/readyz",
                                 timeout=5)[0] == 200, 30, "/readyz 200")

    def test_killed_worker_is_restarted_and_other_streams_complete(self):
        ntok, itl = 100, 50  # 5 s per stream: all still running at the kill
        self.wait_both_workers()
        readers = []

        def per_worker():
            return {w["pid"]: w["streams"] for w in self.workers_status()}
        for _ in range(40):
            r = StreamReader(self.sluice.port, ntok, itl)
            r.start()
            readers.append(r)
            n = len(readers)
            wait_until(lambda: sum(per_worker().values()) == n, 30, "stream %d registered" % n)
            pw = per_worker()
            if n >= 6 and len(pw) == 2 and min(pw.values()) >= 2:
                break
        else:
            self.fail("40 connections did not reach both workers: %r" % per_worker())
        ws = self.workers_status()
        victim = next(w for w in ws if w["streams"] >= 2)
        other = next(w for w in ws if w["pid"] != victim["pid"])
        self.assertEqual(victim["streams"] + other["streams"], len(readers))
        self.assertFalse([r for r in readers if not r.is_alive()],
                         "a stream ended before the kill")

        os.kill(victim["pid"], signal.SIGKILL)
        for r in readers:
            r.join(120)
            self.assertFalse(r.is_alive(), "a stream hung after the kill")

        whole = [r for r in readers if r.whole()]
        cut = [r for r in readers if not r.whole()]
        self.assertEqual(len(whole), other["streams"],
                         "streams on the surviving worker must complete whole: "
                         + "; ".join(r.describe() for r in cut))
        self.assertEqual(len(cut), victim["streams"])
        for r in cut:
            # cut, but never corrupted: what arrived is a prefix, in order
            self.assertIsNotNone(r.error, r.describe())
            toks = r.tokens()
            self.assertEqual(toks, expected_tokens(ntok)[:len(toks)])
            self.assertLess(len(toks), ntok)

        # the supervisor restarts it: old pid gone, a new one for that worker
        def restarted():
            ws = self.workers_status()
            pids = [w["pid"] for w in ws]
            mine = [w for w in ws if w["worker"] == victim["worker"]]
            return (victim["pid"] not in pids and len(ws) == 2 and len(mine) == 1
                    and mine[0]["pid"] > 0 and mine[0]["pid"] != victim["pid"]
                    and not mine[0]["draining"])
        wait_until(restarted, 30, "worker %d restarted" % victim["worker"])
        self.wait_both_workers()
        self.assertIn(other["pid"], [w["pid"] for w in self.workers_status()])
        self.assertRegex(self.sluice.output(),
                         r"worker %d \(pid %d\) killed by signal 9[^\n]*restart"
                         % (victim["worker"], victim["pid"]))
        self.wait_ready()
        for _ in range(8):
            self.assertIsNone(good_request(self.sluice.port))
        # the dead worker's active streams vanished with it
        wait_until(lambda: self.sluice.metrics()["sluice_streams_active"] == 0, 30,
                 "sluice_streams_active back to 0")

    def test_counters_never_go_backwards_across_worker_kill(self):
        self.wait_both_workers()
        for _ in range(80):
            self.assertIsNone(good_request(self.sluice.port, 5))
            ws = self.workers_status()
            if len(ws) == 2 and all(w["tokens"] > 0 for w in ws):
                break
        else:
            self.fail("requests never reached both workers")
        victim = self.workers_status()[0]
        # one stream in flight on some worker while it happens
        reader = StreamReader(self.sluice.port, 30, 50)
        reader.start()
        reader.first.wait(30)
        prev = totals(self.sluice.metrics())
        first = prev
        os.kill(victim["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 60
        samples = 0
        while True:
            m = try_or_none(self.sluice.metrics)
            if m is not None:
                cur = totals(m)
                samples += 1
                self.assertGreaterEqual(cur[0], prev[0], "sluice_requests_total went backwards")
                self.assertGreaterEqual(cur[1], prev[1], "sluice_tokens_total went backwards")
                prev = cur
            ws = try_or_none(self.workers_status)
            pids = [w["pid"] for w in ws or []]
            if ws is not None and victim["pid"] not in pids and len(pids) == 2:
                break
            self.assertLess(time.monotonic(), deadline, "worker not restarted")
            time.sleep(0.01)
        reader.join(60)
        self.wait_both_workers()
        self.wait_ready()
        for _ in range(3):
            self.assertIsNone(good_request(self.sluice.port, 5))
        # a request is counted once its last byte is sent, which may be a
        # moment after the client has read it
        wait_until(lambda: totals(self.sluice.metrics())[0] >= first[0] + 3, 30,
                 "the 3 new requests counted")
        after = totals(self.sluice.metrics())
        self.assertGreaterEqual(after[0], prev[0])
        self.assertGreaterEqual(after[1], max(prev[1], first[1] + 15))
        self.assertGreater(samples, 0)

    def control_pid(self):
        workers = {w["pid"] for w in self.workers_status()}
        others = [p for p in children_of(self.sluice.p.pid) if p not in workers]
        return others[0] if len(others) == 1 else None

    def test_killed_control_plane_is_restarted_streams_unaffected(self):
        self.wait_both_workers()
        old = wait_until(self.control_pid, 30, "the control plane's pid")
        worker_pids = sorted(w["pid"] for w in self.workers_status())
        before = totals(self.sluice.metrics())
        readers = [StreamReader(self.sluice.port, 40, 50) for _ in range(4)]
        for r in readers:
            r.start()
        for r in readers:
            self.assertTrue(r.first.wait(30))
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: re.search(r"control plane \(pid %d\) killed by signal 9[^\n]*restart"
                                   % old, self.sluice.output()), 30,
                 "the supervisor's line about the control plane")
        new = wait_until(lambda: (lambda p: p if p and p != old else None)(self.control_pid()), 30,
                       "a new control plane")
        self.assertNotEqual(new, old)
        wait_until(lambda: try_or_none(self.sluice.metrics), 30, "/metrics answering again")
        after = totals(self.sluice.metrics())
        self.assertGreaterEqual(after[0], before[0])
        self.assertGreaterEqual(after[1], before[1])
        for r in readers:
            r.join(60)
            self.assertTrue(r.whole(), r.describe())
        # the workers were not touched
        self.assertEqual(sorted(w["pid"] for w in self.workers_status()), worker_pids)
        self.wait_ready()
        self.assertIsNone(good_request(self.sluice.port))
        wait_until(lambda: totals(self.sluice.metrics())[1] >= after[1] + 3, 30,
                 "the new request's tokens counted")


# ---------------------------------------------------------------------------
# (b) SIGHUP
# ---------------------------------------------------------------------------

class ReloadTest(SluiceTest):

    def setUp(self):
        wait_workers_running(self.sluice)

    def gen_pids(self):
        return sorted((w["generation"], w["pid"]) for w in self.sluice.status()["workers"])

    def keepalive_count(self, n):
        """Sends up to n requests on one connection; returns how many were
        served before the connection closed, asserting Connection: close
        comes exactly on the last one."""
        c = Conn(self.sluice.port)
        try:
            for i in range(n):
                r = c.request("POST", CHAT, chat_body(), {"X-Sim-Tokens": "2"})
                self.assertEqual(r.status, 200)
                self.assertEqual(tokens_of(sse_events(r.body)), expected_tokens(2))
                if (r.header("connection") or "").lower() == "close":
                    c.s.settimeout(15)
                    self.assertEqual(c.buf + c.s.recv(100), b"")
                    return i + 1
            return n
        finally:
            c.close()

    def test_bad_config_is_refused_and_old_one_kept(self):
        before = self.gen_pids()
        lines = render(self.sluice.sections)
        lines += ["[http]", "max_body_size = lots", "no_such_key = 1",
                  "keepalive_requests = 2"]
        bad1, bad2 = len(lines) - 2, len(lines) - 1
        write_lines(self.sluice.conf_path, lines)
        loop = ClientLoop(self.sluice.port)
        loop.start()
        try:
            self.sluice.send_signal(signal.SIGHUP)
            wait_until(lambda: "reload refused" in self.sluice.output(), 30, "reload refused")
            out = self.sluice.output()
            path = re.escape(self.sluice.conf_path)
            self.assertRegex(out, r"%s:%d: [^\n]*max_body_size" % (path, bad1))
            self.assertRegex(out, r"%s:%d: [^\n]*no_such_key" % (path, bad2))
            # a little traffic after the refusal
            n = loop.ok
            wait_until(lambda: loop.ok >= n + 10, 60, "requests after the refused reload")
        finally:
            loop.stop()
        self.assertEqual(loop.failures, [])
        self.assertEqual(self.sluice.p.poll(), None)
        self.assertEqual(self.gen_pids(), before, "the workers must be left alone")
        # still the old configuration: keepalive_requests is the default, not 2
        self.assertEqual(self.keepalive_count(4), 4)
        self.sluice.write_config(self.sluice.sections)  # leave a good file behind

    def test_fresh_connection_survives_reload(self):
        """A connection accepted just before a reload, whose first request is
        still on its way, is not an idle keep-alive connection (client.h:
        the drain "closes idle keep-alive connections and stops reusing the
        others"): its request is answered, then it closes."""
        c = Conn(self.sluice.port)
        try:
            def holder():
                ws = [w for w in self.sluice.status()["workers"] if w["connections"] > 0]
                return ws[0] if len(ws) == 1 and ws[0]["connections"] == 1 else None
            w = wait_until(holder, 30, "the connection accepted")
            self.sluice.write_config(self.sluice.sections)
            self.sluice.send_signal(signal.SIGHUP)

            def draining():
                ws = {x["pid"]: x for x in self.sluice.status()["workers"]}
                return w["pid"] not in ws or ws[w["pid"]]["draining"]
            wait_until(draining, 30, "the old worker draining")
            try:
                c.send(build_request("POST", CHAT, chat_body(), {"X-Sim-Tokens": "3"}))
                r = c.read_response()
            except (EOFError, ConnectionResetError, BrokenPipeError) as e:
                self.fail("the reload dropped a connection before its first request: %r" % e)
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(tokens_of(sse_events(r.body)), expected_tokens(3))
            self.assertEqual((r.header("connection") or "").lower(), "close")
        finally:
            c.close()
        wait_workers_running(self.sluice)

    def test_good_reload_under_load(self):
        before = self.gen_pids()
        self.assertEqual(self.keepalive_count(5), 5)
        old_gens = {g for g, _ in before}
        old_pids = {p for _, p in before}
        sections = json.loads(json.dumps(self.sluice.sections))
        sections.setdefault("http", {})["keepalive_requests"] = "3"
        self.sluice.write_config(sections)
        loops = [ClientLoop(self.sluice.port) for _ in range(4)]
        for loop in loops:
            loop.start()
        try:
            wait_until(lambda: all(loop.ok >= 5 for loop in loops), 60, "traffic before the reload")
            self.sluice.send_signal(signal.SIGHUP)

            def reloaded():
                gp = self.gen_pids()
                return (len(gp) == 2 and not {p for _, p in gp} & old_pids
                        and not {g for g, _ in gp} & old_gens)
            wait_until(reloaded, 60, "the new generation alone")
            wait_workers_running(self.sluice)
            n = [loop.ok for loop in loops]
            wait_until(lambda: all(loop.ok >= k + 5 for loop, k in zip(loops, n)), 60,
                     "traffic after the reload")
        finally:
            for loop in loops:
                loop.stop()
        self.assertEqual([f for loop in loops for f in loop.failures], [],
                         "requests failed during the reload")
        self.assertRegex(self.sluice.output(), r"reloaded " + re.escape(self.sluice.conf_path))
        # the new configuration is in force
        self.assertEqual(self.keepalive_count(5), 3)
        self.sluice.wait_ready()
        self.sluice.sections = sections


# ---------------------------------------------------------------------------
# (c), (d) SIGTERM
# ---------------------------------------------------------------------------

class OwnSluice(unittest.TestCase):
    """One llmsim per class, one sluice per test (the tests stop it)."""

    @classmethod
    def setUpClass(cls):
        cls.sim = Llmsim("--ttft-ms", "10", "--itl-ms", "2", "--tokens", "20")

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def start(self, conf):
        s = Sluice(self.sim.port, conf, 2)

        def cleanup():
            if s.p.poll() is None:
                s.p.kill()
                s.p.wait()
            check_no_sanitizer_report(self, s.output())
        self.addCleanup(cleanup)
        wait_workers_running(s)
        return s


def new_connection_outcome(port, timeout=5.0):
    """What a new client gets: 'refused', 'reset', 'closed' (EOF without a
    byte), 'status NNN', or 'hang' (nothing within timeout)."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except ConnectionRefusedError:
        return "refused"
    except socket.timeout:
        return "hang"
    try:
        try:
            s.sendall(build_request("POST", CHAT, chat_body(), {"X-Sim-Tokens": "2"}))
        except (BrokenPipeError, ConnectionResetError):
            return "reset"
        data = b""
        while b"\r\n" not in data:
            try:
                b = s.recv(4096)
            except ConnectionResetError:
                return "reset" if not data else "reset after %r" % data
            except socket.timeout:
                return "hang" if not data else "hang after %r" % data
            if not b:
                return "closed" if not data else "closed after %r" % data
            data += b
        m = re.match(rb"HTTP/1\.1 (\d{3}) ", data)
        return "status %s" % (m.group(1).decode() if m else data[:40])
    finally:
        s.close()


class DrainTest(OwnSluice):

    def wait_draining(self, s):
        wait_until(lambda: re.search(r"draining 2 workers", s.output()), 30, "supervisor draining")

        def all_draining():
            ws = s.status()["workers"]
            return all(w["draining"] for w in ws)
        wait_until(all_draining, 30, "workers draining")

    def test_sigterm_drains_stream_refuses_new_and_exits_0(self):
        s = self.start({"server": {"drain_timeout": "30s"}})
        reader = StreamReader(s.port, 80, 100)  # 8 s
        reader.start()
        self.assertTrue(reader.first.wait(30))
        s.send_signal(signal.SIGTERM)
        self.wait_draining(s)
        for i in range(6):  # several connections: both listeners (SO_REUSEPORT)
            o = new_connection_outcome(s.port)
            self.assertIn(o, ("refused", "reset", "closed", "status 503"),
                          "new connection %d while draining got: %s" % (i, o))
            # ...and it got that from the draining sluice, not from its exit
            self.assertIsNone(s.p.poll(), "sluice exited before the stream ended")
            self.assertTrue(reader.is_alive(), "the stream ended before the check")
        reader.join(60)
        self.assertTrue(reader.whole(), reader.describe())
        rc = s.p.wait(30 + 15)
        self.assertEqual(rc, 0, s.output()[-3000:])

    def test_sigterm_closes_idle_keepalive_and_exits_0(self):
        s = self.start(None)
        c = Conn(s.port)
        r = c.request("POST", CHAT, chat_body(), {"X-Sim-Tokens": "2"})
        self.assertEqual(r.status, 200)
        s.send_signal(signal.SIGTERM)
        c.s.settimeout(15)
        self.assertEqual(c.s.recv(100), b"", "idle keep-alive connection not closed")
        c.close()
        self.assertEqual(s.p.wait(15), 0)

    def test_drain_timeout_cuts_long_stream(self):
        s = self.start({"server": {"drain_timeout": "2s"}})
        reader = StreamReader(s.port, 100, 100)  # 10 s
        reader.start()
        self.assertTrue(reader.first.wait(30))
        s.send_signal(signal.SIGTERM)
        try:
            rc = s.p.wait(2 + 20)
        except subprocess.TimeoutExpired:
            self.fail("sluice still running 22 s after SIGTERM with drain_timeout = 2s")
        self.assertEqual(rc, 0, s.output()[-3000:])
        reader.join(30)
        self.assertFalse(reader.is_alive())
        self.assertFalse(reader.whole(), "the stream was not cut")
        self.assertIsNotNone(reader.error)
        toks = reader.tokens()
        self.assertLess(len(toks), 100)
        self.assertEqual(toks, expected_tokens(100)[:len(toks)])


# ---------------------------------------------------------------------------
# (e) the command line
# ---------------------------------------------------------------------------

def run_sluice(*args, timeout=60):
    return subprocess.run([SLUICE, *args], capture_output=True, text=True, timeout=timeout)


class CliTest(unittest.TestCase):

    def conf(self, lines):
        fd, path = tempfile.mkstemp(prefix="sluice-cli-", suffix=".ini")
        os.close(fd)
        write_lines(path, lines)
        self.addCleanup(os.unlink, path)
        return path

    def assert_error_at(self, out, path, line, word):
        self.assertRegex(out, r"(?m)^%s:%d: [^\n]*%s" % (re.escape(path), line, re.escape(word)),
                         out)

    def test_check_config_reports_every_error(self):
        path = self.conf([
            "[server]",                       # 1
            "workers = 2",                    # 2
            "bogus_key = 1",                  # 3 unknown key
            "drain_timeout = forever",        # 4 not a duration
            "[http]",                         # 5
            "max_body_size = lots",           # 6 not a size
            "max_headers = 100000",           # 7 out of range
            "[upstream]",                     # 8
            "connect_timeout = 3s",           # 9
            "[nosuchsection]",                # 10 unknown section
        ])
        p = run_sluice("--check-config", path)
        out = p.stdout + p.stderr
        self.assertNotEqual(p.returncode, 0, out)
        self.assert_error_at(out, path, 3, "bogus_key")
        self.assert_error_at(out, path, 4, "drain_timeout")
        self.assert_error_at(out, path, 6, "max_body_size")
        self.assert_error_at(out, path, 7, "max_headers")
        self.assert_error_at(out, path, 10, "nosuchsection")
        self.assertNotRegex(out, r"(?m)^%s:(2|9):" % re.escape(path))
        self.assertNotIn("configuration OK", out)

    def test_check_config_unknown_key_is_an_error(self):
        path = self.conf(["[server]", "workers = 2", "wrokers = 3"])
        p = run_sluice("--check-config", path)
        out = p.stdout + p.stderr
        self.assertNotEqual(p.returncode, 0, out)
        self.assert_error_at(out, path, 3, "wrokers")

    def test_check_config_good_file(self):
        path = self.conf(["[server]", "workers = 2", "listen = 127.0.0.1:0", "[http]",
                          "max_body_size = 64k", "header_timeout = 1s", "[backend sim]",
                          "url = http://127.0.0.1:9"])
        p = run_sluice("--check-config", path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("configuration OK", p.stdout)

    def test_bad_config_refuses_to_start(self):
        port = socket.socket()
        port.bind(("127.0.0.1", 0))
        listen = "127.0.0.1:%d" % port.getsockname()[1]
        port.close()
        path = self.conf(["[server]", "listen = " + listen, "workers = 1",
                          "log_level = loud"])
        p = run_sluice("--config", path)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 1, out)
        self.assert_error_at(out, path, 4, "log_level")
        host, prt = listen.rsplit(":", 1)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection((host, int(prt)), timeout=5).close()

    def test_missing_config_file_refuses_to_start(self):
        p = run_sluice("--config", "/nonexistent/sluice.ini")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("/nonexistent/sluice.ini", p.stdout + p.stderr)
        p = run_sluice("--check-config", "/nonexistent/sluice.ini")
        self.assertNotEqual(p.returncode, 0)

    def test_help_and_bad_flags(self):
        p = run_sluice("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("usage", p.stdout.lower())
        for args in (["--no-such-flag"], ["-Z"], ["--check-config"], ["stray-argument"]):
            with self.subTest(args=args):
                p = run_sluice(*args)
                self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
                self.assertIn("usage", p.stderr.lower())


if __name__ == "__main__":
    unittest.main()
