#!/usr/bin/env python3
"""proc.py -- /proc helpers for perf/compare.sh (standard library only).

  proc.py snap NAME=PID[,PID]...           one JSON line: for each NAME, CPU seconds and
                                           RSS of the process trees rooted at PID...,
                                           and "cpustat" (per-CPU jiffies), "t" (monotonic s)
  proc.py sample OUT INTERVAL STATS_URL PID...
                                           until SIGTERM/SIGINT: sample the trees' summed
                                           RSS (and llmsim's /stats "running") every
                                           INTERVAL s; write the peaks to OUT as JSON
  proc.py cpustat                          one JSON line: busy/total jiffies per CPU
  proc.py busy SECONDS                     busy % of each CPU over SECONDS, e.g. "cpu0=3 cpu1=12"
  proc.py freeport [N]                     N free TCP ports on 127.0.0.1
  proc.py record KEY=VALUE... [@KEY=FILE]  one JSON record line: VALUE parsed as JSON
                                           when it is JSON, else kept as a string;
                                           @KEY=FILE embeds FILE's JSON (null if none),
                                           %KEY=FILE FILE's lines as a list of strings
  proc.py h2load FILE                      h2load's text output as JSON
  proc.py metrics URL NAME...              the named Prometheus samples at URL as JSON

CPU is utime+stime+cutime+cstime of every process in the trees (a child that
exits and is reaped moves its time into its parent's cutime, so deltas stay
whole). RSS is VmRSS from /proc/PID/status (summed: shared pages count once per
process); PSS from /proc/PID/smaps_rollup is reported beside it.
"""
import json
import os
import re
import signal
import socket
import sys
import time
import urllib.request

TCK = os.sysconf("SC_CLK_TCK")


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rfind(")") + 2:].split()
        ppid = int(rest[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(roots):
    kids = children_map()
    out, todo = [], [int(r) for r in roots]
    seen = set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        if os.path.exists("/proc/%d" % p):
            out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_of(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return 0.0
    rest = s[s.rfind(")") + 2:].split()
    # fields 14..17 of stat (utime stime cutime cstime); rest[0] is field 3
    return sum(int(x) for x in rest[11:15]) / TCK


def rss_of(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_of(pid):
    """Proportional set size: shared pages split among the processes mapping
    them, so summing it over a process tree counts shared memory once."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def snap(roots):
    pids = tree(roots)
    return {
        "cpu_s": round(sum(cpu_of(p) for p in pids), 3),
        "rss_kb": sum(rss_of(p) for p in pids),
        "pss_kb": sum(pss_of(p) for p in pids),
        "nproc": len(pids),
        "pids": pids,
    }


def stats_running(url):
    try:
        with urllib.request.urlopen(url, timeout=0.5) as r:
            return json.loads(r.read()).get("running")
    except Exception:
        return None


def sample(out, interval, url, roots):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    peak = {"peak_rss_kb": 0, "peak_pss_kb": 0, "peak_nproc": 0, "peak_backend_running": None,
            "samples": 0, "rss_at_peak_running_kb": None}
    t_end = time.time() + 600
    while not stop and time.time() < t_end:
        s = snap(roots)
        run = stats_running(url) if url and url != "-" else None
        peak["samples"] += 1
        peak["peak_rss_kb"] = max(peak["peak_rss_kb"], s["rss_kb"])
        peak["peak_pss_kb"] = max(peak["peak_pss_kb"], s["pss_kb"])
        peak["peak_nproc"] = max(peak["peak_nproc"], s["nproc"])
        if run is not None and (peak["peak_backend_running"] is None
                                or run >= peak["peak_backend_running"]):
            peak["peak_backend_running"] = run
            peak["rss_at_peak_running_kb"] = s["rss_kb"]
        with open(out + ".tmp", "w") as f:
            json.dump(peak, f)
        os.replace(out + ".tmp", out)
        time.sleep(interval)


def cpustat():
    res = {}
    with open("/proc/stat") as f:
        for line in f:
            m = re.match(r"^(cpu\d+)\s+(.*)$", line)
            if m:
                v = [int(x) for x in m.group(2).split()]
                idle = v[3] + (v[4] if len(v) > 4 else 0)
                res[m.group(1)] = {"busy": sum(v[:8]) - idle, "total": sum(v[:8])}
    return res


def freeport(n):
    """Free ports below the ephemeral range (32768+), so that the thousands of
    outgoing connections of a run can never take one between this check and
    the proxy's bind."""
    import random
    socks, ports = [], []
    tries = 0
    while len(ports) < n and tries < 1000:
        tries += 1
        port = random.randrange(20000, 32000)
        if port in ports:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        socks.append(s)
        ports.append(port)
    for s in socks:
        s.close()
    return ports


def parse_val(v):
    try:
        return json.loads(v)
    except ValueError:
        return v


def record(args):
    rec = {}
    for a in args:
        k, _, v = a.partition("=")
        if k.startswith("%"):
            try:
                with open(v, errors="replace") as f:
                    rec[k[1:]] = f.read().splitlines()
            except OSError:
                rec[k[1:]] = []
        elif k.startswith("@"):
            try:
                with open(v) as f:
                    rec[k[1:]] = json.load(f)
            except (OSError, ValueError):
                rec[k[1:]] = None
        else:
            rec[k] = parse_val(v)
    return rec


def h2load(path):
    res = {"ok": False}
    try:
        text = open(path, errors="replace").read()
    except OSError:
        return res
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", text)
    if m:
        d = float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)
        res.update(ok=True, duration_s=d, req_per_s=float(m.group(3)))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    if m:
        keys = ["total", "started", "done", "succeeded", "failed", "errored", "timeout"]
        res.update({k: int(x) for k, x in zip(keys, m.groups())})
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if m:
        res.update({"s2xx": int(m.group(1)), "s3xx": int(m.group(2)),
                    "s4xx": int(m.group(3)), "s5xx": int(m.group(4))})
    m = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", text)
    if m:
        res["time_for_request"] = {"min": m.group(1), "max": m.group(2), "mean": m.group(3)}
    return res


def metrics(url, names):
    out = {}
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            body = r.read().decode(errors="replace")
    except Exception as e:
        return {"error": str(e)}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, val = line.rpartition(" ")
        base = key.split("{", 1)[0]
        if base in names:
            try:
                out[key] = float(val)
            except ValueError:
                pass
    return out


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "snap":
        out = {}
        for a in args:
            name, _, pids = a.partition("=")
            out[name] = snap([p for p in pids.split(",") if p]) if pids else None
        out["cpustat"] = cpustat()
        out["t"] = time.monotonic()
        print(json.dumps(out))
    elif cmd == "sample":
        sample(args[0], float(args[1]), args[2], args[3:])
    elif cmd == "cpustat":
        print(json.dumps(cpustat()))
    elif cmd == "busy":
        a = cpustat()
        time.sleep(float(args[0]) if args else 1.0)
        b = cpustat()
        print(" ".join("%s=%d" % (c, round(100.0 * (b[c]["busy"] - a[c]["busy"])
                                             / max(1, b[c]["total"] - a[c]["total"])))
                       for c in sorted(b)))
    elif cmd == "freeport":
        print(" ".join(str(p) for p in freeport(int(args[0]) if args else 1)))
    elif cmd == "record":
        print(json.dumps(record(args)))
    elif cmd == "h2load":
        print(json.dumps(h2load(args[0])))
    elif cmd == "metrics":
        print(json.dumps(metrics(args[0], set(args[1:]))))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
