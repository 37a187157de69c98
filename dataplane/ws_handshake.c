/* ws_handshake — see ws_handshake.h. */
#include "dataplane/ws_handshake.h"

#include <stdbool.h>
#include <string.h>

static bool b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

int ws_handshake_check(const struct h1_request *req, const char **why)
{
    const struct h1_header *h = req->headers;
    uint32_t n = req->n_headers;
    const struct h1_header *up = h1_header_find(h, n, "upgrade");
    const struct h1_header *key = h1_header_find(h, n, "sec-websocket-key");
    const struct h1_header *ver = h1_header_find(h, n, "sec-websocket-version");
    if (!up || !h1_list_has_token(up->value, up->value_len, "websocket") ||
        !h1_connection_names(h, n, "upgrade", 7)) {
        *why = "expected a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)";
        return -1;
    }
    if (!ver || ver->value_len != 2 || memcmp(ver->value, "13", 2) != 0) {
        *why = "Sec-WebSocket-Version must be 13";
        return -1;
    }
    /* 16 random bytes, base64: 22 characters of its alphabet, then "==" */
    bool ok = key && key->value_len == 24 && memcmp(key->value + 22, "==", 2) == 0;
    for (size_t i = 0; ok && i < 22; i++)
        ok = b64_char(key->value[i]);
    if (!ok) {
        *why = "Sec-WebSocket-Key must be 16 bytes in base64";
        return -1;
    }
    return 0;
}
