/* tls — see tls.h. */
#include "dataplane/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <wolfssl/wolfio.h>
#include <sys/random.h>

#include "dataplane/client.h"
#include "shared/log.h"

/* Plaintext is encrypted while the ciphertext queue holds less than this:
 * the rest stays in c->out, where the relay's backpressure sees it. */
#define TLS_OUT_HIGH (64u * 1024)

struct tls_conn {
    WOLFSSL *ssl;
    struct outq out; /* ciphertext to send */
    const char *in;  /* ciphertext being fed */
    size_t in_len;
    bool done; /* handshake complete */
};

bool tls_configured(const struct config *cfg)
{
    return cfg->tls_cert[0] && cfg->tls_key[0];
}

static int on_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    struct tls_conn *t = ((struct conn *)ctx)->tls;
    if (!t->in_len)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    size_t n = (size_t)sz < t->in_len ? (size_t)sz : t->in_len;
    memcpy(buf, t->in, n);
    t->in += n;
    t->in_len -= n;
    return (int)n;
}

static int on_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    struct conn *c = ctx;
    if (outq_write(&c->tls->out, &c->w->slabs, buf, (size_t)sz) < 0)
        return WOLFSSL_CBIO_ERR_GENERAL; /* the pool is dry: the connection goes */
    outq_commit(&c->tls->out);
    return sz;
}

static void once_init(void)
{
    static bool done;
    if (!done) {
        wolfSSL_Init();
        done = true;
    }
}

/* Session tickets sealed with ChaCha20-Poly1305 under the generation's key
 * (config.tls_ticket_key), so a ticket from any worker resumes on any
 * other: the kernel spreads a client's connections over the workers. */
static int ticket_cb(WOLFSSL *ssl, unsigned char name[WOLFSSL_TICKET_NAME_SZ],
                     unsigned char iv[WOLFSSL_TICKET_IV_SZ],
                     unsigned char mac[WOLFSSL_TICKET_MAC_SZ], int enc, unsigned char *ticket,
                     int len, int *out_len, void *ctx)
{
    (void)ssl;
    const uint8_t *k = ctx;
    uint8_t aad[WOLFSSL_TICKET_NAME_SZ + WOLFSSL_TICKET_IV_SZ + 4];
    if (enc) {
        memcpy(name, k, WOLFSSL_TICKET_NAME_SZ);
        if (getrandom(iv, WOLFSSL_TICKET_IV_SZ, 0) != WOLFSSL_TICKET_IV_SZ)
            return WOLFSSL_TICKET_RET_FATAL;
    } else if (memcmp(name, k, WOLFSSL_TICKET_NAME_SZ) != 0) {
        return WOLFSSL_TICKET_RET_REJECT; /* another key (an old generation) */
    }
    memcpy(aad, name, WOLFSSL_TICKET_NAME_SZ);
    memcpy(aad + WOLFSSL_TICKET_NAME_SZ, iv, WOLFSSL_TICKET_IV_SZ);
    memcpy(aad + WOLFSSL_TICKET_NAME_SZ + WOLFSSL_TICKET_IV_SZ, &len, 4);
    int rc;
    if (enc) {
        memset(mac, 0, WOLFSSL_TICKET_MAC_SZ);
        rc = wc_ChaCha20Poly1305_Encrypt(k + 16, iv, aad, sizeof aad, ticket, (word32)len, ticket,
                                         mac);
    } else {
        rc = wc_ChaCha20Poly1305_Decrypt(k + 16, iv, aad, sizeof aad, ticket, (word32)len, mac,
                                         ticket);
    }
    if (rc != 0)
        return enc ? WOLFSSL_TICKET_RET_FATAL : WOLFSSL_TICKET_RET_REJECT;
    *out_len = len;
    return WOLFSSL_TICKET_RET_OK;
}

