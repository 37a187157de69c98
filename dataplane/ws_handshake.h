/*
 * ws_handshake — checks a WebSocket opening handshake (RFC 6455 4.2.1) on a
 * parsed HTTP/1.1 request: `Upgrade: websocket`, `Connection: Upgrade`,
 * `Sec-WebSocket-Version: 13` and a 16-byte base64 `Sec-WebSocket-Key`.
 * A parser of outside bytes (with h1_parser), so it has a fuzz target.
 * Pure; no allocation.
 */
#ifndef SLUICE_WS_HANDSHAKE_H
#define SLUICE_WS_HANDSHAKE_H

#include "dataplane/h1_parser.h"

/* 0, or -1 (a 400) with a message in *why. */
int ws_handshake_check(const struct h1_request *req, const char **why);

#endif
