#!/usr/bin/env python3
"""perf/qos_soak.py -- a bounded soak of sluice's QoS engine under injected
faults: how many streams the infrastructure loses, what remediation did,
and whether memory stays put.

Backends: three llmsim replicas (40 tokens 20 ms apart, first token after
40 ms, TTFT growing with the batch: --prefill-slowdown 10), each flaky:
  a   2 % of its streams cut after 10 tokens (close_after:10)
  b   1 % of its requests refused (status:503)
  c   1 % of its requests reset before an answer (reset)

sluice (2 workers on CPU 0): continue_streams on, qos_monitoring at 100 %,
policies evaluated every 2 s:
  ttft      node TTFT p95 over 10 s past 400 ms: lower_limit 30, shed_load 10,
            alert (20 s hold before each undo)
  errors    node error rate over 30 s past 1 %: alert

Load: llmload --verify on CPU 1, --base (75) concurrent streams, with an
overload step to --peak (300) in the middle third of the run (that is what
TTFT remediation is for), then back to --base.

Reported: streams started / completed / failed by reason; infrastructure-
caused losses (streams that failed for any reason other than a deliberate
refusal: 503 overload or shedding, 429), as a share of streams (target under
0.5 %); remediation decisions (from /metrics and the audit); sluice's RSS
(every process) after warm-up and at the end.

usage: perf/qos_soak.py [--duration 600] [--base 75] [--peak 300]
                        [--build-dir build-release]
                        [--out perf/results]
Results: perf/results/qos-soak-<UTC stamp>.json and .md."""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from benchlib import free_port, metrics, save_json, start_llmsim, start_sluice

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SIM = ["--ttft-ms", "40", "--itl-ms", "20", "--tokens", "40", "--max-batch", "64",
       "--prefill-slowdown", "10"]


