"""QoS: service levels evaluated over sliding windows, remediation that
escalates and undoes itself, loop detection, observe-only, the webhook,
automatic rollback of a rollout, and a control plane killed in the middle.

Chaos through llmsim's per-request latency and fault controls; intervals of
a fraction of a second so every scenario takes a few seconds."""

import hashlib
import http.server
import json
import os
import signal
import threading
import time
import unittest

from harness import (CHAT, Conn, Llmsim, Sluice, build_request, chat_body, check_exit, ctl,
                     free_port, wait_for)
from test_control import control_pid


def chat(port, headers=None, stream=True):
    c = Conn(port)
    try:
        return c.request("POST", CHAT, chat_body(stream), headers)
    finally:
        c.close()


def burst(port, n, headers=None):
    out = []
    ts = [threading.Thread(target=lambda: out.append(chat(port, headers))) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def fnv_bucket(feature, key):
    """shared/rollout.c's rollout_bucket, to know which path a session is on."""
    h = 0xcbf29ce484222325
    m = (1 << 64) - 1
    for ch in feature.encode() + b"\xff" + key.encode():
        h = ((h ^ ch) * 0x100000001b3) & m
    h ^= h >> 30
    h = (h * 0xbf58476d1ce4e5b9) & m
    h ^= h >> 27
    h = (h * 0x94d049bb133111eb) & m
    h ^= h >> 31
    return h % 100


class Hook(http.server.BaseHTTPRequestHandler):
    bodies = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        Hook.bodies.append(json.loads(self.rfile.read(n)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


class QosTest(unittest.TestCase):
    """One llmsim and one sluice per class; `slos` are its [slo] sections."""

    slos = {}
    qos = {}
    extra = {}
    sim_args = ("--ttft-ms", "5", "--itl-ms", "2", "--tokens", "4")
    monitoring = 100

    @classmethod
    def setUpClass(cls):
        cls.hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        threading.Thread(target=cls.hook.serve_forever, daemon=True).start()
        Hook.bodies = []
        cls.sim = Llmsim(*cls.sim_args)
        conf = {"qos": dict({"evaluate_interval": "300ms",
                             "webhook": "http://127.0.0.1:%d/alerts" % cls.hook.server_port,
                             "webhook_timeout": "1s"}, **cls.qos),
                "rollout": {"qos_monitoring": str(cls.monitoring)}}
        for name, keys in cls.slos.items():
            conf["slo " + name] = keys
        conf.update(cls.extra)
        cls.sluice = Sluice(cls.sim.port, conf, workers=2)

    @classmethod
    def tearDownClass(cls):
        rc = cls.sluice.stop()
        cls.sim.stop()
        cls.hook.shutdown()
        check_exit(cls.sluice, rc)

    def qos_status(self):
        rc, out, err = ctl(self.sluice, "--json", "qos")
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def events(self):
        rc, out, err = ctl(self.sluice, "--json", "events", "200")
        self.assertEqual(rc, 0, err)
        return json.loads(out)["events"]

    def steps(self, policy=None):
        return [(e["step"], e.get("action")) for e in self.events()
                if policy is None or e.get("policy") == policy]


SLOW = {"X-Sim-TTFT-Ms": "250"}


class LowerLimitTest(QosTest):
    slos = {"fast": {"metric": "ttft_p95", "threshold": "100", "window": "1s",
                     "actions": "lower_limit 50, alert", "cooldown": "1s", "hold": "1s"}}

    def test_breach_lowers_the_limit_then_it_is_undone(self):
        # TTFT well past the level: the limit comes down, then an alert.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(self.steps("fast")) < 2:
            burst(self.sluice.port, 6, SLOW)
        self.assertEqual(self.steps("fast")[:2], [("apply", "lower_limit"), ("apply", "alert")])
        st = self.qos_status()
        self.assertGreater(st["qos_limit"], 0)
        pol = st["policies"][0]
        self.assertEqual((pol["policy"], pol["scope"], pol["state"]), ("fast", "node", "breached"))
        self.assertGreater(pol["value"], 100)
        ev = self.events()[0]
        for k in ("time", "policy", "metric", "value", "threshold", "action", "before", "after"):
            self.assertIn(k, ev)
        m = self.sluice.metrics()
        self.assertGreaterEqual(m['sluice_remediations_total{action="lower_limit"}'], 1)
        self.assertGreaterEqual(m['sluice_qos_violations_total{severity="warning"}'], 1)
        self.assertGreater(m['sluice_qos_value{slo="fast",scope="node"}'], 100)
        # Healthy again (fast answers): undone in reverse, one per hold.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.qos_status()["policies"][0]["level"] > 0:
            burst(self.sluice.port, 2)
            time.sleep(0.2)
        self.assertEqual(self.qos_status()["qos_limit"], 0)
        self.assertEqual([s for s in self.steps("fast") if s[0] == "undo"],
                         [("undo", "alert"), ("undo", "lower_limit")])
        # the alert reached the webhook, as JSON
        wait_for(lambda: any(b.get("action") == "alert" for b in Hook.bodies), 5, "webhook")
        with open(os.path.join(self.sluice.state_dir, "audit.log")) as f:
            # "TIME {json}": the QoS decisions among the operator's lines
            audit = [json.loads(l.split(" ", 1)[1]) for l in f if " {" in l[:30]]
        self.assertTrue(any(a["step"] == "apply" and a["action"] == "lower_limit" for a in audit))


def timed_chat(port, headers=None):
    """(status, wall-clock time of the first content event, TTFT in s); the
    last two None without one."""
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    t0 = time.monotonic()
    try:
        body = chat_body(True)
        h = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: %d\r\n%sConnection: close\r\n\r\n%s"
                   % (CHAT, len(body), h, body)).encode())
        buf = b""
        at = ttft = None
        while True:
            d = s.recv(65536)
            if not d:
                break
            buf += d
            if ttft is None and b'"content":" w' in buf:
                ttft = time.monotonic() - t0
                at = time.time()
        return int(buf[9:12]), at, ttft
    finally:
        s.close()


def iso_seconds(t):
    import datetime
    return datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class RecoveryTest(QosTest):
    """A backend whose TTFT grows with its load (prefill shares the GPU):
    past the level the limit comes down, and TTFT comes back under it."""

    sim_args = ("--ttft-ms", "20", "--prefill-slowdown", "20", "--max-batch", "64",
                "--itl-ms", "20", "--tokens", "30")
    extra = {"governor": {"queue_ttl_ms": "30", "min_concurrent": "4"}}
    slos = {"ttft": {"metric": "ttft_p95", "threshold": "150", "window": "1s",
                     "actions": "lower_limit 90", "cooldown": "5s", "hold": "60s"}}

    def test_limit_comes_down_and_ttft_recovers(self):
        stop = time.monotonic() + 20
        samples = []  # (status, first token at, ttft)

        def client():
            while time.monotonic() < stop:
                samples.append(timed_chat(self.sluice.port))
        ts = [threading.Thread(target=client) for _ in range(40)]
        for t in ts:
            t.start()
        applied = wait_for(lambda: next((e for e in self.events() if e["step"] == "apply"),
                                        None), 15, "lower_limit applied")
        time.sleep(4)
        stop = time.monotonic()
        for t in ts:
            t.join()
        self.assertEqual(applied["action"], "lower_limit")
        self.assertGreater(applied["value"], 150)
        self.assertGreater(self.qos_status()["qos_limit"], 0)
        t_applied = iso_seconds(applied["time"])

        def p95(xs):
            xs = sorted(xs)
            return xs[max(0, int(len(xs) * 0.95) - 1)] * 1000 if xs else None
        before = p95([t for (st, at, t) in samples if t and at < t_applied])
        after = p95([t for (st, at, t) in samples if t and at > t_applied + 1.5])
        self.assertGreater(before, after)
        # admitted streams see the backend's TTFT again; the excess waited
        # at most queue_ttl_ms and was refused (503)
        self.assertLess(after, 150, (before, after))
        self.assertIn(503, {st for (st, _, _) in samples})


class ThrottleTenantTest(QosTest):
    sim_args = ("--ttft-ms", "5", "--itl-ms", "20", "--tokens", "20", "--max-batch", "4")
    extra = {"auth": {"enabled": "true"},
             "tenant flood": {"key_sha256": hashlib.sha256(b"sk-flood").hexdigest()},
             "tenant calm": {"key_sha256": hashlib.sha256(b"sk-calm").hexdigest()}}
    slos = {"node_ttft": {"metric": "ttft_p95", "threshold": "150", "window": "1s",
                          "actions": "throttle_tenant", "cooldown": "5s", "hold": "30s"}}

    def test_only_the_flooding_tenant_is_throttled(self):
        flood = {"Authorization": "Bearer sk-flood"}
        calm = {"Authorization": "Bearer sk-calm"}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not self.steps("node_ttft"):
            burst(self.sluice.port, 24, flood)
            chat(self.sluice.port, calm)
        ev = [e for e in self.events() if e["step"] == "apply"]
        self.assertEqual(ev[0]["action"], "throttle_tenant")
        self.assertEqual(ev[0]["tenant"], "flood")
        cap = ev[0]["after"]
        self.assertGreaterEqual(cap, 1)
        # the flooder now gets 429s past its cap, the calm tenant none
        res = burst(self.sluice.port, 16, flood)
        self.assertIn(429, [r.status for r in res])
        self.assertTrue(all(r.status in (200, 429) for r in res))
        for _ in range(3):
            st, _, ttft = timed_chat(self.sluice.port, calm)
            self.assertEqual(st, 200)
            self.assertLess(ttft * 1000, 150)  # its TTFT holds under the level


class LoopTest(QosTest):
    qos = {"loop_max": "2", "loop_window": "60s"}
    slos = {"wobbly": {"metric": "ttft_p50", "threshold": "100", "window": "1s",
                       "actions": "shed_load 10", "cooldown": "1s", "hold": "1s"}}

    def test_flapping_policy_freezes_and_alerts(self):
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and ("freeze", "loop detected") not in self.steps():
            # over the line ...
            end = time.monotonic() + 1.5
            while time.monotonic() < end and self.qos_status()["policies"][0]["level"] == 0:
                burst(self.sluice.port, 3, SLOW)
            # ... and under it again, until it is undone
            end = time.monotonic() + 6
            while time.monotonic() < end and self.qos_status()["policies"][0]["level"] > 0:
                burst(self.sluice.port, 2)
                time.sleep(0.2)
        steps = self.steps("wobbly")
        self.assertIn(("freeze", "loop detected"), steps)
        self.assertEqual(steps[:4], [("apply", "shed_load"), ("undo", "shed_load")] * 2)
        self.assertEqual(self.qos_status()["policies"][0]["state"], "frozen")
        wait_for(lambda: any(b.get("step") == "freeze" for b in Hook.bodies), 5, "freeze alert")


class ObserveOnlyTest(QosTest):
    monitoring = 50  # qos_monitoring below 100 %: decisions only
    slos = {"fast": {"metric": "ttft_p95", "threshold": "100", "window": "1s",
                     "actions": "lower_limit 50, shed_load 20", "cooldown": "500ms"}}

    def test_decisions_are_logged_and_nothing_changes(self):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(self.steps("fast")) < 2:
            burst(self.sluice.port, 4, SLOW)
        evs = [e for e in self.events() if e["policy"] == "fast"]
        self.assertEqual([(e["step"], e["action"]) for e in evs[:2]],
                         [("apply", "lower_limit"), ("apply", "shed_load")])
        self.assertTrue(all(e["observe_only"] for e in evs))
        st = self.qos_status()
        self.assertTrue(st["observe_only"])
        self.assertEqual((st["qos_limit"], st["shed_pct"]), (0, 0))
        m = self.sluice.metrics()
        self.assertEqual(m['sluice_remediations_total{action="lower_limit"}'], 0)
        self.assertGreaterEqual(m['sluice_qos_observed_total{action="lower_limit"}'], 1)
        self.assertTrue(all(r.status == 200 for r in burst(self.sluice.port, 8)))


class RollbackTest(QosTest):
    qos = {"rollback_error_rate": "0.01", "rollback_min_requests": "20"}

    def test_a_rollout_raising_errors_goes_back(self):
        sessions = ["s%d" % i for i in range(400)]
        on = [s for s in sessions if fnv_bucket("ttft_pipeline", s) < 10][:25]
        off = [s for s in sessions if fnv_bucket("ttft_pipeline", s) >= 10][:60]
        rc, _, err = ctl(self.sluice, "rollout", "set", "ttft_pipeline", "10")
        self.assertEqual(rc, 0, err)
        wait_for(lambda: self.qos_status()["rollback_watch"], 5, "watch started")
        # the new path fails (the feature's "bug"), the old one does not
        for s in off:
            self.assertEqual(chat(self.sluice.port, {"X-Session-Id": s}).status, 200)
        for s in on:
            chat(self.sluice.port, {"X-Session-Id": s, "X-Sim-Fault": "status:500"})
        wait_for(lambda: ctl(self.sluice, "--json", "rollout", "show")[1] and json.loads(
            ctl(self.sluice, "--json", "rollout", "show")[1])["features"]["ttft_pipeline"] == 0,
            10, "rolled back")
        ev = [e for e in self.events() if e["step"] == "rollback"]
        self.assertEqual(len(ev), 1)
        self.assertEqual((ev[0]["feature"], ev[0]["metric"], ev[0]["before"], ev[0]["after"]),
                         ("ttft_pipeline", "error_rate", 10, 0))
        wait_for(lambda: any(b.get("step") == "rollback" for b in Hook.bodies), 5, "alert")
        self.assertEqual(self.sluice.metrics()['sluice_remediations_total{action="rollback"}'], 1)


class JitterTest(QosTest):
    """Gaps between tokens come from the workers' own sketch windows."""

    slos = {"smooth": {"metric": "itl_p99", "threshold": "80", "window": "2s",
                       "actions": "alert", "cooldown": "1s", "hold": "1s"}}

    def test_gap_breach_is_seen(self):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not self.steps("smooth"):
            burst(self.sluice.port, 3, {"X-Sim-ITL-Ms": "150", "X-Sim-Tokens": "4"})
        ev = [e for e in self.events() if e["policy"] == "smooth"]
        self.assertEqual((ev[0]["step"], ev[0]["action"]), ("apply", "alert"))
        # gaps of at least 150 ms (llmsim paces them; a busy machine only
        # stretches them), read within the sketch's 1/128
        self.assertGreaterEqual(ev[0]["value"], 150 * (1 - 1 / 128))
        self.assertLess(ev[0]["value"], 1000)


class RollbackTtftTest(QosTest):
    qos = {"rollback_min_requests": "1000"}  # errors are not what this one is about
    extra = {"governor": {"target_ttft_ms": "300"}}

    def test_a_rollout_slowing_its_streams_goes_back(self):
        sessions = ["t%d" % i for i in range(600)]
        on = [s for s in sessions if fnv_bucket("stream_resume", s) < 10][:25]
        off = [s for s in sessions if fnv_bucket("stream_resume", s) >= 10][:25]
        self.assertEqual(ctl(self.sluice, "rollout", "set", "stream_resume", "10")[0], 0)
        for s in off:
            chat(self.sluice.port, {"X-Session-Id": s})
        for s in on:  # the new path's first tokens come late
            chat(self.sluice.port, {"X-Session-Id": s, "X-Sim-TTFT-Ms": "600"})
        wait_for(lambda: any(e["step"] == "rollback" for e in self.events()), 10, "rollback")
        ev = [e for e in self.events() if e["step"] == "rollback"][0]
        self.assertEqual((ev["feature"], ev["metric"], ev["after"]), ("stream_resume", "ttft_p95", 0))
        show = json.loads(ctl(self.sluice, "--json", "rollout", "show")[1])
        self.assertEqual(show["features"]["stream_resume"], 0)


class WebhookDownTest(QosTest):
    """An unreachable webhook delays no decision: they go on, alerts queue
    and are retried in the background."""

    slos = {"fast": {"metric": "ttft_p95", "threshold": "100", "window": "1s",
                     "actions": "alert, lower_limit 50", "cooldown": "300ms", "hold": "30s"}}

    @classmethod
    def setUpClass(cls):
        cls.qos = {"webhook": "http://127.0.0.1:%d/x" % free_port(), "webhook_retries": "5"}
        super().setUpClass()

    def test_decisions_do_not_wait_for_the_webhook(self):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(self.steps("fast")) < 2:
            burst(self.sluice.port, 4, SLOW)
        self.assertEqual(self.steps("fast")[:2], [("apply", "alert"), ("apply", "lower_limit")])
        self.assertGreater(self.qos_status()["qos_limit"], 0)
        self.assertIn("qos webhook", self.sluice.output())


class ScopesTest(QosTest):
    """A backend's own window, and the client-side rates: a policy on one
    backend sees only its requests; clients that leave are a rate."""

    extra = {"upstream": {"health_interval": "0"}}
    slos = {"slow_backend": {"backend": "sim", "metric": "ttft_p95", "threshold": "100",
                             "window": "1s", "actions": "alert", "cooldown": "300ms"},
            "fast_backend": {"backend": "quick", "metric": "ttft_p95", "threshold": "100",
                             "window": "1s", "actions": "alert", "cooldown": "300ms"},
            "leaving": {"metric": "disconnect_rate", "threshold": "0.2", "window": "2s",
                        "actions": "alert", "cooldown": "300ms"}}

    @classmethod
    def setUpClass(cls):
        cls.quick = Llmsim("--ttft-ms", "5", "--itl-ms", "2", "--tokens", "4")
        cls.extra = dict(cls.extra, **{"backend quick": {
            "url": "http://127.0.0.1:%d" % cls.quick.port}})
        cls.sim_args = ("--ttft-ms", "250", "--itl-ms", "2", "--tokens", "4")
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.quick.stop()

    def test_backend_scopes_and_disconnect_rate(self):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not self.steps("slow_backend"):
            burst(self.sluice.port, 6)
        pols = {p["policy"]: p for p in self.qos_status()["policies"]}
        self.assertEqual(pols["slow_backend"]["scope"], "backend:sim")
        self.assertGreater(pols["slow_backend"]["value"], 100)
        self.assertLess(pols["fast_backend"]["value"], 100)
        self.assertEqual(self.steps("fast_backend"), [])
        # clients that hang up mid-stream
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not self.steps("leaving"):
            for _ in range(4):
                c = Conn(self.sluice.port)
                c.send(build_request("POST", CHAT, chat_body(),
                                     {"X-Sim-Tokens": "400", "X-Sim-ITL-Ms": "20"}))
                c.read_head()
                c.close()
            time.sleep(0.3)
        ev = [e for e in self.events() if e["policy"] == "leaving"][0]
        self.assertEqual((ev["metric"], ev["action"]), ("disconnect_rate", "alert"))
        self.assertGreater(ev["value"], 0.2)


class RestartTest(QosTest):
    slos = {"fast": {"metric": "ttft_p95", "threshold": "100", "window": "1s",
                     "actions": "lower_limit 50", "cooldown": "1s", "hold": "2s"}}

    def test_control_plane_killed_mid_remediation_resumes(self):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not self.steps("fast"):
            burst(self.sluice.port, 6, SLOW)
        limit = self.qos_status()["qos_limit"]
        self.assertGreater(limit, 0)
        pid = wait_for(lambda: control_pid(self.sluice), 10, "control plane pid")
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: (control_pid(self.sluice) or pid) != pid, 30, "control plane back")
        wait_for(lambda: ctl(self.sluice, "status")[0] == 0, 30, "control socket back")
        st = self.qos_status()
        # the limit it set outlived it, and the new one knows it set it
        self.assertEqual(st["qos_limit"], limit)
        self.assertEqual(st["policies"][0]["level"], 1)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.qos_status()["qos_limit"]:
            burst(self.sluice.port, 2)
            time.sleep(0.2)
        self.assertEqual(self.qos_status()["qos_limit"], 0)


if __name__ == "__main__":
    unittest.main()
