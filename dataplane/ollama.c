/* ollama — see ollama.h. */
#include "dataplane/ollama.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/api_error.h"
#include "dataplane/json_scan.h"

/* ---- the request ---------------------------------------------------------- */

static int fail(char *detail, size_t cap, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *detail, size_t cap, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, cap, fmt, ap);
    va_end(ap);
    return err;
}

/* An OpenAI content (a string, or an array of text and image parts) as an
 * Ollama message's "content" and "images". */
static int put_content(json_t *dst, json_t *content, char *detail, size_t cap)
{
    if (!content || json_is_null(content) || json_is_string(content)) {
        json_object_set_new(dst, "content",
                            json_string(json_is_string(content) ? json_string_value(content) : ""));
        return 0;
    }
    if (!json_is_array(content))
        return fail(detail, cap, API_ERR_INVALID_FIELD,
                    "a message's 'content' must be a string or an array of parts");
    size_t len = 0, i;
    json_t *part;
    json_array_foreach (content, i, part) {
        json_t *t = json_object_get(part, "text");
        if (json_is_string(t))
            len += json_string_length(t) + 1;
    }
    char *text = malloc(len + 1), *w = text;
    json_t *images = json_array();
    if (!text || !images) {
        free(text);
        json_decref(images);
        return fail(detail, cap, API_ERR_INTERNAL, "out of memory");
    }
    json_array_foreach (content, i, part) {
        json_t *type = json_object_get(part, "type");
        const char *ty = json_is_string(type) ? json_string_value(type) : "";
        json_t *t = json_object_get(part, "text");
        if (strcmp(ty, "text") == 0 && json_is_string(t)) {
            if (w > text)
                *w++ = '\n';
            memcpy(w, json_string_value(t), json_string_length(t));
            w += json_string_length(t);
        } else if (strcmp(ty, "image_url") == 0) {
            json_t *iu = json_object_get(part, "image_url");
            json_t *url = json_is_object(iu) ? json_object_get(iu, "url") : iu;
            const char *u = json_is_string(url) ? json_string_value(url) : "";
            const char *b64 = strncmp(u, "data:", 5) == 0 ? strstr(u, ";base64,") : NULL;
            if (!b64) {
                free(text);
                json_decref(images);
                return fail(detail, cap, API_ERR_INVALID_FIELD,
                            "an image for an Ollama backend must be a data: URL in base64");
            }
            json_array_append_new(images, json_string(b64 + 8));
        } else {
            free(text);
            json_decref(images);
            return fail(detail, cap, API_ERR_INVALID_FIELD,
                        "unsupported content part type '%s' for an Ollama backend", ty);
        }
    }
    *w = '\0';
    json_object_set_new(dst, "content", json_stringn(text, (size_t)(w - text)));
    free(text);
    if (json_array_size(images))
        json_object_set_new(dst, "images", images);
    else
        json_decref(images);
    return 0;
}

/* OpenAI's tool_calls (arguments as a JSON string) as Ollama's (an object). */
static int put_tool_calls(json_t *dst, json_t *calls, char *detail, size_t cap)
{
    json_t *out = json_array();
    size_t i;
    json_t *call;
    json_array_foreach (calls, i, call) {
        json_t *fn = json_object_get(call, "function");
        json_t *name = json_object_get(fn, "name");
        json_t *args = json_object_get(fn, "arguments");
        json_t *obj =
            json_is_string(args) ? json_loads(json_string_value(args), 0, NULL) : json_incref(args);
        if (!json_is_string(name) || !json_is_object(obj)) {
            json_decref(obj);
            json_decref(out);
            return fail(detail, cap, API_ERR_INVALID_FIELD,
                        "a tool call needs a function name and JSON object arguments");
        }
        json_array_append_new(
            out, json_pack("{s:{s:O,s:o}}", "function", "name", name, "arguments", obj));
    }
    json_object_set_new(dst, "tool_calls", out);
    return 0;
}

