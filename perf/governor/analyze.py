#!/usr/bin/env python3
"""Checks and plots of perf/governor_ramp.sh.

usage: analyze.py best-static RUN_DIR      print the best static limit of the sweep
       analyze.py report RUN_DIR BASE      write BASE.json, BASE.md, BASE.png,
                                           BASE-sweep.png, BASE-fit75.png

RUN_DIR holds manifest.json and runs/NAME/{meta.json, ts.json (llmload
--timeseries with samples), load.json, samples.jsonl (sample.py)}.

How each check is computed (also written into the .md):
 a  p95 TTFT of admitted streams (client side: last request byte to first
    token; a 503 has no TTFT): over the whole ramp run (exact, all samples),
    and per second (the streams whose first token came in that second, for
    seconds with at least MIN_PER_SECOND first tokens).  Pass: overall p95 <=
    target and at least 95 % of those seconds at or under the target.
 b  goodput = tokens/s of streams whose TTFT was <= target (SLO goodput;
    raw tokens/s alongside) in the settled part of the ramp's first 200-stream
    phase, against the best static limit's in the settled part of a 200-stream
    sweep run.  Pass: ratio >= 0.9.
 c  rejections (429/503 answers) / answers ended, in the settled part of the
    75-stream phase of the fit75 run (a backend that can serve 75).  Pass: < 2 %.
 d  after the sharp drop (>= 100 -> <= 25 streams): time from the drop until
    the limit is down for good, "down" = at most 1.1 x the value it settles at
    (median of the last 5 s of the low phase) + 1.  Pass: <= 5 s.
 e  in the last OSC_WINDOW_S of every phase of >= 20 s: the limit's peak-to-
    peak and its crossings of its own mean (hysteresis 1 stream).  Sustained
    oscillation = peak-to-peak > max(4, 25 % of the mean) and >= 4 crossings
    (two cycles).  Pass: no phase oscillates.
"""

import json
import math
import os
import statistics
import sys

MIN_PER_SECOND = 10
OSC_WINDOW_S = 10.0
OSC_HYST = 1.0
OSC_MIN_CROSSINGS = 4
OSC_REL = 0.25
OSC_ABS = 4.0
DOWN_REL = 1.1
DOWN_ABS = 1.0
DOWN_STEADY_S = 5.0
DOWN_MAX_S = 5.0
GOODPUT_MIN = 0.9
REJECT_MAX = 0.02
PER_SECOND_OK = 0.95


# --- loading ---------------------------------------------------------------

def parse_schedule(s):
    pts = []
    for part in s.split(","):
        t, c = part.split(":")
        pts.append((float(t), int(c)))
    return pts


def phases_of(pts, end):
    """[(start, end, streams)] of the schedule, the last ending at <end>."""
    out = []
    for i, (t, c) in enumerate(pts):
        e = pts[i + 1][0] if i + 1 < len(pts) else end
        if e > t and c > 0:
            out.append((t, e, c))
    return out


def load_run(d):
    run = {"dir": d}
    with open(os.path.join(d, "meta.json")) as f:
        run["meta"] = json.load(f)
    run["ok"] = False
    try:
        with open(os.path.join(d, "ts.json")) as f:
            ts = json.load(f)
        with open(os.path.join(d, "load.json")) as f:
            run["load"] = json.load(f)
    except (OSError, ValueError) as e:
        run["meta"].setdefault("error", None)
        run["meta"]["error"] = run["meta"]["error"] or "no results: %s" % e
        return run
    run["t0"] = ts["t0_monotonic_s"]
    run["secs"] = ts["seconds"]
    run["slo_ms"] = ts.get("slo_ttft_ms")
    samples = []
    try:
        with open(os.path.join(d, "samples.jsonl")) as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                if "limit" not in r:
                    continue
                gov = (r.get("gov") or {}).get("last_interval") or {}
                samples.append({
                    "t": r["t"] - run["t0"],
                    "limit": r["limit"],
                    "admitted": r.get("admitted", 0),
                    "queue": r.get("queue", 0),
                    "rejected": sum(r.get("rejected", {}).values()),
                    "rejected_by": r.get("rejected", {}),
                    "gov_n": gov.get("first_tokens", 0),
                    "gov_p90": gov.get("ttft_p90_ms", 0.0),
                    "gov_updates": (r.get("gov") or {}).get("updates"),
                })
    except OSError:
        pass
    run["samples"] = samples
    pts = parse_schedule(run["meta"]["schedule"])
    run["schedule"] = pts
    run["phases"] = phases_of(pts, run["meta"]["duration_s"])
    run["ok"] = True
    return run


def load_all(run_dir):
    with open(os.path.join(run_dir, "manifest.json")) as f:
        man = json.load(f)
    runs = {}
    base = os.path.join(run_dir, "runs")
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        if os.path.exists(os.path.join(base, name, "meta.json")):
            runs[name] = load_run(os.path.join(base, name))
    return man, runs


# --- measures --------------------------------------------------------------

def pct(sorted_v, p):
    if not sorted_v:
        return None
    r = max(1, math.ceil(p / 100.0 * len(sorted_v)))
    return sorted_v[r - 1]


