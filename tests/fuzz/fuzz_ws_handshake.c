/*
 * libFuzzer target for the WebSocket upgrade: the request head as parsed by
 * h1_parse_request, then ws_handshake_check.  Besides crashes: an accepted
 * handshake must have exactly the fields RFC 6455 4.2.1 asks for (checked
 * here by a scan of the raw head, independent of h1_header_find), and a
 * refused one must say why.  The first input byte picks the limits.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dataplane/h1_parser.h"
#include "dataplane/ws_handshake.h"

#define NHDR 32

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The value of the first field <name> in the parsed headers, found by a
 * plain loop (not h1_header_find). */
static const struct h1_header *first(const struct h1_request *r, const char *name)
{
    for (uint32_t i = 0; i < r->n_headers; i++)
        if (r->headers[i].name_len == strlen(name) &&
            strncasecmp(r->headers[i].name, name, r->headers[i].name_len) == 0)
            return &r->headers[i];
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct h1_limits lim = {
        .max_request_line = 64 + (data[0] & 0x0f) * 256,
        .max_header_bytes = 256 + (data[0] >> 4) * 1024,
        .max_headers = NHDR,
        .max_body = 1 << 20,
    };
    size_t n = size - 1;
    char *buf = malloc(n ? n : 1);
    CHECK(buf);
    memcpy(buf, data + 1, n);
    struct h1_header hdrs[NHDR];
    struct h1_request req = {.headers = hdrs};
    int rc = h1_parse_request(buf, n, &lim, &req);
    if (rc > 0) {
        const char *why = NULL;
        int ok = ws_handshake_check(&req, &why);
        if (ok == 0) {
            CHECK(why == NULL);
            const struct h1_header *ver = first(&req, "sec-websocket-version");
            const struct h1_header *key = first(&req, "sec-websocket-key");
            CHECK(ver && ver->value_len == 2 && memcmp(ver->value, "13", 2) == 0);
            CHECK(key && key->value_len == 24 && key->value[22] == '=' && key->value[23] == '=');
            CHECK(first(&req, "upgrade") && first(&req, "connection"));
        } else {
            CHECK(ok == -1 && why != NULL && why[0] != '\0');
        }
    }
    free(buf);
    return 0;
}
