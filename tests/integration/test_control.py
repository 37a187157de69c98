"""The control plane: rollout flags and sluicectl, admission under the
governor's limit, tenant budgets, and what a dead worker or control plane
leaves behind."""

import json
import os
import signal
import subprocess
import threading
import time
import unittest

from harness import (CHAT, LLMLOAD, SLUICECTL, Conn, Sluice, SluiceTest, build_request, chat_body,
                     ctl, sse_events, tokens_of, wait_for)
from test_supervisor import StreamReader, children_of, wait_until, wait_workers_running

FEATURES = ("adaptive_governor", "http2_transport", "ttft_pipeline", "qos_monitoring",
            "stream_resume")


M64 = (1 << 64) - 1


def bucket(feature, key):
    """shared/rollout.c's rollout_bucket, so tests know each request's fate."""
    h = 0xcbf29ce484222325
    for b in feature.encode() + b"\xff" + key.encode():
        h ^= b
        h = (h * 0x100000001b3) & M64
    h ^= h >> 30
    h = (h * 0xbf58476d1ce4e5b9) & M64
    h ^= h >> 27
    h = (h * 0x94d049bb133111eb) & M64
    h ^= h >> 31
    return h % 100


def ctl_json(sluice, *args):
    rc, out, err = ctl(sluice, "--json", *args)
    assert rc == 0, (rc, out, err)
    return json.loads(out)


def rollout_in(m, feature):
    return m['sluice_rollout_requests_total{feature="%s",in="true"}' % feature]


def rollout_total(m, feature):
    return rollout_in(m, feature) + m[
        'sluice_rollout_requests_total{feature="%s",in="false"}' % feature]


def request(sluice, headers=None, **body):
    c = Conn(sluice.port, timeout=30)
    try:
        return c.request("POST", CHAT, chat_body(**body), headers or {"X-Sim-Tokens": "1"})
    finally:
        c.close()


def control_pid(sluice):
    workers = {w["pid"] for w in sluice.status()["workers"]}
    kids = [p for p in children_of(sluice.p.pid) if p not in workers]
    return kids[0] if len(kids) == 1 else None