def window(run, a, b):
    """Per-second sums over seconds [a, b) of the load client's series."""
    secs = [s for s in run["secs"] if a <= s["t_s"] < b]
    span = max(1e-9, b - a)
    ttft = sorted(v for s in secs for v in s.get("ttft_samples_ms", []))
    ended = sum(s["completed"] + s["failed"] for s in secs)
    rejected = sum(s["rejected"] for s in secs)
    return {
        "from_s": a, "to_s": b,
        "tokens_per_s": sum(s["tokens"] for s in secs) / span,
        "goodput_per_s": sum(s["tokens_slo"] for s in secs) / span,
        "started": sum(s["started"] for s in secs),
        "completed": sum(s["completed"] for s in secs),
        "ended": ended,
        "rejected": rejected,
        "reject_frac": rejected / ended if ended else None,
        "ttft_n": len(ttft),
        "ttft_p50_ms": pct(ttft, 50),
        "ttft_p90_ms": pct(ttft, 90),
        "ttft_p95_ms": pct(ttft, 95),
        "ttft_p99_ms": pct(ttft, 99),
        "limit_mean": mean_or_none([x["limit"] for x in run["samples"] if a <= x["t"] < b]),
        "admitted_mean": mean_or_none([x["admitted"] for x in run["samples"] if a <= x["t"] < b]),
    }


def mean_or_none(v):
    return statistics.fmean(v) if v else None


def settled(run, phase, settle):
    a, b, _ = phase
    return (a + settle, b) if b - a > settle else (a, b)


def check_a(run, target):
    allv = sorted(v for s in run["secs"] for v in s.get("ttft_samples_ms", []))
    per = [(s["t_s"], s["ttft_ms"]["p95"]) for s in run["secs"]
           if s["ttft_ms"]["count"] >= MIN_PER_SECOND and s["ttft_ms"]["p95"] is not None]
    over = [(t, v) for t, v in per if v > target]
    frac = 1 - len(over) / len(per) if per else None
    worst = max(per, key=lambda x: x[1]) if per else (None, None)
    overall = pct(allv, 95)
    ok = overall is not None and overall <= target and frac is not None and frac >= PER_SECOND_OK
    return {
        "overall_p95_ms": overall,
        "overall_p90_ms": pct(allv, 90),
        "overall_p50_ms": pct(allv, 50),
        "admitted_streams": len(allv),
        "seconds_counted": len(per),
        "seconds_over": len(over),
        "seconds_ok_frac": frac,
        "worst_second": {"t_s": worst[0], "p95_ms": worst[1]},
        "over_at_s": [t for t, _ in over],
        "pass": ok,
    }


def top_phase(run, settle):
    top = max(c for _, _, c in run["phases"])
    for ph in run["phases"]:
        if ph[2] == top and ph[1] - ph[0] >= 2 * settle:
            return ph
    return None


def series(run):
    """One row per second: the client's view and the sampler's, for re-plotting."""
    by_s = {}
    for x in run["samples"]:
        by_s.setdefault(int(math.floor(x["t"])), []).append(x)
    out = []
    for s in run["secs"]:
        xs = by_s.get(s["t_s"], [])
        out.append({
            "t_s": s["t_s"], "offered": s["offered"], "inflight_max": s["inflight_max"],
            "limit_mean": round(statistics.fmean([x["limit"] for x in xs]), 2) if xs else None,
            "limit_min": min((x["limit"] for x in xs), default=None),
            "limit_max": max((x["limit"] for x in xs), default=None),
            "admitted_mean": round(statistics.fmean([x["admitted"] for x in xs]), 2)
            if xs else None,
            "queue_max": max((x["queue"] for x in xs), default=None),
            "gov_p90_ms": [x["gov_p90"] for x in xs if x["gov_n"] > 0],
            "started": s["started"], "completed": s["completed"], "rejected": s["rejected"],
            "failed_by_reason": s["failed_by_reason"], "tokens": s["tokens"],
            "goodput": s["tokens_slo"], "ttft_ms": s["ttft_ms"],
        })
    return out


def queue_in_signal(run, phase, target, limit_goal):
    """While the limit climbs to <limit_goal>: governor intervals whose p90 was in
    or above the hold band, though the backend alone answers in ~ttft-ms."""
    seen, n_int, n_high, worst = set(), 0, 0, 0.0
    for x in run["samples"]:
        if x["t"] < phase[0] or x["limit"] >= limit_goal or x["gov_n"] == 0:
            continue
        if x["gov_updates"] in seen:
            continue
        seen.add(x["gov_updates"])
        n_int += 1
        worst = max(worst, x["gov_p90"])
        if x["gov_p90"] >= 0.95 * target:
            n_high += 1
    return {"intervals_seen": n_int, "intervals_p90_in_or_over_band": n_high,
            "max_p90_ms": worst}


