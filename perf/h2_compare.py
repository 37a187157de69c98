#!/usr/bin/env python3
"""perf/h2_compare.py -- HTTP/1.1 against h2c, and both over TLS, through
sluice, nghttpx and h2o.

h2load drives paced token streams (llmsim: first token after 20 ms, then one
every 20 ms, 50 tokens, so a stream lasts about a second) at 32, 75, 100 and
1,000 concurrent streams, each run 3 x N requests:

  h1       h2load --h1 -c N -m 1        one connection per stream
  h2c      h2load -c ceil(N/100) -m <=100  up to 100 streams per connection
  h1-tls   as h1, over TLS 1.3 (ALPN http/1.1)
  h2-tls   as h2c, over TLS 1.3 (ALPN h2)

Each proxy has a plain and a TLS listener with the same self-signed P-256
certificate (made here with openssl).

For each run: connections the proxy accepted (its own counter for sluice,
h2load's clients for the others), proxy CPU seconds per 1,000 streams (utime +
stime of its processes from /proc), bytes the client received per token and
the overhead over the SSE body (h2load's total - data, over data: headers,
chunk or frame headers), time to first byte mean / max (h2load reports no
percentiles; sluice holds the response head until the first token, so for
sluice it is the time to first token), and failures.  Targets and protocols
run interleaved, repeated --reps times; medians are reported.

The proxy runs on CPU 0 with one worker; llmsim and h2load on CPU 1; only
127.0.0.1.

Results: perf/results/h2-compare-<UTC stamp>.json (every run) and .md.

usage: perf/h2_compare.py [--reps N] [--conc "32 75 100 1000"]
                          [--targets sluice,nghttpx,h2o] [--build-dir DIR] [--out DIR]
"""

import argparse
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TOKENS = 50
PROTOS = ("h1", "h2c", "h1-tls", "h2-tls")
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on %d" % port)


def cpu_ticks(pids):
    t = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            t += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return t


def children(pid):
    out = [pid]
    try:
        for line in subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                                   text=True).stdout.split():
            out += children(int(line))
    except ValueError:
        pass
    return out


def metrics(admin_port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin_port, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    m = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                m[k] = float(v)
            except ValueError:
                pass
    return m


def parse_h2load(out):
    r = {}
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed,"
                  r" (\d+) errored, (\d+) timeout", out)
    if m:
        r["requests"], r["succeeded"], r["failed"] = int(m.group(1)), int(m.group(4)), int(m.group(5))
        r["errored"], r["timeout"] = int(m.group(6)), int(m.group(7))
    m = re.search(r"traffic: \S+ \((\d+)\) total, \S+ \((\d+)\) headers .*?, \S+ \((\d+)\) data", out)
    if m:
        r["bytes_total"], r["bytes_headers"], r["bytes_data"] = map(int, m.groups())
    m = re.search(r"finished in ([\d.]+)s", out)
    if m:
        r["wall_s"] = float(m.group(1))

    def ms(v):
        return float(v[:-2]) / 1000.0 if v.endswith("us") else (
            float(v[:-2]) if v.endswith("ms") else float(v[:-1]) * 1000.0)
    m = re.search(r"time to 1st byte:\s+(\S+)\s+(\S+)\s+(\S+)", out)
    if m:
        r["ttfb_min_ms"], r["ttfb_max_ms"], r["ttfb_mean_ms"] = (ms(m.group(i)) for i in (1, 2, 3))
    return r


