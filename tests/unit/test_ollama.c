/* ollama and tfserving: OpenAI requests rebuilt for the backend, answers
 * turned back into OpenAI's shapes, byte for byte. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/api_error.h"
#include "dataplane/ollama.h"
#include "dataplane/tfserving.h"

static json_t *req(bool chat, const char *body)
{
    char *out = NULL, detail[256] = "";
    size_t n;
    int err = ollama_request(chat, body, strlen(body), &out, &n, detail, sizeof detail);
    cr_assert_eq(err, 0, "%s", detail);
    json_t *j = json_loadb(out, n, 0, NULL);
    cr_assert_not_null(j);
    free(out);
    return j;
}

Test(ollama, chat_request_fields)
{
    json_t *j = req(
        true, "{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"be brief\"},"
              "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
              "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,QUJD\"}},"
              "{\"type\":\"text\",\"text\":\"b\"}]}],"
              "\"stream\":true,\"max_tokens\":40,\"max_completion_tokens\":30,"
              "\"temperature\":0.5,\"stop\":\"END\",\"seed\":7,"
              "\"response_format\":{\"type\":\"json_object\"},"
              "\"stream_options\":{\"include_usage\":true},\"n\":1}");
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert_str_eq(
        s, "{\"format\":\"json\",\"messages\":[{\"content\":\"be brief\",\"role\":\"system\"},"
           "{\"content\":\"a\\nb\",\"images\":[\"QUJD\"],\"role\":\"user\"}],\"model\":\"m\","
           "\"options\":{\"num_predict\":30,\"seed\":7,\"stop\":[\"END\"],\"temperature\":0.5},"
           "\"stream\":true}");
    free(s);
    json_decref(j);
}

Test(ollama, completion_request_and_tool_calls)
{
    json_t *j = req(false, "{\"model\":\"m\",\"prompt\":[\"once\"],\"suffix\":\"end\"}");
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert_str_eq(s,
                     "{\"model\":\"m\",\"prompt\":\"once\",\"stream\":false,\"suffix\":\"end\"}");
    free(s);
    json_decref(j);
    j = req(
        true,
        "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"content\":null,"
        "\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
        "\"arguments\":\"{\\\"x\\\":1}\"}}]},{\"role\":\"tool\",\"name\":\"f\",\"content\":\"2\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}");
    s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert_str_eq(
        s, "{\"messages\":[{\"content\":\"\",\"role\":\"assistant\",\"tool_calls\":[{\"function\":"
           "{\"arguments\":{\"x\":1},\"name\":\"f\"}}]},{\"content\":\"2\",\"role\":\"tool\","
           "\"tool_name\":\"f\"}],\"model\":\"m\",\"stream\":false,\"tools\":[{\"function\":"
           "{\"name\":\"f\"},\"type\":\"function\"}]}");
    free(s);
    json_decref(j);
}

Test(ollama, requests_it_cannot_translate)
{
    char *out = NULL, detail[256];
    size_t n;
    const char *img = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                      "\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}}]}]}";
    cr_assert_eq(ollama_request(true, img, strlen(img), &out, &n, detail, sizeof detail),
                 API_ERR_INVALID_FIELD);
    cr_assert(strstr(detail, "data: URL"));
    const char *ids = "{\"model\":\"m\",\"prompt\":[1,2,3]}";
    cr_assert_eq(ollama_request(false, ids, strlen(ids), &out, &n, detail, sizeof detail),
                 API_ERR_INVALID_FIELD);
}

/* Translates lines; returns the events joined. */
static char *run(struct ollama_tr *t, const char *const *lines, size_t nl)
{
    static char joined[16384];
    size_t jl = 0;
    for (size_t i = 0; i < nl; i++) {
        size_t room = ollama_line_room(strlen(lines[i]));
        char *out = malloc(room);
        struct ollama_events ev;
        cr_assert_eq(ollama_line(t, lines[i], strlen(lines[i]), out, room, &ev), 0, "%s", lines[i]);
        for (unsigned k = 0; k < ev.n; k++) {
            memcpy(joined + jl, out + ev.off[k], ev.len[k]);
            jl += ev.len[k];
        }
        free(out);
    }
    joined[jl] = '\0';
    return joined;
}

