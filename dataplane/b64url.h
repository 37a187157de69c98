/*
 * b64url — decodes base64url (RFC 4648 section 5), as a client sends its
 * HTTP2-Settings in an `Upgrade: h2c` request.  Padding is optional and
 * ends the input; any byte outside the alphabet is an error.  Trailing
 * bits that do not make a whole byte are dropped.  Pure; no allocation.
 */
#ifndef SLUICE_B64URL_H
#define SLUICE_B64URL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Bytes written to out (at most cap), or -1: a bad byte, or out too small. */
ssize_t b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap);

#endif
