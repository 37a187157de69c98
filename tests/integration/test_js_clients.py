"""The official npm clients against sluice's Ollama translation: the `ollama`
JS client through sluice's native /api/chat and /api/generate relay must get
exactly what it gets from the backend directly, and the `openai` JS client
through /v1 on a `kind = ollama` backend must get a well-formed OpenAI answer
(tokens in order, role, finish_reason, usage), streaming or not.

tests/js/clients.mjs makes the calls and prints what the clients returned;
this file asserts.  It needs node and tests/js/node_modules (tests/run.sh
runs `npm ci` there); without them every test here is skipped, saying why.
"""

import json
import os
import shutil
import subprocess
import unittest

from harness import Llmsim, Sluice, check_exit, wait_for

JS_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "js"))
SCRIPT = os.path.join(JS_DIR, "clients.mjs")
NODE = os.environ.get("NODE", "node")
MODEL = "llama3.2"
N = 6


def words(n):
    return [" w%d" % i for i in range(n)]


def js_missing():
    """Why the JS clients cannot run here, or None."""
    if shutil.which(NODE) is None:
        return "`%s` not found (tests/run.sh installs Debian's nodejs and npm)" % NODE
    # npm writes node_modules/.package-lock.json when an install completes.
    for f in (".package-lock.json", "ollama/package.json", "openai/package.json"):
        if not os.path.isfile(os.path.join(JS_DIR, "node_modules", f)):
            return ("%s/node_modules/%s is absent: run `cd tests/js && npm ci` "
                    "(needs the npm registry)" % (JS_DIR, f))
    return None


