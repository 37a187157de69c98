/*
 * tls — TLS (1.2 and 1.3) on client connections with wolfSSL, driven by the
 * worker's io_uring loop: wolfSSL's custom I/O callbacks read from the bytes
 * a receive just delivered and write ciphertext into a per-connection outq,
 * which the connection sends in place of its plaintext outq.  ALPN offers
 * h2 (when HTTP/2 is enabled and the connection is inside the
 * http2_transport rollout) and http/1.1.
 *
 * Certificates: one WOLFSSL_CTX per worker, loaded when the worker starts.
 * A reload (SIGHUP) starts new workers, which load the files again, while
 * the old ones finish their connections with the old certificate; the
 * supervisor loads the pair first (tls_check) and refuses a config whose
 * certificate or key is bad or does not match.
 *
 * Owned by the worker that owns the connection; single-threaded.
 */
#ifndef SLUICE_TLS_H
#define SLUICE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "dataplane/outq.h"
#include "shared/config.h"

struct conn;
struct WOLFSSL_CTX;

/* TLS configured (tls_cert and tls_key set). */
bool tls_configured(const struct config *cfg);

/* Loads the certificate chain and key of <cfg> into a new context (NULL
 * and a reason in why on failure: unreadable, not PEM, key not matching). */
struct WOLFSSL_CTX *tls_ctx_new(const struct config *cfg, char *why, size_t why_len);
void tls_ctx_free(struct WOLFSSL_CTX *ctx);

/* 0, or -EINVAL with the reason: what the supervisor checks at start and
 * reload. */
int tls_check(const struct config *cfg, char *why, size_t why_len);

/* Starts TLS on a new connection; ALPN offers h2 when <offer_h2>.
 * 0 or -ENOMEM. */
int tls_conn_start(struct conn *c, struct WOLFSSL_CTX *ctx, bool offer_h2);
void tls_conn_free(struct conn *c);

/* Received ciphertext p[0..n): handed to wolfSSL by the next tls_read
 * calls. */
void tls_feed(struct conn *c, const char *p, size_t n);

/* Plaintext into buf: > 0 bytes, 0 = nothing more for now (handshake in
 * progress, or all fed bytes used), < 0 = the connection failed (alert
 * queued where TLS allows).  *h2 is set once, when the handshake completes
 * with ALPN h2. */
ssize_t tls_read(struct conn *c, char *buf, size_t cap, bool *h2);

/* Encrypts committed plaintext of c->out into the ciphertext queue, while
 * that holds less than its high mark; returns the plaintext bytes taken, or
 * < 0 on failure. */
ssize_t tls_encrypt(struct conn *c);

/* The ciphertext waiting to be sent. */
struct outq *tls_outq(struct conn *c);

#endif
