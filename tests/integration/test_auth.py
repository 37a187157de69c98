"""API keys: [auth] maps a Bearer key (stored as its SHA-256) to a tenant."""

import hashlib
import unittest

from harness import SluiceTest, request, sse_events, tokens_of

KEY = "sk-test-0123456789"


class AuthTest(SluiceTest):
    sluice_conf = {
        "auth": {"enabled": "true"},
        "tenant acme": {"key_sha256": hashlib.sha256(KEY.encode()).hexdigest()},
        "tenant other": {"key_sha256": hashlib.sha256(b"sk-other").hexdigest()},
    }

    def test_missing_or_unknown_key_is_401(self):
        for h in ({}, {"Authorization": "Bearer sk-wrong"}, {"Authorization": "Basic eDp5"},
                  {"Authorization": "Bearer "}, {"Authorization": KEY}):
            r = self.chat(headers=h)
            self.assertEqual(r.status, 401, h)
            err = r.json()["error"]
            self.assertEqual((err["type"], err["code"]), ("authentication_error", "invalid_api_key"))

    def test_known_key_streams_and_is_labelled_by_tenant(self):
        r = self.chat(headers={"Authorization": "Bearer " + KEY, "X-Sim-Tokens": "3"})
        self.assertEqual(r.status, 200)
        self.assertEqual(len(tokens_of(sse_events(r.body))), 3)
        m = self.sluice.metrics()
        self.assertTrue(any(k.startswith('sluice_ttft_seconds_count{tenant="acme"') for k in m))
        r = self.chat(headers={"Authorization": "bearer sk-other", "X-Sim-Tokens": "1"})
        self.assertEqual(r.status, 200)

    def test_healthz_needs_no_key(self):
        st, _, _ = request("127.0.0.1", self.sluice.port, "GET", "/healthz")
        self.assertEqual(st, 200)


if __name__ == "__main__":
    unittest.main()
