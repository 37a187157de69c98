#!/usr/bin/env python3
"""perf/resume_bench.py -- what resumable streams cost, and how fast a resume is.

One sluice (one worker on CPU 0) in front of llmsim (CPU 1), the load on
CPU 1 too, only 127.0.0.1:

1. Relay cost.  llmload runs N paced streams (llmsim: 20 ms between tokens,
   100 tokens) with the `stream_resume` rollout at 0 % and at 100 %,
   interleaved (0, 100, 0, 100, ...) on the same process (sluicectl switches
   it), --reps times.  For each run: the worker's CPU seconds (utime + stime
   from /proc) per million tokens, TTFT p50/p99 from llmload, and the event
   log memory while the streams run (sluice_resume_buffer_bytes, sampled).

2. Resume.  R streams are started, each read for a few events, then all
   dropped at once (RST); then all resumed at once with their Last-Event-ID.
   Reported: time from sending the resume request to its first replayed event
   (p50/p99), event-log bytes per retained stream, and whether every stream
   came back whole (ids consecutive, tokens w0.. in order, [DONE]).

Results: perf/results/resume-<UTC stamp>.json and .md.

usage: perf/resume_bench.py [--reps 3] [--streams 1000] [--resumes 200]
                            [--build-dir build-release] [--out perf/results]
"""

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import cpu_of, free_port, metrics, pct, start_llmsim, start_sluice, worker_pids

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TOKENS = 100
CHAT = "/v1/chat/completions"


class Stack:
    def __init__(self, build, tmp):
        self.tmp = tmp
        self.sim, sim_port = start_llmsim(
            build, os.path.join(tmp, "llmsim.port"),
            ["--ttft-ms", "20", "--itl-ms", "20", "--tokens", str(TOKENS), "--max-batch", "100000"])
        self.port, self.admin = free_port(), free_port()
        self.ctl_sock = os.path.join(tmp, "control.sock")
        conf = os.path.join(tmp, "sluice.ini")
        with open(conf, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:%d\nadmin_listen = 127.0.0.1:%d\n"
                    "control_socket = %s\nstate_dir = %s\nworkers = 1\nlog_level = %s\n"
                    "max_connections = 4096\n[backend sim]\nurl = http://127.0.0.1:%d\n"
                    "[buffers]\nslabs = 8192\n[rollout]\nstream_resume = 0\n"
                    % (self.port, self.admin, self.ctl_sock, os.path.join(tmp, "state"),
                       os.environ.get("SLUICE_LOG_LEVEL", "warn"),
                       sim_port))
        self.sluicectl = os.path.join(build, "supervisor/sluicectl")
        self.sluice = start_sluice(build, conf, self.admin,
                                   open(os.path.join(tmp, "sluice.log"), "w"))
        self.worker = worker_pids(self.admin)[0]

    def rollout(self, pct_):
        subprocess.run([self.sluicectl, "--socket", self.ctl_sock, "rollout", "set",
                        "stream_resume", str(pct_)], check=True, capture_output=True)
        for _ in range(100):
            if metrics(self.admin).get('sluice_rollout_percent{feature="stream_resume"}') == pct_:
                return
            time.sleep(0.05)
        raise RuntimeError("rollout not applied")

    def stop(self):
        self.sluice.send_signal(signal.SIGTERM)
        try:
            self.sluice.wait(30)
        except subprocess.TimeoutExpired:
            self.sluice.kill()
        self.sim.kill()
        self.sim.wait()


