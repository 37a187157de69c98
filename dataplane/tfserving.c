/* tfserving — see tfserving.h. */
#include "dataplane/tfserving.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/api_error.h"
#include "dataplane/oai_content.h"
#include "shared/sbuf.h"

/* A model name goes into the path as it is: only characters that need no
 * escaping there are accepted. */
static bool path_safe(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

struct text_out {
    struct sbuf *b;
    bool first; /* no separator before the first part */
};

/* oai_content's callback: parts joined with newlines. */
static void put_part(void *ctx, const char *s, size_t n)
{
    struct text_out *o = ctx;
    if (!o->first)
        sbuf_puts(o->b, "\n");
    o->first = false;
    sbuf_put(o->b, s, n);
}

static void put_text(struct sbuf *b, const json_t *content)
{
    struct text_out o = {b, true};
    oai_content_text(content, put_part, &o);
}

/* The prompt: a completion's, or a chat rendered as text. */
static int prompt_of(bool chat, json_t *root, struct sbuf *b, char *detail, size_t cap)
{
    if (!chat) {
        json_t *p = json_object_get(root, "prompt");
        if (json_is_array(p) && json_array_size(p) == 1)
            p = json_array_get(p, 0);
        if (!json_is_string(p)) {
            snprintf(detail, cap, "a TensorFlow Serving backend takes one string 'prompt'");
            return API_ERR_INVALID_FIELD;
        }
        put_text(b, p);
        return 0;
    }
    json_t *msgs = json_object_get(root, "messages");
    size_t n = json_array_size(msgs), i;
    json_t *m;
    json_array_foreach (msgs, i, m) {
        json_t *role = json_object_get(m, "role");
        if (n > 1) {
            sbuf_puts(b, json_is_string(role) ? json_string_value(role) : "user");
            sbuf_puts(b, ": ");
        }
        put_text(b, json_object_get(m, "content"));
        if (n > 1)
            sbuf_puts(b, "\n");
    }
    return 0;
}

int tfs_request(const struct config_backend *be, bool chat, const char *model, const char *body,
                size_t len, char **target, char **out, size_t *out_len, char *detail,
                size_t detail_cap)
{
    const char *name = be->tf_model[0] ? be->tf_model : model;
    if (!path_safe(name)) {
        snprintf(detail, detail_cap,
                 "model '%.64s' cannot be a TensorFlow Serving model name (letters, digits, "
                 "'-', '_', '.')",
                 name);
        return API_ERR_INVALID_FIELD;
    }
    json_t *root = json_loadb(body, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        snprintf(detail, detail_cap, "request body is not a JSON object");
        return API_ERR_INVALID_JSON;
    }
    struct sbuf p;
    sbuf_init(&p, 64u << 20);
    int err = prompt_of(chat, root, &p, detail, detail_cap);
    json_decref(root);
    if (err || p.err) {
        sbuf_free(&p);
        if (!err)
            snprintf(detail, detail_cap, "prompt too large");
        return err ? err : API_ERR_BODY_TOO_LARGE;
    }
    json_t *prompt = json_stringn(p.p ? p.p : "", p.len);
    sbuf_free(&p);
    json_t *inst = be->tf_input[0] ? json_pack("{s:o}", be->tf_input, prompt) : prompt;
    json_t *o = json_pack("{s:[o]}", "instances", inst);
    if (be->tf_signature[0])
        json_object_set_new(o, "signature_name", json_string(be->tf_signature));
    *out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    size_t tl = strlen(name) + 32;
    *target = malloc(tl);
    if (!*out || !*target) {
        free(*out);
        free(*target);
        snprintf(detail, detail_cap, "out of memory");
        return API_ERR_INTERNAL;
    }
    snprintf(*target, tl, "/v1/models/%s:predict", name);
    *out_len = strlen(*out);
    return 0;
}

int tfs_answer(const struct config_backend *be, const char *body, size_t len, char **text,
               size_t *text_len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    int rc = -EPROTO;
    *text = NULL;
    json_t *e = json_object_get(root, "error");
    json_t *t = NULL;
    if (json_is_string(e)) {
        t = e;
        rc = -ECONNABORTED;
    } else {
        /* row format ("predictions"), or columnar ("outputs") */
        json_t *pred = json_object_get(root, "predictions");
        if (!pred)
            pred = json_object_get(root, "outputs");
        if (json_is_array(pred))
            pred = json_array_get(pred, 0);
        t = be->tf_output[0] ? json_object_get(pred, be->tf_output) : pred;
        if (json_is_array(t) && json_array_size(t) == 1) /* a [1]-shaped output */
            t = json_array_get(t, 0);
        if (json_is_string(t))
            rc = 0;
    }
    if (json_is_string(t)) {
        *text = malloc(json_string_length(t) + 1);
        if (!*text) {
            rc = -ENOMEM;
        } else {
            memcpy(*text, json_string_value(t), json_string_length(t) + 1);
            *text_len = json_string_length(t);
        }
    }
    json_decref(root);
    return rc;
}