def check_d(run):
    phases = run["phases"]
    out = []
    for i in range(1, len(phases)):
        prev, cur = phases[i - 1], phases[i]
        if not (prev[2] >= 100 and cur[2] <= 25 and prev[1] == cur[0]):
            continue
        t_drop, t_end = cur[0], cur[1]
        lim = [(x["t"], x["limit"]) for x in run["samples"]]
        tail = [v for t, v in lim if t_end - DOWN_STEADY_S <= t < t_end]
        before = [v for t, v in lim if t_drop - 2 <= t < t_drop]
        if not tail:
            continue
        steady = statistics.median(tail)
        thr = DOWN_REL * steady + DOWN_ABS
        in_phase = [(t, v) for t, v in lim if t_drop <= t < t_end]
        t_down = None
        for k, (t, v) in enumerate(in_phase):
            if all(w <= thr for _, w in in_phase[k:]):
                t_down = t
                break
        adm = [(x["t"], x["admitted"]) for x in run["samples"] if t_drop <= x["t"] < t_end]
        t_adm = next((t for t, a in adm if a <= 2 * cur[2]), None)
        at5 = [v for t, v in lim if t_drop + 5 - 0.3 <= t <= t_drop + 5 + 0.3]
        peak_after = max((v for t, v in lim if t_drop <= t < t_drop + 5), default=None)
        # governor intervals after the drop that carried no first token: the
        # limit is held in those (gov_update returns early when n == 0)
        seen, n_int, n_empty = set(), 0, 0
        for x in run["samples"]:
            if t_drop <= x["t"] < (t_drop + delay_end(in_phase, thr, t_drop)) and \
                    x["gov_updates"] not in seen:
                seen.add(x["gov_updates"])
                n_int += 1
                n_empty += x["gov_n"] == 0
        delay = t_down - t_drop if t_down is not None else None
        out.append({
            "drop_at_s": t_drop, "from_streams": prev[2], "to_streams": cur[2],
            "limit_before": statistics.median(before) if before else None,
            "limit_settles_at": steady, "down_threshold": round(thr, 2),
            "down_after_s": delay,
            "limit_at_5s": at5[0] if at5 else None,
            "limit_max_in_5s_after": peak_after,
            "intervals_until_down": n_int, "intervals_without_first_token": n_empty,
            "admitted_le_2x_offered_after_s": (t_adm - t_drop) if t_adm is not None else None,
            "pass": delay is not None and delay <= DOWN_MAX_S,
        })
    return out


def delay_end(in_phase, thr, t_drop):
    """Seconds from the drop until the limit stays <= thr (the phase's end if never)."""
    for k, (t, v) in enumerate(in_phase):
        if all(w <= thr for _, w in in_phase[k:]):
            return t - t_drop
    return in_phase[-1][0] - t_drop if in_phase else 0.0


def crossings(v, hyst):
    m = statistics.fmean(v)
    state, n = 0, 0
    for x in v:
        s = 1 if x > m + hyst else (-1 if x < m - hyst else 0)
        if s and state and s != state:
            n += 1
        if s:
            state = s
    return n


def check_e(run, settle):
    out = []
    for a, b, c in run["phases"]:
        if b - a < 2 * settle:
            continue
        win = min(OSC_WINDOW_S, b - a - settle)
        v = [x["limit"] for x in run["samples"] if b - win <= x["t"] < b]
        if len(v) < 5:
            continue
        m = statistics.fmean(v)
        p2p = max(v) - min(v)
        n = crossings(v, OSC_HYST)
        bound = max(OSC_ABS, OSC_REL * m)
        sustained = p2p > bound and n >= OSC_MIN_CROSSINGS
        out.append({
            "phase": "%g-%g s @ %d" % (a, b, c), "streams": c, "window_s": [b - win, b],
            "limit_mean": round(m, 2), "limit_min": min(v), "limit_max": max(v),
            "peak_to_peak": p2p, "p2p_bound": round(bound, 2),
            "stdev": round(statistics.pstdev(v), 2), "mean_crossings": n,
            "sustained_oscillation": sustained,
        })
    return out


def sweep_table(runs, man):
    rows = []
    settle = man["settle_s"]
    for name, r in runs.items():
        if r["meta"]["kind"] != "sweep" or not r["ok"]:
            continue
        w = window(r, settle, r["meta"]["duration_s"])
        w["name"] = name
        w["limit"] = r["meta"]["min"] if r["meta"]["rollout"] else None
        rows.append(w)
    rows.sort(key=lambda w: (w["limit"] is None, w["limit"] or 0))
    return rows


def best_static(rows):
    cand = [w for w in rows if w["limit"] is not None]
    if not cand:
        return None, None
    by_slo = max(cand, key=lambda w: (w["goodput_per_s"], -w["limit"]))
    by_raw = max(cand, key=lambda w: (w["tokens_per_s"], -w["limit"]))
    return by_slo, by_raw


# --- report ----------------------------------------------------------------

def fmt(v, spec="%.0f", none="–"):
    if v is None:
        return none
    return spec % v


def pf(ok):
    return "**pass**" if ok else "**FAIL**"