class RolloutTest(SluiceTest):
    sim_args = ("--ttft-ms", "1", "--itl-ms", "1", "--tokens", "2")

    def tearDown(self):
        ctl(self.sluice, "rollback")

    def test_cli_errors_and_exit_codes(self):
        before = ctl_json(self.sluice, "rollout", "show")["features"]
        rc, _, err = ctl(self.sluice, "rollout", "set", "warp_drive", "10")
        self.assertEqual(rc, 1)
        self.assertIn("unknown feature 'warp_drive'", err)
        self.assertIn("adaptive_governor", err)  # the known ones are listed
        for bad in ("101", "-1", "abc", "5.5", "", "1000"):
            rc, _, err = ctl(self.sluice, "rollout", "set", "stream_resume", bad)
            self.assertEqual(rc, 1, bad)
            self.assertIn("bad percentage '%s'" % bad, err)
        self.assertEqual(ctl(self.sluice, "rollout", "set", "stream_resume")[0], 2)
        self.assertEqual(ctl(self.sluice, "frobnicate")[0], 2)
        self.assertEqual(ctl(self.sluice, "rollback", "nope")[0], 1)
        self.assertEqual(subprocess.run([SLUICECTL], capture_output=True).returncode, 2)
        rc, _, err = ctl(self.sluice, "status", socket=self.sluice.control_socket + ".none")
        self.assertEqual(rc, 3)
        self.assertIn("cannot reach the control plane", err)
        # nothing changed
        feats = ctl_json(self.sluice, "rollout", "show")["features"]
        self.assertEqual(feats, before)

    def test_share_follows_the_percentage_and_users_do_not_flicker(self):
        self.assertEqual(ctl(self.sluice, "rollout", "set", "adaptive_governor", "30")[0], 0)
        sessions = ["user-%d" % i for i in range(300)]
        before = self.sluice.metrics()
        for s in sessions:
            self.assertEqual(request(self.sluice, {"X-Session-Id": s, "X-Sim-Tokens": "1"},
                                     stream=False).status, 200)
        after = self.sluice.metrics()
        want = sum(bucket("adaptive_governor", s) < 30 for s in sessions)
        self.assertEqual(rollout_total(after, "adaptive_governor")
                         - rollout_total(before, "adaptive_governor"), 300)
        self.assertEqual(rollout_in(after, "adaptive_governor")
                         - rollout_in(before, "adaptive_governor"), want)
        self.assertTrue(60 <= want <= 120, want)  # about 30 %
        # one user, many requests: all in or all out, on both workers
        stable = next(s for s in sessions if bucket("adaptive_governor", s) < 30)
        b = self.sluice.metrics()
        for _ in range(20):
            request(self.sluice, {"X-Session-Id": stable, "X-Sim-Tokens": "1"}, stream=False)
        self.assertEqual(rollout_in(self.sluice.metrics(), "adaptive_governor")
                         - rollout_in(b, "adaptive_governor"), 20)
        # raising the percentage only adds users
        self.assertEqual(ctl(self.sluice, "rollout", "set", "adaptive_governor", "70")[0], 0)
        b = self.sluice.metrics()
        for s in sessions:
            request(self.sluice, {"X-Session-Id": s, "X-Sim-Tokens": "1"}, stream=False)
        got = rollout_in(self.sluice.metrics(), "adaptive_governor") - rollout_in(
            b, "adaptive_governor")
        self.assertEqual(got, sum(bucket("adaptive_governor", s) < 70 for s in sessions))
        self.assertGreater(got, want)

    def test_rollback_reaches_every_worker_at_once(self):
        for f, pct in (("adaptive_governor", "100"), ("stream_resume", "100"),
                       ("qos_monitoring", "40")):
            self.assertEqual(ctl(self.sluice, "rollout", "set", f, pct)[0], 0)
        b = self.sluice.metrics()
        for i in range(20):
            request(self.sluice, {"X-Session-Id": "a%d" % i, "X-Sim-Tokens": "1"}, stream=False)
        m = self.sluice.metrics()
        self.assertEqual(rollout_in(m, "stream_resume") - rollout_in(b, "stream_resume"), 20)
        rc, out, _ = ctl(self.sluice, "rollback")
        self.assertEqual(rc, 0)
        self.assertIn("adaptive_governor: 100 % -> 0 %", out)
        self.assertIn("qos_monitoring: 40 % -> 0 %", out)
        # the very next requests, on new connections (both workers), are out
        b = self.sluice.metrics()
        for i in range(40):
            self.assertEqual(request(self.sluice, {"X-Session-Id": "b%d" % i,
                                                   "X-Sim-Tokens": "1"}, stream=False).status,
                             200)
        m = self.sluice.metrics()
        for f in FEATURES:
            self.assertEqual(rollout_in(m, f) - rollout_in(b, f), 0, f)
            self.assertEqual(m['sluice_rollout_percent{feature="%s"}' % f], 0)
        st = self.sluice.status()
        self.assertEqual(len({w["pid"] for w in st["workers"]}), 2)

    def test_changes_are_saved_and_audited(self):
        self.assertEqual(ctl(self.sluice, "rollout", "set", "ttft_pipeline", "15")[0], 0)
        with open(os.path.join(self.sluice.state_dir, "rollout.json")) as f:
            state = json.load(f)
        self.assertEqual(state["version"], 1)
        self.assertEqual(state["features"]["ttft_pipeline"], 15)
        with open(os.path.join(self.sluice.state_dir, "audit.log")) as f:
            lines = f.read().splitlines()
        self.assertRegex(lines[-1], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ uid=%d pid=\d+ rollout set "
                         r"ttft_pipeline 0 -> 15$" % os.getuid())

    def test_killed_control_plane_keeps_flags_and_comes_back(self):
        self.assertEqual(ctl(self.sluice, "rollout", "set", "stream_resume", "100")[0], 0)
        pid = wait_until(lambda: control_pid(self.sluice), 10, "control plane pid")
        os.kill(pid, signal.SIGKILL)
        # workers keep serving with the flags they had ("fail static")
        for i in range(10):
            c = Conn(self.sluice.port, timeout=30)
            try:
                r = c.request("POST", CHAT, chat_body(stream=False), {"X-Sim-Tokens": "1"})
            finally:
                c.close()
            self.assertEqual(r.status, 200)
        wait_until(lambda: (control_pid(self.sluice) or pid) != pid, 30, "control plane back")
        wait_until(lambda: ctl(self.sluice, "rollout", "show")[0] == 0, 30, "sluicectl answers")
        feats = ctl_json(self.sluice, "rollout", "show")["features"]
        self.assertEqual(feats["stream_resume"], 100)
        b = self.sluice.metrics()
        request(self.sluice, {"X-Sim-Tokens": "1"}, stream=False)
        self.assertEqual(rollout_in(self.sluice.metrics(), "stream_resume")
                         - rollout_in(b, "stream_resume"), 1)


