#!/usr/bin/env python3
"""sluice GPU-host agent: what the GPU and the inference servers on this host
are doing, on one HTTP endpoint an edge node's control plane can poll.

Standard library only (Debian's python3; no other registry is reachable).

  GET /status    JSON: the GPUs (memory used/total, utilisation, from
                 `nvidia-smi --query-gpu`, or why there is none) and each
                 configured server's queue (vLLM: num_requests_waiting and
                 _running from its /metrics; Ollama: the models loaded and
                 their VRAM from /api/ps; TF Serving: the model's version
                 states from /v1/models/NAME)
  GET /metrics   the same as Prometheus text
  GET /healthz   {"status":"ok"}

usage: gpu_agent.py [--listen 127.0.0.1:9400] [--cache-ms 1000]
                    [--server NAME=KIND:URL ...]   KIND: vllm | ollama | tfserving
e.g.   gpu_agent.py --server vllm=vllm:http://127.0.0.1:8000 \
                    --server ollama=ollama:http://127.0.0.1:11434 \
                    --server tf=tfserving:http://127.0.0.1:8501/v1/models/resnet

nvidia-smi is looked up on PATH; when it is missing or fails, "gpus" is empty
and "gpu_error" says why (the rest still works).
"""

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

QUERY = "index,name,memory.used,memory.total,utilization.gpu"
TIMEOUT_S = 2.0


