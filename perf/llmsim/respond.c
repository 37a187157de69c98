/*
 * respond — response bytes in vLLM/uvicorn's shapes (see respond.h).
 *
 * The shapes follow vLLM's OpenAI server: chat stream chunks are pydantic
 * dumps with exclude_unset (so only the fields vLLM sets appear), completion
 * stream chunks are dumped with exclude_unset=False (hence their trailing
 * "usage":null), the usage chunk excludes None, and non-streaming answers
 * are full model_dump()s through Starlette's compact JSONResponse.
 */
#include "perf/llmsim/respond.h"

#include <string.h>
#include <time.h>

#define FRAME_RESERVE RESP_FRAME_RESERVE

static inline char *put2(char *w, unsigned v)
{
    w[0] = (char)('0' + (v / 10) % 10);
    w[1] = (char)('0' + v % 10);
    return w + 2;
}

size_t resp_frame(char *dst, char *end)
{
    static const char hexd[] = "0123456789abcdef";
    char *body = dst + FRAME_RESERVE;
    size_t blen = (size_t)(end - body);
    char hex[8] = {0};
    size_t hl = 0;
    size_t v = blen;
    do {
        hex[sizeof(hex) - 1 - hl++] = hexd[v & 15];
        v >>= 4;
    } while (v && hl < FRAME_RESERVE - 2);
    end = PUT_LIT(end, "\r\n");
    char *h = body - hl - 2;
    memcpy(h, hex + sizeof(hex) - hl, hl);
    memcpy(h + hl, "\r\n", 2);
    size_t total = (size_t)(end - h);
    memmove(dst, h, total);
    return total;
}

static char *event_prefix(char *w, const struct resp_stream *st)
{
    w = PUT_LIT(w, "data: {\"id\":\"");
    if (st->chat)
        w = PUT_LIT(w, "chatcmpl-");
    else
        w = PUT_LIT(w, "cmpl-");
    w = put(w, st->id_hex, 32);
    if (st->chat)
        w = PUT_LIT(w, "\",\"object\":\"chat.completion.chunk\",\"created\":");
    else
        w = PUT_LIT(w, "\",\"object\":\"text_completion\",\"created\":");
    w = put_u64(w, st->created);
    w = PUT_LIT(w, ",\"model\":\"");
    w = put(w, st->model_json, st->model_json_len);
    return PUT_LIT(w, "\",\"choices\":[");
}

size_t resp_role_event(char *dst, const struct resp_stream *st)
{
    char *w = event_prefix(dst + FRAME_RESERVE, st);
    w = PUT_LIT(w, "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                   "\"logprobs\":null,\"finish_reason\":null}]}\n\n");
    return resp_frame(dst, w);
}

static char *put_finish(char *w, enum resp_finish fin)
{
    switch (fin) {
    case RESP_FIN_LENGTH:
        return PUT_LIT(w, "\"length\"");
    case RESP_FIN_STOP:
        return PUT_LIT(w, "\"stop\"");
    default:
        return PUT_LIT(w, "null");
    }
}

size_t resp_token_event(char *dst, const struct resp_stream *st, uint32_t i, enum resp_finish fin)
{
    char *w = event_prefix(dst + FRAME_RESERVE, st);
    if (st->chat) {
        w = PUT_LIT(w, "{\"index\":0,\"delta\":{\"content\":\" w");
        w = put_u64(w, i);
        w = PUT_LIT(w, "\"},\"logprobs\":null,\"finish_reason\":");
        w = put_finish(w, fin);
        if (fin != RESP_FIN_NONE)
            w = PUT_LIT(w, ",\"stop_reason\":null");
        w = PUT_LIT(w, "}]}\n\n");
    } else {
        w = PUT_LIT(w, "{\"index\":0,\"text\":\" w");
        w = put_u64(w, i);
        w = PUT_LIT(w, "\",\"logprobs\":null,\"finish_reason\":");
        w = put_finish(w, fin);
        w = PUT_LIT(w, ",\"stop_reason\":null}],\"usage\":null}\n\n");
    }
    return resp_frame(dst, w);
}

size_t resp_usage_event(char *dst, const struct resp_stream *st, uint32_t prompt,
                        uint32_t completion)
{
    char *w = event_prefix(dst + FRAME_RESERVE, st);
    w = PUT_LIT(w, "],\"usage\":{\"prompt_tokens\":");
    w = put_u64(w, prompt);
    w = PUT_LIT(w, ",\"total_tokens\":");
    w = put_u64(w, (uint64_t)prompt + completion);
    w = PUT_LIT(w, ",\"completion_tokens\":");
    w = put_u64(w, completion);
    w = PUT_LIT(w, "}}\n\n");
    return resp_frame(dst, w);
}