class RolloutRestartTest(unittest.TestCase):
    def test_state_survives_a_restart(self):
        from harness import Llmsim
        sim = Llmsim("--ttft-ms", "1", "--itl-ms", "1", "--tokens", "2")
        try:
            s1 = Sluice(sim.port, workers=1)
            try:
                self.assertEqual(ctl(s1, "rollout", "set", "http2_transport", "35")[0], 0)
                self.assertEqual(ctl(s1, "rollout", "set", "qos_monitoring", "7")[0], 0)
            finally:
                self.assertEqual(s1.stop(), 0)
            s2 = Sluice(sim.port, {"server": {"state_dir": s1.state_dir}}, workers=1)
            try:
                feats = ctl_json(s2, "rollout", "show")["features"]
                self.assertEqual(feats["http2_transport"], 35)
                self.assertEqual(feats["qos_monitoring"], 7)
                self.assertEqual(feats["adaptive_governor"], 0)
                m = s2.metrics()
                self.assertEqual(m['sluice_rollout_percent{feature="http2_transport"}'], 35)
            finally:
                self.assertEqual(s2.stop(), 0)
            # a damaged state file: every feature stays off, and status says why
            with open(os.path.join(s1.state_dir, "rollout.json"), "w") as f:
                f.write("{not json")
            s3 = Sluice(sim.port, {"server": {"state_dir": s1.state_dir}}, workers=1)
            try:
                self.assertEqual(ctl_json(s3, "rollout", "show")["features"],
                                 {f: 0 for f in FEATURES})
                self.assertIn("rollout.json", ctl_json(s3, "status")["state_error"])
                self.assertIn("rollout state unreadable", s3.output())
            finally:
                s3.stop()
        finally:
            sim.stop()


