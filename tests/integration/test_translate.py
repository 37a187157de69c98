"""Backends of other kinds than OpenAI's: an Ollama backend behind the
OpenAI API (requests rebuilt for /api/chat and /api/generate, NDJSON turned
into OpenAI chunks and bodies), Ollama-native routes relayed line by line,
TensorFlow Serving's :predict behind the OpenAI API, failover and
continuation across kinds, and the GPU group failover prefers to leave.

The llmsims here run with --api ollama or --api tfserving, which answer 404
on every OpenAI route: a 200 proves sluice translated."""

import json
import unittest

from harness import Conn, ctl, free_port, request, sse_events, tokens_of, wait_for
from test_backends import MultiBackendTest, expected


def post(port, path, body, headers=None):
    c = Conn(port)
    try:
        return c.request("POST", path, json.dumps(body), headers)
    finally:
        c.close()


def chat_req(model, stream=True, **extra):
    return dict({"model": model, "messages": [{"role": "user", "content": "hi"}],
                 "stream": stream}, **extra)


def datas(body):
    """The data of each event, parsed (the [DONE] one as the string)."""
    out = []
    for ev in sse_events(body):
        for d in ev.get("data", []):
            out.append(d if d == "[DONE]" else json.loads(d))
    return out


SIM = ("--ttft-ms", "5", "--itl-ms", "3", "--tokens", "6")


