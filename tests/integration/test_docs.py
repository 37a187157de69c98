"""The README tells the truth: its config table is the one sluice prints, and
every metric it names is on /metrics."""

import os
import re
import subprocess
import unittest

from harness import SLUICE, SluiceTest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def readme():
    with open(os.path.join(ROOT, "README.md")) as f:
        return f.read()


class DocsTest(SluiceTest):
    def test_config_table_matches_the_binary(self):
        table = subprocess.run([SLUICE, "--help-config", "--markdown"], check=True,
                               capture_output=True, text=True).stdout.strip()
        self.assertIn(table, readme(), "README config table differs from sluice --help-config")

    def test_design_config_keys_exist(self):
        table = subprocess.run([SLUICE, "--help-config"], check=True, capture_output=True,
                               text=True).stdout
        for key in ("listen", "tls_listen", "tls_cert", "tls_key", "admin_listen",
                    "control_socket", "state_dir", "workers", "url", "kind", "enabled",
                    "key_sha256"):
            self.assertRegex(table, r"\b%s\b" % key)

    def test_metric_names_in_readme_are_served(self):
        self.chat(headers={"X-Sim-Tokens": "2"})
        served = {k.split("{")[0] for k in self.sluice.metrics()}
        served |= {re.sub(r"_(bucket|sum|count)$", "", n) for n in served}
        section = readme().split("## Metrics", 1)[1].split("\n## ", 1)[0]
        named = set(re.findall(r"`(sluice_[a-z0-9_]+)", section))
        self.assertTrue(named)
        self.assertEqual(sorted(named - served), [])


if __name__ == "__main__":
    unittest.main()