class GovernorAdmissionTest(SluiceTest):
    """min = max = 2: the governor's limit is 2 streams on the node."""
    workers = 1
    sim_args = ("--ttft-ms", "5", "--itl-ms", "5", "--tokens", "3")
    # A target far above these backends' TTFT: the queue budget is then
    # queue_ttl_ms itself (see QueueBudgetTest for the budget that follows
    # the backend).
    sluice_conf = {"governor": {"min_concurrent": "2", "max_concurrent": "2",
                                "queue_ttl_ms": "1500", "queue_max": "3",
                                "target_ttft_ms": "5000"}}

    def setUp(self):
        self.assertEqual(ctl(self.sluice, "rollout", "set", "adaptive_governor", "100")[0], 0)
        wait_until(lambda: self.sluice.metrics()["sluice_governor_limit"] == 2, 10, "limit 2")

    def tearDown(self):
        ctl(self.sluice, "rollback")
        wait_until(lambda: self.sluice.metrics()["sluice_admitted_streams"] == 0, 30, "idle")

    def hold(self, n, tokens=30, itl=100):
        rs = [StreamReader(self.sluice.port, tokens, itl) for _ in range(n)]
        for r in rs:
            r.start()
        wait_until(lambda: self.sluice.metrics()["sluice_admitted_streams"] == min(n, 2), 10,
                   "streams admitted")
        return rs

    def test_third_stream_waits_for_a_slot(self):
        b = self.sluice.metrics()
        held = self.hold(2, tokens=6, itl=100)  # about 0.6 s each
        t0 = time.monotonic()
        r = request(self.sluice, {"X-Sim-Tokens": "3"})
        waited = time.monotonic() - t0
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(tokens_of(sse_events(r.body)), [" w0", " w1", " w2"])
        self.assertGreater(waited, 0.3)  # it had to wait for one of the two
        for h in held:
            h.join(30)
            self.assertTrue(h.whole(), h.describe())
        m = self.sluice.metrics()
        self.assertEqual(m["sluice_admission_queued_total"] - b["sluice_admission_queued_total"],
                         1)
        self.assertEqual(m["sluice_admitted_total"] - b["sluice_admitted_total"], 3)

    def test_standing_queue_is_shed_before_the_ttl(self):
        """queue_ttl_ms 1500: CoDel's target is a quarter of it; a queue that
        stays long is shed at twice that (750 ms), not left to the TTL."""
        b = self.sluice.metrics()
        held = self.hold(2, tokens=40, itl=100)  # 4 s
        t0 = time.monotonic()
        r = request(self.sluice, {"X-Sim-Tokens": "3"})
        waited = time.monotonic() - t0
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json()["error"]["code"], "admission_timeout")
        self.assertIn(r.header("retry-after"), ("1", "2", "3"))
        self.assertTrue(0.7 < waited < 1.45, waited)
        m = self.sluice.metrics()
        self.assertEqual(m['sluice_rejected_total{reason="queue_shed"}']
                         - b['sluice_rejected_total{reason="queue_shed"}'], 1)
        for h in held:
            h.join(30)
            self.assertTrue(h.whole(), h.describe())

    def test_full_queue_is_503_at_once(self):
        b = self.sluice.metrics()
        held = self.hold(2, tokens=30, itl=100)
        waiting = [StreamReader(self.sluice.port, 3, 5) for _ in range(3)]
        for w in waiting:
            w.start()
        wait_until(lambda: self.sluice.metrics()["sluice_admission_queue"] == 3, 10, "3 queued")
        t0 = time.monotonic()
        r = request(self.sluice, {"X-Sim-Tokens": "3"})
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json()["error"]["code"], "overloaded")
        self.assertIn(r.header("retry-after"), ("1", "2", "3"))
        m = self.sluice.metrics()
        self.assertEqual(m['sluice_rejected_total{reason="queue_full"}']
                         - b['sluice_rejected_total{reason="queue_full"}'], 1)
        for h in held + waiting:
            h.join(30)
        self.assertTrue(all(h.whole() for h in held))

    def test_requests_outside_the_rollout_are_not_limited(self):
        self.assertEqual(ctl(self.sluice, "rollout", "set", "adaptive_governor", "0")[0], 0)
        rs = [StreamReader(self.sluice.port, 10, 100) for _ in range(5)]
        for r in rs:
            r.start()
        wait_until(lambda: self.sluice.metrics()["sluice_admitted_streams"] == 5, 10,
                   "5 admitted at once, over the limit of 2")
        self.assertEqual(self.sluice.metrics()["sluice_admission_queue"], 0)
        for r in rs:
            r.join(30)
            self.assertTrue(r.whole(), r.describe())

    def test_limits_command(self):
        d = ctl_json(self.sluice, "limits")
        self.assertEqual((d["limit"], d["min_concurrent"], d["max_concurrent"]), (2, 2, 2))
        self.assertEqual(d["algorithm"], "gradient")
        self.assertEqual(d["target_ttft_ms"], 5000)