def analyse(man, runs):
    target = man["target_ms"]
    settle = man["settle_s"]
    res = {"manifest": man, "runs": {}, "checks": {}}
    rows = sweep_table(runs, man)
    by_slo, by_raw = best_static(rows)
    res["sweep"] = rows
    res["best_static"] = {
        "by_goodput": by_slo and {"limit": by_slo["limit"], "goodput_per_s": by_slo["goodput_per_s"],
                                  "tokens_per_s": by_slo["tokens_per_s"]},
        "by_tokens": by_raw and {"limit": by_raw["limit"], "goodput_per_s": by_raw["goodput_per_s"],
                                 "tokens_per_s": by_raw["tokens_per_s"]},
    }
    for name, r in runs.items():
        entry = {"meta": r["meta"]}
        if r["ok"]:
            entry["load"] = {k: r["load"].get(k) for k in
                             ("started", "completed", "failed", "failed_by_reason", "tokens",
                              "tokens_per_s", "ttft_ms", "client_cpu_s")}
            entry["phases"] = []
            for ph in r["phases"]:
                a, b = settled(r, ph, settle)
                w = window(r, a, b)
                w["phase"] = "%g-%g s @ %d" % ph
                w["streams"] = ph[2]
                entry["phases"].append(w)
            entry["whole"] = window(r, 0, r["meta"]["duration_s"])
            entry["series"] = series(r)
            entry["rejected_by_reason"] = r["samples"][-1]["rejected_by"] if r["samples"] else {}
        res["runs"][name] = entry

    for algo in man["algos"]:
        c = {}
        ramp = runs.get("ramp-" + algo)
        if ramp and ramp["ok"]:
            c["a"] = check_a(ramp, target)
            tp = top_phase(ramp, settle)
            if tp and by_slo:
                a, b = settled(ramp, tp, settle)
                w = window(ramp, a, b)
                c["b"] = {
                    "window": "%g-%g s @ %d streams" % (a, b, tp[2]),
                    "governor_goodput_per_s": w["goodput_per_s"],
                    "governor_tokens_per_s": w["tokens_per_s"],
                    "governor_limit_mean": w["limit_mean"],
                    "best_static_limit": by_slo["limit"],
                    "best_static_goodput_per_s": by_slo["goodput_per_s"],
                    "goodput_ratio": w["goodput_per_s"] / by_slo["goodput_per_s"]
                    if by_slo["goodput_per_s"] else None,
                    "best_static_limit_by_tokens": by_raw["limit"],
                    "best_static_tokens_per_s": by_raw["tokens_per_s"],
                    "tokens_ratio": w["tokens_per_s"] / by_raw["tokens_per_s"]
                    if by_raw["tokens_per_s"] else None,
                }
                c["b"]["pass"] = c["b"]["goodput_ratio"] is not None and \
                    c["b"]["goodput_ratio"] >= GOODPUT_MIN
                st = next((x for n, x in runs.items() if x["meta"]["kind"] == "static" and x["ok"]),
                          None)
                if st:
                    wg = window(ramp, 0, ramp["meta"]["duration_s"])
                    ws = window(st, 0, st["meta"]["duration_s"])
                    c["b"]["whole_ramp"] = {
                        "static_limit": st["meta"]["min"],
                        "governor_goodput_per_s": wg["goodput_per_s"],
                        "static_goodput_per_s": ws["goodput_per_s"],
                        "goodput_ratio": wg["goodput_per_s"] / ws["goodput_per_s"]
                        if ws["goodput_per_s"] else None,
                        "governor_tokens_per_s": wg["tokens_per_s"],
                        "static_tokens_per_s": ws["tokens_per_s"],
                        "tokens_ratio": wg["tokens_per_s"] / ws["tokens_per_s"]
                        if ws["tokens_per_s"] else None,
                    }
            c["d"] = check_d(ramp)
            c["e"] = check_e(ramp, settle)
            c["ramp_75"] = [p for p in res["runs"]["ramp-" + algo]["phases"] if p["streams"] == 75]
        fit = runs.get("fit75-" + algo)
        if fit and fit["ok"]:
            ph = next((p for p in fit["phases"] if p[2] == 75), None)
            if ph:
                a, b = settled(fit, ph, settle)
                w = window(fit, a, b)
                wa = window(fit, ph[0], ph[1])
                c["c"] = {
                    "window": "%g-%g s @ 75 streams" % (a, b),
                    "reject_frac": w["reject_frac"], "rejected": w["rejected"], "ended": w["ended"],
                    "whole_phase_reject_frac": wa["reject_frac"],
                    "whole_phase_rejected": wa["rejected"],
                    "ttft_p95_ms": w["ttft_p95_ms"], "limit_mean": w["limit_mean"],
                    "tokens_per_s": w["tokens_per_s"],
                    "limit_reaches_75_after_s": next(
                        (x["t"] - ph[0] for x in fit["samples"] if x["t"] >= ph[0] and
                         x["limit"] >= 75), None),
                    "queue_wait_in_signal": queue_in_signal(fit, ph, target, 75),
                    "pass": w["reject_frac"] is not None and w["reject_frac"] < REJECT_MAX,
                }
        res["checks"][algo] = c
    return res


def load_model(args):
    """The llmsim flags of the ramp, and what they imply at full batch."""
    v = args.split()
    d = {}
    for k, name in (("--max-batch", "batch"), ("--ttft-ms", "ttft"), ("--itl-ms", "itl"),
                    ("--tokens", "tokens"), ("--batch-slowdown", "slow")):
        if k in v and v.index(k) + 1 < len(v):
            d[name] = float(v[v.index(k) + 1])
    if len(d) < 4:
        return None
    d.setdefault("slow", 0.0)
    d["batch"] = int(d["batch"])
    d["tokens"] = int(d["tokens"])
    d["dur"] = (d["ttft"] + (d["tokens"] - 1) * d["itl"] * (1 + d["slow"])) / 1000
    d["rate"] = d["batch"] / d["dur"]
    d["tok_s"] = d["rate"] * d["tokens"]
    return d


