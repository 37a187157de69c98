#!/usr/bin/env python3
"""summarize.py -- turns a perf/compare.sh run directory into OUT.md and OUT.json.

usage: summarize.py --run-dir DIR --out PREFIX

Reads DIR/machine.json, DIR/params.json, DIR/end.json, DIR/runs.jsonl (one
record per target/scenario/repetition, raw) and DIR/configs/*. Per run it
derives the figures (proxy CPU per million tokens, latency, RSS per stream,
load-side CPU ...); per target and scenario it reports medians over the
repetitions, latency minus direct's from the same sweep, and ratios to the
best peer (nginx, HAProxy, nghttpx) of the same run.
"""
import argparse
import glob
import json
import os
import statistics

PEERS = ["nginx", "haproxy", "nghttpx"]
FOREIGN0 = 15   # % of CPU 0 used by others during a run above which it is flagged
FOREIGN1 = 20   # same for CPU 1 (softirq and this script's helpers run there too)
ORDER = ["direct", "sluice", "nginx", "haproxy", "nghttpx"]


def load_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def get(d, *keys):
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def pct_busy(pre, post, cpu):
    a, b = get(pre, "cpustat", cpu), get(post, "cpustat", cpu)
    if not a or not b or b["total"] == a["total"]:
        return None
    return 100.0 * (b["busy"] - a["busy"]) / (b["total"] - a["total"])