Test(ollama, chat_stream_becomes_openai_chunks)
{
    struct ollama_tr t;
    ollama_tr_init(&t, true, true, "abc", 1700000000);
    const char *last =
        "{\"model\":\"m\",\"created_at\":\"x\",\"message\":{\"role\":\"assistant\",\"content\":"
        "\"\"},"
        "\"done_reason\":\"length\",\"done\":true,\"prompt_eval_count\":5,\"eval_count\":2}";
    const char *lines[] = {
        "{\"model\":\"m\",\"created_at\":\"x\",\"message\":{\"role\":\"assistant\",\"content\":\" "
        "w0\"},\"done\":false}",
        "{\"model\":\"m\",\"created_at\":\"x\",\"message\":{\"role\":\"assistant\",\"content\":"
        "\"\\\"q\\\"\\n\"},\"done\":false}",
        last,
    };
    const char *P =
        "data: {\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":"
        "1700000000,\"model\":\"m\",\"system_fingerprint\":\"fp_ollama\",\"choices\":[";
    char want[8192];
    snprintf(want, sizeof want,
             "%s{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,"
             "\"finish_reason\":null}]}\n\n"
             "%s{\"index\":0,\"delta\":{\"content\":\" "
             "w0\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
             "%s{\"index\":0,\"delta\":{\"content\":\"\\\"q\\\"\\n\"},\"logprobs\":null,\"finish_"
             "reason\":null}]}\n\n"
             "%s{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"length\"}]}\n\n"
             "%s],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n"
             "data: [DONE]\n\n",
             P, P, P, P, P);
    cr_assert_str_eq(run(&t, lines, 3), want);
    cr_assert(t.done);
    cr_assert_eq(t.completion_tokens, 2);
}

Test(ollama, generate_stream_and_tool_calls)
{
    struct ollama_tr t;
    ollama_tr_init(&t, false, false, "s1", 5);
    const char *g[] = {"{\"model\":\"m\",\"response\":\"hi\",\"done\":false}",
                       "{\"model\":\"m\",\"response\":\"\",\"done\":true,\"done_reason\":\"stop\","
                       "\"eval_count\":1}"};
    cr_assert_str_eq(
        run(&t, g, 2),
        "data: {\"id\":\"cmpl-s1\",\"object\":\"text_completion\",\"created\":5,\"model\":\"m\","
        "\"system_fingerprint\":\"fp_ollama\",\"choices\":[{\"index\":0,\"text\":\"hi\","
        "\"logprobs\":null,"
        "\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"cmpl-s1\",\"object\":\"text_completion\",\"created\":5,\"model\":\"m\","
        "\"system_fingerprint\":\"fp_ollama\",\"choices\":[{\"index\":0,\"text\":\"\",\"logprobs\":"
        "null,"
        "\"finish_reason\":\"stop\"}]}\n\n"
        "data: [DONE]\n\n");
    ollama_tr_init(&t, true, false, "s2", 5);
    const char *c[] = {
        "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":"
        "[{\"function\":{\"name\":\"get\",\"arguments\":{\"city\":\"Paris "
        "\\\"FR\\\"\"}}}]},\"done\":false}",
        "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true}"};
    char *out = run(&t, c, 2);
    cr_assert(
        strstr(out, "\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_chatcmpl-s20\",\"type\":"
                    "\"function\",\"function\":{\"name\":\"get\",\"arguments\":\"{\\\"city\\\":"
                    "\\\"Paris \\\\\\\"FR\\\\\\\"\\\"}\"}}]}"),
        "%s", out);
    cr_assert(strstr(out, "\"finish_reason\":\"tool_calls\""));
    /* every event's JSON parses */
    for (char *p = out; (p = strstr(p, "data: {")); p += 6) {
        char *e = strstr(p, "\n\n");
        json_t *j = json_loadb(p + 6, (size_t)(e - p - 6), 0, NULL);
        cr_assert_not_null(j, "%.*s", (int)(e - p), p);
        json_decref(j);
    }
}

Test(ollama, error_and_garbage_lines)
{
    struct ollama_tr t;
    ollama_tr_init(&t, true, false, "e", 1);
    char out[4096];
    struct ollama_events ev;
    const char *err = "{\"error\":\"model \\\"x\\\" not found\"}";
    cr_assert_eq(ollama_line(&t, err, strlen(err), out, sizeof out, &ev), -ECONNABORTED);
    cr_assert_eq(ev.n, 1);
    cr_assert_eq(ev.len[0], strlen("model \\\"x\\\" not found"));
    static const char *const bad[] = {"",
                                      "not json",
                                      "[1]",
                                      "{\"model\":\"m\"}",
                                      "{\"message\":{\"content\":1}}",
                                      "{\"message\":{\"content\":\"a\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(ollama_line(&t, bad[i], strlen(bad[i]), out, sizeof out, &ev), -EPROTO, "%s",
                     bad[i]);
    const char *ok = "{\"model\":\"m\",\"message\":{\"content\":\"abc\"},\"done\":false}";
    cr_assert_eq(ollama_line(&t, ok, strlen(ok), out, 10, &ev), -E2BIG);
}

