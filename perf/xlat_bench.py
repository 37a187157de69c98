#!/usr/bin/env python3
"""perf/xlat_bench.py -- what translating an Ollama backend's answer costs
sluice, against relaying an OpenAI (vLLM-shaped) stream as it is.

The same llmsim answer (--tokens, --itl-ms, first token after 20 ms) is
served once as vLLM's SSE (`--api openai`) and once as Ollama's NDJSON
(`--api ollama`); sluice (one worker, CPU 0) fronts one of them as an
`openai` or an `ollama` backend, and llmload (CPU 1, --verify: every token
in order, [DONE]) runs --streams concurrent OpenAI streams for --duration
seconds through it.  The two are run in turn, --reps times.  For each run:
the worker's CPU seconds (utime + stime) per million tokens, and TTFT
p50/p99.  The Ollama path parses every NDJSON line (json_scan) and writes
an OpenAI chunk for it; the OpenAI path frames events and scans them.

usage: perf/xlat_bench.py [--reps 3] [--streams 200] [--duration 10]
                          [--build-dir build-release] [--out perf/results]
Results: perf/results/xlat-<UTC stamp>.json and .md."""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

from benchlib import (cpu_of, free_port, interleave, metrics, save_json, start_llmsim,
                      start_sluice, worker_pids)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(build, tmp, kind, a):
    sim, sim_port = start_llmsim(build, os.path.join(tmp, kind + ".port"),
                                 ["--api", kind, "--model", "m", "--tokens", str(a.tokens),
                                  "--itl-ms", "10", "--ttft-ms", "20", "--max-batch", "100000"])
    port, admin = free_port(), free_port()
    conf = os.path.join(tmp, kind + ".ini")
    with open(conf, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:%d\nadmin_listen = 127.0.0.1:%d\n"
                "control_socket = %s/%s.sock\nstate_dir = %s/state\nworkers = 1\n"
                "log_level = warn\n[upstream]\nhealth_interval = 0\n"
                "[backend b]\nurl = http://127.0.0.1:%d\nkind = %s\nmodels = m\n"
                % (port, admin, tmp, kind, tmp, sim_port, kind))
    sl = start_sluice(build, conf, admin)
    pids = worker_pids(admin)
    out = os.path.join(tmp, kind + "-load.json")
    t0 = metrics(admin).get("sluice_tokens_total", 0)
    c0 = sum(cpu_of(p) for p in pids)
    subprocess.run(["taskset", "-c", "1", os.path.join(build, "perf/loadgen/llmload"), "-c",
                    str(a.streams), "-d", str(a.duration), "--ramp", "1", "--verify", "--model",
                    "m", "--json", out, "http://127.0.0.1:%d/v1/chat/completions" % port],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    c1 = sum(cpu_of(p) for p in pids)
    t1 = metrics(admin).get("sluice_tokens_total", 0)
    sl.terminate()
    sl.wait(30)
    sim.kill()
    sim.wait()
    res = json.load(open(out))
    tokens = t1 - t0
    return {"kind": kind, "tokens": tokens, "cpu_s": c1 - c0,
            "cpu_s_per_m_tokens": (c1 - c0) / tokens * 1e6 if tokens else None,
            "completed": res["completed"], "failed": res["failed"],
            "verify_errors": res["verify_errors"], "ttft_p50_ms": res["ttft_ms"].get("p50"),
            "ttft_p99_ms": res["ttft_ms"].get("p99")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--streams", type=int, default=200)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-release"))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    tmp = tempfile.mkdtemp(prefix="xlat-bench-")
    runs = interleave(a.reps, ("openai", "ollama"), lambda kind, rep: run(a.build_dir, tmp, kind, a))
    med = {k: statistics.median(r["cpu_s_per_m_tokens"] for r in runs if r["kind"] == k)
           for k in ("openai", "ollama")}
    ratios = [o["cpu_s_per_m_tokens"] / v["cpu_s_per_m_tokens"]
              for v, o in zip(runs[0::2], runs[1::2])]
    base = save_json(a.out, "xlat", stamp,
                     {"runs": runs, "median_cpu_s_per_m_tokens": med, "ratios": ratios})
    u = os.uname()
    with open(base + ".md", "w") as f:
        f.write("# Ollama translation cost, %s\n\n%s %s, %d CPUs; `perf/xlat_bench.py --reps %d "
                "--streams %d --duration %d --tokens %d`\n\n"
                % (stamp, u.sysname, u.release, os.cpu_count(), a.reps, a.streams, a.duration,
                   a.tokens))
        f.write("| backend | tokens | worker CPU s / M tokens | TTFT p50 ms | TTFT p99 ms | "
                "completed | failed | verify errors |\n|---|---|---|---|---|---|---|---|\n")
        for r in runs:
            f.write("| %s | %d | %.2f | %.1f | %.1f | %d | %d | %d |\n"
                    % (r["kind"], r["tokens"], r["cpu_s_per_m_tokens"], r["ttft_p50_ms"],
                       r["ttft_p99_ms"], r["completed"], r["failed"], r["verify_errors"]))
        f.write("\nMedian CPU s per million tokens: openai %.2f, ollama %.2f; same-rep ratios "
                "ollama/openai: %s\n" % (med["openai"], med["ollama"],
                                         ", ".join("%.2f" % x for x in ratios)))
    print("results: %s.{json,md}" % base)


if __name__ == "__main__":
    main()