class JsClientsTest(unittest.TestCase):
    """One llmsim (Ollama 0.5), one sluice with it as `kind = ollama`, one run
    of clients.mjs; each test checks a part of its output."""

    @classmethod
    def setUpClass(cls):
        why = js_missing()
        if why:
            raise unittest.SkipTest("JS client test skipped: " + why)
        cls.sim = Llmsim("--api", "ollama", "--model", MODEL, "--tokens", str(N),
                         "--itl-ms", "2", "--ttft-ms", "5")
        try:
            cls.sluice = Sluice(None, {"backend o": {
                "url": "http://127.0.0.1:%d" % cls.sim.port, "kind": "ollama"}}, 2)
        except Exception:
            cls.sim.stop()
            raise
        try:
            cls.tokens_before = cls.sluice.metrics().get("sluice_tokens_total", 0)
            args = {"sluice": "http://127.0.0.1:%d" % cls.sluice.port,
                    "llmsim": "http://127.0.0.1:%d" % cls.sim.port,
                    "model": MODEL}
            p = subprocess.run([NODE, SCRIPT, json.dumps(args)], capture_output=True,
                               text=True, timeout=60, cwd=JS_DIR)
            if p.returncode != 0:
                raise AssertionError("clients.mjs exited with %d:\n%s\n%s\nsluice log:\n%s" % (
                    p.returncode, p.stdout[-4000:], p.stderr[-8000:],
                    cls.sluice.output()[-4000:]))
            cls.out = json.loads(p.stdout)
            # Workers count into shared memory as they relay; a short wait
            # covers a count that lands just after the client saw the end.
            try:
                wait_for(lambda: cls.sluice.metrics().get("sluice_tokens_total", 0)
                         > cls.tokens_before, 5, "sluice_tokens_total to grow")
            except AssertionError:
                pass  # test_sluice_counted_the_tokens reports it
            cls.tokens_after = cls.sluice.metrics().get("sluice_tokens_total", 0)
        except BaseException:
            cls._stop()
            raise

    @classmethod
    def _stop(cls):
        rc = cls.sluice.stop()
        cls.sim.stop()
        return rc

    @classmethod
    def tearDownClass(cls):
        rc = cls._stop()
        check_exit(cls.sluice, rc)

    # --- the ollama client: through sluice == straight from the backend ---

    def test_ollama_client_direct_is_the_reference(self):
        d = self.out["ollama_direct"]
        for call in ("chat_stream", "generate_stream"):
            self.assertEqual(d[call]["tokens"], words(N), call)
        self.assertEqual(d["chat"]["content"], "".join(words(N)))
        self.assertEqual(d["generate"]["response"], "".join(words(N)))
        for call in ("chat_stream", "chat", "generate_stream", "generate"):
            self.assertEqual((d[call]["done"], d[call]["done_reason"], d[call]["eval_count"]),
                             (True, "stop", N), call)
            self.assertGreaterEqual(d[call]["prompt_eval_count"], 1, call)

    def test_ollama_client_through_sluice_matches_direct(self):
        d, s = self.out["ollama_direct"], self.out["ollama_sluice"]
        self.assertEqual(set(s), {"chat_stream", "chat", "generate_stream", "generate"})
        for call in ("chat_stream", "chat", "generate_stream", "generate"):
            for field in ("done", "done_reason", "eval_count", "prompt_eval_count"):
                self.assertEqual(s[call][field], d[call][field],
                                 "%s: %s through sluice vs direct" % (call, field))

    def test_ollama_client_streams_same_tokens(self):
        d, s = self.out["ollama_direct"], self.out["ollama_sluice"]
        for call in ("chat_stream", "generate_stream"):
            self.assertEqual(s[call]["tokens"], d[call]["tokens"], call)
            self.assertEqual(s[call]["lines"], d[call]["lines"], call)
            self.assertEqual(s[call]["model"], d[call]["model"], call)
        self.assertEqual(s["chat_stream"]["roles"], d["chat_stream"]["roles"])
        self.assertEqual(s["chat_stream"]["final_content"], d["chat_stream"]["final_content"])
        self.assertEqual(s["generate_stream"]["final_response"],
                         d["generate_stream"]["final_response"])
        self.assertEqual(s["generate_stream"]["context"], d["generate_stream"]["context"])

    def test_ollama_client_non_streaming_same_answer(self):
        d, s = self.out["ollama_direct"], self.out["ollama_sluice"]
        for k in ("content", "role", "model"):
            self.assertEqual(s["chat"][k], d["chat"][k], "chat " + k)
        for k in ("response", "model", "context"):
            self.assertEqual(s["generate"][k], d["generate"][k], "generate " + k)

    # --- the openai client: OpenAI on top of an Ollama backend ---

    def assertUsage(self, usage, what):
        self.assertIsNotNone(usage, what + ": no usage")
        self.assertEqual(usage["completion_tokens"], N, what)
        # The prompt's size as the backend counted it (prompt_eval_count).
        self.assertGreaterEqual(usage["prompt_tokens"], 1, what)
        self.assertEqual(usage["total_tokens"], usage["prompt_tokens"] + N, what)

    def test_openai_chat_stream(self):
        c = self.out["openai"]["chat_stream"]
        self.assertEqual(c["tokens"], words(N))
        self.assertEqual(c["roles"], ["assistant"])
        self.assertEqual(c["finish_reasons"], ["stop"])
        self.assertEqual(c["objects"], ["chat.completion.chunk"])
        self.assertEqual(c["ids"], 1, "every chunk of one stream carries the same id")
        self.assertUsage(c["usage"], "chat stream (include_usage)")
        self.assertEqual(c["usage"]["prompt_tokens"],
                         self.out["ollama_direct"]["chat"]["prompt_eval_count"])

    def test_openai_chat(self):
        c = self.out["openai"]["chat"]
        self.assertEqual((c["object"], c["choices"], c["role"], c["content"], c["finish_reason"]),
                         ("chat.completion", 1, "assistant", "".join(words(N)), "stop"))
        self.assertEqual(c["model"], MODEL)
        self.assertUsage(c["usage"], "chat")

    def test_openai_completions_stream(self):
        c = self.out["openai"]["completions_stream"]
        self.assertEqual(c["tokens"], words(N))
        self.assertEqual(c["finish_reasons"], ["stop"])
        self.assertEqual(c["objects"], ["text_completion"])
        self.assertUsage(c["usage"], "completions stream (include_usage)")
        self.assertEqual(c["usage"]["prompt_tokens"],
                         self.out["ollama_direct"]["generate"]["prompt_eval_count"])

    def test_openai_completions(self):
        c = self.out["openai"]["completions"]
        self.assertEqual((c["object"], c["choices"], c["text"], c["finish_reason"]),
                         ("text_completion", 1, "".join(words(N)), "stop"))
        self.assertEqual(c["model"], MODEL)
        self.assertUsage(c["usage"], "completions")

    def test_openai_max_tokens_stream_ends_with_length(self):
        c = self.out["openai"]["chat_stream_max3"]
        self.assertEqual(c["tokens"], words(3))
        self.assertEqual(c["roles"], ["assistant"])
        self.assertEqual(c["finish_reasons"], ["length"])
        self.assertIsNone(c["usage"], "no usage chunk without stream_options.include_usage")

    def test_sluice_counted_the_tokens(self):
        self.assertGreater(self.tokens_after, self.tokens_before,
                           "sluice_tokens_total did not grow (%s -> %s)"
                           % (self.tokens_before, self.tokens_after))


if __name__ == "__main__":
    unittest.main()
