/*
 * libFuzzer target for the answers of translated backends: json_scan,
 * ollama.c's line and whole-answer translation, tfserving.c's answers.
 *
 * Input: one flag byte (chat or generate, usage asked, TF output name),
 * then a backend's line or body.  Checks, aborting on any failure:
 * - js_valid agrees with jansson on whether the bytes are one JSON value
 *   (jansson with JSON_DECODE_ANY and without NUL bytes; jansson refuses
 *   lone surrogate escapes that JSON's grammar allows, so only "json_scan
 *   refuses what jansson takes" is an error);
 * - a translated line yields events that are each "data: " + one valid JSON
 *   object (checked by jansson) + "\n\n", or "data: [DONE]\n\n", within the
 *   room ollama_line_room promises;
 * - a whole answer is valid JSON; an error message is a string.
 * (\\u0000 is valid JSON: the checks load with JSON_ALLOW_NUL.)
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/json_scan.h"
#include "dataplane/ollama.h"
#include "dataplane/tfserving.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ENSURE(c)                                                                                  \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static void check_event(const char *p, size_t n)
{
    ENSURE(n >= 8 && memcmp(p, "data: ", 6) == 0 && memcmp(p + n - 2, "\n\n", 2) == 0);
    if (n == 14 && memcmp(p, "data: [DONE]\n\n", 14) == 0)
        return;
    json_t *j = json_loadb(p + 6, n - 8, JSON_ALLOW_NUL, NULL);
    ENSURE(json_is_object(j));
    ENSURE(json_is_array(json_object_get(j, "choices")));
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned flags = data[0];
    const char *p = (const char *)data + 1;
    size_t n = size - 1;

    if (!memchr(p, '\0', n)) {
        json_t *j = json_loadb(p, n, JSON_DECODE_ANY, NULL);
        if (j)
            ENSURE(js_valid(p, p + n));
        json_decref(j);
    }

    struct ollama_tr t;
    ollama_tr_init(&t, flags & 1, flags & 2, "0123456789abcdef", 1);
    size_t room = ollama_line_room(n);
    char *out = malloc(room);
    struct ollama_events ev;
    int rc = ollama_line(&t, p, n, out, room, &ev);
    ENSURE(rc == 0 || rc == -EPROTO || rc == -ECONNABORTED);
    if (rc == 0) {
        ENSURE(ev.n <= OLLAMA_MAX_EVENTS);
        for (unsigned i = 0; i < ev.n; i++) {
            ENSURE(ev.off[i] + ev.len[i] <= room);
            check_event(out + ev.off[i], ev.len[i]);
        }
    }
    free(out);

    char *whole = NULL;
    size_t wl = 0;
    rc = ollama_whole(&t, p, n, &whole, &wl);
    ENSURE(rc == 0 || rc == -EPROTO || rc == -ECONNABORTED || rc == -ENOMEM);
    if (rc == 0) {
        json_t *j = json_loadb(whole, wl, JSON_ALLOW_NUL, NULL);
        ENSURE(json_is_object(j));
        json_decref(j);
    }
    free(whole);

    struct config_backend be = {0};
    if (flags & 4)
        snprintf(be.tf_output, sizeof be.tf_output, "out");
    char *text = NULL;
    size_t tl = 0;
    rc = tfs_answer(&be, p, n, &text, &tl);
    ENSURE(rc == 0 || rc == -EPROTO || rc == -ECONNABORTED || rc == -ENOMEM);
    ENSURE((rc == 0 || rc == -ECONNABORTED) == (text != NULL));
    free(text);
    return 0;
}