static int put_messages(json_t *o, json_t *msgs, char *detail, size_t cap)
{
    json_t *out = json_array();
    json_object_set_new(o, "messages", out);
    size_t i;
    json_t *m;
    json_array_foreach (msgs, i, m) {
        json_t *role = json_object_get(m, "role");
        if (!json_is_object(m) || !json_is_string(role))
            return fail(detail, cap, API_ERR_INVALID_FIELD, "messages[%zu] needs a string 'role'",
                        i);
        const char *r = json_string_value(role);
        json_t *om = json_object();
        json_array_append_new(out, om);
        /* OpenAI's newer name for the system prompt */
        json_object_set_new(om, "role", json_string(strcmp(r, "developer") == 0 ? "system" : r));
        int err = put_content(om, json_object_get(m, "content"), detail, cap);
        json_t *calls = json_object_get(m, "tool_calls");
        if (!err && json_is_array(calls))
            err = put_tool_calls(om, calls, detail, cap);
        json_t *name = json_object_get(m, "name");
        if (!err && strcmp(r, "tool") == 0 && json_is_string(name))
            json_object_set(om, "tool_name", name);
        if (err)
            return err;
    }
    return 0;
}

/* Sampling and length fields, into "options" (the client's own "options",
 * Ollama's spelling, win). */
static void put_options(json_t *o, json_t *root)
{
    json_t *opts = json_object_get(root, "options");
    opts = json_is_object(opts) ? json_deep_copy(opts) : json_object();
    static const char *const same[][2] = {
        {"temperature", "temperature"},
        {"top_p", "top_p"},
        {"seed", "seed"},
        {"frequency_penalty", "frequency_penalty"},
        {"presence_penalty", "presence_penalty"},
    };
    for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
        json_t *v = json_object_get(root, same[i][0]);
        if (json_is_number(v) && !json_object_get(opts, same[i][1]))
            json_object_set(opts, same[i][1], v);
    }
    json_int_t n = 0;
    static const char *const bounds[] = {"max_tokens", "max_completion_tokens"};
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(root, bounds[i]);
        if (json_is_integer(v) && (!n || json_integer_value(v) < n))
            n = json_integer_value(v);
    }
    if (n > 0 && !json_object_get(opts, "num_predict"))
        json_object_set_new(opts, "num_predict", json_integer(n));
    json_t *stop = json_object_get(root, "stop");
    if (json_is_string(stop) && !json_object_get(opts, "stop"))
        json_object_set_new(opts, "stop", json_pack("[O]", stop));
    else if (json_is_array(stop) && !json_object_get(opts, "stop"))
        json_object_set(opts, "stop", stop);
    if (json_object_size(opts))
        json_object_set_new(o, "options", opts);
    else
        json_decref(opts);
}

static int put_format(json_t *o, json_t *rf, char *detail, size_t cap)
{
    if (!json_is_object(rf))
        return 0;
    json_t *type = json_object_get(rf, "type");
    const char *t = json_is_string(type) ? json_string_value(type) : "";
    if (strcmp(t, "json_object") == 0) {
        json_object_set_new(o, "format", json_string("json"));
    } else if (strcmp(t, "json_schema") == 0) {
        json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
        if (!json_is_object(schema))
            return fail(detail, cap, API_ERR_INVALID_FIELD,
                        "'response_format.json_schema.schema' must be an object");
        json_object_set(o, "format", schema);
    } else if (strcmp(t, "text") != 0) {
        return fail(detail, cap, API_ERR_INVALID_FIELD, "unknown 'response_format' type '%s'", t);
    }
    return 0;
}