def write_md(res, base, pngs):
    man = res["manifest"]
    target = man["target_ms"]
    L = []
    w = L.append
    w("# Governor ramp: %s" % man["stamp"])
    w("")
    w("`perf/governor_ramp.sh%s` on %s (%s CPUs, %s), sluice %s, %d worker(s) on CPU 0; "
      "llmsim, llmload and the sampler on CPU 1. Load average at the start: %s." % (
          " --quick" if man["quick"] else "", man["cpu_model"], man["nproc"], man["kernel"],
          man["sluice"], man["workers"], man["loadavg_start"]))
    w("")
    w("- Backend (llmsim): `%s`; for the fit75 runs `%s`." % (man["sim_args"], man["fit_sim_args"]))
    w("- Governor: target_ttft_ms %g, min/max 16/80, sample interval 200 ms, queue_ttl 800 ms, "
      "rollout adaptive_governor 100 %%." % target)
    w("- Load: llmload closed-loop clients on `--schedule %s`; `%s`.%s" % (
        man["ramp"], man["load_opts"],
        " A client that gets a 503 waits its Retry-After (1 s) before the next request, "
        "as OpenAI's client libraries do." if man["retry_after"] else ""))
    w("- Static sweep: %d streams for %g s with min_concurrent = max_concurrent = L; "
      "measured over its last %g s." % (man["sweep_conc"], man["sweep_s"],
                                        man["sweep_s"] - man["settle_s"]))
    w("- A phase's *settled* part is the phase without its first %g s." % man["settle_s"])
    w("")
    for p in pngs:
        w("![%s](%s)" % (os.path.basename(p), os.path.basename(p)))
    w("")
    w("## Checks")
    w("")
    w("| check | " + " | ".join(man["algos"]) + " |")
    w("|---|" + "---|" * len(man["algos"]))
    ch = res["checks"]

    def row(label, f):
        cells = []
        for a in man["algos"]:
            try:
                cells.append(f(ch.get(a, {})))
            except (KeyError, TypeError, IndexError, StopIteration, ValueError):
                cells.append("–")
        w("| %s | %s |" % (label, " | ".join(cells)))

    row("(a) p95 TTFT of admitted streams, whole ramp (≤ %g ms)" % target,
        lambda c: "%s ms, per-second p95 ≤ target in %s of %d s (worst %s ms at %s s) %s" % (
            fmt(c["a"]["overall_p95_ms"]), fmt(100 * c["a"]["seconds_ok_frac"], "%.0f %%"),
            c["a"]["seconds_counted"], fmt(c["a"]["worst_second"]["p95_ms"]),
            fmt(c["a"]["worst_second"]["t_s"], "%d"), pf(c["a"]["pass"])))
    row("(b) goodput vs best static limit (≥ 0.9)",
        lambda c: "%s / %s tok/s (L=%s) = %s %s; raw tokens/s %s / %s (L=%s) = %s" % (
            fmt(c["b"]["governor_goodput_per_s"]), fmt(c["b"]["best_static_goodput_per_s"]),
            c["b"]["best_static_limit"], fmt(c["b"]["goodput_ratio"], "%.3f"), pf(c["b"]["pass"]),
            fmt(c["b"]["governor_tokens_per_s"]), fmt(c["b"]["best_static_tokens_per_s"]),
            c["b"]["best_static_limit_by_tokens"], fmt(c["b"]["tokens_ratio"], "%.3f")))
    row("(b') whole ramp vs the same ramp at the best static limit",
        lambda c: "goodput %s / %s = %s; tokens %s / %s = %s" % (
            fmt(c["b"]["whole_ramp"]["governor_goodput_per_s"]),
            fmt(c["b"]["whole_ramp"]["static_goodput_per_s"]),
            fmt(c["b"]["whole_ramp"]["goodput_ratio"], "%.3f"),
            fmt(c["b"]["whole_ramp"]["governor_tokens_per_s"]),
            fmt(c["b"]["whole_ramp"]["static_tokens_per_s"]),
            fmt(c["b"]["whole_ramp"]["tokens_ratio"], "%.3f")))
    row("(c) rejections at 75 streams, backend can serve 75 (< 2 %)",
        lambda c: "%s (%d of %d) in %s %s; whole phase incl. the step: %s (%d)" % (
            fmt(100 * c["c"]["reject_frac"], "%.2f %%"), c["c"]["rejected"], c["c"]["ended"],
            c["c"]["window"], pf(c["c"]["pass"]),
            fmt(100 * c["c"]["whole_phase_reject_frac"], "%.1f %%"),
            c["c"]["whole_phase_rejected"]))
    row("(d) limit down after the drop (≤ 5 s)",
        lambda c: "; ".join("%d→%d at %g s: %s → %s, down (≤ %s) after %s s %s" % (
            d["from_streams"], d["to_streams"], d["drop_at_s"], fmt(d["limit_before"]),
            fmt(d["limit_settles_at"]), d["down_threshold"], fmt(d["down_after_s"], "%.1f"),
            pf(d["pass"])) for d in c["d"]))
    row("(e) no sustained oscillation",
        lambda c: "%s; largest p2p %s (phase %s), most crossings %d" % (
            pf(not any(e["sustained_oscillation"] for e in c["e"])),
            fmt(max(c["e"], key=lambda e: e["peak_to_peak"])["peak_to_peak"]),
            max(c["e"], key=lambda e: e["peak_to_peak"])["phase"],
            max(e["mean_crossings"] for e in c["e"])))
    w("")
    w("How they are computed:")
    w("")
    w("- (a) TTFT is the client's (last request byte to first token, through sluice's "
      "admission queue); a 503 is a rejection, never a TTFT. *Overall* is the exact p95 of every "
      "admitted stream of the ramp run; *per second* is the p95 of the streams whose first token "
      "came in that second, for seconds with ≥ %d first tokens. Pass: overall ≤ target and "
      "≥ %d %% of those seconds ≤ target." % (MIN_PER_SECOND, 100 * PER_SECOND_OK))
    w("- (b) goodput = tokens/s of streams whose TTFT was ≤ target, in the settled part of the "
      "ramp's first 200-stream phase, against the best static limit's (highest goodput) in the "
      "settled part of its 200-stream sweep run (the same offered load and clients). Raw tokens/s "
      "and the whole-ramp comparison (b') are shown alongside; the check is the goodput ratio.")
    w("- (c) rejected (503/429) answers / all answers ended, in the settled part of the 75-stream "
      "phase of the fit75 run, whose backend has twice the batch slots (96), so 75 streams fit "
      "(the ramp's backend cannot serve 75 within the target: its 75-stream phases are below).")
    w("- (d) from the drop (the schedule's step) until the limit stays at or under "
      "%.1f × the value it settles at + %g (median of the last %g s of the low phase)." % (
          DOWN_REL, DOWN_ABS, DOWN_STEADY_S))
    w("- (e) in the last %g s of every phase of ≥ %g s (after its settling time), the limit "
      "sampled every %g s: sustained "
      "oscillation = peak-to-peak > max(%g, %d %% of its mean) *and* ≥ %d crossings of its "
      "mean (hysteresis ±%g stream), i.e. two full swings." % (
          OSC_WINDOW_S, 2 * man["settle_s"], man["sample_s"], OSC_ABS, 100 * OSC_REL,
          OSC_MIN_CROSSINGS, OSC_HYST))
    w("")

    lm = load_model(man["sim_args"])
    if lm:
        off = next((r for r in res["sweep"] if r["limit"] is None), None)
        bs = res["best_static"]["by_goodput"]
        w("## Load model")
        w("")
        w("llmsim decodes at most %d streams at once (the rest wait FIFO, as vLLM's scheduler "
          "does); a stream takes %g ms to its first token once it has a slot, then %d tokens "
          "every %g ms x (1 + %g x running / %d): with every slot busy a stream lasts about "
          "%.2f s, so the backend serves about %.1f streams/s, %.0f tokens/s. If streams ended "
          "evenly, one stream more than the slots would wait about %.0f ms for one; but every "
          "stream has the same length, so closed-loop clients that start together stay in "
          "cohorts that end together, and a stream over the slots can wait up to a whole "
          "stream (see L = 56 below). 75 streams queue %d of them (on average about %.0f ms, "
          "TTFT about %.0f ms, over the %g ms target: the ramp's 75-stream phases cannot all be "
          "served), 200 streams queue %d for about %.1f s. So the best static limit should sit "
          "at the batch size, and 200 streams overwhelm the backend%s%s. "
          "The fit75 runs use %s: 75 streams fit in the slots, TTFT stays at %g ms." % (
              lm["batch"], lm["ttft"], lm["tokens"], lm["itl"], lm["slow"], lm["batch"],
              lm["dur"], lm["rate"], lm["tok_s"], 1000 / lm["rate"], max(0, 75 - lm["batch"]),
              1000 * max(0, 75 - lm["batch"]) / lm["rate"],
              lm["ttft"] + 1000 * max(0, 75 - lm["batch"]) / lm["rate"], target,
              max(0, 200 - lm["batch"]), max(0, 200 - lm["batch"]) / lm["rate"],
              " (measured: the sweep's best static limit is L = %s)" % bs["limit"] if bs else "",
              " (measured without the governor: TTFT p50 %s ms, p95 %s ms)" % (
                  fmt(off["ttft_p50_ms"]), fmt(off["ttft_p95_ms"])) if off else "",
              "`%s`" % man["fit_sim_args"], lm["ttft"]))
        w("")
    obs = []
    for a in man["algos"]:
        c = res["checks"].get(a, {}).get("c")
        if c and c.get("queue_wait_in_signal") and lm:
            q = c["queue_wait_in_signal"]
            obs.append("fit75 %s: the backend answers in %g ms, yet %d of the %d governor "
                       "intervals seen before the limit reached 75 had a TTFT p90 in or over the "
                       "hold band (≥ %g ms; the largest %s ms); the limit reached 75 after %s s. "
                       "The TTFT the governor steers on includes the wait in sluice's own "
                       "admission queue." % (a, lm["ttft"], q["intervals_p90_in_or_over_band"],
                                             q["intervals_seen"], 0.95 * target,
                                             fmt(q["max_p90_ms"]),
                                             fmt(c["limit_reaches_75_after_s"], "%.1f")))
    busy = [(n, r["meta"].get("busy_during_pct")) for n, r in res["runs"].items()]
    busy = [(n, b) for n, b in busy if b]
    if busy:
        obs.append("CPU busy during each run (cpu0 sluice, cpu1 load; anything else running on "
                   "the shared machine counts too): " + ", ".join(
                       "%s %d/%d %%" % (n, b["cpu0"], b["cpu1"]) for n, b in busy) + ".")
    if obs:
        w("## Observations")
        w("")
        for o in obs:
            w("- " + o)
        w("")

    w("## Static sweep (%d streams, settled %g s)" % (man["sweep_conc"],
                                                    man["sweep_s"] - man["settle_s"]))
    w("")
    w("| limit | goodput tok/s | tokens/s | TTFT p50 | p95 | p99 ms | rejected | admitted mean |")
    w("|---|---|---|---|---|---|---|---|")
    for r in res["sweep"]:
        w("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["limit"] if r["limit"] is not None else "off (no governor)",
            fmt(r["goodput_per_s"]), fmt(r["tokens_per_s"]), fmt(r["ttft_p50_ms"]),
            fmt(r["ttft_p95_ms"]), fmt(r["ttft_p99_ms"]),
            fmt(100 * r["reject_frac"] if r["reject_frac"] is not None else None, "%.0f %%"),
            fmt(r["admitted_mean"], "%.1f")))
    bs = res["best_static"]
    if bs["by_goodput"]:
        w("")
        w("Best static limit by goodput: L = %s (%s tok/s); by raw tokens/s: L = %s (%s tok/s)." % (
            bs["by_goodput"]["limit"], fmt(bs["by_goodput"]["goodput_per_s"]),
            bs["by_tokens"]["limit"], fmt(bs["by_tokens"]["tokens_per_s"])))
    w("")

    for name, e in res["runs"].items():
        if e["meta"]["kind"] not in ("ramp", "fit75", "static") or "phases" not in e:
            continue
        w("## %s" % name)
        w("")
        if e["meta"].get("error"):
            w("Error: %s" % e["meta"]["error"])
            w("")
        ld = e["load"]
        w("Streams %s started, %s completed, failed %s; TTFT p50/p90/p99 %s/%s/%s ms; "
          "rejections in sluice by reason: %s." % (
              ld["started"], ld["completed"], json.dumps(ld["failed_by_reason"]),
              fmt(ld["ttft_ms"]["p50"]), fmt(ld["ttft_ms"]["p90"]), fmt(ld["ttft_ms"]["p99"]),
              json.dumps({k: int(v) for k, v in e["rejected_by_reason"].items() if v})))
        w("")
        w("| phase (settled part) | limit mean | admitted mean | goodput tok/s | tokens/s | "
          "TTFT p50 | p95 ms | rejected |")
        w("|---|---|---|---|---|---|---|---|")
        for p in e["phases"]:
            w("| %s (%g-%g) | %s | %s | %s | %s | %s | %s | %s |" % (
                p["phase"], p["from_s"], p["to_s"], fmt(p["limit_mean"], "%.1f"),
                fmt(p["admitted_mean"], "%.1f"), fmt(p["goodput_per_s"]), fmt(p["tokens_per_s"]),
                fmt(p["ttft_p50_ms"]), fmt(p["ttft_p95_ms"]),
                "%s (%s)" % (p["rejected"], fmt(100 * p["reject_frac"], "%.1f %%")
                             if p["reject_frac"] is not None else "–")))
        w("")
        algo = e["meta"]["algorithm"]
        settle = man["settle_s"]
        c = res["checks"].get(algo, {})
        if e["meta"]["kind"] == "ramp" and c.get("e"):
            w("Oscillation windows (the end of each phase of ≥ %g s):" % (2 * settle))
            w("")
            w("| phase | limit mean | min–max | p2p (bound) | stdev | crossings | sustained |")
            w("|---|---|---|---|---|---|---|")
            for o in c["e"]:
                w("| %s | %s | %g–%g | %g (%g) | %s | %d | %s |" % (
                    o["phase"], o["limit_mean"], o["limit_min"], o["limit_max"],
                    o["peak_to_peak"], o["p2p_bound"], o["stdev"], o["mean_crossings"],
                    "yes" if o["sustained_oscillation"] else "no"))
            w("")
            if c.get("d"):
                for d in c["d"]:
                    w("Drop %d→%d at %g s: limit %s before, up to %s in the 5 s after, %s at "
                      "+5 s, settles at %s; admitted streams ≤ 2 × offered after %s s; limit "
                      "down after %s s; %d of the %d governor intervals until then had no "
                      "first token (the limit is held in those)." % (
                          d["from_streams"], d["to_streams"], d["drop_at_s"],
                          fmt(d["limit_before"]), fmt(d["limit_max_in_5s_after"]),
                          fmt(d["limit_at_5s"]), fmt(d["limit_settles_at"]),
                          fmt(d["admitted_le_2x_offered_after_s"], "%.1f"),
                          fmt(d["down_after_s"], "%.1f"), d["intervals_without_first_token"],
                          d["intervals_until_down"]))
                w("")
    with open(base + ".md", "w") as f:
        f.write("\n".join(L) + "\n")