size_t resp_done_event(char *dst)
{
    static const char done[] = "e\r\ndata: [DONE]\n\n\r\n";
    memcpy(dst, done, sizeof(done) - 1);
    return sizeof(done) - 1;
}

size_t resp_last_chunk(char *dst)
{
    memcpy(dst, "0\r\n\r\n", 5);
    return 5;
}

void resp_date_update(struct resp_date *d, int64_t unix_sec)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (d->sec == unix_sec && d->text[0])
        return;
    time_t t = (time_t)unix_sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        memset(&tm, 0, sizeof(tm));
    /* Fixed width: "Sun, 06 Nov 1994 08:49:37 GMT". */
    unsigned year = (unsigned)(tm.tm_year + 1900) % 10000;
    char *w = d->text;
    w = put(w, days[(unsigned)tm.tm_wday % 7], 3);
    w = PUT_LIT(w, ", ");
    w = put2(w, (unsigned)tm.tm_mday);
    *w++ = ' ';
    w = put(w, months[(unsigned)tm.tm_mon % 12], 3);
    *w++ = ' ';
    w = put2(w, year / 100);
    w = put2(w, year % 100);
    *w++ = ' ';
    w = put2(w, (unsigned)tm.tm_hour);
    *w++ = ':';
    w = put2(w, (unsigned)tm.tm_min);
    *w++ = ':';
    w = put2(w, (unsigned)tm.tm_sec);
    w = PUT_LIT(w, " GMT");
    *w = '\0';
    d->sec = unix_sec;
}

const char *resp_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Request Entity Too Large";
    case 414:
        return "Request-URI Too Long";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "";
    }
}

const char *resp_error_type(int status)
{
    switch (status) {
    case 400:
        return "BadRequestError";
    case 401:
        return "AuthenticationError";
    case 403:
        return "PermissionDeniedError";
    case 404:
        return "NotFoundError";
    case 409:
        return "ConflictError";
    case 413:
        return "RequestTooLargeError";
    case 422:
        return "UnprocessableEntityError";
    case 429:
        return "RateLimitError";
    case 500:
        return "InternalServerError";
    case 503:
        return "ServiceUnavailableError";
    default:
        return status >= 500 ? "InternalServerError" : "APIError";
    }
}

static void status_line(struct bbuf *b, int status)
{
    bbuf_puts(b, "HTTP/1.1 ");
    bbuf_u64(b, (uint64_t)status);
    bbuf_puts(b, " ");
    bbuf_puts(b, resp_reason(status));
    bbuf_puts(b, "\r\n");
}

static void date_server(struct bbuf *b, const struct resp_date *d)
{
    bbuf_puts(b, "date: ");
    bbuf_put(b, d->text, strlen(d->text));
    bbuf_puts(b, "\r\nserver: uvicorn\r\n");
}

void resp_stream_head(struct bbuf *b, const struct resp_date *d, bool keep_alive)
{
    status_line(b, 200);
    date_server(b, d);
    bbuf_puts(b, "content-type: text/event-stream; charset=utf-8\r\n");
    if (!keep_alive)
        bbuf_puts(b, "connection: close\r\n");
    bbuf_puts(b, "transfer-encoding: chunked\r\n\r\n");
}