int ollama_request(bool chat, const char *body, size_t len, char **out, size_t *out_len,
                   char *detail, size_t detail_cap)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        return fail(detail, detail_cap, API_ERR_INVALID_JSON, "request body is not a JSON object");
    }
    json_t *o = json_object();
    int err = 0;
    json_object_set(o, "model", json_object_get(root, "model"));
    if (chat) {
        err = put_messages(o, json_object_get(root, "messages"), detail, detail_cap);
    } else {
        json_t *p = json_object_get(root, "prompt");
        if (json_is_array(p) && json_array_size(p) == 1)
            p = json_array_get(p, 0);
        if (!json_is_string(p))
            err = fail(detail, detail_cap, API_ERR_INVALID_FIELD,
                       "an Ollama backend takes one string 'prompt'");
        else
            json_object_set(o, "prompt", p);
        json_t *suffix = json_object_get(root, "suffix");
        if (json_is_string(suffix))
            json_object_set(o, "suffix", suffix);
    }
    json_t *s = json_object_get(root, "stream");
    json_object_set_new(o, "stream", json_boolean(json_is_true(s)));
    if (!err)
        err = put_format(o, json_object_get(root, "response_format"), detail, detail_cap);
    put_options(o, root);
    json_t *tools = json_object_get(root, "tools");
    if (chat && json_is_array(tools))
        json_object_set(o, "tools", tools);
    json_t *ka = json_object_get(root, "keep_alive");
    if (ka)
        json_object_set(o, "keep_alive", ka);
    if (!err) {
        *out = json_dumps(o, JSON_COMPACT);
        if (!*out)
            err = fail(detail, detail_cap, API_ERR_INTERNAL, "out of memory");
        else
            *out_len = strlen(*out);
    }
    json_decref(o);
    json_decref(root);
    return err;
}

bool ollama_wants_usage(const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *so = json_object_get(root, "stream_options");
    bool yes = json_is_true(json_object_get(so, "include_usage"));
    json_decref(root);
    return yes;
}

/* ---- the streamed answer ------------------------------------------------- */

void ollama_tr_init(struct ollama_tr *t, bool chat, bool include_usage, const char *stream_id,
                    uint64_t created)
{
    memset(t, 0, sizeof *t);
    t->chat = chat;
    t->include_usage = include_usage;
    t->created = created;
    t->fingerprint = "fp_ollama";
    t->counts = true;
    snprintf(t->id, sizeof t->id, "%s-%s", chat ? "chatcmpl" : "cmpl", stream_id);
}

size_t ollama_line_room(size_t line_len)
{
    /* The model name can appear in four events, a tool call's arguments
     * double when escaped; the rest is fixed text. */
    return 6 * line_len + 2048;
}

struct wr {
    char *p;
    size_t len, cap;
    bool full;
};