# --- plots -----------------------------------------------------------------

def plot_runs(runs, names, target, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in names if n in runs and runs[n]["ok"]]
    if not names:
        return None
    fig, axes = plt.subplots(3, len(names), figsize=(6.2 * len(names), 9.5), sharex="col",
                             squeeze=False)
    for j, n in enumerate(names):
        r = runs[n]
        dur = r["meta"]["duration_s"]
        ax = axes[0][j]
        xs, ys = [], []
        for i, (t, c) in enumerate(r["schedule"]):
            xs += [t]
            ys += [c]
        xs.append(dur)
        ys.append(ys[-1])
        ax.step(xs, ys, where="post", color="0.45", lw=1.5, label="offered streams")
        st = r["samples"]
        ax.plot([x["t"] for x in st], [x["limit"] for x in st], color="C0", lw=1.8, zorder=5,
                label="governor limit")
        ax.plot([x["t"] for x in st], [x["admitted"] for x in st], color="C2", lw=0.7, alpha=0.7,
                zorder=4, label="admitted streams")
        ax.plot([x["t"] for x in st], [x["queue"] for x in st], color="C1", lw=0.4, alpha=0.35,
                label="admission queue")
        ax.set_ylabel("streams")
        ax.set_title("%s (%s)" % (n, r["meta"]["algorithm"] if r["meta"]["kind"] != "static"
                                  else "static L=%d" % r["meta"]["min"]))
        ax.set_ylim(0, max(ys) * 1.08)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=7)

        ax = axes[1][j]
        pts = [(s["t_s"] + 0.5, s["ttft_ms"]["p95"]) for s in r["secs"]
               if s["ttft_ms"]["count"] > 0]
        ymax = 3 * target
        ax.plot([p[0] for p in pts], [min(p[1], ymax) for p in pts], color="C3", lw=1.2,
                marker=".", ms=3, label="p95 TTFT, admitted, per second (client)")
        gp = [(x["t"], x["gov_p90"]) for x in st if x["gov_n"] > 0]
        ax.plot([p[0] for p in gp], [min(p[1], ymax) for p in gp], ".", color="C4", ms=2,
                alpha=0.5, label="governor's p90 per interval")
        ax.axhline(target, color="k", ls="--", lw=1, label="target %g ms" % target)
        ax.set_ylim(0, ymax)
        ax.set_ylabel("TTFT ms (clipped at %g)" % ymax)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=7)

        ax = axes[2][j]
        t = [s["t_s"] + 0.5 for s in r["secs"]]
        ax.plot(t, [s["tokens"] for s in r["secs"]], color="C0", lw=1, label="tokens/s")
        ax.plot(t, [s["tokens_slo"] for s in r["secs"]], color="C2", lw=1,
                label="goodput (TTFT ≤ target) tok/s")
        ax.set_ylabel("tokens/s")
        ax.set_xlabel("seconds")
        ax.grid(alpha=0.3)
        ax2 = ax.twinx()
        ax2.bar(t, [s["rejected"] for s in r["secs"]], width=1.0, color="C3", alpha=0.25,
                label="rejected/s")
        ax2.set_ylabel("rejected / s")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="upper right", fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_sweep(res, path, target):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in res["sweep"] if r["limit"] is not None]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = [r["limit"] for r in rows]
    ax.plot(x, [r["tokens_per_s"] for r in rows], "o-", color="C0", label="tokens/s")
    ax.plot(x, [r["goodput_per_s"] for r in rows], "s-", color="C2",
            label="goodput (TTFT ≤ target) tok/s")
    for k, (a, c) in enumerate(res["checks"].items()):
        b = c.get("b")
        if b:
            ax.axhline(b["governor_goodput_per_s"], color="C%d" % (4 + k), ls="--", lw=1,
                       label="governor %s goodput (mean limit %.0f)" % (
                           a, b["governor_limit_mean"] or 0))
    ax.set_xlabel("static limit L (min = max)")
    ax.set_ylabel("tokens/s")
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(x, [r["ttft_p95_ms"] for r in rows], "^:", color="C3", label="p95 TTFT (ms)")
    ax2.axhline(target, color="C3", ls="-", lw=0.6, alpha=0.5)
    ax2.set_ylabel("p95 TTFT ms")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="lower right")
    ax.set_title("Static limits at %d offered streams (settled part)" %
                 res["manifest"]["sweep_conc"], fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def clean(o):
    """JSON without NaN."""
    if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
        return None
    if isinstance(o, dict):
        return {k: clean(v) for k, v in o.items()}
    if isinstance(o, list):
        return [clean(v) for v in o]
    return o


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "best-static":
        man, runs = load_all(sys.argv[2])
        by_slo, _ = best_static(sweep_table(runs, man))
        if not by_slo:
            return 1
        print(by_slo["limit"])
        return 0
    if len(sys.argv) != 4 or sys.argv[1] != "report":
        sys.stderr.write(__doc__)
        return 2
    run_dir, base = sys.argv[2], sys.argv[3]
    man, runs = load_all(run_dir)
    res = analyse(man, runs)
    target = man["target_ms"]
    pngs = []
    ramps = ["ramp-" + a for a in man["algos"]] + sorted(
        n for n, r in runs.items() if r["meta"]["kind"] == "static")
    p = plot_runs(runs, ramps, target, base + ".png",
                  "Load ramp through sluice (governor limit, offered load, p95 TTFT vs target %g ms)"
                  % target)
    if p:
        pngs.append(p)
    p = plot_sweep(res, base + "-sweep.png", target)
    if p:
        pngs.append(p)
    p = plot_runs(runs, ["fit75-" + a for a in man["algos"]], target, base + "-fit75.png",
                  "10 → 75 streams on a backend that can serve them (%s)" % man["fit_sim_args"])
    if p:
        pngs.append(p)
    res["files"] = [base + ".json", base + ".md"] + pngs
    with open(base + ".json", "w") as f:
        json.dump(clean(res), f, indent=1)
    write_md(res, base, pngs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