bool resp_status_has_body(int status)
{
    return !(status < 200 || status == 204 || status == 304);
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void resp_uuid_hex(uint64_t *rng, char *dst)
{
    static const char hexd[] = "0123456789abcdef";
    uint64_t a = splitmix64(rng), b = splitmix64(rng);
    for (int i = 0; i < 16; i++) {
        dst[i] = hexd[(a >> (4 * i)) & 15];
        dst[16 + i] = hexd[(b >> (4 * i)) & 15];
    }
    dst[12] = '4';                       /* version */
    dst[16] = hexd[8 + ((b >> 62) & 3)]; /* variant 10xx */
}

void resp_head(struct bbuf *b, const struct resp_date *d, int status, const char *extra,
               const char *ctype, size_t content_length, bool keep_alive)
{
    status_line(b, status);
    date_server(b, d);
    if (extra)
        bbuf_puts(b, extra);
    if (resp_status_has_body(status)) {
        bbuf_puts(b, "content-length: ");
        bbuf_u64(b, content_length);
        bbuf_puts(b, "\r\n");
        if (ctype) {
            bbuf_puts(b, "content-type: ");
            bbuf_puts(b, ctype);
            bbuf_puts(b, "\r\n");
        }
    }
    if (!keep_alive)
        bbuf_puts(b, "connection: close\r\n");
    bbuf_puts(b, "\r\n");
}

void resp_full(struct bbuf *b, const struct resp_date *d, int status, const char *extra,
               const char *ctype, const char *body, size_t body_len, bool keep_alive,
               bool head_only)
{
    resp_head(b, d, status, extra, ctype, body_len, keep_alive);
    if (!head_only && resp_status_has_body(status))
        bbuf_put(b, body, body_len);
}

void resp_words(struct bbuf *b, uint32_t first, uint32_t n)
{
    /* " w<i>" is at most 12 bytes; write straight into the buffer. */
    if (bbuf_reserve(b, (size_t)n * 12) < 0) {
        b->failed = true;
        return;
    }
    if (b->failed)
        return;
    char *w = b->p + b->len;
    for (uint32_t i = 0; i < n; i++) {
        w = PUT_LIT(w, " w");
        w = put_u64(w, (uint64_t)first + i);
    }
    b->len = (size_t)(w - b->p);
}

static void put_tokens_text(struct bbuf *b, uint32_t n)
{
    resp_words(b, 0, n);
}

static void put_finish_b(struct bbuf *b, enum resp_finish fin)
{
    bbuf_puts(b, fin == RESP_FIN_LENGTH ? "\"length\"" : "\"stop\"");
}

static void put_usage_b(struct bbuf *b, uint32_t prompt, uint32_t n)
{
    bbuf_puts(b, "\"usage\":{\"prompt_tokens\":");
    bbuf_u64(b, prompt);
    bbuf_puts(b, ",\"total_tokens\":");
    bbuf_u64(b, (uint64_t)prompt + n);
    bbuf_puts(b, ",\"completion_tokens\":");
    bbuf_u64(b, n);
    bbuf_puts(b, ",\"prompt_tokens_details\":null}");
}

void resp_completion_body(struct bbuf *b, const struct resp_stream *st, uint32_t n,
                          enum resp_finish fin, uint32_t prompt)
{
    bbuf_puts(b, st->chat ? "{\"id\":\"chatcmpl-" : "{\"id\":\"cmpl-");
    bbuf_put(b, st->id_hex, 32);
    bbuf_puts(b, st->chat ? "\",\"object\":\"chat.completion\",\"created\":"
                          : "\",\"object\":\"text_completion\",\"created\":");
    bbuf_u64(b, st->created);
    bbuf_puts(b, ",\"model\":\"");
    bbuf_put(b, st->model_json, st->model_json_len);
    if (st->chat) {
        bbuf_puts(b, "\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                     "\"content\":\"");
        put_tokens_text(b, n);
        bbuf_puts(b, "\",\"tool_calls\":[]},\"logprobs\":null,\"finish_reason\":");
        put_finish_b(b, fin);
        bbuf_puts(b, ",\"stop_reason\":null}],");
        put_usage_b(b, prompt, n);
        bbuf_puts(b, ",\"prompt_logprobs\":null}");
    } else {
        bbuf_puts(b, "\",\"choices\":[{\"index\":0,\"text\":\"");
        put_tokens_text(b, n);
        bbuf_puts(b, "\",\"logprobs\":null,\"finish_reason\":");
        put_finish_b(b, fin);
        bbuf_puts(b, ",\"stop_reason\":null,\"prompt_logprobs\":null}],");
        put_usage_b(b, prompt, n);
        bbuf_puts(b, "}");
    }
}

void resp_error_body(struct bbuf *b, int status, const char *type, const char *msg, size_t msg_len)
{
    bbuf_puts(b, "{\"error\":{\"message\":\"");
    bbuf_json_esc(b, msg, msg_len);
    bbuf_puts(b, "\",\"type\":\"");
    bbuf_puts(b, type);
    bbuf_puts(b, "\",\"param\":null,\"code\":");
    bbuf_u64(b, (uint64_t)status);
    bbuf_puts(b, "}}");
}

void resp_detail_body(struct bbuf *b, const char *detail)
{
    bbuf_puts(b, "{\"detail\":\"");
    bbuf_json_esc(b, detail, strlen(detail));
    bbuf_puts(b, "\"}");
}

void resp_models_body(struct bbuf *b, const struct resp_model *m, uint32_t n, uint64_t created,
                      uint32_t max_model_len, const char *rand_hex)
{
    bbuf_puts(b, "{\"object\":\"list\",\"data\":[");
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            bbuf_puts(b, ",");
        bbuf_puts(b, "{\"id\":\"");
        bbuf_put(b, m[i].json, m[i].json_len);
        bbuf_puts(b, "\",\"object\":\"model\",\"created\":");
        bbuf_u64(b, created);
        bbuf_puts(b, ",\"owned_by\":\"vllm\",\"root\":\"");
        bbuf_put(b, m[i].json, m[i].json_len);
        bbuf_puts(b, "\",\"parent\":null,\"max_model_len\":");
        bbuf_u64(b, max_model_len);
        bbuf_puts(b, ",\"permission\":[{\"id\":\"modelperm-");
        bbuf_put(b, rand_hex + (size_t)i * 32, 32);
        bbuf_puts(b, "\",\"object\":\"model_permission\",\"created\":");
        bbuf_u64(b, created);
        bbuf_puts(b, ",\"allow_create_engine\":false,\"allow_sampling\":true,"
                     "\"allow_logprobs\":true,\"allow_search_indices\":false,"
                     "\"allow_view\":true,\"allow_fine_tuning\":false,\"organization\":\"*\","
                     "\"group\":null,\"is_blocking\":false}]}");
    }
    bbuf_puts(b, "]}");
}