def rss_kb(pid):
    """RSS of <pid> and its children (sluice's supervisor, workers, control plane)."""
    total = 0
    pids = [pid]
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        pids += [int(x) for x in out.split()]
    except OSError:
        pass
    for p in pids:
        try:
            for line in open("/proc/%d/status" % p):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=600)
    ap.add_argument("--base", type=int, default=75, help="concurrent streams")
    ap.add_argument("--peak", type=int, default=300, help="streams in the middle third")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-release"))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    build = a.build_dir
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    tmp = tempfile.mkdtemp(prefix="qos-soak-")
    sims = {}
    ports = {}
    sims["a"], ports["a"] = start_llmsim(build, os.path.join(tmp, "a.port"),
                                         SIM + ["--fault", "close_after:10", "--fault-rate", "0.02"])
    sims["b"], ports["b"] = start_llmsim(build, os.path.join(tmp, "b.port"),
                                         SIM + ["--fault", "status:503", "--fault-rate", "0.01"])
    sims["c"], ports["c"] = start_llmsim(build, os.path.join(tmp, "c.port"),
                                         SIM + ["--fault", "reset", "--fault-rate", "0.01"])
    port, admin = free_port(), free_port()
    conf = os.path.join(tmp, "sluice.ini")
    with open(conf, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:%d\nadmin_listen = 127.0.0.1:%d\n"
                "control_socket = %s/ctl.sock\nstate_dir = %s/state\nworkers = 2\n"
                "log_level = warn\n" % (port, admin, tmp, tmp))
        f.write("[upstream]\ncontinue_streams = true\nhealth_interval = 1s\n")
        f.write("[rollout]\nqos_monitoring = 100\n")
        f.write("[qos]\nevaluate_interval = 2s\n")
        f.write("[slo ttft]\nmetric = ttft_p95\nthreshold = 400\nwindow = 10s\n"
                "actions = lower_limit 30, shed_load 10, alert\ncooldown = 10s\nhold = 20s\n")
        f.write("[slo errors]\nmetric = error_rate\nthreshold = 0.01\nwindow = 30s\n"
                "actions = alert\ncooldown = 30s\nhold = 30s\n")
        for s in sims:
            f.write("[backend %s]\nurl = http://127.0.0.1:%d\n" % (s, ports[s]))
    log = open(os.path.join(tmp, "sluice.log"), "w")
    sl = start_sluice(build, conf, admin, log)
    third = a.duration // 3
    out = os.path.join(tmp, "load.json")
    load = subprocess.Popen(
        ["taskset", "-c", "1", os.path.join(build, "perf/loadgen/llmload"), "-c", str(a.peak),
         "--schedule", "0:%d,%d:%d,%d:%d" % (a.base, third, a.peak, 2 * third, a.base),
         "-d", str(a.duration),
         "--grace", "30", "--verify", "--retry-after", "--json", out,
         "http://127.0.0.1:%d/v1/chat/completions" % port],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(min(20, third / 2))
    rss_start = rss_kb(sl.pid)
    load.wait()
    rss_end = rss_kb(sl.pid)
    m = metrics(admin)
    events = json.loads(subprocess.run(
        [os.path.join(build, "supervisor/sluicectl"), "--socket", tmp + "/ctl.sock", "--json",
         "events", "256"], capture_output=True, text=True).stdout or "{}").get("events", [])
    sl.terminate()
    sl.wait(60)
    for p in sims.values():
        p.kill()
        p.wait()
    res = json.load(open(out))
    by = res["failed_by_reason"]
    refused = sum(v for k, v in by.items() if k in ("status_503", "status_429"))
    infra = res["failed"] - refused
    started = res["started"]
    run = {
        "duration_s": a.duration,
        "started": started,
        "completed": res["completed"],
        "failed": res["failed"],
        "failed_by_reason": by,
        "refused": refused,
        "infrastructure_lost": infra,
        "infrastructure_lost_pct": 100.0 * infra / started if started else 0,
        "verify_errors": res["verify_errors"],
        "ttft_p50_ms": res["ttft_ms"].get("p50"),
        "ttft_p99_ms": res["ttft_ms"].get("p99"),
        "tokens_per_s": res["tokens_per_s"],
        "remediations": {k: v for k, v in m.items() if k.startswith("sluice_remediations_total")},
        "violations": {k: v for k, v in m.items() if k.startswith("sluice_qos_violations_total")},
        "decisions": [(e.get("policy"), e.get("step"), e.get("action")) for e in events],
        "rss_kb_start": rss_start,
        "rss_kb_end": rss_end,
    }
    base = save_json(a.out, "qos-soak", stamp, run)
    uname = os.uname()
    with open(base + ".md", "w") as f:
        f.write("# QoS soak, %s\n\n%s %s, %d CPUs; `perf/qos_soak.py --duration %d --base %d "
                "--peak %d`\n\n" % (stamp, uname.sysname, uname.release, os.cpu_count(),
                                     a.duration, a.base, a.peak))
        f.write("| | |\n|---|---|\n")
        for k in ("started", "completed", "failed", "refused", "infrastructure_lost",
                  "infrastructure_lost_pct", "verify_errors", "ttft_p50_ms", "ttft_p99_ms",
                  "tokens_per_s", "rss_kb_start", "rss_kb_end"):
            v = run[k]
            f.write("| %s | %s |\n" % (k, "%.3f" % v if isinstance(v, float) else v))
        f.write("\nFailed by reason: `%s`\n\n" % json.dumps(by))
        f.write("Remediations: `%s`\n\nViolations: `%s`\n\n"
                % (json.dumps(run["remediations"]), json.dumps(run["violations"])))
        f.write("Decisions (policy, step, action), in order:\n\n")
        for d in run["decisions"]:
            f.write("- %s %s %s\n" % d)
    print(json.dumps(run, indent=1))
    print("results: %s.{json,md}" % base, file=sys.stderr)


if __name__ == "__main__":
    main()