def derive(r):
    """Adds r["d"]: the figures of one run."""
    d = {}
    pre, post, load = r.get("pre"), r.get("post"), r.get("load")
    sc = int(r.get("scenario", 0))
    d["ok"] = not r.get("error")
    if pre and post:
        window = post["t"] - pre["t"]
        d["window_s"] = round(window, 3)
        if pre.get("proxy") and post.get("proxy"):
            d["proxy_cpu_s"] = round(post["proxy"]["cpu_s"] - pre["proxy"]["cpu_s"], 3)
            d["proxy_core_pct"] = round(100 * d["proxy_cpu_s"] / window, 1) if window > 0 else None
            d["idle_rss_kb"] = pre["proxy"]["rss_kb"]
            d["idle_pss_kb"] = pre["proxy"].get("pss_kb")
            d["post_rss_kb"] = post["proxy"]["rss_kb"]
            d["proxy_nproc"] = post["proxy"]["nproc"]
        if pre.get("sim") and post.get("sim"):
            d["sim_cpu_s"] = round(post["sim"]["cpu_s"] - pre["sim"]["cpu_s"], 3)
            if sc == 3 and not pre.get("proxy"):
                d["idle_rss_kb"] = pre["sim"]["rss_kb"]
                d["idle_pss_kb"] = pre["sim"].get("pss_kb")
        client = None
        if load:
            client = load.get("client_cpu_s")
        elif get(r, "h2load_cpu", "cpu_s") is not None:
            client = r["h2load_cpu"]["cpu_s"]
        d["client_cpu_s"] = client
        if client is not None and d.get("sim_cpu_s") is not None and window > 0:
            d["load_core_pct"] = round(100 * (client + d["sim_cpu_s"]) / window, 1)
        d["cpu0_busy_pct"] = pct_busy(pre, post, "cpu0")
        d["cpu1_busy_pct"] = pct_busy(pre, post, "cpu1")
        for k in ("cpu0_busy_pct", "cpu1_busy_pct"):
            if d[k] is not None:
                d[k] = round(d[k], 1)
        # CPU used during the window by processes that are not part of the
        # benchmark (the machine is shared): whole-CPU busy minus our own.
        if d["cpu0_busy_pct"] is not None:
            d["foreign_cpu0_pct"] = round(d["cpu0_busy_pct"] - (d.get("proxy_core_pct") or 0), 1)
        if d["cpu1_busy_pct"] is not None and d.get("load_core_pct") is not None:
            d["foreign_cpu1_pct"] = round(d["cpu1_busy_pct"] - d["load_core_pct"], 1)
        d["foreign_load"] = ((d.get("foreign_cpu0_pct") or 0) > FOREIGN0
                             or (d.get("foreign_cpu1_pct") or 0) > FOREIGN1)
    if load:
        for k in ("started", "completed", "failed", "tokens", "tokens_per_s", "requests_per_s",
                  "peak_streams", "verify_errors", "duration_s"):
            d[k] = load.get(k)
        d["failed_by_reason"] = load.get("failed_by_reason")
        for m in ("ttft_ms", "itl_ms"):
            for p in ("p50", "p99"):
                d["%s_%s" % (m.split("_")[0], p)] = get(load, m, p)
        if d.get("proxy_cpu_s") is not None and load.get("tokens"):
            d["proxy_cpu_per_mtok"] = round(d["proxy_cpu_s"] * 1e6 / load["tokens"], 3)
        if sc == 1 and (load.get("verify_errors") or 0) > 0:
            d["ok"] = False
            d["invalid"] = "verify violations: %d" % load["verify_errors"]
    warm = r.get("warm")
    if warm:
        d["cold_ttft_p99"] = get(warm, "ttft_ms", "p99")
        d["cold_ttft_max"] = get(warm, "ttft_ms", "max")
        d["cold_failed"] = warm.get("failed")
        d["cold_verify_errors"] = warm.get("verify_errors")
    if sc == 3:
        peak = r.get("peak") or {}
        d["peak_rss_kb"] = peak.get("peak_rss_kb")
        d["peak_pss_kb"] = peak.get("peak_pss_kb")
        if d["peak_pss_kb"]:
            d["pss_per_stream_kb"] = round(d["peak_pss_kb"] / (int(r.get("sub", 0)) or 1), 2)
        d["peak_backend_running"] = peak.get("peak_backend_running")
        n = int(r.get("sub", 0)) or 1
        if d.get("peak_rss_kb"):
            d["rss_per_stream_kb"] = round(d["peak_rss_kb"] / n, 2)
            held = d.get("peak_backend_running") or d.get("completed") or 0
            if held and d.get("idle_rss_kb") is not None:
                d["delta_rss_per_stream_kb"] = round((d["peak_rss_kb"] - d["idle_rss_kb"]) / held, 2)
    if sc == 4:
        h = r.get("h2load") or {}
        d["req_per_s"] = h.get("req_per_s")
        d["succeeded"] = h.get("succeeded")
        d["h2_failed"] = (h.get("failed") or 0) + (h.get("errored") or 0) + (h.get("timeout") or 0)
        d["s2xx"] = h.get("s2xx")
        d["non2xx"] = sum(h.get(k) or 0 for k in ("s3xx", "s4xx", "s5xx"))
        if not h.get("ok"):
            d["ok"] = False
        if d.get("proxy_cpu_s") is not None and h.get("succeeded"):
            d["proxy_cpu_per_100k"] = round(d["proxy_cpu_s"] * 1e5 / h["succeeded"], 3)
    r["d"] = d
    return r


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=2):
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    if abs(x) >= 1000 and nd <= 2:
        return "{:,.0f}".format(x)
    return ("{:.%df}" % nd).format(x)


def ratio(x, best):
    if x is None or best in (None, 0):
        return None
    return x / best


