#!/usr/bin/env python3
"""Samples a running sluice for perf/governor_ramp.sh, one JSON line per sample.

usage: sample.py ADMIN_PORT CONTROL_SOCKET OUT.jsonl INTERVAL_S MAX_S

Every INTERVAL_S seconds (for at most MAX_S seconds, or until SIGTERM) it
reads GET /metrics on 127.0.0.1:ADMIN_PORT (the governor's limit, admitted
streams, admission queue, rejections by reason, tokens, responses by code)
and asks the control socket for `limits` (the governor's view of the last
sample interval: first tokens, TTFT p50/p90/p95, inflight peak), and writes

  {"t": CLOCK_MONOTONIC seconds, "limit": .., "admitted": .., "queue": ..,
   "rejected": {reason: n}, "tokens_total": .., "requests": {code: n},
   "gov": {...the `limits` answer...}}

The monotonic clock is the one llmload's --timeseries t0 is on, so the two
line up.  Standard library only; a failed read is written as {"t":..,
"error": ".."} and sampling goes on.
"""

import json
import os
import re
import signal
import socket
import sys
import time
import urllib.request

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$')
LABEL = re.compile(r'(\w+)="([^"]*)"')

stop = False


def on_term(*_):
    global stop
    stop = True


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=1.0) as r:
        text = r.read().decode()
    out = {"rejected": {}, "requests": {}}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        m = LINE.match(line)
        if not m:
            continue
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        try:
            v = float(value)
        except ValueError:
            continue
        lab = dict(LABEL.findall(labels))
        if name == "sluice_governor_limit":
            out["limit"] = v
        elif name == "sluice_admitted_streams":
            out["admitted"] = v
        elif name == "sluice_admission_queue":
            out["queue"] = v
        elif name == "sluice_streams_active":
            out["streams_active"] = v
        elif name == "sluice_tokens_total":
            out["tokens_total"] = v
        elif name == "sluice_rejected_total":
            out["rejected"][lab.get("reason", "?")] = v
        elif name == "sluice_requests_total" and v:
            out["requests"][lab.get("code", "?")] = v
    return out


def limits(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(path)
        s.sendall(b'["limits"]\n')
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    reply = json.loads(buf)
    if not reply.get("ok"):
        raise RuntimeError(reply.get("error", "refused"))
    return reply["data"]


def main():
    port, sock, out_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    interval, max_s = float(sys.argv[4]), float(sys.argv[5])
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    t_end = time.monotonic() + max_s
    nxt = time.monotonic()
    with open(out_path, "w") as f:
        while not stop and time.monotonic() < t_end:
            t = time.monotonic()
            rec = {"t": round(t, 4)}
            try:
                rec.update(metrics(port))
            except Exception as e:  # the run goes on; the gap shows in the data
                rec["error"] = "metrics: %s" % e
            try:
                rec["gov"] = limits(sock)
            except Exception as e:
                rec.setdefault("error", "limits: %s" % e)
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
            f.flush()
            nxt += interval
            delay = nxt - time.monotonic()
            if delay < 0:  # fell behind: skip, do not burst
                nxt = time.monotonic()
                delay = 0
            time.sleep(delay)
    return 0


if __name__ == "__main__":
    sys.exit(main())
