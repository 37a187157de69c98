"""The GPU-host agent (python/gpu_agent.py) against llmsim (as vLLM) and a
fake nvidia-smi on PATH; and without one."""

import json
import os
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

from harness import Llmsim, free_port, wait_for

AGENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python",
                     "gpu_agent.py")
FAKE_SMI = """#!/bin/sh
# what nvidia-smi --query-gpu=... --format=csv,noheader,nounits prints
case "$*" in
  *--query-gpu=index,name,memory.used,memory.total,utilization.gpu*)
    echo "0, NVIDIA H100 80GB HBM3, 61234, 81559, 87"
    echo "1, NVIDIA H100 80GB HBM3, 1024, 81559, 0" ;;
  *) echo "unexpected arguments: $*" >&2; exit 2 ;;
esac
"""


class GpuAgentTest(unittest.TestCase):
    def start(self, path_dirs, *servers):
        port = free_port()
        env = dict(os.environ, PATH=os.pathsep.join(path_dirs))
        argv = [sys.executable, AGENT, "--listen", "127.0.0.1:%d" % port, "--cache-ms", "0"]
        for s in servers:
            argv += ["--server", s]
        p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (p.terminate(), p.wait(10)))
        url = "http://127.0.0.1:%d" % port
        wait_for(lambda: urllib.request.urlopen(url + "/healthz", timeout=1).status == 200, 10,
                 "agent up")
        return url

    def get(self, url):
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()

    def test_gpus_and_a_vllm_queue(self):
        sim = Llmsim("--max-batch", "1", "--ttft-ms", "5", "--itl-ms", "50", "--tokens", "40")
        self.addCleanup(sim.stop)
        d = tempfile.mkdtemp()
        smi = os.path.join(d, "nvidia-smi")
        with open(smi, "w") as f:
            f.write(FAKE_SMI)
        os.chmod(smi, stat.S_IRWXU)
        url = self.start([d, "/usr/bin", "/bin"], "v=vllm:http://127.0.0.1:%d" % sim.port,
                         "gone=ollama:http://127.0.0.1:%d" % free_port())
        # three requests on a one-slot backend: one runs, two wait
        import threading
        from harness import chat_body, request
        ts = [threading.Thread(target=request, args=("127.0.0.1", sim.port, "POST",
                                                     "/v1/chat/completions", chat_body(False)))
              for _ in range(3)]
        for t in ts:
            t.start()
        wait_for(lambda: sim.stats()["waiting"] == 2, 5, "queue at the backend")
        st, body = self.get(url + "/status")
        self.assertEqual(st, 200)
        s = json.loads(body)
        self.assertIsNone(s["gpu_error"])
        self.assertEqual([(g["index"], g["memory_used_mib"], g["memory_total_mib"],
                           g["utilization_pct"]) for g in s["gpus"]],
                         [(0, 61234, 81559, 87), (1, 1024, 81559, 0)])
        v, gone = s["servers"]
        self.assertEqual((v["up"], v["waiting"], v["running"]), (True, 2, 1))
        self.assertFalse(gone["up"])
        self.assertIn("error", gone)
        st, text = self.get(url + "/metrics")
        self.assertIn('gpu_agent_gpu_memory_used_bytes{gpu="0"} %r' % (61234 * 1048576.0), text)
        self.assertIn('gpu_agent_server_waiting{server="v"} 2.0', text)
        self.assertIn('gpu_agent_server_up{server="gone"} 0.0', text)
        for t in ts:
            t.join()

    def test_no_nvidia_smi_is_said_clearly(self):
        url = self.start([tempfile.mkdtemp()])
        st, body = self.get(url + "/status")
        s = json.loads(body)
        self.assertEqual(s["gpus"], [])
        self.assertIn("nvidia-smi not found", s["gpu_error"])
        st, text = self.get(url + "/metrics")
        self.assertIn("gpu_agent_gpu_available 0.0", text)


if __name__ == "__main__":
    unittest.main()