class OllamaTest(MultiBackendTest):
    sims = {"o": ("--api", "ollama", "--model", "llama3.2", *SIM)}
    backends = {"o": {"kind": "ollama"}}
    conf = {"upstream": {"health_interval": "200ms"}}

    def test_chat_stream_becomes_openai_chunks(self):
        n0 = self.requests_of("o")
        r = post(self.sluice.port, "/v1/chat/completions",
                 chat_req("llama3.2", stream_options={"include_usage": True}))
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(r.header("content-type").startswith("text/event-stream"))
        self.assertEqual(self.requests_of("o") - n0, 1)
        evs = sse_events(r.body)
        ids = [e["id"][0] for e in evs]
        sid = ids[0].split(":")[0]
        self.assertEqual(ids, ["%s:%d" % (sid, i + 1) for i in range(len(ids))])
        d = datas(r.body)
        self.assertEqual(d[-1], "[DONE]")
        chunks = d[:-1]
        self.assertTrue(all(c["id"] == "chatcmpl-" + sid for c in chunks))
        self.assertTrue(all(c["object"] == "chat.completion.chunk" for c in chunks))
        self.assertTrue(all(c["model"] == "llama3.2" for c in chunks))
        self.assertEqual(chunks[0]["choices"][0]["delta"], {"role": "assistant", "content": ""})
        self.assertEqual(tokens_of(evs), expected(6))
        self.assertEqual(chunks[-2]["choices"][0]["finish_reason"], "stop")
        self.assertEqual(chunks[-1]["choices"], [])
        u = chunks[-1]["usage"]
        self.assertEqual(u["completion_tokens"], 6)
        self.assertEqual(u["total_tokens"], u["prompt_tokens"] + 6)

    def test_usage_chunk_only_when_asked(self):
        r = post(self.sluice.port, "/v1/chat/completions", chat_req("llama3.2"))
        self.assertEqual(r.status, 200, r.body)
        self.assertFalse(any(isinstance(c, dict) and "usage" in c for c in datas(r.body)))

    def test_max_tokens_is_num_predict(self):
        r = post(self.sluice.port, "/v1/chat/completions", chat_req("llama3.2", max_tokens=3))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(tokens_of(sse_events(r.body)), expected(3))
        self.assertEqual(datas(r.body)[-2]["choices"][0]["finish_reason"], "length")

    def test_whole_chat_and_completion(self):
        r = post(self.sluice.port, "/v1/chat/completions", chat_req("llama3.2", stream=False))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.header("content-type"), "application/json")
        b = r.json()
        self.assertEqual(b["object"], "chat.completion")
        self.assertEqual(b["choices"][0]["message"],
                         {"role": "assistant", "content": "".join(expected(6))})
        self.assertEqual(b["choices"][0]["finish_reason"], "stop")
        self.assertEqual(b["usage"]["completion_tokens"], 6)
        r = post(self.sluice.port, "/v1/completions",
                 {"model": "llama3.2", "prompt": "once upon", "max_tokens": 4})
        self.assertEqual(r.status, 200, r.body)
        b = r.json()
        self.assertEqual(b["object"], "text_completion")
        self.assertEqual(b["choices"][0]["text"], "".join(expected(4)))
        self.assertEqual(b["choices"][0]["finish_reason"], "length")

    def test_completion_stream(self):
        r = post(self.sluice.port, "/v1/completions",
                 {"model": "llama3.2", "prompt": "once", "stream": True})
        self.assertEqual(r.status, 200, r.body)
        d = datas(r.body)
        self.assertTrue(all(c["object"] == "text_completion" for c in d[:-1]))
        self.assertEqual(tokens_of(sse_events(r.body)), expected(6))

    def test_native_routes_are_relayed_line_by_line(self):
        t0 = self.metric("sluice_tokens_total")
        chunks = []
        c = Conn(self.sluice.port)
        try:
            c.send(("POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\n\r\n" % len(json.dumps(chat_req("llama3.2", stream=None))))
                   .encode() + json.dumps(chat_req("llama3.2", stream=None)).encode())
            r = c.read_response(on_chunk=chunks.append)
        finally:
            c.close()
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.header("content-type"), "application/x-ndjson")
        # one chunk per line, each a whole JSON line
        self.assertTrue(all(ch.endswith(b"\n") and ch.count(b"\n") == 1 for ch in chunks), chunks)
        lines = [json.loads(x) for x in r.body.decode().splitlines()]
        self.assertEqual([x["message"]["content"] for x in lines[:-1]], expected(6))
        self.assertTrue(lines[-1]["done"])
        self.assertEqual(lines[-1]["eval_count"], 6)
        wait_for(lambda: self.metric("sluice_tokens_total") >= t0 + 6, what="tokens counted")
        r = post(self.sluice.port, "/api/generate",
                 {"model": "llama3.2", "prompt": "x", "stream": False})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["response"], "".join(expected(6)))

    def test_native_route_refuses_bad_bodies(self):
        r = post(self.sluice.port, "/api/chat", {"messages": []})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json()["error"]["code"], "missing_field")
        r = post(self.sluice.port, "/api/generate", {"model": "llama3.2", "prompt": 5})
        self.assertEqual(r.status, 400)

    def test_backend_error_becomes_openai_error(self):
        # A model sluice believes the backend serves (discovery aside) but
        # it does not: Ollama's 404 with its words, in OpenAI's shape.
        r = post(self.sluice.port, "/v1/chat/completions", chat_req("llama3.2"),
                 {"X-Sim-Fault": "status:400"})
        self.assertEqual(r.status, 400, r.body)
        err = r.json()["error"]
        self.assertIn("llmsim injected fault: status 400", err["message"])
        self.assertEqual(err["type"], "invalid_request_error")

    def test_failure_mid_stream_is_an_error_event(self):
        r = post(self.sluice.port, "/v1/chat/completions", chat_req("llama3.2"),
                 {"X-Sim-Fault": "close_after:2"})
        self.assertEqual(r.status, 200, r.body)
        evs = sse_events(r.body)
        self.assertEqual(tokens_of(evs), expected(2))
        self.assertEqual(evs[-1]["event"], ["error"])

    def test_models_discovered_from_api_tags(self):
        def listed():
            st, _, body = request("127.0.0.1", self.sluice.port, "GET", "/v1/models")
            return st == 200 and [m["id"] for m in json.loads(body)["data"]] == ["llama3.2"]
        wait_for(listed, what="llama3.2 listed from /api/tags")
        post(self.sluice.port, "/v1/chat/completions", chat_req("llama3.2", stream=False))

        def loaded():
            rc, out, _ = ctl(self.sluice, "--json", "backends")
            b = json.loads(out)["backends"][0]
            return b.get("loaded") == "llama3.2" and b["kind"] == "ollama"
        wait_for(loaded, what="/api/ps read")