class QueueBudgetTest(SluiceTest):
    """A request waits for admission only as long as the TTFT budget leaves
    after the backend's own TTFT: here the backend takes 400 ms of a 600 ms
    target, so a request that has waited about 200 ms is refused rather than
    admitted to miss its TTFT."""
    workers = 1
    sim_args = ("--ttft-ms", "400", "--itl-ms", "50", "--tokens", "3")
    sluice_conf = {"governor": {"min_concurrent": "2", "max_concurrent": "2",
                                "target_ttft_ms": "600", "queue_ttl_ms": "800"}}

    def test_budget_follows_the_backend(self):
        self.assertEqual(ctl(self.sluice, "rollout", "set", "adaptive_governor", "100")[0], 0)
        request(self.sluice, {"X-Sim-Tokens": "1"})  # a first TTFT sample
        d = wait_until(lambda: (lambda d: d if 150 <= d["queue_budget_ms"] <= 210 else None)(
            ctl_json(self.sluice, "limits")), 10, "budget about 600 - 400 ms")
        held = [StreamReader(self.sluice.port, 40, 100) for _ in range(2)]
        for h in held:
            h.start()
        wait_until(lambda: self.sluice.metrics()["sluice_admitted_streams"] == 2, 10, "2 held")
        t0 = time.monotonic()
        r = request(self.sluice, {"X-Sim-Tokens": "1"})
        waited = time.monotonic() - t0
        self.assertEqual(r.status, 503, d)
        self.assertEqual(r.json()["error"]["code"], "admission_timeout")
        self.assertLess(waited, 0.5, "refused within the budget (%d ms), not queue_ttl_ms"
                        % d["queue_budget_ms"])
        for h in held:
            h.join(30)


class TenantLimitTest(SluiceTest):
    workers = 2
    sim_args = ("--ttft-ms", "5", "--itl-ms", "5", "--tokens", "3")
    sluice_conf = {"tenant default": {"hard_limit": "2", "burst_limit": "3", "decay_ms": "1500"}}

    def test_burst_then_hard_limit_then_429(self):
        rs = [StreamReader(self.sluice.port, 40, 100) for _ in range(3)]
        for r in rs:
            r.start()
        wait_until(lambda: self.sluice.metrics()["sluice_admitted_streams"] == 3, 10,
                   "the burst of 3")
        r = request(self.sluice, {"X-Sim-Tokens": "1"})
        self.assertEqual(r.status, 429)
        self.assertEqual(r.json()["error"]["code"], "rate_limit_exceeded")
        self.assertEqual(r.json()["error"]["type"], "requests")
        self.assertEqual(r.header("retry-after"), "1")
        # above hard_limit for decay_ms: the allowance decays to hard_limit
        wait_until(lambda: ctl_json(self.sluice, "tenants")["tenants"][0]["stream_limit"] == 2,
                   10, "limit decayed to 2")
        for r in rs:
            r.join(30)
            self.assertTrue(r.whole(), r.describe())
        t = ctl_json(self.sluice, "tenants")["tenants"][0]
        self.assertEqual((t["name"], t["hard_limit"], t["burst_limit"]), ("default", 2, 3))
        wait_until(lambda: ctl_json(self.sluice, "tenants")["tenants"][0]["streams"] == 0, 10,
                   "streams released")
        self.assertEqual(request(self.sluice, {"X-Sim-Tokens": "1"}).status, 200)


def sha(key):
    import hashlib
    return hashlib.sha256(key.encode()).hexdigest()


class RolloutDefaultsTest(SluiceTest):
    """[rollout] in the config sets each feature's percentage until a state
    file exists; `rollout set` writes one, and it wins over the config."""
    workers = 1
    sim_args = ("--ttft-ms", "1", "--itl-ms", "1", "--tokens", "1")
    sluice_conf = {"rollout": {"adaptive_governor": "40", "http2_transport": "0"}}

    def test_config_defaults_then_state_file(self):
        feats = ctl_json(self.sluice, "rollout", "show")["features"]
        self.assertEqual(feats, dict({f: 0 for f in FEATURES}, adaptive_governor=40))
        m = self.sluice.metrics()
        self.assertEqual(m['sluice_rollout_percent{feature="adaptive_governor"}'], 40)
        self.assertEqual(ctl(self.sluice, "rollout", "set", "ttft_pipeline", "5")[0], 0)
        with open(os.path.join(self.sluice.state_dir, "rollout.json")) as f:
            state = json.load(f)
        self.assertEqual(state["features"],
                         dict({f: 0 for f in FEATURES}, adaptive_governor=40, ttft_pipeline=5))


