"""perf/benchlib.py -- what the Python benchmarks share: free ports, llmsim
and sluice started pinned to a CPU and waited for, /metrics read, and
percentiles.  Standard library only."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_llmsim(build, port_file, args, cpu=1):
    """llmsim on CPU <cpu>, listening on a free port; (process, port)."""
    if os.path.exists(port_file):
        os.unlink(port_file)
    p = subprocess.Popen(
        ["taskset", "-c", str(cpu), os.path.join(build, "perf/llmsim/llmsim"), "--listen",
         "127.0.0.1:0", "--port-file", port_file, "--quiet", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        if os.path.exists(port_file) and open(port_file).read().strip():
            return p, int(open(port_file).read())
        time.sleep(0.02)
    p.kill()
    raise RuntimeError("llmsim did not start")


def start_sluice(build, conf, admin, log=subprocess.DEVNULL, cpu=0):
    """sluice on CPU <cpu> with config <conf>, waited for until its admin
    port says every worker is ready."""
    p = subprocess.Popen(["taskset", "-c", str(cpu), os.path.join(build, "supervisor/sluice"),
                          "--config", conf], stdout=log, stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            if urllib.request.urlopen("http://127.0.0.1:%d/readyz" % admin,
                                      timeout=1).status == 200:
                return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise RuntimeError("sluice did not become ready (see its log)")


def metrics(admin):
    """{'name{labels}': value} from sluice's /metrics."""
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin, timeout=5).read()
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid):
    """utime + stime of <pid>, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def worker_pids(admin):
    """The pids of sluice's workers that are not draining (from /status)."""
    st = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/status" % admin, timeout=5).read())
    return [w["pid"] for w in st["workers"] if not w["draining"]]


def interleave(reps, variants, run):
    """run(variant, rep) for each variant in turn, <reps> times over, so the
    things compared share the machine's noise; each result gets its "rep"
    and is printed as it comes."""
    runs = []
    for rep in range(reps):
        for v in variants:
            r = run(v, rep)
            r["rep"] = rep
            runs.append(r)
            print(json.dumps(r), file=sys.stderr)
    return runs


def save_json(out_dir, prefix, stamp, data):
    """<out_dir>/<prefix>-<stamp>.json; returns the path without ".json"
    (the .md goes beside it)."""
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, "%s-%s" % (prefix, stamp))
    with open(base + ".json", "w") as f:
        json.dump(data, f, indent=1)
    return base
