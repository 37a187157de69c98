/*
 * tfserving — TF Serving's REST paths, predict bodies and answers (see
 * tfserving.h).
 *
 * Row form: "instances" is a list whose items are a prompt string, or an
 * object with exactly one string-valued input (any name) and optionally
 * "max_tokens"; other non-string inputs are ignored, as a model ignores
 * inputs its signature does not use.  Columnar form: "inputs" is a prompt,
 * a list of prompts, or an object with one such input (and optionally
 * "max_tokens": a number for all, or a list with one per prompt).
 */
#include "perf/llmsim/tfserving.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "perf/llmsim/opts.h"
#include "perf/llmsim/respond.h"

int tfs_parse_path(const char *p, size_t n, struct tfs_path *out)
{
    static const char models[] = "/v1/models/", versions[] = "/versions/", predict[] = ":predict";
    size_t ml = sizeof(models) - 1, vl = sizeof(versions) - 1, pl = sizeof(predict) - 1;
    memset(out, 0, sizeof(*out));
    if (n <= ml || strncasecmp(p, models, ml) != 0)
        return -EINVAL;
    p += ml;
    n -= ml;
    size_t i = 0;
    while (i < n && p[i] != '/' && p[i] != ':')
        i++;
    if (i == 0)
        return -EINVAL;
    out->name = p;
    out->name_len = i;
    p += i;
    n -= i;
    if (n > vl && strncasecmp(p, versions, vl) == 0) {
        p += vl;
        n -= vl;
        size_t d = 0;
        while (d < n && p[d] >= '0' && p[d] <= '9')
            d++;
        if (d == 0 || d > 18) /* \d+ that fits TF's int64 */
            return -EINVAL;
        for (size_t k = 0; k < d; k++)
            out->version = out->version * 10 + (uint64_t)(p[k] - '0');
        out->has_version = true;
        p += d;
        n -= d;
    }
    if (n == 0)
        return 0;
    if (n == pl && strncasecmp(p, predict, pl) == 0) {
        out->predict = true;
        return 0;
    }
    return -EINVAL;
}

void tfs_status_body(struct bbuf *b)
{
    bbuf_puts(b, "{\"model_version_status\":[{\"version\":\"1\",\"state\":\"AVAILABLE\","
                 "\"status\":{\"error_code\":\"OK\",\"error_message\":\"\"}}]}");
}

void tfs_error_body(struct bbuf *b, const char *msg, size_t msg_len)
{
    bbuf_puts(b, "{\"error\":\"");
    bbuf_json_esc(b, msg, msg_len);
    bbuf_puts(b, "\"}");
}

void tfs_predict_body(struct bbuf *b, bool columns, const uint32_t *len, uint32_t n)
{
    bbuf_puts(b, columns ? "{\"outputs\":[" : "{\"predictions\":[");
    for (uint32_t i = 0; i < n; i++) {
        bbuf_puts(b, i ? ",\"" : "\"");
        resp_words(b, 0, len[i]);
        bbuf_puts(b, "\"");
    }
    bbuf_puts(b, "]}");
}

/* --- request bodies ----------------------------------------------------- */

static int get_limit(json_t *v, uint32_t *out, struct req_error *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < 1)
        return req_fail(err, 400, "max_tokens must be a positive integer");
    json_int_t n = json_integer_value(v);
    *out = n > (json_int_t)LLMSIM_MAX_TOKENS ? LLMSIM_MAX_TOKENS : (uint32_t)n;
    return 0;
}

/* The prompts of one request, in either form. */
struct batch {
    json_t *texts;  /* rows: the instances; columns: a string or a list of them */
    json_t *limits; /* columns: max_tokens (a number or a list), or NULL */
    bool rows;
    size_t n;
};

static int row_instance(json_t *inst, size_t i, json_t **text, uint32_t *limit,
                        struct req_error *err)
{
    *text = NULL;
    *limit = 0;
    if (json_is_string(inst)) {
        *text = inst;
        return 0;
    }
    if (!json_is_object(inst))
        return req_fail(err, 400, "Expecting instance %zu to be a string or an object", i);
    const char *key;
    json_t *v;
    json_object_foreach (inst, key, v) {
        if (strcmp(key, "max_tokens") == 0) {
            if (get_limit(v, limit, err) < 0)
                return -EINVAL;
        } else if (json_is_string(v)) {
            if (*text)
                return req_fail(err, 400, "instance %zu has more than one string input", i);
            *text = v;
        }
    }
    if (!*text)
        return req_fail(err, 400, "instance %zu has no string input", i);
    return 0;
}

/* Prompt i and its max_tokens (0: none); also checks them. */
static int inst_at(const struct batch *bt, size_t i, json_t **text, uint32_t *limit,
                   struct req_error *err)
{
    if (bt->rows)
        return row_instance(json_array_get(bt->texts, i), i, text, limit, err);
    *text = json_is_array(bt->texts) ? json_array_get(bt->texts, i) : bt->texts;
    *limit = 0;
    if (!json_is_string(*text))
        return req_fail(err, 400, "Expecting input %zu to be a string", i);
    if (!bt->limits)
        return 0;
    json_t *l = json_is_array(bt->limits) ? json_array_get(bt->limits, i) : bt->limits;
    if (!l)
        return req_fail(err, 400, "max_tokens has fewer entries than the inputs");
    return get_limit(l, limit, err);
}