class TokenBudgetTest(SluiceTest):
    workers = 2
    sim_args = ("--ttft-ms", "5", "--itl-ms", "2", "--tokens", "3")
    # 60 tokens a minute: 1 a second back; 20 reserved when the request
    # names no max_tokens.  One tenant per test, so each starts full.
    budget = {"tokens_per_minute": "60", "default_max_tokens": "20"}
    sluice_conf = {"auth": {"enabled": "true"},
                   "tenant t1": dict(budget, key_sha256=sha("sk-t1")),
                   "tenant t2": dict(budget, key_sha256=sha("sk-t2")),
                   "tenant t3": dict(budget, key_sha256=sha("sk-t3"))}

    def tenant(self, name):
        return next(t for t in ctl_json(self.sluice, "tenants")["tenants"] if t["name"] == name)

    def test_reserve_charge_return_and_429(self):
        auth = {"Authorization": "Bearer sk-t1"}
        t0 = self.tenant("t1")["tokens_available"]
        self.assertGreaterEqual(t0, 59)
        r = request(self.sluice, dict(auth, **{"X-Sim-Tokens": "10"}), max_tokens=40)
        self.assertEqual(r.status, 200)
        self.assertEqual(len(tokens_of(sse_events(r.body))), 10)
        # 40 reserved, 10 used, 30 given back: about 50 left (plus refill)
        left = self.tenant("t1")["tokens_available"]
        self.assertTrue(49 <= left <= 53, left)
        r = request(self.sluice, dict(auth, **{"X-Sim-Tokens": "10"}), max_tokens=58)
        self.assertEqual(r.status, 429)
        e = r.json()["error"]
        self.assertEqual((e["type"], e["code"]), ("tokens", "token_budget_exceeded"))
        self.assertTrue(1 <= int(r.header("retry-after")) <= 10, r.header("retry-after"))
        m = self.sluice.metrics()
        self.assertGreaterEqual(m['sluice_rejected_total{reason="tenant_tokens"}'], 1)

    def test_non_streamed_completion_is_charged_its_usage(self):
        # stream: false -- the tokens are known only from the body's usage;
        # they are charged (and counted) when the response ends
        auth = {"Authorization": "Bearer sk-t3"}
        t0 = self.tenant("t3")["tokens_available"]
        self.assertGreaterEqual(t0, 59)
        m0 = self.sluice.metrics().get("sluice_tokens_total", 0)
        r = request(self.sluice, dict(auth, **{"X-Sim-Tokens": "12"}), stream=False, max_tokens=40)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["usage"]["completion_tokens"], 12)
        left = self.tenant("t3")["tokens_available"]
        self.assertTrue(t0 - 12 <= left <= t0 - 12 + 3, (t0, left))
        wait_for(lambda: self.sluice.metrics().get("sluice_tokens_total", 0) >= m0 + 12, 5,
                 "tokens counted")
        # a tenant that cannot cover max_tokens is refused before the backend
        r = request(self.sluice, dict(auth, **{"X-Sim-Tokens": "12"}), stream=False, max_tokens=60)
        self.assertEqual(r.status, 429)

    def test_budget_running_out_mid_stream_ends_it_before_the_token(self):
        self.assertGreaterEqual(self.tenant("t2")["tokens_available"], 59)
        before = self.sim.stats()
        c = Conn(self.sluice.port, timeout=60)
        try:
            c.send(build_request("POST", CHAT, chat_body(),
                                 {"X-Sim-Tokens": "200", "X-Sim-ITL-Ms": "2",
                                  "Authorization": "Bearer sk-t2"}))
            r = c.read_response()
        finally:
            c.close()
        self.assertEqual(r.status, 200)
        evs = sse_events(r.body)
        toks = tokens_of(evs)
        # 20 reserved + what the bucket held beyond them (about 40): the
        # stream stops before the token that nobody can pay for
        self.assertTrue(55 <= len(toks) <= 64, len(toks))
        self.assertEqual(toks, [" w%d" % i for i in range(len(toks))])
        err = [e for e in evs if e.get("event") == ["error"]]
        self.assertEqual(len(err), 1, evs[-3:])
        body = json.loads(err[0]["data"][0])
        self.assertEqual(body["error"]["code"], "token_budget_exhausted")
        self.assertEqual(body["error"]["type"], "tokens")
        self.assertNotEqual(evs[-1].get("data"), ["[DONE]"])
        # the backend request was cancelled, not run to its end for nobody
        wait_for(lambda: self.sim.stats()["aborted"] > before["aborted"], 10, "llmsim abort")
        self.assertLessEqual(self.tenant("t2")["tokens_available"], 3)
        m = self.sluice.metrics()
        self.assertGreaterEqual(m['sluice_rejected_total{reason="tenant_exhausted"}'], 1)


