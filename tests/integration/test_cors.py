"""CORS: preflights answered at the edge, answers readable only by allowed
origins, over HTTP/1.1 and HTTP/2; nothing changes with CORS off."""

import json
import subprocess
import unittest

from harness import (CHAT, Conn, SluiceTest, chat_body, set_rollout, sse_events, tokens_of)


APP = "https://app.example.com"


def call(sluice, method, path, headers, body=None):
    c = Conn(sluice.port)
    try:
        return c.request(method, path, body, headers)
    finally:
        c.close()


class CorsTest(SluiceTest):
    workers = 1
    sim_args = ("--ttft-ms", "1", "--itl-ms", "1", "--tokens", "3")
    sluice_conf = {"cors": {"allow_origins": APP + ", http://localhost:3000",
                            "max_age": "120s"}}

    def preflight(self, origin, method="POST", headers="authorization, content-type"):
        h = {"Origin": origin, "Access-Control-Request-Method": method}
        if headers:
            h["Access-Control-Request-Headers"] = headers
        return call(self.sluice, "OPTIONS", CHAT, h)

    def test_preflight_allowed(self):
        m0 = self.sluice.metrics()
        r = self.preflight(APP)
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("access-control-allow-origin"), APP)
        self.assertIn("POST", r.header("access-control-allow-methods"))
        self.assertIn("Authorization", r.header("access-control-allow-headers"))
        self.assertEqual(r.header("access-control-max-age"), "120")
        self.assertIn("Origin", r.header("vary"))
        self.assertIsNone(r.header("content-length"))
        self.assertEqual(r.body, b"")
        m = self.sluice.metrics()
        self.assertEqual(m['sluice_requests_total{code="204"}'] -
                         m0['sluice_requests_total{code="204"}'], 1)

    def test_preflight_refused(self):
        for r in (self.preflight("https://evil.example"),
                  self.preflight(APP, method="DELETE"),
                  self.preflight(APP, headers="x-secret")):
            self.assertEqual(r.status, 403)
            e = r.json()["error"]
            self.assertEqual(e["code"], "cors_forbidden")
        r = self.preflight("https://evil.example")
        self.assertIsNone(r.header("access-control-allow-origin"))

    def test_answers_carry_the_origin_only_when_allowed(self):
        r = call(self.sluice, "POST", CHAT, {"Origin": APP, "X-Sim-Tokens": "2"}, chat_body())
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("access-control-allow-origin"), APP)
        self.assertIn("X-Request-Id", r.header("access-control-expose-headers"))
        self.assertEqual(tokens_of(sse_events(r.body)), [" w0", " w1"])
        # local answers too (an error)
        r = call(self.sluice, "POST", CHAT, {"Origin": APP}, "{bad")
        self.assertEqual(r.status, 400)
        self.assertEqual(r.header("access-control-allow-origin"), APP)
        # another origin: served, but the browser may not read it
        r = call(self.sluice, "POST", CHAT, {"Origin": "https://evil.example"}, chat_body())
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("access-control-allow-origin"))
        # an Origin that is not one origin is never echoed
        r = call(self.sluice, "POST", CHAT, {"Origin": APP + ", " + APP}, chat_body())
        self.assertIsNone(r.header("access-control-allow-origin"))

    def test_preflight_over_http2(self):
        set_rollout(self.sluice, "http2_transport", 100)
        p = subprocess.run(["curl", "-sS", "-D", "-", "--http2-prior-knowledge", "-X", "OPTIONS",
                            "-H", "Origin: " + APP, "-H", "Access-Control-Request-Method: POST",
                            "http://127.0.0.1:%d%s" % (self.sluice.port, CHAT)],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith("HTTP/2 204"), p.stdout)
        self.assertIn("access-control-allow-origin: " + APP, p.stdout.lower().replace(
            APP.lower(), APP))


class CorsOffTest(SluiceTest):
    workers = 1
    sim_args = ("--ttft-ms", "1", "--itl-ms", "1", "--tokens", "1")

    def test_no_cors_headers_and_options_is_405(self):
        r = call(self.sluice, "POST", CHAT, {"Origin": APP}, chat_body())
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("access-control-allow-origin"))
        r = call(self.sluice, "OPTIONS", CHAT, {"Origin": APP,
                                                 "Access-Control-Request-Method": "POST"})
        self.assertEqual(r.status, 405)
        self.assertEqual(json.loads(r.body)["error"]["code"], "method_not_allowed")


if __name__ == "__main__":
    unittest.main()