static void stat_field(struct bbuf *b, const char *name, uint64_t v, bool first)
{
    bbuf_puts(b, first ? "{\"" : ",\"");
    bbuf_puts(b, name);
    bbuf_puts(b, "\":");
    bbuf_u64(b, v);
}

void resp_stats_body(struct bbuf *b, const struct resp_counters *c)
{
    stat_field(b, "requests", c->requests, true);
    stat_field(b, "running", c->running, false);
    stat_field(b, "waiting", c->waiting, false);
    stat_field(b, "completed", c->completed, false);
    stat_field(b, "aborted", c->aborted, false);
    stat_field(b, "connections", c->connections, false);
    stat_field(b, "tokens", c->tokens, false);
    stat_field(b, "faults", c->faults, false);
    stat_field(b, "peak", c->peak, false);
    stat_field(b, "prefix_hits", c->prefix_hits, false);
    stat_field(b, "cached_tokens", c->cached_tokens, false);
    bbuf_puts(b, "}");
}

static void prom_gauge(struct bbuf *b, const char *name, const char *help,
                       const struct resp_model *m, const uint32_t *v, uint32_t n)
{
    bbuf_puts(b, "# HELP ");
    bbuf_puts(b, name);
    bbuf_puts(b, " ");
    bbuf_puts(b, help);
    bbuf_puts(b, "\n# TYPE ");
    bbuf_puts(b, name);
    bbuf_puts(b, " gauge\n");
    for (uint32_t i = 0; i < n; i++) {
        bbuf_puts(b, name);
        bbuf_puts(b, "{model_name=\"");
        bbuf_put(b, m[i].prom, m[i].prom_len);
        bbuf_puts(b, "\"} ");
        bbuf_u64(b, v[i]);
        bbuf_puts(b, ".0\n");
    }
}

static void prom_plain(struct bbuf *b, const char *name, const char *type, const char *help,
                       uint64_t v)
{
    bbuf_puts(b, "# HELP ");
    bbuf_puts(b, name);
    bbuf_puts(b, " ");
    bbuf_puts(b, help);
    bbuf_puts(b, "\n# TYPE ");
    bbuf_puts(b, name);
    bbuf_puts(b, " ");
    bbuf_puts(b, type);
    bbuf_puts(b, "\n");
    bbuf_puts(b, name);
    bbuf_puts(b, " ");
    bbuf_u64(b, v);
    bbuf_puts(b, "\n");
}

void resp_metrics_body(struct bbuf *b, const struct resp_counters *c, const struct resp_model *m,
                       const uint32_t *running, const uint32_t *waiting, uint32_t n)
{
    prom_gauge(b, "vllm:num_requests_running", "Number of requests currently running on GPU.", m,
               running, n);
    prom_gauge(b, "vllm:num_requests_waiting", "Number of requests waiting to be processed.", m,
               waiting, n);
    prom_plain(b, "llmsim_requests_total", "counter", "Generation requests received.", c->requests);
    prom_plain(b, "llmsim_completed_total", "counter", "Generation requests generated to the end.",
               c->completed);
    prom_plain(b, "llmsim_aborted_total", "counter",
               "Generation requests whose client went away before the end.", c->aborted);
    prom_plain(b, "llmsim_tokens_total", "counter", "Tokens generated.", c->tokens);
    prom_plain(b, "llmsim_faults_total", "counter", "Requests that got a fault injected.",
               c->faults);
    prom_plain(b, "llmsim_connections", "gauge", "Open client connections.", c->connections);
}