def read_gpus():
    """([gpu dicts], error or None) from nvidia-smi."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return [], "nvidia-smi not found on PATH (no NVIDIA driver on this host?)"
    try:
        p = subprocess.run([exe, "--query-gpu=" + QUERY, "--format=csv,noheader,nounits"],
                           capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired) as e:
        return [], "nvidia-smi failed: %s" % e
    if p.returncode != 0:
        return [], "nvidia-smi exited %d: %s" % (p.returncode, p.stderr.strip()[:200])
    gpus = []
    for line in p.stdout.splitlines():
        f = [x.strip() for x in line.split(",")]
        if len(f) != 5:
            continue
        try:
            gpus.append({"index": int(f[0]), "name": f[1],
                         "memory_used_mib": float(f[2]), "memory_total_mib": float(f[3]),
                         "utilization_pct": float(f[4])})
        except ValueError:
            return [], "nvidia-smi: unexpected line %r" % line[:120]
    return gpus, None


def get(url):
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as r:
        return r.read()


def prom_sum(text, name):
    """Sum of the samples of metric `name` (any labels), or None."""
    total, found = 0.0, False
    for line in text.splitlines():
        if line.startswith(name) and line[len(name):len(name) + 1] in ("{", " "):
            try:
                total += float(line.rsplit(" ", 1)[1])
                found = True
            except ValueError:
                pass
    return total if found else None


def read_server(name, kind, url):
    out = {"name": name, "kind": kind, "url": url}
    try:
        if kind == "vllm":
            text = get(url.rstrip("/") + "/metrics").decode(errors="replace")
            out["waiting"] = prom_sum(text, "vllm:num_requests_waiting")
            out["running"] = prom_sum(text, "vllm:num_requests_running")
            kv = prom_sum(text, "vllm:kv_cache_usage_perc")
            if kv is None:
                kv = prom_sum(text, "vllm:gpu_cache_usage_perc")
            out["kv_cache"] = kv
        elif kind == "ollama":
            ps = json.loads(get(url.rstrip("/") + "/api/ps"))
            models = ps.get("models") or []
            out["models_loaded"] = [m.get("name") for m in models]
            out["vram_bytes"] = sum(int(m.get("size_vram") or 0) for m in models)
        elif kind == "tfserving":
            st = json.loads(get(url))
            vs = st.get("model_version_status") or []
            out["versions"] = [{"version": v.get("version"), "state": v.get("state")} for v in vs]
            out["available"] = any(v.get("state") == "AVAILABLE" for v in vs)
        out["up"] = True
    except (OSError, ValueError, urllib.error.URLError) as e:
        out["up"] = False
        out["error"] = str(e)[:200]
    return out


class Agent:
    def __init__(self, servers, cache_ms):
        self.servers = servers
        self.cache_s = cache_ms / 1000.0
        self.lock = threading.Lock()
        self.at = 0.0
        self.snap = None

    def status(self):
        with self.lock:
            now = time.monotonic()
            if self.snap is None or now - self.at >= self.cache_s:
                gpus, err = read_gpus()
                self.snap = {"gpus": gpus, "gpu_error": err,
                             "servers": [read_server(*s) for s in self.servers],
                             "time": time.time()}
                self.at = now
            return self.snap


def prometheus(st):
    lines = []

    def metric(name, help_, typ, samples):
        lines.append("# HELP %s %s" % (name, help_))
        lines.append("# TYPE %s %s" % (name, typ))
        for labels, v in samples:
            if v is None:
                continue
            lab = ",".join('%s="%s"' % (k, str(x).replace("\\", "\\\\").replace('"', '\\"'))
                           for k, x in labels.items())
            lines.append("%s%s %s" % (name, "{%s}" % lab if lab else "", repr(float(v))))
    g = st["gpus"]
    metric("gpu_agent_gpu_memory_used_bytes", "GPU memory in use.", "gauge",
           [({"gpu": x["index"]}, x["memory_used_mib"] * 1048576) for x in g])
    metric("gpu_agent_gpu_memory_total_bytes", "GPU memory.", "gauge",
           [({"gpu": x["index"]}, x["memory_total_mib"] * 1048576) for x in g])
    metric("gpu_agent_gpu_utilization_ratio", "GPU utilisation, 0..1.", "gauge",
           [({"gpu": x["index"]}, x["utilization_pct"] / 100) for x in g])
    metric("gpu_agent_gpu_available", "1 when nvidia-smi answered.", "gauge",
           [({}, 0 if st["gpu_error"] else 1)])
    s = st["servers"]
    metric("gpu_agent_server_up", "1 when the server answered.", "gauge",
           [({"server": x["name"]}, 1 if x["up"] else 0) for x in s])
    metric("gpu_agent_server_waiting", "Requests queued in the server (vLLM).", "gauge",
           [({"server": x["name"]}, x.get("waiting")) for x in s])
    metric("gpu_agent_server_running", "Requests running in the server (vLLM).", "gauge",
           [({"server": x["name"]}, x.get("running")) for x in s])
    metric("gpu_agent_server_vram_bytes", "VRAM of the models loaded (Ollama).", "gauge",
           [({"server": x["name"]}, x.get("vram_bytes")) for x in s])
    return "\n".join(lines) + "\n"


def handler_for(agent):
    class H(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            pass

        def reply(self, code, ctype, body):
            b = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(b)))
            self.end_headers()
            self.wfile.write(b)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/status":
                self.reply(200, "application/json", json.dumps(agent.status()) + "\n")
            elif path == "/metrics":
                self.reply(200, "text/plain; version=0.0.4", prometheus(agent.status()))
            elif path == "/healthz":
                self.reply(200, "application/json", '{"status":"ok"}\n')
            else:
                self.reply(404, "application/json",
                           '{"error":{"message":"no such path","type":"invalid_request_error",'
                           '"param":null,"code":"not_found"}}\n')
    return H


def parse_server(spec):
    name, sep, rest = spec.partition("=")
    kind, sep2, url = rest.partition(":")
    if not sep or not sep2 or kind not in ("vllm", "ollama", "tfserving") or not name:
        raise argparse.ArgumentTypeError("want NAME=KIND:URL with KIND vllm, ollama or tfserving")
    return name, kind, url


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:9400")
    ap.add_argument("--cache-ms", type=int, default=1000)
    ap.add_argument("--server", type=parse_server, action="append", default=[])
    ap.add_argument("--port-file", help="write the bound port here once listening")
    a = ap.parse_args(argv)
    host, _, port = a.listen.rpartition(":")
    srv = ThreadingHTTPServer((host or "127.0.0.1", int(port)), handler_for(Agent(a.server,
                                                                                  a.cache_ms)))
    if a.port_file:
        with open(a.port_file, "w") as f:
            f.write(str(srv.server_address[1]))
    gpus, err = read_gpus()
    print("gpu_agent: listening on %s:%d; %s" % (srv.server_address[0], srv.server_address[1],
          err or "%d GPU(s)" % len(gpus)), file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
