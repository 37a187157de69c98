#!/usr/bin/env python3
"""perf/backends_bench.py -- three backends, one degrading and one dying,
under 200 streams: sluice's balancing, health and failover against plain
round-robin without them.

Backends (llmsim, 60 tokens 20 ms apart, first token after 40 ms):
  good     takes everything (1,000 batch slots)
  slow     24 batch slots: past 24 streams its queue grows, so its TTFT rises
           with every stream sent to it
  dying    like good, killed (SIGKILL) --kill-at seconds into the run

Three sluice configurations, the same backends, interleaved --reps times:
  sluice     the defaults: least outstanding per weight (node-wide), active
             health checks every 500 ms, ejection after 5 failures, failover
             before the first byte (2 more backends)
  sluice+continue  the same with continue_streams = true: a stream cut
             mid-answer goes on on another backend
  baseline   [upstream] balance = round_robin, retries = 0, eject_after = 0,
             health_interval = 0: every backend in turn, whatever happens

Load: llmload --verify, 200 concurrent streams for --duration seconds (each
connection starts its next stream when one ends), then the running ones
finish; every stream's tokens are checked (w0, w1, ... in order, [DONE], ids).  For
each run: streams completed and failed (by reason), TTFT p50/p99, tokens/s.
sluice runs one worker on CPU 0; the backends and the load on CPU 1.

Results: perf/results/backends-<UTC stamp>.json and .md.

usage: perf/backends_bench.py [--reps 2] [--duration 12] [--kill-at 4]
                              [--build-dir build-release] [--out perf/results]
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.request

from benchlib import free_port, interleave, save_json, start_llmsim, start_sluice

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SIMS = {
    "good": ["--max-batch", "1000"],
    "slow": ["--max-batch", "24"],
    "dying": ["--max-batch", "1000"],
}
BASE = ["--ttft-ms", "40", "--itl-ms", "20", "--tokens", "60"]
CONFIGS = {
    "sluice": {"health_interval": "500ms", "health_timeout": "300ms"},
    "sluice+continue": {"health_interval": "500ms", "health_timeout": "300ms",
                        "continue_streams": "true"},
    "baseline": {"balance": "round_robin", "retries": "0", "eject_after": "0",
                 "health_interval": "0"},
}


def run_once(build, tmp, name, duration, kill_at):
    sims, ports = {}, {}
    for s, args in SIMS.items():
        sims[s], ports[s] = start_llmsim(build, os.path.join(tmp, "%s-%s.port" % (name, s)),
                                         [*BASE, *args])
    port, admin = free_port(), free_port()
    conf = os.path.join(tmp, name + ".ini")
    with open(conf, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:%d\nadmin_listen = 127.0.0.1:%d\n"
                "control_socket = %s\nstate_dir = %s\nworkers = 1\nlog_level = warn\n"
                % (port, admin, os.path.join(tmp, name + ".sock"),
                   os.path.join(tmp, name + "-state")))
        f.write("[upstream]\n")
        for k, v in CONFIGS[name].items():
            f.write("%s = %s\n" % (k, v))
        for s in SIMS:
            f.write("[backend %s]\nurl = http://127.0.0.1:%d\n" % (s, ports[s]))
    log = open(os.path.join(tmp, name + ".log"), "w")
    sl = start_sluice(build, conf, admin, log)
    out = os.path.join(tmp, name + "-load.json")
    load = subprocess.Popen(
        ["taskset", "-c", "1", os.path.join(build, "perf/loadgen/llmload"), "-c", "200",
         "-d", str(duration), "--ramp", "1", "--grace", "20", "--verify", "--json", out,
         "http://127.0.0.1:%d/v1/chat/completions" % port],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(kill_at)
    sims["dying"].send_signal(signal.SIGKILL)
    load.wait()
    metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin, timeout=5).read()
    sl.send_signal(signal.SIGTERM)
    sl.wait(30)
    for p in sims.values():
        p.kill()
        p.wait()
    res = json.load(open(out))
    m = {}
    for line in metrics.decode().splitlines():
        if line.startswith("sluice_backend_") and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            m[k] = float(v)
    return {
        "config": name,
        "started": res["started"],
        "completed": res["completed"],
        "failed": res["failed"],
        "failed_by_reason": res["failed_by_reason"],
        "ttft_p50_ms": res["ttft_ms"].get("p50"),
        "ttft_p99_ms": res["ttft_ms"].get("p99"),
        "tokens_per_s": res["tokens_per_s"],
        "verify_errors": res["verify_errors"],
        "verified_streams": res["verified_streams"],
        "backend_metrics": m,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--duration", type=int, default=12)
    ap.add_argument("--kill-at", type=float, default=4)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-release"))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    tmp = tempfile.mkdtemp(prefix="backends-bench-")
    runs = interleave(a.reps, list(CONFIGS),
                      lambda name, rep: run_once(a.build_dir, tmp, name, a.duration, a.kill_at))
    base = save_json(a.out, "backends", stamp, runs)

    def med(name, key):
        return statistics.median(r[key] for r in runs if r["config"] == name)
    lines = [
        "# Three backends, one degrading, one dying (%s)" % stamp, "",
        "`perf/backends_bench.py --reps %d --duration %d --kill-at %g`: llmsim backends good, "
        "slow (24 batch slots: its TTFT rises with load) and dying (SIGKILL at %g s); 200 "
        "concurrent streams of 60 tokens for %d s; sluice one worker on CPU 0, backends and "
        "load on CPU 1. Medians of %d runs each, interleaved." % (
            a.reps, a.duration, a.kill_at, a.kill_at, a.duration, a.reps), "",
        "| configuration | streams completed | failed | TTFT p50 ms | TTFT p99 ms | tokens/s | "
        "token-order violations |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in CONFIGS:
        lines.append("| %s | %d | %d | %.0f | %.0f | %.0f | %d |" % (
            name, med(name, "completed"), med(name, "failed"), med(name, "ttft_p50_ms"),
            med(name, "ttft_p99_ms"), med(name, "tokens_per_s"), med(name, "verify_errors")))
    lines += ["", "Failures by reason, per run:", ""]
    for r in runs:
        lines.append("- %s, run %d: %s" % (r["config"], r["rep"] + 1,
                                           json.dumps(r["failed_by_reason"]) or "none"))
    lines.append("")
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    print("results: %s.{json,md}" % base)


if __name__ == "__main__":
    main()