Test(ollama, whole_answers)
{
    struct ollama_tr t;
    ollama_tr_init(&t, true, false, "w", 9);
    const char *b = "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\" w0 "
                    "w1\"},\"done\":true,"
                    "\"done_reason\":\"stop\",\"prompt_eval_count\":3,\"eval_count\":2}";
    char *out;
    size_t n;
    cr_assert_eq(ollama_whole(&t, b, strlen(b), &out, &n), 0);
    cr_assert_str_eq(
        out, "{\"id\":\"chatcmpl-w\",\"object\":\"chat.completion\",\"created\":9,\"model\":\"m\","
             "\"system_fingerprint\":\"fp_ollama\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
             "\"assistant\",\"content\":\" w0 w1\"},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
             "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}");
    free(out);
    cr_assert_eq(ollama_whole(&t, "{\"error\":\"boom\"}", 16, &out, &n), -ECONNABORTED);
    cr_assert_str_eq(out, "boom");
    free(out);
    cr_assert_eq(ollama_whole(&t, "[]", 2, &out, &n), -EPROTO);
}

Test(ollama, native_scan)
{
    uint64_t ec = 0;
    const char *a = "{\"message\":{\"role\":\"assistant\",\"content\":\"x\"},\"done\":false}";
    const char *b = "{\"response\":\"\",\"done\":true,\"eval_count\":42}";
    const char *c = "{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":false}";
    cr_assert_eq(ollama_native_scan(a, strlen(a), &ec), OLLAMA_LINE_TOKEN);
    cr_assert_eq(ollama_native_scan(b, strlen(b), &ec), OLLAMA_LINE_DONE);
    cr_assert_eq(ec, 42);
    cr_assert_eq(ollama_native_scan(c, strlen(c), &ec), 0);
}

Test(tfserving, request_and_answer_shapes)
{
    struct config_backend be = {0};
    char *target, *out, detail[256];
    size_t n;
    const char *chat = "{\"model\":\"t5\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
                       "{\"role\":\"user\",\"content\":\"q\"}]}";
    cr_assert_eq(
        tfs_request(&be, true, "t5", chat, strlen(chat), &target, &out, &n, detail, sizeof detail),
        0);
    cr_assert_str_eq(target, "/v1/models/t5:predict");
    cr_assert_str_eq(out, "{\"instances\":[\"system: s\\nuser: q\\n\"]}");
    free(target);
    free(out);
    snprintf(be.tf_input, sizeof be.tf_input, "text");
    snprintf(be.tf_signature, sizeof be.tf_signature, "serving_default");
    snprintf(be.tf_model, sizeof be.tf_model, "gen");
    const char *cmp = "{\"model\":\"x\",\"prompt\":\"hello\"}";
    cr_assert_eq(
        tfs_request(&be, false, "x", cmp, strlen(cmp), &target, &out, &n, detail, sizeof detail),
        0);
    cr_assert_str_eq(target, "/v1/models/gen:predict");
    cr_assert_str_eq(
        out, "{\"instances\":[{\"text\":\"hello\"}],\"signature_name\":\"serving_default\"}");
    free(target);
    free(out);
    be.tf_model[0] = '\0';
    cr_assert_eq(
        tfs_request(&be, false, "../x", cmp, strlen(cmp), &target, &out, &n, detail, sizeof detail),
        API_ERR_INVALID_FIELD);

    char *text;
    size_t tl;
    struct config_backend plain = {0};
    cr_assert_eq(tfs_answer(&plain, "{\"predictions\":[\"abc\"]}", 23, &text, &tl), 0);
    cr_assert_str_eq(text, "abc");
    free(text);
    cr_assert_eq(tfs_answer(&plain, "{\"outputs\":[\"x\"]}", 17, &text, &tl), 0);
    free(text);
    snprintf(plain.tf_output, sizeof plain.tf_output, "out");
    const char *p = "{\"predictions\":[{\"out\":[\"y\"],\"score\":1}]}";
    cr_assert_eq(tfs_answer(&plain, p, strlen(p), &text, &tl), 0);
    cr_assert_str_eq(text, "y");
    free(text);
    cr_assert_eq(tfs_answer(&plain, "{\"error\":\"no\"}", 14, &text, &tl), -ECONNABORTED);
    cr_assert_str_eq(text, "no");
    free(text);
    cr_assert_eq(tfs_answer(&plain, "{\"predictions\":[1]}", 19, &text, &tl), -EPROTO);
}