class Summary:
    def __init__(self, runs):
        self.runs = runs
        # (scenario, sub) -> target -> [records]
        self.by = {}
        for r in runs:
            key = (int(r["scenario"]), str(r["sub"]))
            self.by.setdefault(key, {}).setdefault(r["target"], []).append(r)

    def keys(self, sc):
        return sorted((k for k in self.by if k[0] == sc), key=lambda k: int(k[1]))

    def recs(self, key, t):
        return self.by.get(key, {}).get(t, [])

    def med(self, key, t, field, only_ok=True):
        return med([r["d"].get(field) for r in self.recs(key, t) if r["d"].get("ok") or not only_ok])

    def med_minus_direct(self, key, t, field):
        direct = {r["rep"]: r["d"].get(field) for r in self.recs(key, "direct") if r["d"].get("ok")}
        vals = []
        for r in self.recs(key, t):
            if not r["d"].get("ok"):
                continue
            a, b = r["d"].get(field), direct.get(r["rep"])
            if a is not None and b is not None:
                vals.append(a - b)
        return med(vals)

    def targets(self, key):
        present = self.by.get(key, {})
        return [t for t in ORDER if t in present] + sorted(t for t in present if t not in ORDER)

    def best_peer(self, key, field, lower_is_better=True, minus_direct=False):
        vals = {}
        for t in PEERS:
            v = self.med_minus_direct(key, t, field) if minus_direct else self.med(key, t, field)
            if v is not None:
                vals[t] = v
        if not vals:
            return None, None
        t = (min if lower_is_better else max)(vals, key=vals.get)
        return t, vals[t]

    def status(self, key, t):
        rs = self.recs(key, t)
        bad = [r for r in rs if not r["d"].get("ok")]
        notes = []
        for r in bad:
            notes.append("rep %s: %s" % (r["rep"], r.get("error") or r["d"].get("invalid") or "failed"))
        return "%d/%d valid" % (len(rs) - len(bad), len(rs)), notes


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rd = a.run_dir
    machine = load_json(os.path.join(rd, "machine.json"), {})
    params = load_json(os.path.join(rd, "params.json"), {})
    end = load_json(os.path.join(rd, "end.json"), {})
    runs = []
    with open(os.path.join(rd, "runs.jsonl")) as f:
        for line in f:
            line = line.strip()
            if line:
                runs.append(derive(json.loads(line)))
    configs = {}
    for p in sorted(glob.glob(os.path.join(rd, "configs", "*"))):
        configs[os.path.basename(p)] = open(p).read()

    S = Summary(runs)
    md = []
    summary = {}
    verdicts = []
    limits = []
    quick = str(machine.get("quick")) in ("1", "True", "true")

    md.append("# sluice vs nginx, HAProxy, nghttpx — %s%s" % (machine.get("stamp", "?"),
                                                             " (--quick: trial settings)" if quick else ""))
    md.append("")
    md.append("Produced by `perf/compare.sh%s`. Each proxy: one worker/thread, pinned to CPU 0 "
              "(`taskset -c 0`); llmsim, llmload, h2load on CPU 1. %s sweep(s), each running every "
              "scenario for every target in turn; figures are medians over the sweeps. "
              "\"+\" latency = target minus direct (llmsim without a proxy) in the same sweep. "
              "Ratios are to the best peer (best of nginx, HAProxy, nghttpx) in this run."
              % (" --quick" if quick else "", machine.get("reps", "?")))
    md.append("")
    md.append("## Machine and versions")
    md.append("")
    for k, label in [("nproc", "CPUs (nproc)"), ("cpu_model", "CPU model"), ("kernel", "kernel"),
                     ("mem_total", "memory"), ("os", "OS"), ("nofile_hard", "open-file hard limit"),
                     ("loadavg_start", "load average at start"), ("sluice", "sluice (git describe)"),
                     ("sluice_build", "sluice build"), ("nginx", "nginx"), ("haproxy", "HAProxy"),
                     ("nghttpx", "nghttpx"), ("h2load", "h2load"), ("liburing", "liburing")]:
        md.append("- %s: %s" % (label, machine.get(k, "?")))
    md.append("- load average at end: %s; sweeps took %s s%s" % (
        end.get("loadavg_end", "?"), end.get("duration_s", "?"),
        ("; %s run(s) skipped (time budget)" % end.get("skipped")) if str(end.get("skipped", 0)) != "0" else ""))
    if end.get("quiet_pct") not in (None, "0", 0):
        md.append("- shared machine: before each run the script waited (up to 30 s) until both CPUs were "
                  "below %s%% busy; %s s waited in all. CPU0/CPU1 busy columns show what else ran "
                  "during each window." % (end.get("quiet_pct"), end.get("quiet_waited_s", "?")))
    md.append("")

    # ---------------- scenario 1 ----------------
    p1 = params.get("s1", {})
    keys1 = S.keys(1)
    if keys1:
        md.append("## 1. Paced relay")
        md.append("")
        md.append("llmsim TTFT %s ms, a token every %s ms, %s tokens; `llmload -c C -d %s --ramp %s --verify "
                  "--expect-tokens %s`. Latency in ms; CPU = proxy CPU seconds (all its processes) per "
                  "million tokens relayed. Proxy core / load core = CPU used in the window as %% of one core "
                  "(load = llmload + llmsim). CPU0/CPU1 = whole-CPU busy %% (includes anything else running). "
                  "Each run is preceded by an unmeasured warm-up (`llmload -c C --once`, one stream per "
                  "connection, so backend pools are filled); its TTFT p99 is the \"cold TTFT p99\"."
                  % (p1.get("ttft_ms"), p1.get("itl_ms"), p1.get("tokens"), p1.get("duration_s"),
                     p1.get("ramp_s"), p1.get("tokens")))
        md.append("")
        summary["paced"] = {}
        for key in keys1:
            c = key[1]
            bt, bcpu = S.best_peer(key, "proxy_cpu_per_mtok")
            rows = []
            srow = {}
            for t in S.targets(key):
                st, notes = S.status(key, t)
                ve = sum((r["d"].get("verify_errors") or 0) for r in S.recs(key, t))
                fl = sum((r["d"].get("failed") or 0) for r in S.recs(key, t))
                v = {f: S.med(key, t, f) for f in ("ttft_p50", "ttft_p99", "itl_p50", "itl_p99",
                                                     "proxy_cpu_per_mtok", "proxy_core_pct",
                                                     "load_core_pct", "cpu0_busy_pct", "cpu1_busy_pct",
                                                     "tokens_per_s", "completed", "cold_ttft_p99")}
                for f in ("ttft_p50", "ttft_p99", "itl_p50", "itl_p99"):
                    v["add_" + f] = None if t == "direct" else S.med_minus_direct(key, t, f)
                v["cpu_ratio"] = ratio(v["proxy_cpu_per_mtok"], bcpu)
                v["verify_errors_total"] = ve
                v["failed_total"] = fl
                v["status"] = st
                v["notes"] = notes
                srow[t] = v
                rows.append([t, st, "%d/%d" % (ve, fl),
                             fmt(v["ttft_p50"]), fmt(v["ttft_p99"]), fmt(v["itl_p50"]), fmt(v["itl_p99"]),
                             fmt(v["add_ttft_p50"]), fmt(v["add_ttft_p99"]), fmt(v["add_itl_p50"]),
                             fmt(v["add_itl_p99"]), fmt(v["proxy_cpu_per_mtok"]),
                             fmt(v["cpu_ratio"]), fmt(v["proxy_core_pct"], 0), fmt(v["load_core_pct"], 0),
                             "%s/%s" % (fmt(v["cpu0_busy_pct"], 0), fmt(v["cpu1_busy_pct"], 0)),
                             fmt(v["tokens_per_s"], 0), fmt(v["cold_ttft_p99"])])
            summary["paced"][c] = srow
            md.append("### %s concurrent streams" % c)
            md.append("")
            md.append(table(["target", "runs", "verify err/failed", "TTFT p50", "TTFT p99", "ITL p50",
                             "ITL p99", "+TTFT p50", "+TTFT p99", "+ITL p50", "+ITL p99",
                             "CPU s/M tok", "× best peer", "proxy core %", "load core %",
                             "CPU0/CPU1 busy %", "tokens/s", "cold TTFT p99"], rows))
            md.append("")
            for t, v in srow.items():
                for n in v["notes"]:
                    md.append("- %s: %s" % (t, n))
            if bt:
                md.append("Best peer by CPU: %s (%s s/M tok)." % (bt, fmt(bcpu)))
            md.append("")

    # ---------------- scenario 2 ----------------
    p2 = params.get("s2", {})
    keys2 = S.keys(2)
    if keys2:
        key = keys2[0]
        md.append("## 2. Bulk relay")
        md.append("")
        md.append("%s streams of %s tokens with no gap (llmsim `--itl-ms 0`), `llmload -c %s -d %s`."
                  % (p2.get("streams"), p2.get("tokens"), p2.get("streams"), p2.get("duration_s")))
        md.append("")
        bt, bcpu = S.best_peer(key, "proxy_cpu_per_mtok")
        btt, btps = S.best_peer(key, "tokens_per_s", lower_is_better=False)
        rows, srow = [], {}
        for t in S.targets(key):
            st, notes = S.status(key, t)
            v = {f: S.med(key, t, f) for f in ("tokens_per_s", "proxy_cpu_per_mtok", "proxy_core_pct",
                                                 "load_core_pct", "cpu0_busy_pct", "cpu1_busy_pct",
                                                 "itl_p50", "itl_p99", "ttft_p99")}
            v["tps_ratio"] = ratio(v["tokens_per_s"], btps)
            v["cpu_ratio"] = ratio(v["proxy_cpu_per_mtok"], bcpu)
            v["failed_total"] = sum((r["d"].get("failed") or 0) for r in S.recs(key, t))
            v["status"], v["notes"] = st, notes
            srow[t] = v
            rows.append([t, st, str(v["failed_total"]), fmt(v["tokens_per_s"], 0), fmt(v["tps_ratio"]),
                         fmt(v["proxy_cpu_per_mtok"]), fmt(v["cpu_ratio"]), fmt(v["proxy_core_pct"], 0),
                         fmt(v["load_core_pct"], 0),
                         "%s/%s" % (fmt(v["cpu0_busy_pct"], 0), fmt(v["cpu1_busy_pct"], 0))])
        summary["bulk"] = srow
        md.append(table(["target", "runs", "failed", "tokens/s", "× best peer", "CPU s/M tok",
                         "× best peer", "proxy core %", "load core %", "CPU0/CPU1 busy %"], rows))
        md.append("")
        for t, v in srow.items():
            for n in v["notes"]:
                md.append("- %s: %s" % (t, n))
        md.append("")

    # ---------------- scenario 3 ----------------
    p3 = params.get("s3", {})
    keys3 = S.keys(3)
    if keys3:
        key = keys3[0]
        n = int(key[1])
        md.append("## 3. Capacity")
        md.append("")
        md.append("%s streams at once (`llmload -c %s --once --ramp %s --timeout %s`), each %s tokens "
                  "%s ms apart (held about %s s). Held = most streams running in llmsim at once (its "
                  "`/stats`). RSS = VmRSS summed over all the target's processes (direct: llmsim's); "
                  "per stream = peak / %s; Δ per stream = (peak − idle) / held. PSS (smaps_rollup) counts "
                  "pages shared between a target's processes once. Kernel socket buffers are in "
                  "neither."
                  % (n, n, p3.get("ramp_s"), p3.get("timeout_s"), p3.get("tokens"), p3.get("itl_ms"),
                     p3.get("hold_s"), n))
        md.append("")
        bt, bmem = S.best_peer(key, "rss_per_stream_kb")
        rows, srow = [], {}
        for t in S.targets(key):
            st, notes = S.status(key, t)
            v = {f: S.med(key, t, f, only_ok=False) for f in (
                "completed", "failed", "peak_backend_running", "peak_streams", "idle_rss_kb",
                "peak_rss_kb", "rss_per_stream_kb", "delta_rss_per_stream_kb", "proxy_core_pct",
                "idle_pss_kb", "peak_pss_kb", "pss_per_stream_kb",
                "load_core_pct", "ttft_p99")}
            v["mem_ratio"] = None if t == "direct" else ratio(v["rss_per_stream_kb"], bmem)
            reasons = {}
            for r in S.recs(key, t):
                for k2, c2 in (r["d"].get("failed_by_reason") or {}).items():
                    reasons[k2] = reasons.get(k2, 0) + c2
            v["failed_by_reason_total"] = reasons
            v["completed_min"] = min([r["d"].get("completed") or 0 for r in S.recs(key, t)] or [0])
            v["status"], v["notes"] = st, notes
            srow[t] = v
            mb = lambda kb: None if kb is None else kb / 1024.0
            rows.append([t, st, "%s / %d" % (fmt(v["completed"], 0), n), fmt(v["completed_min"], 0),
                         ", ".join("%s %d" % kv for kv in sorted(reasons.items())) or "—",
                         fmt(v["peak_backend_running"], 0), fmt(mb(v["idle_rss_kb"]), 1),
                         fmt(mb(v["peak_rss_kb"]), 1), fmt(v["rss_per_stream_kb"]),
                         fmt(v["delta_rss_per_stream_kb"]), fmt(v["mem_ratio"]),
                         "%s / %s" % (fmt(mb(v["idle_pss_kb"]), 1), fmt(mb(v["peak_pss_kb"]), 1)),
                         fmt(v["pss_per_stream_kb"]),
                         fmt(v["proxy_core_pct"], 0), fmt(v["load_core_pct"], 0)])
        summary["capacity"] = srow
        md.append("Open files: the hard limit is %s per process and a relayed stream needs a client and a "
                  "backend socket. HAProxy runs with maxconn %s, the most its descriptor computation "
                  "(about 2 x maxconn + 14) fits under the limit (with strict-limits, on by default, it "
                  "refuses to start otherwise); streams beyond it wait in the listen queue. nginx "
                  "(worker_connections 20000) and nghttpx (rlimit-nofile 20000) run out of descriptors "
                  "near 10,000 streams (see the log lines below). sluice accepts clients into io_uring "
                  "fixed files, which do not take descriptors, so it needs about one per stream (the "
                  "backend socket)." % (machine.get("nofile_hard", "?"), machine.get("haproxy_maxconn", "?")))
        md.append("")
        md.append(table(["target", "runs", "completed (median)", "completed (worst)",
                         "failures (all reps)", "held", "idle RSS MiB", "peak RSS MiB",
                         "KiB/stream", "Δ KiB/stream", "× best peer", "PSS idle / peak MiB",
                         "PSS KiB/stream", "proxy core %", "load core %"], rows))
        md.append("")
        for t, v in srow.items():
            for n2 in v["notes"]:
                md.append("- %s: %s" % (t, n2))
        md.append("")

    # ---------------- scenario 4 ----------------
    p4 = params.get("s4", {})
    keys4 = S.keys(4)
    if keys4:
        key = keys4[0]
        md.append("## 4. Short requests")
        md.append("")
        md.append("`h2load -p http/1.1 -c %s -t 1 -D %s` on `GET /v1/models` (answered by llmsim)."
                  % (p4.get("connections"), p4.get("duration_s")))
        md.append("")
        btr, breq = S.best_peer(key, "req_per_s", lower_is_better=False)
        bt, bcpu = S.best_peer(key, "proxy_cpu_per_100k")
        rows, srow = [], {}
        for t in S.targets(key):
            st, notes = S.status(key, t)
            v = {f: S.med(key, t, f) for f in ("req_per_s", "proxy_cpu_per_100k", "proxy_core_pct",
                                                 "load_core_pct", "cpu0_busy_pct", "cpu1_busy_pct")}
            v["req_ratio"] = ratio(v["req_per_s"], breq)
            v["cpu_ratio"] = ratio(v["proxy_cpu_per_100k"], bcpu)
            v["errors_total"] = sum((r["d"].get("h2_failed") or 0) + (r["d"].get("non2xx") or 0)
                                    for r in S.recs(key, t))
            v["status"], v["notes"] = st, notes
            srow[t] = v
            rows.append([t, st, str(v["errors_total"]), fmt(v["req_per_s"], 0), fmt(v["req_ratio"]),
                         fmt(v["proxy_cpu_per_100k"]), fmt(v["cpu_ratio"]), fmt(v["proxy_core_pct"], 0),
                         fmt(v["load_core_pct"], 0),
                         "%s/%s" % (fmt(v["cpu0_busy_pct"], 0), fmt(v["cpu1_busy_pct"], 0))])
        summary["short"] = srow
        md.append(table(["target", "runs", "errors/non-2xx", "req/s", "× best peer", "CPU s/100k req",
                         "× best peer", "proxy core %", "load core %", "CPU0/CPU1 busy %"], rows))
        md.append("")
        for t, v in srow.items():
            for n in v["notes"]:
                md.append("- %s: %s" % (t, n))
        md.append("")

    # ---------------- targets ----------------
    def verdict(name, ok, detail):
        verdicts.append({"target": name, "met": ok, "detail": detail})

    if "paced" in summary:
        for c, row in summary["paced"].items():
            s = row.get("sluice")
            bt, b = S.best_peer((1, c), "proxy_cpu_per_mtok")
            if s and s["proxy_cpu_per_mtok"] is not None and b:
                r = s["proxy_cpu_per_mtok"] / b
                verdict("paced %s: CPU/M tok <= 0.5 x best peer" % c, r <= 0.5,
                        "sluice %.2f vs %s %.2f s/M tok = %.2f x" % (s["proxy_cpu_per_mtok"], bt, b, r))
        top = max(summary["paced"], key=int)
        s = summary["paced"][top].get("sluice")
        for f, label in (("ttft_p99", "added p99 TTFT"), ("itl_p99", "added p99 inter-token")):
            bt, b = S.best_peer((1, top), f, minus_direct=True)
            if s and s.get("add_" + f) is not None and b is not None:
                verdict("paced %s: %s <= best peer's" % (top, label), s["add_" + f] <= b,
                        "sluice %+.2f ms vs %s %+.2f ms" % (s["add_" + f], bt, b))
    if "bulk" in summary:
        s = summary["bulk"].get("sluice")
        bt, b = S.best_peer(keys2[0], "proxy_cpu_per_mtok")
        if s and s["proxy_cpu_per_mtok"] is not None and b:
            verdict("bulk: CPU/M tok <= best peer's", s["proxy_cpu_per_mtok"] <= b,
                    "sluice %.2f vs %s %.2f s/M tok = %.2f x" % (s["proxy_cpu_per_mtok"], bt, b,
                                                                s["proxy_cpu_per_mtok"] / b))
    if "capacity" in summary:
        n = int(keys3[0][1])
        s = summary["capacity"].get("sluice")
        bt, b = S.best_peer(keys3[0], "rss_per_stream_kb")
        if s:
            allc = s["completed_min"] == n
            memok = b is not None and s["rss_per_stream_kb"] is not None and s["rss_per_stream_kb"] <= b
            verdict("capacity: all %d complete, RSS/stream <= best peer's" % n, allc and memok,
                    "sluice completed %s/%d (worst rep %s), %s KiB/stream vs %s %s KiB/stream"
                    % (fmt(s["completed"], 0), n, s["completed_min"], fmt(s["rss_per_stream_kb"]), bt, fmt(b)))
    if "short" in summary:
        s = summary["short"].get("sluice")
        bt, b = S.best_peer(keys4[0], "req_per_s", lower_is_better=False)
        if s and s["req_per_s"] and b:
            r = s["req_per_s"] / b
            verdict("short: req/s at least on par with best peer (>= 0.95 x)", r >= 0.95,
                    "sluice %.0f vs %s %.0f req/s = %.2f x" % (s["req_per_s"], bt, b, r))

    md.append("## Targets (sluice against the best peer of this run)")
    md.append("")
    md.append(table(["target", "met", "figures"],
                    [[v["target"], "yes" if v["met"] else "**no**", v["detail"]] for v in verdicts]))
    md.append("")

    # ---------------- limits ----------------
    md.append("## What limits the figures (from the CPU accounting)")
    md.append("")
    md.append("Medians of the share of one core used during the measured window: the proxy's processes "
              "on CPU 0, llmload/h2load + llmsim on CPU 1. At 90 % or more a core is the limit of the "
              "figure; from 75 % it is close to it (queueing shows in the latency tails).")
    md.append("")
    for sect, rows in summary.items():
        for sub, row in (rows.items() if sect == "paced" else [("", rows)]):
            loads = {t: v.get("load_core_pct") for t, v in row.items() if v.get("load_core_pct") is not None}
            proxies = {t: v.get("proxy_core_pct") for t, v in row.items() if v.get("proxy_core_pct") is not None}
            notes = []
            if loads:
                lo, hi = min(loads.values()), max(loads.values())
                state = ("saturated: throughput here is the load core's limit, not the proxy's" if hi >= 90
                         else "close to saturation" if hi >= 75 else "not a limit")
                notes.append("load core %s–%s %% (%s)" % (fmt(lo, 0), fmt(hi, 0), state))
            if proxies:
                notes.append("proxy core " + ", ".join("%s %s %%" % (t, fmt(p, 0)) for t, p in proxies.items()))
                hot = [t for t, p in proxies.items() if p >= 85]
                if hot:
                    notes.append("at/near saturation: " + ", ".join(hot))
            limits.append({"scenario": sect, "sub": sub, "notes": notes, "load_core_pct": loads,
                           "proxy_core_pct": proxies})
            md.append("- %s%s: %s." % (sect, (" " + sub) if sub else "", "; ".join(notes)))
    md.append("")
    foreign = [r for r in runs if r["d"].get("foreign_load")]
    per_cell = {}
    for r in foreign:
        k = (r["scenario"], str(r["sub"]), r["target"])
        per_cell[k] = per_cell.get(k, 0) + 1
    md.append("Runs during which other processes on this shared machine used more than %d %% of CPU 0 or "
              "%d %% of CPU 1 (whole-CPU busy minus the benchmark's own processes); at most %d such run(s) "
              "in any one median: %s."
              % (FOREIGN0, FOREIGN1, max(per_cell.values() or [0]), ", ".join(
                  "s%s %s %s rep %s (+%s/+%s %%)" % (r["scenario"], r["sub"], r["target"], r["rep"],
                                                    fmt(r["d"].get("foreign_cpu0_pct"), 0),
                                                    fmt(r["d"].get("foreign_cpu1_pct"), 0))
                  for r in foreign) or "none"))
    md.append("")

    # ---------------- proxy log excerpts ----------------
    import re
    excerpts = {}
    for r in runs:
        for line in r.get("log_tail") or []:
            if not re.search(r"warn|error|alert|crit|emerg|fail", line, re.I):
                continue
            norm = re.sub(r"^\S+ \S+ (\d+ [0-9a-f]{8} )?|^\S+Z |\[\d+\]|\(\d+\)|\d+#\d+|\*\d+|pid \d+|/\d+\]|"
                          r"0x[0-9a-f]+|:\d{4,5}\b|\b\d+\.\d+\b", "", line).strip()
            k = (r["target"], int(r["scenario"]), str(r["sub"]))
            excerpts.setdefault(k, {}).setdefault(norm[:200], 0)
            excerpts[k][norm[:200]] += 1
    if excerpts:
        md.append("## Warnings in the proxies' logs")
        md.append("")
        md.append("Last 20 lines of each run's log, warning/error lines only, numbers and ids blanked, "
                  "counted over the repetitions.")
        md.append("")
        for (t, sc, sub), lines in sorted(excerpts.items()):
            for line, cnt in sorted(lines.items(), key=lambda kv: -kv[1])[:4]:
                md.append("- %s, scenario %d (%s): %d× `%s`" % (t, sc, sub, cnt, line.replace("`", "'")))
        md.append("")

    # ---------------- configs ----------------
    md.append("## Configurations used")
    md.append("")
    md.append("Filled from `perf/compare/*.in` (ports and the run directory change from run to run; "
              "these are from the first run of each target).")
    md.append("")
    for name, text in configs.items():
        md.append("### %s" % name)
        md.append("")
        md.append("```")
        md.append(text.rstrip())
        md.append("```")
        md.append("")
    md.append("Load: %s" % params.get("llmsim", ""))
    md.append("")
    md.append("Pinning: %s" % params.get("pinning", ""))
    md.append("")
    md.append("Raw numbers of every run: `%s.json`." % os.path.basename(a.out))
    md.append("")

    with open(a.out + ".md", "w") as f:
        f.write("\n".join(md))
    with open(a.out + ".json", "w") as f:
        json.dump({"machine": machine, "params": params, "end": end, "configs": configs,
                   "summary": summary, "targets": verdicts, "limits": limits, "runs": runs},
                  f, indent=1, default=str)


if __name__ == "__main__":
    main()