/* "inputs": a prompt, a list of them, or {"name": either, "max_tokens": ...}. */
static int columns_batch(json_t *in, struct batch *bt, struct req_error *err)
{
    bt->rows = false;
    bt->texts = in;
    if (json_is_object(in)) {
        bt->texts = NULL;
        const char *key;
        json_t *v;
        json_object_foreach (in, key, v) {
            if (strcmp(key, "max_tokens") == 0) {
                bt->limits = v;
            } else if (json_is_string(v) || json_is_array(v)) {
                if (bt->texts)
                    return req_fail(err, 400, "'inputs' has more than one string input");
                bt->texts = v;
            }
        }
        if (!bt->texts)
            return req_fail(err, 400, "'inputs' has no string input");
    }
    if (json_is_string(bt->texts)) {
        bt->n = 1;
        return 0;
    }
    if (!json_is_array(bt->texts))
        return req_fail(err, 400, "Expecting 'inputs' to be a string, a list or an object");
    bt->n = json_array_size(bt->texts);
    return 0;
}

static int get_batch(json_t *root, struct batch *bt, struct req_error *err)
{
    memset(bt, 0, sizeof(*bt));
    json_t *inst = json_object_get(root, "instances");
    json_t *in = json_object_get(root, "inputs");
    if (inst && in)
        return req_fail(err, 400, "Not allowed to specify both 'instances' and 'inputs' keys");
    if (!inst && !in)
        return req_fail(err, 400, "Missing 'instances' or 'inputs' key");
    if (in) {
        if (columns_batch(in, bt, err) < 0)
            return -EINVAL;
    } else {
        if (!json_is_array(inst))
            return req_fail(err, 400, "Expecting 'instances' to be an list/array");
        bt->rows = true;
        bt->texts = inst;
        bt->n = json_array_size(inst);
    }
    if (bt->n == 0)
        return req_fail(err, 400, "Expecting '%s' to be a non-empty list",
                        in ? "inputs" : "instances");
    if (bt->n > UINT32_MAX / 8)
        return req_fail(err, 400, "too many instances");
    return 0;
}

static int check_signature(json_t *root, struct req_error *err)
{
    json_t *sig = json_object_get(root, "signature_name");
    if (!sig || json_is_null(sig))
        return 0;
    if (!json_is_string(sig))
        return req_fail(err, 400, "'signature_name' must be a string");
    if (strcmp(json_string_value(sig), "serving_default") != 0)
        return req_fail(err, 400, "Serving signature name: \"%.200s\" not found in signature def",
                        json_string_value(sig));
    return 0;
}

int tfs_parse(const char *body, size_t len, uint32_t max_model_len, struct req_gen *g,
              bool *columns, struct req_error *err)
{
    memset(g, 0, sizeof(*g));
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    if (!root)
        return req_fail(err, 400, "JSON Parse error: %s at offset: %d", je.text, je.position);
    int rc = -EINVAL;
    struct batch bt;
    if (!json_is_object(root)) {
        req_fail(err, 400, "JSON Value is not an object");
        goto out;
    }
    if (check_signature(root, err) < 0 || get_batch(root, &bt, err) < 0)
        goto out;
    uint64_t bytes = 0;
    bool unlimited = false;
    struct req_blockhash bh;
    req_blocks_init(&bh, g);
    for (size_t i = 0; i < bt.n; i++) {
        json_t *text;
        uint32_t limit;
        if (inst_at(&bt, i, &text, &limit, err) < 0)
            goto out;
        bytes += json_string_length(text);
        req_blocks_feed(&bh, json_string_value(text), json_string_length(text));
        if (limit == 0)
            unlimited = true;
        else if (limit > g->max_tokens)
            g->max_tokens = limit;
    }
    if (unlimited)
        g->max_tokens = 0; /* the longest instance is as long as the answer */
    g->n_inst = (uint32_t)bt.n;
    if (bt.n > 1) {
        g->inst_len = malloc(bt.n * sizeof(*g->inst_len));
        if (!g->inst_len) {
            req_fail(err, 500, "llmsim: out of memory");
            goto out;
        }
        for (size_t i = 0; i < bt.n; i++) {
            json_t *text;
            (void)inst_at(&bt, i, &text, &g->inst_len[i], err);
        }
    }
    *columns = !bt.rows;
    /* TF Serving has no context window; stay inside llmsim's. */
    uint64_t pt = bytes / 4;
    if (pt >= max_model_len)
        pt = max_model_len - 1;
    g->prompt_tokens = pt < 1 ? 1 : (uint32_t)pt;
    if (g->max_tokens > max_model_len - g->prompt_tokens)
        g->max_tokens = max_model_len - g->prompt_tokens;
    rc = 0;
out:
    json_decref(root);
    return rc;
}