struct WOLFSSL_CTX *tls_ctx_new(const struct config *cfg, char *why, size_t why_len)
{
    once_init();
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
    const char *what = NULL;
    if (!ctx)
        what = "cannot create a TLS context";
    else if (wolfSSL_CTX_SetMinVersion(ctx, cfg->tls_min_version == CONFIG_TLS_12
                                                ? WOLFSSL_TLSV1_2
                                                : WOLFSSL_TLSV1_3) != WOLFSSL_SUCCESS)
        what = "cannot set the lowest TLS version (tls_min_version)";
    else if (wolfSSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != WOLFSSL_SUCCESS)
        what = "tls_cert: not a readable PEM certificate chain";
    else if (wolfSSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, WOLFSSL_FILETYPE_PEM) !=
             WOLFSSL_SUCCESS)
        what = "tls_key: not a readable PEM private key";
    else if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS)
        what = "tls_key does not match the certificate of tls_cert";
    if (what) {
        snprintf(why, why_len, "%s (tls_cert %s, tls_key %s)", what, cfg->tls_cert, cfg->tls_key);
        if (ctx)
            wolfSSL_CTX_free(ctx);
        return NULL;
    }
    wolfSSL_CTX_SetIORecv(ctx, on_recv);
    wolfSSL_CTX_SetIOSend(ctx, on_send);
    wolfSSL_CTX_set_TicketEncCb(ctx, ticket_cb);
    wolfSSL_CTX_set_TicketEncCtx(ctx, (void *)cfg->tls_ticket_key);
    return ctx;
}

void tls_ctx_free(struct WOLFSSL_CTX *ctx)
{
    if (ctx)
        wolfSSL_CTX_free(ctx);
}

/* An in-memory handshake against a client that checks nothing but the
 * server's signature: the only sure test that the key is the
 * certificate's (wolfSSL_CTX_check_private_key does not compare them in
 * Debian's build). */
struct pipe_buf {
    char b[32768];
    size_t len;
};
struct self_pipe {
    struct pipe_buf to_server, to_client;
};

static int pipe_read(struct pipe_buf *pb, char *buf, int sz)
{
    if (!pb->len)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    size_t n = (size_t)sz < pb->len ? (size_t)sz : pb->len;
    memcpy(buf, pb->b, n);
    memmove(pb->b, pb->b + n, pb->len - n);
    pb->len -= n;
    return (int)n;
}

static int pipe_write(struct pipe_buf *pb, const char *buf, int sz)
{
    if ((size_t)sz > sizeof pb->b - pb->len)
        return WOLFSSL_CBIO_ERR_WANT_WRITE;
    memcpy(pb->b + pb->len, buf, (size_t)sz);
    pb->len += (size_t)sz;
    return sz;
}

static int srv_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    return pipe_read(&((struct self_pipe *)ctx)->to_server, buf, sz);
}
static int srv_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    return pipe_write(&((struct self_pipe *)ctx)->to_client, buf, sz);
}
static int cli_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    return pipe_read(&((struct self_pipe *)ctx)->to_client, buf, sz);
}
static int cli_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    return pipe_write(&((struct self_pipe *)ctx)->to_server, buf, sz);
}

static bool self_handshake(WOLFSSL_CTX *sctx)
{
    WOLFSSL_CTX *cctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
    struct self_pipe *pp = calloc(1, sizeof *pp);
    WOLFSSL *srv = NULL, *cli = NULL;
    bool ok = false;
    if (!cctx || !pp)
        goto out;
    wolfSSL_CTX_set_verify(cctx, WOLFSSL_VERIFY_NONE, NULL);
    wolfSSL_CTX_SetIORecv(cctx, cli_recv);
    wolfSSL_CTX_SetIOSend(cctx, cli_send);
    srv = wolfSSL_new(sctx);
    cli = wolfSSL_new(cctx);
    if (!srv || !cli)
        goto out;
    wolfSSL_SSLSetIORecv(srv, srv_recv);
    wolfSSL_SSLSetIOSend(srv, srv_send);
    wolfSSL_SetIOReadCtx(srv, pp);
    wolfSSL_SetIOWriteCtx(srv, pp);
    wolfSSL_SetIOReadCtx(cli, pp);
    wolfSSL_SetIOWriteCtx(cli, pp);
    bool sdone = false, cdone = false;
    for (int round = 0; round < 32 && !(sdone && cdone); round++) {
        if (!cdone) {
            int rc = wolfSSL_connect(cli);
            int e = rc == WOLFSSL_SUCCESS ? 0 : wolfSSL_get_error(cli, rc);
            if (rc == WOLFSSL_SUCCESS)
                cdone = true;
            else if (e != WOLFSSL_ERROR_WANT_READ && e != WOLFSSL_ERROR_WANT_WRITE)
                goto out;
        }
        if (!sdone) {
            int rc = wolfSSL_accept(srv);
            int e = rc == WOLFSSL_SUCCESS ? 0 : wolfSSL_get_error(srv, rc);
            if (rc == WOLFSSL_SUCCESS)
                sdone = true;
            else if (e != WOLFSSL_ERROR_WANT_READ && e != WOLFSSL_ERROR_WANT_WRITE)
                goto out;
        }
    }
    ok = sdone && cdone;
out:
    if (srv)
        wolfSSL_free(srv);
    if (cli)
        wolfSSL_free(cli);
    if (cctx)
        wolfSSL_CTX_free(cctx);
    free(pp);
    return ok;
}

