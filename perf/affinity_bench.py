#!/usr/bin/env python3
"""perf/affinity_bench.py -- what prefix affinity buys: two replicas with a
prefix cache (llmsim's model of vLLM's automatic prefix caching: a cached
prompt prefix skips its prefill), conversations with long system prompts.

Each run starts two fresh llmsim replicas (prefill 200 us per prompt token,
so a 4 KB system prompt costs about 0.2 s uncached; --cache-blocks blocks of
256 bytes each: 256 by default, room for about 16 of the system prompts, so
a replica that sees every conversation keeps evicting them, as a real KV
cache under load does)
and one sluice (one worker) in front, with [upstream] affinity_prefix = 0
(least outstanding alone) or 2k.  --clients threads each send --requests
chat requests (not streamed, 1 token: the latency is the time to first
token), each for a conversation drawn at random from --convs, each with its
own 4 KB system prompt and a new user message.  Reported: latency p50, p90,
p99 and mean, and the replicas' prefix-cache hit rate (llmsim /stats).
Runs alternate off/on, --reps times.

Results: perf/results/affinity-<UTC stamp>.json and .md.

usage: perf/affinity_bench.py [--reps 3] [--convs 24] [--clients 8] [--requests 60]
                              [--build-dir build-release] [--out perf/results]
"""

import argparse
import http.client
import json
import os
import random
import signal
import statistics
import tempfile
import threading
import time
import urllib.request

from benchlib import free_port, interleave, pct, save_json, start_llmsim, start_sluice

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SIM = ["--prefill-us-per-token", "200", "--ttft-ms", "10", "--itl-ms", "5", "--tokens", "1",
       "--max-batch", "1000"]


def stats(port):
    return json.loads(urllib.request.urlopen("http://127.0.0.1:%d/stats" % port, timeout=5).read())


def run_once(build, tmp, affinity, a, seed):
    sims, ports = [], []
    for i in range(2):
        p, port = start_llmsim(build, os.path.join(tmp, "sim%d.port" % i),
                               [*SIM, "--prefix-cache-blocks", str(a.cache_blocks)])
        sims.append(p)
        ports.append(port)
    port, admin = free_port(), free_port()
    conf = os.path.join(tmp, "sluice.ini")
    with open(conf, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:%d\nadmin_listen = 127.0.0.1:%d\n"
                "control_socket = %s\nstate_dir = %s\nworkers = 1\nlog_level = warn\n"
                "[upstream]\naffinity_prefix = %s\nhealth_interval = 0\n"
                % (port, admin, os.path.join(tmp, "c.sock"), os.path.join(tmp, "state"),
                   "2k" if affinity else "0"))
        for i, p in enumerate(ports):
            f.write("[backend r%d]\nurl = http://127.0.0.1:%d\n" % (i, p))
    sl = start_sluice(build, conf, admin)
    systems = ["You are assistant %d. Follow these rules carefully. " % i * 80
               for i in range(a.convs)]  # ~4 KB each
    lat, errors = [], []
    lock = threading.Lock()

    def client(k):
        rng = random.Random(seed * 1000 + k)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for n in range(a.requests):
            body = json.dumps({"model": "llmsim-1", "stream": False, "messages": [
                {"role": "system", "content": systems[rng.randrange(a.convs)]},
                {"role": "user", "content": "question %d from client %d" % (n, k)}]})
            t0 = time.monotonic()
            conn.request("POST", "/v1/chat/completions", body,
                         {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            with lock:
                if r.status == 200:
                    lat.append((time.monotonic() - t0) * 1000)
                else:
                    errors.append(r.status)
        conn.close()
    ts = [threading.Thread(target=client, args=(k,)) for k in range(a.clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    st = [stats(p) for p in ports]
    sl.send_signal(signal.SIGTERM)
    sl.wait(30)
    for s in sims:
        s.kill()
        s.wait()
    reqs = sum(s["requests"] for s in st)
    return {"affinity": affinity, "requests": reqs, "errors": len(errors),
            "hit_rate": sum(s["prefix_hits"] for s in st) / reqs if reqs else 0,
            "per_replica": [s["requests"] for s in st],
            "p50_ms": pct(lat, 50), "p90_ms": pct(lat, 90), "p99_ms": pct(lat, 99),
            "mean_ms": statistics.mean(lat)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--convs", type=int, default=24)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--cache-blocks", type=int, default=256)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-release"))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    tmp = tempfile.mkdtemp(prefix="affinity-bench-")
    runs = interleave(a.reps, (False, True),
                      lambda affinity, rep: run_once(a.build_dir, tmp, affinity, a, rep))
    base = save_json(a.out, "affinity", stamp, runs)

    def med(aff, k):
        return statistics.median(r[k] for r in runs if r["affinity"] == aff)
    lines = [
        "# Prefix affinity (%s)" % stamp, "",
        "`perf/affinity_bench.py --reps %d --convs %d --clients %d --requests %d`: two llmsim "
        "replicas with a prefix cache (prefill 200 us per prompt token, %d blocks of 256 B), %d "
        "conversations with a 4 KB system prompt each, %d clients x %d requests, one token "
        "each (latency = time to first token); sluice one worker on CPU 0. Medians of %d "
        "runs, alternating." % (a.reps, a.convs, a.clients, a.requests, a.cache_blocks,
                               a.convs, a.clients,
                               a.requests, a.reps), "",
        "| affinity_prefix | prefix-cache hit rate | latency p50 ms | p90 ms | p99 ms | mean ms |",
        "|---|---|---|---|---|---|",
    ]
    for aff, name in ((False, "0 (least outstanding)"), (True, "2k")):
        lines.append("| %s | %.0f %% | %.1f | %.1f | %.1f | %.1f |" % (
            name, 100 * med(aff, "hit_rate"), med(aff, "p50_ms"), med(aff, "p90_ms"),
            med(aff, "p99_ms"), med(aff, "mean_ms")))
    lines.append("")
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    print("results: %s.{json,md}" % base)


if __name__ == "__main__":
    main()