class TfServingTest(MultiBackendTest):
    sims = {"t": ("--api", "tfserving", "--model", "t5", *SIM),
            "n": ("--api", "tfserving", "--model", "gen", *SIM),
            "d": ("--api", "tfserving", "--model", "doomed", *SIM)}
    backends = {"t": {"kind": "tfserving-rest", "models": "t5"},
                "n": {"kind": "tfserving-rest", "models": "writer", "tf_model": "gen",
                      "tf_input": "text", "tf_signature": "serving_default"},
                "d": {"kind": "tfserving-rest", "models": "doomed"}}
    conf = {"upstream": {"health_interval": "200ms"}}

    def test_whole_answer_as_one_body(self):
        r = post(self.sluice.port, "/v1/chat/completions", chat_req("t5", stream=False))
        self.assertEqual(r.status, 200, r.body)
        b = r.json()
        self.assertEqual(b["object"], "chat.completion")
        self.assertEqual(b["choices"][0]["message"]["content"], "".join(expected(6)))
        self.assertNotIn("usage", b)  # TF Serving counts no tokens: none made up

    def test_stream_gets_one_content_event(self):
        r = post(self.sluice.port, "/v1/chat/completions", chat_req("t5"))
        self.assertEqual(r.status, 200, r.body)
        d = datas(r.body)
        self.assertEqual(d[0]["choices"][0]["delta"], {"role": "assistant", "content": ""})
        self.assertEqual(tokens_of(sse_events(r.body)), ["".join(expected(6))])
        self.assertEqual(d[-2]["choices"][0]["finish_reason"], "stop")
        self.assertEqual(d[-1], "[DONE]")

    def test_named_input_model_and_signature(self):
        n0 = self.requests_of("n")
        r = post(self.sluice.port, "/v1/completions", {"model": "writer", "prompt": "go"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["choices"][0]["text"], "".join(expected(6)))
        self.assertEqual(self.requests_of("n") - n0, 1)

    def test_tf_error_and_unknown_model(self):
        r = post(self.sluice.port, "/v1/chat/completions", chat_req("t5", stream=False),
                 {"X-Sim-Fault": "status:500"})
        self.assertEqual(r.status, 502, r.body)
        self.assertIn("llmsim injected fault", r.json()["error"]["message"])
        r = post(self.sluice.port, "/v1/completions", {"model": "nope", "prompt": "x"})
        self.assertEqual(r.status, 404)

    def test_health_reads_model_status(self):
        rc, out, _ = ctl(self.sluice, "--json", "backends")
        self.assertTrue(all(b["up"] for b in json.loads(out)["backends"]))
        self.sim["d"].stop()
        wait_for(lambda: not json.loads(ctl(self.sluice, "--json", "backends")[1])
                 ["backends"][2]["up"], timeout=15, what="d marked down")


class CrossKindTest(MultiBackendTest):
    """One model on an OpenAI backend that fails and on an Ollama one: the
    request moves between kinds, before its first byte and in mid-answer."""

    sims = {"v": ("--model", "m", "--fault", "close_after:3", *SIM),
            "o": ("--api", "ollama", "--model", "m", *SIM)}
    backends = {"v": {"models": "m", "priority": "0"},
                "o": {"kind": "ollama", "models": "m", "priority": "1"}}
    conf = {"upstream": {"continue_streams": "true", "eject_after": "0",
                         "health_interval": "0"}}

    def test_continues_on_ollama_without_gap_or_repeat(self):
        r = post(self.sluice.port, "/v1/chat/completions", chat_req("m"))
        self.assertEqual(r.status, 200, r.body)
        evs = sse_events(r.body)
        self.assertEqual(tokens_of(evs), expected(6))
        self.assertNotIn(["error"], [e.get("event") for e in evs])
        self.assertEqual(datas(r.body)[-1], "[DONE]")



class CrossKindFailoverTest(MultiBackendTest):
    """The OpenAI backend is not there: the request goes to the Ollama one,
    rebuilt for it, and the client sees nothing of the move."""

    sims = {"o": ("--api", "ollama", "--model", "m", *SIM)}
    backends = {"v": {"models": "m", "priority": "0", "url": "http://127.0.0.1:%d" % free_port()},
                "o": {"kind": "ollama", "models": "m", "priority": "1"}}
    conf = {"upstream": {"eject_after": "0", "health_interval": "0"}}

    def test_failover_before_first_byte_to_ollama(self):
        for stream in (False, True):
            r = post(self.sluice.port, "/v1/chat/completions", chat_req("m", stream=stream))
            self.assertEqual(r.status, 200, r.body)
            if stream:
                self.assertEqual(tokens_of(sse_events(r.body)), expected(6))
            else:
                self.assertEqual(r.json()["choices"][0]["message"]["content"],
                                 "".join(expected(6)))
        self.assertGreaterEqual(self.metric('sluice_backend_failovers_total{backend="v"}'), 1)


class GroupTest(MultiBackendTest):
    """Failover leaves the failed backend's GPU group first."""

    sims = {"a": ("--fault", "status:503", *SIM), "b": SIM, "c": SIM}
    backends = {"a": {"group": "gpu0", "priority": "0"},
                "b": {"group": "gpu0", "priority": "1"},
                "c": {"group": "gpu1", "priority": "1", "weight": "1"}}
    conf = {"upstream": {"eject_after": "0", "health_interval": "0", "retries": "1"}}
    workers = 1

    def test_another_gpu_first(self):
        b0, c0 = self.requests_of("b"), self.requests_of("c")
        for _ in range(6):
            r = post(self.sluice.port, "/v1/chat/completions", chat_req("llmsim-1"))
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(tokens_of(sse_events(r.body)), expected(6))
        self.assertEqual((self.requests_of("b") - b0, self.requests_of("c") - c0), (0, 6))
        rc, out, _ = ctl(self.sluice, "backends")
        self.assertIn("gpu0", out)


if __name__ == "__main__":
    unittest.main()