def relay_run(stack, build, n, resume):
    stack.rollout(100 if resume else 0)
    m0 = metrics(stack.admin)
    c0 = cpu_of(stack.worker)
    out = os.path.join(stack.tmp, "load.json")
    load = subprocess.Popen(
        ["taskset", "-c", "1", os.path.join(build, "perf/loadgen/llmload"), "-c", str(n),
         "--once", "--ramp", "1", "--verify", "--expect-tokens", str(TOKENS),
         "--json", out, "http://127.0.0.1:%d%s" % (stack.port, CHAT)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = m0.get("sluice_resume_buffer_bytes", 0)
    peak = 0
    while load.poll() is None:
        peak = max(peak, metrics(stack.admin).get("sluice_resume_buffer_bytes", 0) - base)
        time.sleep(0.2)
    c1 = cpu_of(stack.worker)
    m1 = metrics(stack.admin)
    res = json.load(open(out))
    tokens = m1["sluice_tokens_total"] - m0["sluice_tokens_total"]
    ttft = res.get("ttft_ms", {})
    return {
        "resume": resume,
        "streams": n,
        "tokens": tokens,
        "cpu_s": c1 - c0,
        "cpu_s_per_mtok": (c1 - c0) / tokens * 1e6 if tokens else float("nan"),
        "ttft_p50_ms": ttft.get("p50"),
        "ttft_p99_ms": ttft.get("p99"),
        "log_bytes_peak": peak,
        "verify_ok": load.returncode == 0,
    }


class Reader:
    """One SSE response over HTTP/1.1, read event by event (one chunk each)."""

    def __init__(self, port, data):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.s.sendall(data)
        self.buf = b""
        self.status = None

    def fill(self):
        b = self.s.recv(65536)
        if not b:
            raise EOFError
        self.buf += b

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def head(self):
        self.status = int(self.line().split()[1])
        while self.line():
            pass
        return self.status

    def event(self):
        size = int(self.line(), 16)
        if size == 0:
            return None
        while len(self.buf) < size + 2:
            self.fill()
        ev, self.buf = self.buf[:size], self.buf[size + 2:]
        m = re.search(rb"^id: ([0-9a-f]+):(\d+)$", ev, re.M)
        d = re.search(rb'"content":"([^"]*)"|data: (\[DONE\])', ev)
        return (m.group(1).decode(), int(m.group(2)),
                (d.group(1) if d.group(1) is not None else d.group(2)).decode() if d else None)


def req(method, path, body=None, headers=None):
    h = "Host: bench\r\n"
    for k, v in (headers or {}).items():
        h += "%s: %s\r\n" % (k, v)
    if body is not None:
        h += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    return ("%s %s HTTP/1.1\r\n%s\r\n" % (method, path, h)).encode() + (body or b"")


def resume_run(stack, n):
    stack.rollout(100)
    body = json.dumps({"model": "llmsim-1", "stream": True,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    m0 = metrics(stack.admin)
    readers = [Reader(stack.port, req("POST", CHAT, body)) for _ in range(n)]
    seen = []
    for r in readers:
        r.head()
        seen.append([r.event() for _ in range(4)])
    for r in readers:
        r.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        r.s.close()
    for _ in range(100):
        m = metrics(stack.admin)
        if m.get("sluice_resume_streams", 0) - m0.get("sluice_resume_streams", 0) >= n:
            break
        time.sleep(0.05)
    retained = m.get("sluice_resume_streams", 0) - m0.get("sluice_resume_streams", 0)
    log_bytes = m.get("sluice_resume_buffer_bytes", 0) - m0.get("sluice_resume_buffer_bytes", 0)
    time.sleep(0.2)  # the streams go on meanwhile: ~10 events each to replay
    lat, whole = [], 0
    resumed = []
    # One at a time, so each latency is the server's, not the client's
    # queue; the rest of each stream is read afterwards.
    for evs in seen:
        sid, last = evs[0][0], evs[-1][1]
        t0 = time.monotonic()
        r = Reader(stack.port, req("GET", "/v1/streams/" + sid,
                                   headers={"Last-Event-ID": "%s:%d" % (sid, last)}))
        ev = r.event() if r.head() == 200 else None
        if ev is not None:
            lat.append((time.monotonic() - t0) * 1000)
        resumed.append((r, ev, evs))
    for r, ev, evs in resumed:
        if ev is None:
            continue
        while ev is not None:
            evs.append(ev)
            ev = r.event()
        r.s.close()
        seqs = [e[1] for e in evs]
        toks = [e[2] for e in evs[1:]]
        if seqs == list(range(1, len(seqs) + 1)) and \
                toks == [" w%d" % i for i in range(TOKENS)] + ["[DONE]"]:
            whole += 1
    return {"streams": n, "retained": retained, "log_bytes": log_bytes,
            "log_bytes_per_stream": log_bytes / retained if retained else float("nan"),
            "resume_first_event_p50_ms": pct(lat, 50), "resume_first_event_p99_ms": pct(lat, 99),
            "whole": whole}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--resumes", type=int, default=200)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-release"))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    tmp = tempfile.mkdtemp(prefix="resume-bench-")
    stack = Stack(a.build_dir, tmp)
    runs = []
    try:
        # First, while no finished stream is retained from the relay runs.
        res = resume_run(stack, a.resumes)
        print(json.dumps(res), file=sys.stderr)
        for rep in range(a.reps):
            for resume in (False, True):
                r = relay_run(stack, a.build_dir, a.streams, resume)
                r["rep"] = rep
                runs.append(r)
                print(json.dumps(r), file=sys.stderr)
    finally:
        stack.stop()
    os.makedirs(a.out, exist_ok=True)
    base = os.path.join(a.out, "resume-" + stamp)
    with open(base + ".json", "w") as f:
        json.dump({"relay": runs, "resume": res, "streams": a.streams, "tokens": TOKENS}, f,
                  indent=1)

    def med(resume, key):
        return statistics.median(r[key] for r in runs if r["resume"] == resume)
    pairs = [(r0["cpu_s_per_mtok"], r1["cpu_s_per_mtok"])
             for r0 in runs for r1 in runs
             if r0["rep"] == r1["rep"] and not r0["resume"] and r1["resume"]]
    ratio = statistics.median(b / a for a, b in pairs)
    lines = [
        "# Resumable streams: cost and resume latency (%s)" % stamp, "",
        "`perf/resume_bench.py --reps %d --streams %d --resumes %d`; one worker on CPU 0, "
        "llmsim and the load on CPU 1; %d streams of %d tokens, 20 ms apart; medians of %d "
        "interleaved runs." % (a.reps, a.streams, a.resumes, a.streams, TOKENS, a.reps), "",
        "| stream_resume | worker CPU s per million tokens | TTFT p50 / p99 ms | event-log bytes "
        "added (peak) | all verified |", "|---|---|---|---|---|",
    ]
    for resume, name in ((False, "0 %"), (True, "100 %")):
        lines.append("| %s | %.2f | %.1f / %.1f | %d | %s |" % (
            name, med(resume, "cpu_s_per_mtok"), med(resume, "ttft_p50_ms"),
            med(resume, "ttft_p99_ms"), med(resume, "log_bytes_peak"),
            all(r["verify_ok"] for r in runs if r["resume"] == resume)))
    lines += ["", "Cost of keeping the log: %.2fx the CPU per token, median of the %d "
              "same-rep ratios (%s)." % (ratio, len(pairs),
                                          ", ".join("%.2f" % (b / a) for a, b in pairs)), "",
              "Resume: %d streams dropped (RST) after 4 events each, then, 200 ms later, "
              "resumed one after another: "
              "%d retained, %.0f event-log bytes per retained stream, first replayed event "
              "p50 %.1f ms / p99 %.1f ms after the request, %d of %d came back whole." % (
                  res["streams"], res["retained"], res["log_bytes_per_stream"],
                  res["resume_first_event_p50_ms"], res["resume_first_event_p99_ms"],
                  res["whole"], res["streams"]), ""]
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    print("results: %s.{json,md}" % base)


if __name__ == "__main__":
    main()