int tls_check(const struct config *cfg, char *why, size_t why_len)
{
    if (!tls_configured(cfg))
        return 0;
    WOLFSSL_CTX *ctx = tls_ctx_new(cfg, why, why_len);
    if (!ctx)
        return -EINVAL;
    bool ok = self_handshake(ctx);
    wolfSSL_CTX_free(ctx);
    if (!ok) {
        snprintf(why, why_len,
                 "tls_key does not match the certificate of tls_cert (a test handshake failed; "
                 "tls_cert %s, tls_key %s)",
                 cfg->tls_cert, cfg->tls_key);
        return -EINVAL;
    }
    return 0;
}

int tls_conn_start(struct conn *c, struct WOLFSSL_CTX *ctx, bool offer_h2)
{
    struct tls_conn *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->ssl = wolfSSL_new(ctx);
    if (!t->ssl) {
        free(t);
        return -ENOMEM;
    }
    outq_init(&t->out);
    wolfSSL_SetIOReadCtx(t->ssl, c);
    wolfSSL_SetIOWriteCtx(t->ssl, c);
    char protos[] = "h2,http/1.1";
    const char *list = offer_h2 ? protos : protos + 3;
    wolfSSL_UseALPN(t->ssl, (char *)list, (unsigned)strlen(list),
                    WOLFSSL_ALPN_CONTINUE_ON_MISMATCH);
    c->tls = t;
    return 0;
}

void tls_conn_free(struct conn *c)
{
    struct tls_conn *t = c->tls;
    if (!t)
        return;
    wolfSSL_free(t->ssl);
    outq_reset(&t->out, &c->w->slabs);
    free(t);
    c->tls = NULL;
}

void tls_feed(struct conn *c, const char *p, size_t n)
{
    c->tls->in = p;
    c->tls->in_len = n;
}

ssize_t tls_read(struct conn *c, char *buf, size_t cap, bool *h2)
{
    struct tls_conn *t = c->tls;
    if (!t->done) {
        int rc = wolfSSL_accept(t->ssl);
        if (rc != WOLFSSL_SUCCESS) {
            int err = wolfSSL_get_error(t->ssl, rc);
            if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE)
                return 0;
            char msg[WOLFSSL_MAX_ERROR_SZ];
            log_info("tls: handshake failed: %s", wolfSSL_ERR_error_string((unsigned)err, msg));
            shm_add(&c->w->slot->c.tls_failures, 1);
            return -EPROTO;
        }
        t->done = true;
        shm_add(&c->w->slot->c.tls_handshakes, 1);
        if (wolfSSL_session_reused(t->ssl))
            shm_add(&c->w->slot->c.tls_resumed, 1);
        char *proto = NULL;
        unsigned short plen = 0;
        if (wolfSSL_ALPN_GetProtocol(t->ssl, &proto, &plen) == WOLFSSL_SUCCESS && plen == 2 &&
            memcmp(proto, "h2", 2) == 0)
            *h2 = true;
    }
    int n = wolfSSL_read(t->ssl, buf, (int)cap);
    if (n > 0)
        return n;
    int err = wolfSSL_get_error(t->ssl, n);
    if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE)
        return 0;
    if (err == WOLFSSL_ERROR_ZERO_RETURN)
        return -ECONNRESET; /* close_notify: the client is done */
    shm_add(&c->w->slot->c.tls_failures, 1);
    return -EPROTO;
}

ssize_t tls_encrypt(struct conn *c)
{
    struct tls_conn *t = c->tls;
    if (!t->done)
        return 0;
    size_t taken = 0;
    while (outq_pending(&t->out) < TLS_OUT_HIGH) {
        const char *ptr;
        uint32_t slab;
        size_t len = outq_span(&c->out, &c->w->slabs, &ptr, &slab);
        if (!len)
            break;
        if (len > 16384)
            len = 16384; /* one record at a time keeps the queue check honest */
        int n = wolfSSL_write(t->ssl, ptr, (int)len);
        if (n <= 0)
            return -EPROTO;
        outq_consume(&c->out, &c->w->slabs, (size_t)n);
        taken += (size_t)n;
    }
    return (ssize_t)taken;
}

struct outq *tls_outq(struct conn *c)
{
    return &c->tls->out;
}