class Target:
    def __init__(self, name, port, pids_fn, admin_port=None, tls_port=None):
        self.name, self.port, self.pids_fn, self.admin_port = name, port, pids_fn, admin_port
        self.tls_port = tls_port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--conc", default="32 75 100 1000")
    ap.add_argument("--targets", default="sluice,nghttpx,h2o")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-release"))
    ap.add_argument("--out", default=os.path.join(ROOT, "perf", "results"))
    a = ap.parse_args()
    conc = [int(x) for x in a.conc.split()]
    targets = a.targets.split(",")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    for tool in ("h2load", "taskset") + tuple(t for t in ("nghttpx", "h2o") if t in targets):
        if not shutil.which(tool):
            sys.exit("h2_compare: %s is missing (apt-get install nghttp2-client nghttp2-proxy h2o)"
                     % tool)

    tmp = tempfile.mkdtemp(prefix="sluice-h2cmp-")
    procs = []
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)

    def start(argv, cpu, log):
        p = subprocess.Popen(["taskset", "-c", str(cpu)] + argv, stdout=open(log, "w"),
                             stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(p)
        return p

    try:
        sim_port = free_port()
        start([os.path.join(a.build_dir, "perf/llmsim/llmsim"), "--listen", "127.0.0.1:%d" % sim_port,
               "--ttft-ms", "20", "--itl-ms", "20", "--tokens", str(TOKENS), "--max-batch", "100000"],
              1, os.path.join(tmp, "llmsim.log"))
        wait_port(sim_port)
        tg = {}
        if "sluice" in targets:
            port, admin, tport = free_port(), free_port(), free_port()
            conf = os.path.join(tmp, "sluice.ini")
            with open(conf, "w") as f:
                f.write("[server]\ntls_listen = 127.0.0.1:%d\ntls_cert = %s\ntls_key = %s\n"
                        % (tport, cert, key))
                f.write("listen = 127.0.0.1:%d\nadmin_listen = 127.0.0.1:%d\nworkers = 1\n"
                        "control_socket = %s/ctl.sock\nstate_dir = %s\nlog_level = warn\n"
                        "max_connections = 20000\n[http2]\nmax_concurrent_streams = 128\n"
                        "[backend sim]\nurl = http://127.0.0.1:%d\n" % (port, admin, tmp, tmp, sim_port))
            p = start([os.path.join(a.build_dir, "supervisor/sluice"), "--config", conf], 0,
                      os.path.join(tmp, "sluice.log"))
            wait_port(port)
            wait_port(admin)
            subprocess.run([os.path.join(a.build_dir, "supervisor/sluicectl"), "--socket",
                            tmp + "/ctl.sock", "rollout", "set", "http2_transport", "100"],
                           check=True, capture_output=True)
            time.sleep(1.2)
            tg["sluice"] = Target("sluice", port, lambda p=p: children(p.pid)[1:], admin, tport)
        if "nghttpx" in targets:
            port, tport = free_port(), free_port()
            p = start(["nghttpx", "--frontend=127.0.0.1,%d;no-tls" % port,
                       "--frontend=127.0.0.1,%d" % tport, key, cert,
                       "--backend=127.0.0.1,%d" % sim_port, "--workers=1", "--no-ocsp",
                       "--backend-connections-per-host=100000", "--worker-frontend-connections=0",
                       "--http2-max-concurrent-streams=100", "--log-level=WARN",
                       "--errorlog-file=" + os.path.join(tmp, "nghttpx-error.log"),
                       "--accesslog-file=/dev/null", "--pid-file=" + os.path.join(tmp, "nghttpx.pid"),
                       "--conf=/dev/null"], 0, os.path.join(tmp, "nghttpx.log"))
            wait_port(port)
            tg["nghttpx"] = Target("nghttpx", port, lambda p=p: children(p.pid), None, tport)
        if "h2o" in targets:
            port, tport = free_port(), free_port()
            conf = os.path.join(tmp, "h2o.conf")
            with open(conf, "w") as f:
                f.write("listen:\n  host: 127.0.0.1\n  port: %d\n"
                        "  ssl:\n    certificate-file: %s\n    key-file: %s\n" % (tport, cert, key))
                f.write("listen:\n  host: 127.0.0.1\n  port: %d\nnum-threads: 1\n"
                        "max-connections: 20000\n"
                        "http2-max-concurrent-requests-per-connection: 100\n"
                        "proxy.timeout.io: 30000\n"
                        "hosts:\n  default:\n    paths:\n      /:\n"
                        "        proxy.reverse.url: http://127.0.0.1:%d/\n"
                        "access-log: /dev/null\nerror-log: %s/h2o-error.log\n"
                        % (port, sim_port, tmp))
            p = start(["h2o", "-c", conf], 0, os.path.join(tmp, "h2o.log"))
            wait_port(port)
            tg["h2o"] = Target("h2o", port, lambda p=p: children(p.pid), None, tport)
        body = os.path.join(tmp, "body.json")
        with open(body, "w") as f:
            f.write(json.dumps({"model": "llmsim-1", "stream": True,
                                "messages": [{"role": "user", "content": "hi"}]}))
        runs = []
        for rep in range(a.reps):
            for n in conc:
                for proto in PROTOS:
                    for name in targets:
                        t = tg[name]
                        one = proto.startswith("h1")
                        c = n if one else max(1, math.ceil(n / 100))
                        m = 1 if one else min(n, 100)
                        argv = ["taskset", "-c", "1", "h2load", "-n", str(3 * n), "-c", str(c),
                                "-m", str(m), "-d", body, "-H", "content-type: application/json",
                                "-T", "30", "-N", "30"]
                        if one:
                            argv.append("--h1")  # over TLS too: ALPN http/1.1
                        if proto.endswith("tls"):
                            argv.append("https://127.0.0.1:%d/v1/chat/completions" % t.tls_port)
                        else:
                            argv.append("http://127.0.0.1:%d/v1/chat/completions" % t.port)
                        pids = t.pids_fn()
                        m0 = metrics(t.admin_port) if t.admin_port else {}
                        c0 = cpu_ticks(pids)
                        out = subprocess.run(argv, capture_output=True, text=True, timeout=300).stdout
                        c1 = cpu_ticks(pids)
                        m1 = metrics(t.admin_port) if t.admin_port else {}
                        r = parse_h2load(out)
                        r.update(rep=rep, target=name, proto=proto, streams=n, clients=c,
                                 streams_per_conn=m, cpu_s=(c1 - c0) / TICK)
                        if m0 and m1:
                            r["conns_accepted"] = int(m1.get("sluice_connections_total", 0) -
                                                      m0.get("sluice_connections_total", 0))
                        else:
                            r["conns_accepted"] = c
                        ok = r.get("succeeded", 0)
                        r["cpu_ms_per_stream"] = 1000.0 * r["cpu_s"] / ok if ok else None
                        if ok and r.get("bytes_total"):
                            r["bytes_per_token"] = r["bytes_total"] / (ok * TOKENS)
                            r["data_per_token"] = r["bytes_data"] / (ok * TOKENS)
                            r["overhead_pct"] = 100.0 * (r["bytes_total"] - r["bytes_data"]) / r["bytes_data"]
                        runs.append(r)
                        print("rep %d %-8s %-4s %5d streams: %s" % (rep, name, proto, n, json.dumps(
                            {k: r.get(k) for k in ("succeeded", "failed", "conns_accepted", "cpu_ms_per_stream",
                                                   "bytes_per_token", "overhead_pct", "ttfb_mean_ms",
                                                   "ttfb_max_ms")})), flush=True)
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except OSError:
                pass
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = os.path.join(a.out, "h2-compare-" + stamp)
    with open(base + ".json", "w") as f:
        json.dump({"stamp": stamp, "tokens_per_stream": TOKENS, "conc": conc, "reps": a.reps,
                   "runs": runs}, f, indent=1)

    def med(rows, k):
        v = [r[k] for r in rows if r.get(k) is not None]
        return statistics.median(v) if v else None

    def fmt(v, spec):
        return "–" if v is None else spec % v

    lines = ["# HTTP/1.1 vs h2c, plain and over TLS: %s" % stamp, "",
             "`perf/h2_compare.py --reps %d`: llmsim 20 ms TTFT, 20 ms per token, %d tokens; "
             "3 x N requests per run; proxy on CPU 0 (1 worker), llmsim and h2load on CPU 1. "
             "Medians of %d runs." % (a.reps, TOKENS, a.reps), "",
             "| target | proto | streams | conns accepted | proxy CPU ms/stream | bytes/token | "
             "overhead over body | TTFB mean / max ms | failed |", "|---|---|---|---|---|---|---|---|---|"]
    for n in conc:
        for name in targets:
            for proto in PROTOS:
                rows = [r for r in runs if r["target"] == name and r["proto"] == proto and r["streams"] == n]
                if not rows:
                    continue
                lines.append("| %s | %s | %d | %s | %s | %s | %s | %s / %s | %d |" % (
                    name, proto, n, fmt(med(rows, "conns_accepted"), "%.0f"),
                    fmt(med(rows, "cpu_ms_per_stream"), "%.3f"), fmt(med(rows, "bytes_per_token"), "%.1f"),
                    fmt(med(rows, "overhead_pct"), "%.2f %%"), fmt(med(rows, "ttfb_mean_ms"), "%.1f"),
                    fmt(med(rows, "ttfb_max_ms"), "%.1f"),
                    sum(r.get("failed", 0) + r.get("errored", 0) + r.get("timeout", 0) for r in rows)))
    lines += ["", "h2c against h1 (same target, medians): connections and proxy CPU per stream", "",
              "| target | streams | conns h2c / h1 | CPU/stream h2c / h1 |", "|---|---|---|---|"]
    for name in targets:
        for n in conc:
            h1 = [r for r in runs if r["target"] == name and r["proto"] == "h1" and r["streams"] == n]
            h2 = [r for r in runs if r["target"] == name and r["proto"] == "h2c" and r["streams"] == n]
            if h1 and h2 and med(h1, "cpu_ms_per_stream"):
                lines.append("| %s | %d | %.3f | %.2f |" % (
                    name, n, med(h2, "conns_accepted") / max(1, med(h1, "conns_accepted")),
                    med(h2, "cpu_ms_per_stream") / med(h1, "cpu_ms_per_stream")))
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print("results: %s.{md,json}" % base)


if __name__ == "__main__":
    main()