static void put(struct wr *w, const char *s, size_t n)
{
    if (w->full || w->cap - w->len < n) {
        w->full = true;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void puts_(struct wr *w, const char *s)
{
    put(w, s, strlen(s));
}

static const char empty_str[] = "\"\"", empty_obj[] = "{}";

static void put_span(struct wr *w, struct js_span s)
{
    put(w, s.p, (size_t)(s.end - s.p));
}

static void putu(struct wr *w, uint64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    put(w, b, (size_t)n);
}

/* Raw JSON as the inside of a JSON string. */
static void put_escaped(struct wr *w, struct js_span s)
{
    for (const char *p = s.p; p < s.end; p++) {
        char c = *p;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', c};
            put(w, e, 2);
        } else if (c == '\n' || c == '\r' || c == '\t') {
            char e[2] = {'\\', c == '\n' ? 'n' : c == '\r' ? 'r' : 't'};
            put(w, e, 2);
        } else {
            put(w, &c, 1);
        }
    }
}

/* "data: {id, object, created, model, system_fingerprint, " — an event's
 * start up to its choices. */
static void chunk_start(struct wr *w, const struct ollama_tr *t, struct js_span model)
{
    puts_(w, "data: {\"id\":\"");
    puts_(w, t->id);
    puts_(w, t->chat ? "\",\"object\":\"chat.completion.chunk\",\"created\":"
                     : "\",\"object\":\"text_completion\",\"created\":");
    putu(w, t->created);
    puts_(w, ",\"model\":");
    put_span(w, model);
    puts_(w, ",\"system_fingerprint\":\"");
    puts_(w, t->fingerprint);
    puts_(w, "\",\"choices\":[");
}

static void event_begin(struct wr *w, struct ollama_events *ev)
{
    ev->off[ev->n] = (uint32_t)w->len;
}

static void event_end(struct wr *w, struct ollama_events *ev)
{
    puts_(w, "\n\n");
    ev->len[ev->n] = (uint32_t)(w->len - ev->off[ev->n]);
    ev->n++;
}

static const char *finish_reason(const struct ollama_tr *t, struct js_span line)
{
    struct js_span dr;
    if (t->tool_calls)
        return "tool_calls";
    if (js_get(line, "done_reason", &dr) == 0 && js_str_eq(dr, "length"))
        return "length";
    return "stop";
}

static void tool_call_event(struct wr *w, struct ollama_tr *t, struct js_span model,
                            struct js_span calls, struct ollama_events *ev)
{
    event_begin(w, ev);
    chunk_start(w, t, model);
    puts_(w, "{\"index\":0,\"delta\":{\"tool_calls\":[");
    const char *p = calls.p + 1;
    bool first = true;
    for (;;) {
        while (p < calls.end && (*p == ' ' || *p == ',' || *p == '\n' || *p == '\t'))
            p++;
        if (p >= calls.end || *p == ']')
            break;
        struct js_span call = {p, js_skip(p, calls.end)};
        if (!call.end)
            break;
        p = call.end;
        struct js_span fn, name, args;
        if (js_get(call, "function", &fn) < 0 || js_get(fn, "name", &name) < 0)
            continue;
        if (js_get(fn, "arguments", &args) < 0)
            args = (struct js_span){empty_obj, empty_obj + 2};
        if (!first)
            puts_(w, ",");
        first = false;
        puts_(w, "{\"index\":");
        putu(w, t->n_tool_calls);
        puts_(w, ",\"id\":\"call_");
        puts_(w, t->id);
        putu(w, t->n_tool_calls++);
        puts_(w, "\",\"type\":\"function\",\"function\":{\"name\":");
        put_span(w, name);
        puts_(w, ",\"arguments\":\"");
        put_escaped(w, args);
        puts_(w, "\"}}");
    }
    puts_(w, "]},\"logprobs\":null,\"finish_reason\":null}]}");
    event_end(w, ev);
    t->tool_calls = true;
}

int ollama_line(struct ollama_tr *t, const char *line, size_t len, char *out, size_t cap,
                struct ollama_events *ev)
{
    struct js_span l = {line, line + len}, model, v, msg = {0}, text = {0};
    struct wr w = {out, 0, cap, false};
    ev->n = 0;
    if (!js_valid(line, line + len) || *line != '{')
        return -EPROTO;
    if (js_get(l, "error", &v) == 0) {
        ev->off[0] = 0;
        if (js_str(v, &text))
            put_span(&w, text);
        else
            put_escaped(&w, v);
        ev->len[0] = (uint32_t)w.len;
        ev->n = w.full ? 0 : 1;
        return w.full ? -E2BIG : -ECONNABORTED;
    }
    if (js_get(l, "model", &model) < 0 || !js_str(model, &v))
        model = (struct js_span){empty_str, empty_str + 2};
    struct js_span think = {0}, calls = {0};
    if (t->chat) {
        if (js_get(l, "message", &msg) < 0 || js_get(msg, "content", &v) < 0 || !js_str(v, &text))
            return -EPROTO;
        if (js_get(msg, "thinking", &v) == 0 && !js_str(v, &think))
            think = (struct js_span){0};
        if (js_get(msg, "tool_calls", &v) == 0 && *v.p == '[' && !js_empty(v))
            calls = v;
    } else if (js_get(l, "response", &v) < 0 || !js_str(v, &text)) {
        return -EPROTO;
    }
    bool done = js_get(l, "done", &v) == 0 && js_is_true(v);
    if (t->chat && !t->role_sent) {
        /* OpenAI's (and vLLM's) streams open with the role alone. */
        event_begin(&w, ev);
        chunk_start(&w, t, model);
        puts_(&w, "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                  "\"logprobs\":null,\"finish_reason\":null}]}");
        event_end(&w, ev);
        t->role_sent = true;
    }
    if (text.end > text.p || (think.p && think.end > think.p)) {
        event_begin(&w, ev);
        chunk_start(&w, t, model);
        if (t->chat) {
            puts_(&w, "{\"index\":0,\"delta\":{");
            if (think.p && think.end > think.p) {
                puts_(&w, "\"reasoning_content\":\"");
                put_span(&w, think);
                puts_(&w, text.end > text.p ? "\"," : "\"");
            }
            if (text.end > text.p) {
                puts_(&w, "\"content\":\"");
                put_span(&w, text);
                puts_(&w, "\"");
            }
            puts_(&w, "},\"logprobs\":null,\"finish_reason\":null}]}");
        } else {
            puts_(&w, "{\"index\":0,\"text\":\"");
            put_span(&w, text);
            puts_(&w, "\",\"logprobs\":null,\"finish_reason\":null}]}");
        }
        event_end(&w, ev);
    }
    if (calls.p)
        tool_call_event(&w, t, model, calls, ev);
    if (done) {
        t->done = true;
        if (js_get(l, "prompt_eval_count", &v) < 0 || !js_u64(v, &t->prompt_tokens))
            t->prompt_tokens = 0;
        if (js_get(l, "eval_count", &v) < 0 || !js_u64(v, &t->completion_tokens))
            t->completion_tokens = 0;
        /* counts, not sizes: a number past 32 bits is a backend's garbage */
        if (t->prompt_tokens > UINT32_MAX)
            t->prompt_tokens = UINT32_MAX;
        if (t->completion_tokens > UINT32_MAX)
            t->completion_tokens = UINT32_MAX;
        event_begin(&w, ev);
        chunk_start(&w, t, model);
        puts_(&w, t->chat ? "{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\""
                          : "{\"index\":0,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"");
        puts_(&w, finish_reason(t, l));
        puts_(&w, "\"}]}");
        event_end(&w, ev);
        if (t->include_usage && t->counts) {
            event_begin(&w, ev);
            chunk_start(&w, t, model);
            puts_(&w, "],\"usage\":{\"prompt_tokens\":");
            putu(&w, t->prompt_tokens);
            puts_(&w, ",\"completion_tokens\":");
            putu(&w, t->completion_tokens);
            puts_(&w, ",\"total_tokens\":");
            putu(&w, t->prompt_tokens + t->completion_tokens);
            puts_(&w, "}}");
            event_end(&w, ev);
        }
        event_begin(&w, ev);
        puts_(&w, "data: [DONE]");
        event_end(&w, ev);
    }
    return w.full ? -E2BIG : 0;
}

/* ---- the whole answer ----------------------------------------------------- */

char *ollama_error_message(const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *e = json_object_get(root, "error");
    char *msg = json_is_string(e) ? strdup(json_string_value(e)) : NULL;
    json_decref(root);
    return msg;
}

int ollama_whole(struct ollama_tr *t, const char *body, size_t len, char **out, size_t *out_len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return -EPROTO;
    }
    json_t *e = json_object_get(root, "error");
    if (json_is_string(e)) {
        *out = strdup(json_string_value(e));
        *out_len = *out ? strlen(*out) : 0;
        json_decref(root);
        return *out ? -ECONNABORTED : -ENOMEM;
    }
    json_t *msg = json_object_get(root, "message");
    json_t *text = t->chat ? json_object_get(msg, "content") : json_object_get(root, "response");
    json_t *model = json_object_get(root, "model");
    if (!json_is_string(text)) {
        json_decref(root);
        return -EPROTO;
    }
    json_t *pe = json_object_get(root, "prompt_eval_count");
    json_t *ec = json_object_get(root, "eval_count");
    json_int_t pv = json_is_integer(pe) ? json_integer_value(pe) : 0;
    json_int_t ev = json_is_integer(ec) ? json_integer_value(ec) : 0;
    t->prompt_tokens = pv < 0 ? 0 : pv > UINT32_MAX ? UINT32_MAX : (uint64_t)pv;
    t->completion_tokens = ev < 0 ? 0 : ev > UINT32_MAX ? UINT32_MAX : (uint64_t)ev;
    t->done = true;
    json_t *dr = json_object_get(root, "done_reason");
    const char *finish =
        json_is_string(dr) && strcmp(json_string_value(dr), "length") == 0 ? "length" : "stop";
    json_t *choice;
    if (t->chat) {
        json_t *m = json_pack("{s:s,s:O}", "role", "assistant", "content", text);
        json_t *think = json_object_get(msg, "thinking");
        if (json_is_string(think) && json_string_length(think))
            json_object_set(m, "reasoning_content", think);
        json_t *calls = json_object_get(msg, "tool_calls");
        if (json_is_array(calls) && json_array_size(calls)) {
            json_t *tc = json_array();
            size_t i;
            json_t *c;
            json_array_foreach (calls, i, c) {
                json_t *fn = json_object_get(c, "function");
                char *args = json_dumps(json_object_get(fn, "arguments"), JSON_COMPACT);
                char id[OLLAMA_ID_MAX + 32];
                snprintf(id, sizeof id, "call_%s%zu", t->id, i);
                json_array_append_new(tc, json_pack("{s:s,s:s,s:{s:O,s:s}}", "id", id, "type",
                                                    "function", "function", "name",
                                                    json_object_get(fn, "name"), "arguments",
                                                    args ? args : "{}"));
                free(args);
            }
            json_object_set_new(m, "tool_calls", tc);
            finish = "tool_calls";
        }
        choice = json_pack("{s:i,s:o,s:n,s:s}", "index", 0, "message", m, "logprobs",
                           "finish_reason", finish);
    } else {
        choice = json_pack("{s:i,s:O,s:n,s:s}", "index", 0, "text", text, "logprobs",
                           "finish_reason", finish);
    }
    json_t *o = json_pack("{s:s,s:s,s:I,s:s%,s:s,s:[o]}", "id", t->id, "object",
                          t->chat ? "chat.completion" : "text_completion", "created",
                          (json_int_t)t->created, "model",
                          json_is_string(model) ? json_string_value(model) : "",
                          json_is_string(model) ? json_string_length(model) : 0,
                          "system_fingerprint", t->fingerprint, "choices", choice);
    if (o && t->counts)
        json_object_set_new(o, "usage",
                            json_pack("{s:I,s:I,s:I}", "prompt_tokens",
                                      (json_int_t)t->prompt_tokens, "completion_tokens",
                                      (json_int_t)t->completion_tokens, "total_tokens",
                                      (json_int_t)(t->prompt_tokens + t->completion_tokens)));
    json_decref(root);
    *out = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!*out)
        return -ENOMEM;
    *out_len = strlen(*out);
    return 0;
}

unsigned ollama_native_scan(const char *line, size_t len, uint64_t *eval_count)
{
    struct js_span l = {line, line + len}, v, msg, s;
    unsigned f = 0;
    if (js_get(l, "done", &v) == 0 && js_is_true(v)) {
        f |= OLLAMA_LINE_DONE;
        if (js_get(l, "eval_count", &v) < 0 || !js_u64(v, eval_count))
            *eval_count = 0;
    }
    if (js_get(l, "response", &v) == 0 && js_str(v, &s) && s.end > s.p)
        return f | OLLAMA_LINE_TOKEN;
    if (js_get(l, "message", &msg) < 0)
        return f;
    if ((js_get(msg, "content", &v) == 0 && js_str(v, &s) && s.end > s.p) ||
        (js_get(msg, "thinking", &v) == 0 && js_str(v, &s) && s.end > s.p) ||
        (js_get(msg, "tool_calls", &v) == 0 && *v.p == '[' && !js_empty(v)))
        f |= OLLAMA_LINE_TOKEN;
    return f;
}
