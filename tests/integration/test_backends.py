"""Several backends: routing by model, node-wide least-outstanding picking,
max_inflight caps (load shedding), failover before the first byte, passive
ejection and active health checks."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from harness import (CHAT, Conn, Llmsim, Sluice, chat_body, check_exit, ctl, free_port, request,
                     sse_events, tokens_of, wait_for)


def chat(port, model, stream=True, headers=None, **extra):
    c = Conn(port)
    try:
        body = json.loads(chat_body(stream, **extra))
        body["model"] = model
        return c.request("POST", CHAT, json.dumps(body), headers)
    finally:
        c.close()


def expected(n):
    return [" w%d" % i for i in range(n)]


class MultiBackendTest(unittest.TestCase):
    """Starts the llmsims of `sims` (name -> args) and one sluice with a
    [backend NAME] per sim, plus `backends` (extra keys per backend) and
    `conf` (other sections)."""

    sims = {}
    backends = {}
    conf = {}
    workers = 2

    @classmethod
    def setUpClass(cls):
        cls.sim = {}
        try:
            for name, args in cls.sims.items():
                cls.sim[name] = Llmsim(*args)
            sections = dict(cls.conf)
            for name, keys in cls.backends.items():
                url = keys.get("url") or "http://127.0.0.1:%d" % cls.sim[name].port
                sections["backend " + name] = dict(keys, url=url)
            cls.names = list(cls.backends)
            cls.sluice = Sluice(None, sections, cls.workers)
        except Exception:
            for s in cls.sim.values():
                s.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        rc = cls.sluice.stop()
        for s in cls.sim.values():
            s.stop()
        check_exit(cls.sluice, rc)

    def metric(self, key):
        return self.sluice.metrics().get(key, 0)

    def requests_of(self, name):
        return self.sim[name].stats()["requests"]


class RoutingTest(MultiBackendTest):
    sims = {"a": ("--model", "alpha,shared", "--ttft-ms", "5", "--itl-ms", "20", "--tokens", "10"),
            "b": ("--model", "beta,shared", "--ttft-ms", "5", "--itl-ms", "20", "--tokens", "10")}
    backends = {"a": {"models": "alpha, shared"}, "b": {"models": "beta,shared"}}

    def test_a_model_goes_only_where_it_is_served(self):
        a0, b0 = self.requests_of("a"), self.requests_of("b")
        for _ in range(4):
            r = chat(self.sluice.port, "alpha")
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(tokens_of(sse_events(r.body)), expected(10))
        r = chat(self.sluice.port, "beta", stream=False)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual((self.requests_of("a") - a0, self.requests_of("b") - b0), (4, 1))

    def test_unknown_model_is_404_and_reaches_no_backend(self):
        a0, b0 = self.requests_of("a"), self.requests_of("b")
        r = chat(self.sluice.port, "gamma")
        self.assertEqual(r.status, 404)
        err = r.json()["error"]
        self.assertEqual((err["type"], err["code"]), ("invalid_request_error", "model_not_found"))
        self.assertEqual((self.requests_of("a"), self.requests_of("b")), (a0, b0))

    def test_shared_model_is_spread_by_outstanding_requests(self):
        a0, b0 = self.requests_of("a"), self.requests_of("b")
        results = []

        def one():
            results.append(chat(self.sluice.port, "shared"))
        ts = [threading.Thread(target=one) for _ in range(16)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertTrue(all(r.status == 200 for r in results))
        da, db = self.requests_of("a") - a0, self.requests_of("b") - b0
        self.assertEqual(da + db, 16)
        # 16 concurrent streams on two equal backends: least outstanding
        # keeps them within a few of each other.
        self.assertLessEqual(abs(da - db), 4, (da, db))

    def test_models_list_is_the_union(self):
        st, _, body = request("127.0.0.1", self.sluice.port, "GET", "/v1/models")
        self.assertEqual(st, 200)
        d = json.loads(body)
        self.assertEqual(d["object"], "list")
        self.assertEqual(sorted(m["id"] for m in d["data"]), ["alpha", "beta", "shared"])
        self.assertTrue(all(m["object"] == "model" for m in d["data"]))

    def test_backends_in_metrics_and_sluicectl(self):
        m = self.sluice.metrics()
        for n in self.names:
            self.assertEqual(m['sluice_backend_up{backend="%s"}' % n], 1)
            self.assertIn('sluice_backend_inflight{backend="%s"}' % n, m)
        rc, out, err = ctl(self.sluice, "backends")
        self.assertEqual(rc, 0, err)
        self.assertIn("alpha, shared", out)
        rc, out, err = ctl(self.sluice, "--json", "backends")
        self.assertEqual(rc, 0, err)
        bs = json.loads(out)["backends"]
        self.assertEqual([b["name"] for b in bs], self.names)
        self.assertTrue(all(b["up"] and b["ejected_ms"] == 0 for b in bs))


class CapTest(MultiBackendTest):
    sims = {"a": ("--ttft-ms", "5", "--itl-ms", "50", "--tokens", "20"),
            "b": ("--ttft-ms", "5", "--itl-ms", "50", "--tokens", "20")}
    backends = {"a": {"max_inflight": "2"}, "b": {"max_inflight": "3"}}

    def test_caps_are_never_exceeded_and_the_rest_is_shed_at_once(self):
        results = []

        def one():
            t0 = time.monotonic()
            r = chat(self.sluice.port, "llmsim-1")
            results.append((r, time.monotonic() - t0))
        ts = [threading.Thread(target=one) for _ in range(12)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        ok = [r for r, _ in results if r.status == 200]
        shed = [(r, dt) for r, dt in results if r.status != 200]
        self.assertLessEqual(self.sim["a"].stats()["peak"], 2)
        self.assertLessEqual(self.sim["b"].stats()["peak"], 3)
        self.assertGreaterEqual(len(ok), 5)
        self.assertEqual(len(ok) + len(shed), 12)
        for r, dt in shed:
            self.assertEqual(r.status, 503)
            self.assertEqual(r.json()["error"]["code"], "overloaded")
            self.assertIn("retry-after", r.headers)
            self.assertLess(dt, 0.5)  # refused at once, not queued
        self.assertGreaterEqual(self.metric('sluice_rejected_total{reason="backends_full"}'),
                                len(shed))
        for r in ok:
            self.assertEqual(tokens_of(sse_events(r.body)), expected(20))


class ReserveTest(MultiBackendTest):
    """[upstream] reserve keeps a share of every max_inflight for priority
    tenants: the others are shed first."""

    sims = {"a": ("--ttft-ms", "5", "--itl-ms", "50", "--tokens", "20")}
    backends = {"a": {"max_inflight": "4"}}
    conf = {"upstream": {"reserve": "50", "health_interval": "0"},
            "auth": {"enabled": "true"},
            "tenant vip": {"key_sha256": hashlib.sha256(b"sk-vip").hexdigest(),
                           "priority": "true"},
            "tenant std": {"key_sha256": hashlib.sha256(b"sk-std").hexdigest()}}
    workers = 1

    def burst(self, key, n):
        out = []
        ts = [threading.Thread(target=lambda: out.append(chat(
            self.sluice.port, "llmsim-1", headers={"Authorization": "Bearer " + key})))
            for _ in range(n)]
        for t in ts:
            t.start()
        return ts, out

    def test_priority_tenants_get_the_reserved_half(self):
        ts, std = self.burst("sk-std", 4)
        wait_for(lambda: self.sim["a"].stats()["running"] == 2, 5, "std at its share")
        ts2, vip = self.burst("sk-vip", 2)
        for t in ts + ts2:
            t.join()
        self.assertEqual(sorted(r.status for r in std), [200, 200, 503, 503])
        self.assertEqual([r.status for r in vip], [200, 200])
        self.assertEqual(self.sim["a"].stats()["peak"], 4)


class FailoverTest(MultiBackendTest):
    """`dead` listens nowhere, `busy` answers 503, `slow` never sends a
    first token in time; `good` serves.  All are at priority 0 except good,
    so every request tries a bad one first whenever one is eligible."""

    sims = {"busy": ("--fault", "status:503", "--ttft-ms", "5", "--itl-ms", "5", "--tokens", "8"),
            "slow": ("--ttft-ms", "30000", "--itl-ms", "5", "--tokens", "8"),
            "good": ("--ttft-ms", "5", "--itl-ms", "5", "--tokens", "8")}
    backends = {"dead": {"url": "http://127.0.0.1:%d" % free_port()},
                "busy": {}, "slow": {}, "good": {"priority": "1"}}
    conf = {"upstream": {"retries": "3", "eject_after": "2", "eject_time": "60s",
                         "health_interval": "0"},
            "stream": {"first_token_timeout": "500ms"}}
    workers = 1

    def test_bad_backends_cost_the_client_nothing_then_are_ejected(self):
        for i in range(6):
            r = chat(self.sluice.port, "llmsim-1")
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(tokens_of(sse_events(r.body)), expected(8))
        m = self.sluice.metrics()
        for n in ("dead", "busy", "slow"):
            self.assertGreaterEqual(m['sluice_backend_failovers_total{backend="%s"}' % n], 1, n)
            self.assertGreaterEqual(m['sluice_backend_ejections_total{backend="%s"}' % n], 1, n)
            self.assertEqual(m['sluice_backend_up{backend="%s"}' % n], 0, n)
        self.assertEqual(m['sluice_backend_up{backend="good"}'], 1)
        # All three out: requests go straight to good, nothing more to fail over.
        f0 = sum(m['sluice_backend_failovers_total{backend="%s"}' % n]
                 for n in ("dead", "busy", "slow"))
        busy0 = self.requests_of("busy")
        t0 = time.monotonic()
        for _ in range(4):
            r = chat(self.sluice.port, "llmsim-1", stream=False)
            self.assertEqual(r.status, 200, r.body)
        self.assertLess(time.monotonic() - t0, 2.0)
        m = self.sluice.metrics()
        self.assertEqual(sum(m['sluice_backend_failovers_total{backend="%s"}' % n]
                             for n in ("dead", "busy", "slow")), f0)
        self.assertEqual(self.requests_of("busy"), busy0)
        self.assertEqual(self.sim["slow"].stats()["running"], 0)  # its requests were cancelled


class FailoverLimitTest(MultiBackendTest):
    """With no healthy backend left, the client gets the last backend's
    answer; after the first token there is no failover: an error event."""

    sims = {"busy": ("--fault", "status:503", "--ttft-ms", "5"),
            "cut": ("--fault", "close_after:3", "--ttft-ms", "5", "--itl-ms", "5", "--tokens", "8")}
    backends = {"busy": {}, "cut": {"priority": "1"}}
    conf = {"upstream": {"retries": "1", "eject_after": "0", "health_interval": "0"}}
    workers = 1

    def test_after_the_first_token_the_stream_ends_with_an_error_event(self):
        r = chat(self.sluice.port, "llmsim-1")
        self.assertEqual(r.status, 200)
        evs = sse_events(r.body)
        self.assertEqual(tokens_of(evs), expected(3)[:len(tokens_of(evs))])
        self.assertEqual(evs[-1].get("event"), ["error"])
        self.assertEqual(json.loads(evs[-1]["data"][0])["error"]["code"], "backend_closed")


class SaturationTest(MultiBackendTest):
    """A backend whose own queue grows (vLLM num_requests_waiting, read from
    its /metrics by the control plane) gets fewer new requests than its
    outstanding count alone would give it."""

    sims = {"narrow": ("--max-batch", "2", "--ttft-ms", "5", "--itl-ms", "20", "--tokens", "15"),
            "wide": ("--max-batch", "100", "--ttft-ms", "5", "--itl-ms", "20", "--tokens", "15")}
    backends = {"narrow": {}, "wide": {}}
    conf = {"upstream": {"health_interval": "100ms"}}
    workers = 1

    def test_a_backend_that_queues_gets_less(self):
        # 12 long streams: outstanding counts split them 6 / 6, and narrow
        # (2 batch slots) queues 4 of its 6.
        longs = []
        ts = [threading.Thread(target=lambda: longs.append(
            chat(self.sluice.port, "llmsim-1", headers={"X-Sim-Tokens": "100"})))
            for _ in range(12)]
        for t in ts:
            t.start()
        wait_for(lambda: self.metric('sluice_backend_queue{backend="narrow"}') >= 3, 5,
                 "narrow's queue read from its /metrics")
        self.assertEqual(self.sim["narrow"].stats()["running"], 2)
        # Equal outstanding counts (6 / 6; least outstanding alone would split
        # new requests 3 / 3), but narrow's 4 queued count against it: new
        # requests go to wide until its load (6 + n) passes narrow's (6 + 4).
        n0, w0 = self.requests_of("narrow"), self.requests_of("wide")
        shorts = []
        ss = [threading.Thread(target=lambda: shorts.append(
            chat(self.sluice.port, "llmsim-1", stream=False, headers={"X-Sim-Tokens": "3"})))
            for _ in range(6)]
        for t in ss:
            t.start()
        for t in ss:
            t.join()
        self.assertTrue(all(r.status == 200 for r in shorts))
        dn, dw = self.requests_of("narrow") - n0, self.requests_of("wide") - w0
        self.assertEqual(dn + dw, 6)
        self.assertLessEqual(dn, 1, (dn, dw))
        for t in ts:
            t.join()
        self.assertTrue(all(r.status == 200 for r in longs))
        rc, out, err = ctl(self.sluice, "--json", "backends")
        load = json.loads(out)["backends"][0]["load"]
        self.assertLess(load["age_ms"], 1000)


class ContinueTest(MultiBackendTest):
    """[upstream] continue_streams: a backend that fails mid-answer (closes,
    or stalls) hands the answer so far to another, which goes on from there
    (llmsim, like vLLM, continues a final assistant message); the client
    sees one stream."""

    sims = {"cut": ("--fault", "close_after:5", "--ttft-ms", "5", "--itl-ms", "5", "--tokens", "20"),
            "stall": ("--fault", "hang_after:7", "--ttft-ms", "5", "--itl-ms", "5", "--tokens", "20"),
            "good": ("--ttft-ms", "5", "--itl-ms", "5", "--tokens", "20")}
    backends = {"cut": {}, "stall": {"priority": "1"}, "good": {"priority": "2"}}
    conf = {"upstream": {"continue_streams": "true", "eject_after": "0", "health_interval": "0",
                         "retries": "2"},
            "stream": {"token_idle_timeout": "500ms"}}
    workers = 1

    def check_one_stream(self, r, chat=True):
        self.assertEqual(r.status, 200, r.body)
        evs = sse_events(r.body)
        self.assertFalse([e for e in evs if "event" in e], "no error event")
        ids = [e["id"][0] for e in evs]
        sid = ids[0].split(":")[0]
        self.assertEqual(ids, ["%s:%d" % (sid, i + 1) for i in range(len(ids))])
        self.assertEqual(tokens_of(evs), expected(20))
        if chat:  # one role event, at the start
            roles = [e for e in evs if '"role"' in e["data"][0]]
            self.assertEqual(len(roles), 1)
            self.assertIs(roles[0], evs[0])
        self.assertEqual(evs[-1]["data"], ["[DONE]"])

    def test_chat_goes_on_across_two_failures(self):
        # cut closes after 5 tokens, stall hangs after 7 more, good finishes
        r = chat(self.sluice.port, "llmsim-1")
        self.check_one_stream(r)
        m = self.sluice.metrics()
        self.assertEqual(m['sluice_backend_failovers_total{backend="cut"}'], 1)
        self.assertEqual(m['sluice_backend_failovers_total{backend="stall"}'], 1)
        # the abandoned generation on stall was cancelled
        wait_for(lambda: self.sim["stall"].stats()["running"] == 0, 5, "stall's request cut")

    def test_completions_go_on_too(self):
        c = Conn(self.sluice.port)
        try:
            r = c.request("POST", "/v1/completions", json.dumps(
                {"model": "llmsim-1", "prompt": "say", "stream": True}))
        finally:
            c.close()
        self.check_one_stream(r, chat=False)


class AffinityTest(MultiBackendTest):
    """affinity_prefix: requests that share a system prompt go to the same
    replica, whose prefix cache (llmsim's model of vLLM's) then skips their
    prefill; a hot prefix spills over under the load bound."""

    sims = {"r1": ("--prefix-cache-blocks", "4096", "--prefill-us-per-token", "100",
                   "--ttft-ms", "5", "--itl-ms", "5", "--tokens", "3"),
            "r2": ("--prefix-cache-blocks", "4096", "--prefill-us-per-token", "100",
                   "--ttft-ms", "5", "--itl-ms", "5", "--tokens", "3")}
    backends = {"r1": {}, "r2": {}}
    conf = {"upstream": {"affinity_prefix": "1k", "health_interval": "0"}}
    workers = 2

    def ask(self, system, user, stream=False):
        body = {"model": "llmsim-1", "stream": stream,
                "messages": [{"role": "system", "content": system},
                             {"role": "user", "content": user}]}
        c = Conn(self.sluice.port)
        try:
            return c.request("POST", CHAT, json.dumps(body))
        finally:
            c.close()

    def hits(self):
        return sum(self.sim[n].stats()["prefix_hits"] for n in ("r1", "r2"))

    def test_conversations_stay_on_their_replica(self):
        h0 = self.hits()
        for conv in range(8):
            system = ("You are assistant number %d. " % conv) * 80  # ~2.4 KB
            for turn in range(4):
                r = self.ask(system, "question %d" % turn)
                self.assertEqual(r.status, 200, r.body)
        # every turn after the first found its prefix cached
        self.assertEqual(self.hits() - h0, 8 * 3)
        self.assertGreaterEqual(self.metric("sluice_affinity_picks_total"), 32)
        # and the conversations are spread over both replicas
        self.assertTrue(all(self.sim[n].stats()["requests"] > 0 for n in ("r1", "r2")))

    def test_a_hot_prefix_spills_over(self):
        r0 = {n: self.requests_of(n) for n in ("r1", "r2")}
        results = []
        system = "One very popular system prompt. " * 80
        ts = [threading.Thread(target=lambda i=i: results.append(
            self.ask(system, "q%d" % i, stream=True))) for i in range(10)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertTrue(all(r.status == 200 for r in results))
        d = {n: self.requests_of(n) - r0[n] for n in ("r1", "r2")}
        self.assertEqual(sum(d.values()), 10)
        self.assertGreater(min(d.values()), 0, d)


class DiscoveryTest(MultiBackendTest):
    """Backends configured without `models` are asked for their own list
    (GET /v1/models, by the control plane); routing and /v1/models follow it."""

    sims = {"a": ("--model", "alpha", "--ttft-ms", "5", "--itl-ms", "5", "--tokens", "4"),
            "b": ("--model", "beta,gamma", "--ttft-ms", "5", "--itl-ms", "5", "--tokens", "4")}
    backends = {"a": {}, "b": {}}
    conf = {"upstream": {"health_interval": "100ms"}}

    def models(self):
        st, _, body = request("127.0.0.1", self.sluice.port, "GET", "/v1/models")
        return sorted(m["id"] for m in json.loads(body)["data"]) if st == 200 else None

    def test_models_come_from_the_backends(self):
        wait_for(lambda: self.models() == ["alpha", "beta", "gamma"], 10, "models discovered")
        a0, b0 = self.requests_of("a"), self.requests_of("b")
        for model, n in (("alpha", 3), ("gamma", 2)):
            for _ in range(n):
                r = chat(self.sluice.port, model, stream=False)
                self.assertEqual(r.status, 200, r.body)
        self.assertEqual((self.requests_of("a") - a0, self.requests_of("b") - b0), (3, 2))
        r = chat(self.sluice.port, "delta")
        self.assertEqual((r.status, r.json()["error"]["code"]), (404, "model_not_found"))
        self.assertEqual((self.requests_of("a") - a0, self.requests_of("b") - b0), (3, 2))


AGENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python",
                     "gpu_agent.py")


def start_agent(test, used_mib, total_mib=81559):
    """python/gpu_agent.py with a fake nvidia-smi reporting one GPU."""
    d = tempfile.mkdtemp()
    smi = os.path.join(d, "nvidia-smi")
    with open(smi, "w") as f:
        f.write("#!/bin/sh\necho '0, NVIDIA H100, %d, %d, 50'\n" % (used_mib, total_mib))
    os.chmod(smi, 0o755)
    port = free_port()
    p = subprocess.Popen([sys.executable, AGENT, "--listen", "127.0.0.1:%d" % port,
                          "--cache-ms", "0"], env=dict(os.environ, PATH=d + ":/usr/bin:/bin"),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return p, port


class GpuMemoryTest(MultiBackendTest):
    """A backend whose GPU (read from the agent on its host, agent_port) is
    past gpu_memory_max gets no new requests while another can take them."""

    sims = {"full": ("--ttft-ms", "5", "--itl-ms", "5", "--tokens", "3"),
            "roomy": ("--ttft-ms", "5", "--itl-ms", "5", "--tokens", "3")}
    backends = {}
    conf = {"upstream": {"health_interval": "100ms", "gpu_memory_max": "95"}}
    workers = 1

    @classmethod
    def setUpClass(cls):
        cls.agents = [start_agent(cls, 80000), start_agent(cls, 8000)]
        cls.backends = {"full": {"agent_port": str(cls.agents[0][1])},
                        "roomy": {"agent_port": str(cls.agents[1][1])}}
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        for p, _ in cls.agents:
            p.terminate()
            p.wait(10)
        super().tearDownClass()

    def test_a_full_gpu_gets_no_new_requests(self):
        ratio = 'sluice_backend_gpu_memory_ratio{backend="%s"}'
        wait_for(lambda: self.metric(ratio % "full") >= 0.98 and self.metric(ratio % "roomy") > 0,
                 10, "GPU memory read from the agents")
        self.assertAlmostEqual(self.metric(ratio % "roomy"), 8000 / 81559, places=2)
        f0, r0 = self.requests_of("full"), self.requests_of("roomy")
        for _ in range(6):
            r = chat(self.sluice.port, "llmsim-1", stream=False)
            self.assertEqual(r.status, 200, r.body)
        self.assertEqual((self.requests_of("full") - f0, self.requests_of("roomy") - r0), (0, 6))


class HealthTest(MultiBackendTest):
    sims = {"a": ("--ttft-ms", "5", "--itl-ms", "5", "--tokens", "5"),
            "b": ("--ttft-ms", "5", "--itl-ms", "5", "--tokens", "5")}
    backends = {"a": {}, "b": {}}
    conf = {"upstream": {"health_interval": "100ms", "health_timeout": "300ms",
                         "health_rise": "2", "health_fall": "2", "eject_after": "0"}}

    def test_a_dead_backend_goes_down_and_comes_back_up(self):
        up = 'sluice_backend_up{backend="a"}'
        self.assertEqual(self.metric(up), 1)
        port = self.sim["a"].port
        self.sim["a"].stop()
        wait_for(lambda: self.metric(up) == 0, 10, "backend down")
        self.assertGreaterEqual(self.metric('sluice_backend_checks_failed_total{backend="a"}'), 2)
        b0 = self.requests_of("b")
        for _ in range(4):
            r = chat(self.sluice.port, "llmsim-1", stream=False)
            self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.requests_of("b") - b0, 4)  # no request even tried the dead one
        self.assertEqual(self.metric('sluice_backend_failures_total{backend="a"}'), 0)
        self.sim["a"] = Llmsim("--ttft-ms", "5", "--itl-ms", "5", "--tokens", "5", port=port)
        wait_for(lambda: self.metric(up) == 1, 10, "backend up again")
        a0 = self.requests_of("a")
        for _ in range(6):
            chat(self.sluice.port, "llmsim-1", stream=False)
        self.assertGreater(self.requests_of("a"), a0)


if __name__ == "__main__":
    unittest.main()
