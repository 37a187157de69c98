"""Many streams at once, checked by the load client and by curl."""

import json
import shutil
import subprocess
import unittest

from harness import CHAT, LLMLOAD, SluiceTest, chat_body, sse_events, tokens_of


class LoadTest(SluiceTest):
    sim_args = ("--ttft-ms", "5", "--itl-ms", "5", "--tokens", "30", "--max-batch", "10000")

    def llmload(self, *args):
        out = subprocess.run(
            [LLMLOAD, *args, "--json", "-", "http://127.0.0.1:%d%s" % (self.sluice.port, CHAT)],
            capture_output=True, text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stderr[-3000:])
        return json.loads(out.stdout)

    def test_every_token_once_in_order_under_load(self):
        before = self.sluice.metrics()
        r = self.llmload("-c", "200", "-n", "1000", "--verify", "--expect-tokens", "30",
                         "--fail-on-error")
        self.assertEqual((r["completed"], r["failed"], r["verify_errors"]), (1000, 0, 0))
        self.assertEqual(r["tokens"], 30000)
        after = self.sluice.metrics()
        self.assertEqual(after["sluice_tokens_total"] - before["sluice_tokens_total"], 30000)
        self.assertEqual(after['sluice_requests_total{code="200"}']
                         - before['sluice_requests_total{code="200"}'], 1000)
        self.assertEqual(after["sluice_streams_active"], 0)

    def test_streams_held_at_once(self):
        r = self.llmload("-c", "2000", "--once", "--verify", "--fail-on-error",
                         "-H", "X-Sim-ITL-Ms: 50", "-H", "X-Sim-Tokens: 20")
        self.assertEqual((r["completed"], r["failed"], r["verify_errors"]), (2000, 0, 0))
        self.assertGreaterEqual(r["peak_streams"], 1500)

    @unittest.skipUnless(shutil.which("curl"), "curl not installed")
    def test_curl_stream(self):
        out = subprocess.run(
            ["curl", "-sN", "--http1.1", "-H", "X-Sim-Tokens: 12",
             "http://127.0.0.1:%d%s" % (self.sluice.port, CHAT), "-d", chat_body()],
            capture_output=True, timeout=60, check=True).stdout
        events = sse_events(out)
        self.assertEqual(tokens_of(events), [" w%d" % i for i in range(12)])
        seqs = [int(ev["id"][0].split(":")[1]) for ev in events]
        self.assertEqual(seqs, sorted(set(seqs)))


class BatchedWaitLoadTest(LoadTest):
    """The same load with batch_wait_us on: a busy worker's waits ask the
    kernel for many completions at once (its own io_uring_enter path), and
    still no token may be lost, reordered or stalled."""

    sluice_conf = {"server": {"batch_wait_us": "500"}}

    def test_worker_says_whether_batching_is_on(self):
        ready = [l for l in self.sluice.output().splitlines() if "ready: ring" in l]
        self.assertEqual(len(ready), self.workers, self.sluice.output()[-2000:])
        with open("/proc/sys/kernel/osrelease") as f:
            major, minor = (int(x) for x in f.read().split(".")[:2])
        # IORING_FEAT_MIN_TIMEOUT arrived in Linux 6.12.
        want = "up to 500 us" if (major, minor) >= (6, 12) else "off (kernel)"
        for line in ready:
            self.assertIn("batched waits " + want, line)


if __name__ == "__main__":
    unittest.main()