class WorkerDeathTest(SluiceTest):
    """A worker killed while it holds 100 admitted streams: the node's counts
    go back to the truth at once (its slot leaves the sums when it is
    reaped), nothing lingers after the surviving streams end."""
    workers = 2
    sim_args = ("--ttft-ms", "5", "--itl-ms", "100", "--tokens", "60", "--max-batch", "10000")
    sluice_conf = {"tenant default": {"hard_limit": "1000", "tokens_per_minute": "10000000",
                                      "default_max_tokens": "100"}}

    def test_kill_a_worker_holding_100_streams(self):
        wait_workers_running(self.sluice, 2)
        load = subprocess.Popen(
            [LLMLOAD, "-c", "260", "--once", "--timeout", "60",
             "http://127.0.0.1:%d%s" % (self.sluice.port, CHAT)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            def per_worker():
                d = ctl_json(self.sluice, "status")
                return {w["pid"]: w["admitted"] for w in d["workers"]}
            pw = wait_until(lambda: (lambda p: p if len(p) == 2 and max(p.values()) >= 100
                                     and sum(p.values()) >= 250 else None)(per_worker()),
                            30, "a worker with 100 streams")
            victim = max(pw, key=pw.get)
            survivor = next(p for p in pw if p != victim)
            tenant_before = ctl_json(self.sluice, "tenants")["tenants"][0]
            self.assertEqual(tenant_before["streams"], sum(pw.values()))
            os.kill(victim, signal.SIGKILL)

            def truth():
                d = ctl_json(self.sluice, "status")
                live = {w["pid"]: w["admitted"] for w in d["workers"]}
                if victim in live:
                    return None
                m = self.sluice.metrics()
                t = ctl_json(self.sluice, "tenants")["tenants"][0]
                return live, m["sluice_admitted_streams"], t["streams"]
            live, node, tenant = wait_until(truth, 20, "victim reaped")
            self.assertLessEqual(node, pw[survivor])
            self.assertEqual(node, sum(live.values()))
            self.assertEqual(tenant, sum(live.values()))
            # the victim's reservations went back to the budget
            avail = ctl_json(self.sluice, "tenants")["tenants"][0]["tokens_available"]
            self.assertGreater(avail, tenant_before["tokens_available"] + 90 * pw[victim])
        finally:
            load.wait(120)
        wait_until(lambda: self.sluice.metrics()["sluice_admitted_streams"] == 0, 30,
                   "admitted back to 0")
        self.assertEqual(ctl_json(self.sluice, "tenants")["tenants"][0]["streams"], 0)
        self.assertEqual(self.sluice.metrics()["sluice_streams_active"], 0)


if __name__ == "__main__":
    unittest.main()


class CliOpsTest(SluiceTest):
    workers = 1
    sim_args = ("--ttft-ms", "1", "--itl-ms", "1", "--tokens", "2")

    def test_status_and_top(self):
        request(self.sluice, {"X-Sim-Tokens": "2"})
        rc, out, err = ctl(self.sluice, "status")
        self.assertEqual(rc, 0, err)
        self.assertIn("workers 1 up (1 expected)", out)
        self.assertIn("limit 16 concurrent streams (gradient, target TTFT p90 550 ms, 16..80", out)
        self.assertRegex(out, r"\n  adaptive_governor +0 %\n")
        rc, out, err = ctl(self.sluice, "top", "--count", "2", "--interval", "0.3")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.count("sluice top"), 2, out)
        self.assertIn("tokens/s", out)
        self.assertIn("default", out)  # the tenants table
        rc, out, _ = ctl(self.sluice, "--json", "top", "--count", "1")
        d = json.loads(out)
        self.assertIn("seconds", d)
        self.assertEqual(d["tenants"][0]["name"], "default")
        self.assertEqual(ctl(self.sluice, "top", "--count", "0")[0], 2)
        st = self.sluice.status()
        self.assertEqual(st["governor_limit"], 16)
        self.assertEqual(st["rollout"]["adaptive_governor"], 0)

    def test_reload_checks_the_file_first(self):
        wait_workers_running(self.sluice, 1)
        pids = self.sluice.worker_pids()
        good = dict(self.sluice.sections)
        bad = {k: dict(v) for k, v in good.items()}
        bad["server"]["worker"] = "3"  # unknown key
        bad["governor"] = {"min_concurrent": "90"}  # above max_concurrent
        self.sluice.write_config(bad)
        try:
            rc, _, err = ctl(self.sluice, "reload")
            self.assertEqual(rc, 1)
            self.assertIn("2 error(s); the running configuration stays", err)
            self.assertRegex(err, r"\.ini:\d+: unknown key 'worker' in \[server\]")
            self.assertIn("min_concurrent (90) must be at most max_concurrent (80)", err)
            time.sleep(0.5)
            self.assertEqual(self.sluice.worker_pids(), pids, "nothing reloaded")
        finally:
            self.sluice.write_config(good)
        rc, out, err = ctl(self.sluice, "reload")
        self.assertEqual(rc, 0, err)
        self.assertIn("reloading", out)
        wait_until(lambda: (lambda p: p and p != pids)(self.sluice.worker_pids()), 30,
                   "new workers")
        wait_until(lambda: ctl(self.sluice, "status")[0] == 0, 30, "control plane back")
        with open(os.path.join(self.sluice.state_dir, "audit.log")) as f:
            self.assertIn("reload requested", f.read())


class CliDrainTest(unittest.TestCase):
    def test_drain_finishes_streams_and_stops(self):
        from harness import Llmsim
        sim = Llmsim("--ttft-ms", "5", "--itl-ms", "50", "--tokens", "20")
        try:
            s = Sluice(sim.port, workers=1)
            try:
                r = StreamReader(s.port, 20, 50)  # 1 s
                r.start()
                wait_until(lambda: s.metrics()["sluice_streams_active"] == 1, 10, "stream on")
                rc, out, err = ctl(s, "drain")
                self.assertEqual(rc, 0, err)
                self.assertIn("draining", out)
                self.assertEqual(s.p.wait(30), 0)
                r.join(10)
                self.assertTrue(r.whole(), r.describe())
                self.assertIn("drain requested over the control socket", s.output())
                # and afterwards there is nobody to talk to
                self.assertEqual(ctl(s, "status")[0], 3)
            finally:
                s.stop()
        finally:
            sim.stop()


class RingFullTest(SluiceTest):
    """A control plane that stops reading (here: SIGSTOP) cannot slow the
    workers down: their event rings fill, events are dropped and counted,
    every request is still served."""
    workers = 1
    sim_args = ("--ttft-ms", "1", "--itl-ms", "1", "--tokens", "1", "--max-batch", "10000")

    def test_full_ring_drops_and_never_blocks(self):
        wait_workers_running(self.sluice, 1)
        pid = wait_until(lambda: control_pid(self.sluice), 10, "control plane pid")
        before = self.sluice.metrics()["sluice_ring_dropped_total"]
        os.kill(pid, signal.SIGSTOP)
        try:
            out = subprocess.run(
                [LLMLOAD, "-c", "32", "-n", "3000", "--fail-on-error", "--json", "-",
                 "http://127.0.0.1:%d%s" % (self.sluice.port, CHAT)],
                capture_output=True, text=True, timeout=300)
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertEqual(out.returncode, 0, out.stderr[-2000:])
        r = json.loads(out.stdout)
        self.assertEqual((r["completed"], r["failed"]), (3000, 0))
        # 3000 streams x (admitted, first token, tokens, end) > one 4096-slot ring
        m = wait_until(lambda: self.sluice.metrics(), 10, "metrics again")
        dropped = m["sluice_ring_dropped_total"] - before
        self.assertGreater(dropped, 3000 * 3 - 4096 - 100)
        self.assertLessEqual(dropped, 3000 * 4)
        # the counts never depended on the events
        self.assertEqual(m['sluice_requests_total{code="200"}'], 3000)
