/* continuation — see continuation.h. */
#include "dataplane/continuation.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/route.h"

static int append(struct cont_text *t, const char *s, size_t n)
{
    if (!n)
        return 0;
    if (t->len + n > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->len + n)
            cap *= 2;
        char *np = realloc(t->p, cap);
        if (!np)
            return -ENOMEM;
        t->p = np;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    return 0;
}

int cont_note(struct cont_text *t, bool chat, const char *ev, size_t len)
{
    /* the data line(s): OpenAI sends one per event */
    for (const char *p = ev, *end = ev + len; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if (eol - p > 6 && memcmp(p, "data:", 5) == 0) {
            const char *d = p + 5;
            if (*d == ' ')
                d++;
            json_t *root = json_loadb(d, (size_t)(eol - d), 0, NULL);
            json_t *c0 = json_array_get(json_object_get(root, "choices"), 0);
            json_t *s = chat ? json_object_get(json_object_get(c0, "delta"), "content")
                             : json_object_get(c0, "text");
            int rc = 0;
            if (json_is_string(s))
                rc = append(t, json_string_value(s), json_string_length(s));
            json_decref(root);
            if (rc < 0)
                return rc;
        }
        p = eol + 1;
    }
    return 0;
}

/* max_tokens and max_completion_tokens lose what was sent already. */
static int shrink_limit(json_t *root, const char *key, uint32_t sent)
{
    json_t *v = json_object_get(root, key);
    if (!json_is_integer(v))
        return 0;
    json_int_t left = json_integer_value(v) - (json_int_t)sent;
    if (left < 1)
        return -ENOTSUP;
    return json_object_set_new(root, key, json_integer(left)) == 0 ? 0 : -ENOMEM;
}

int cont_request(const struct cont_text *t, bool chat, uint32_t tokens_sent, const char *body,
                 size_t body_len, const char *head, size_t head_len, char **nhead,
                 uint32_t *nhead_len, uint32_t *nhead_cap, char **nbody, size_t *nbody_len)
{
    json_t *root = json_loadb(body, body_len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return -EINVAL;
    }
    int rc = -ENOMEM;
    if (chat) {
        json_t *msgs = json_object_get(root, "messages");
        if (!json_is_array(msgs)) {
            rc = -EINVAL;
            goto out;
        }
        /* json_pack takes the string's reference, the array the object's */
        json_t *m =
            json_pack("{s:s, s:s%}", "role", "assistant", "content", t->p ? t->p : "", t->len);
        if (!m || json_array_append_new(msgs, m) < 0 ||
            json_object_set_new(root, "continue_final_message", json_true()) < 0 ||
            json_object_set_new(root, "add_generation_prompt", json_false()) < 0)
            goto out;
    } else {
        json_t *p = json_object_get(root, "prompt");
        if (!json_is_string(p)) {
            rc = -ENOTSUP;
            goto out;
        }
        size_t pl = json_string_length(p);
        char *joined = malloc(pl + t->len + 1);
        if (!joined)
            goto out;
        memcpy(joined, json_string_value(p), pl);
        if (t->len)
            memcpy(joined + pl, t->p, t->len);
        json_t *np = json_stringn(joined, pl + t->len);
        free(joined);
        if (!np || json_object_set_new(root, "prompt", np) < 0)
            goto out;
    }
    rc = shrink_limit(root, "max_tokens", tokens_sent);
    if (rc == 0 && chat)
        rc = shrink_limit(root, "max_completion_tokens", tokens_sent);
    if (rc < 0)
        goto out;
    rc = -ENOMEM;
    char *nb = json_dumps(root, JSON_COMPACT);
    if (!nb)
        goto out;
    /* The head ends with the Content-Length route_finish_head added. */
    const char *cl = NULL;
    for (const char *p = head;
         (p = memmem(p, head_len - (size_t)(p - head), "Content-Length: ", 16)) != NULL; p += 16)
        cl = p;
    size_t keep = cl ? (size_t)(cl - head) : head_len;
    char *h = malloc(keep + 1);
    if (!h) {
        free(nb);
        goto out;
    }
    memcpy(h, head, keep);
    uint32_t hl = (uint32_t)keep, hc = (uint32_t)keep + 1;
    if (route_finish_head(&h, &hl, &hc, true, strlen(nb)) < 0) {
        free(h);
        free(nb);
        goto out;
    }
    *nhead = h;
    *nhead_len = hl;
    *nhead_cap = hc;
    *nbody = nb;
    *nbody_len = strlen(nb);
    rc = 0;
out:
    json_decref(root);
    return rc;
}

void cont_text_free(struct cont_text *t)
{
    free(t->p);
    t->p = NULL;
    t->len = t->cap = 0;
}
