/*
 * config_fixture — what the config test files share: loading a config text
 * from a temporary file, checking it loaded or which errors it gave, and
 * table-driven cases.  Header-only; each test file includes it once.
 */
#ifndef SLUICE_TEST_CONFIG_FIXTURE_H
#define SLUICE_TEST_CONFIG_FIXTURE_H

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/config.h"

/* ---- helpers ------------------------------------------------------------ */

struct loaded {
    struct config cfg;
    struct config_errors errs;
    char path[64];
    int rc;
};

static inline void write_tmp(char *path, size_t len, const char *data, size_t n)
{
    snprintf(path, len, "/tmp/sluice_cfg_test_XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
    cr_assert_eq(write(fd, data, n), (ssize_t)n);
    close(fd);
}

/* Loads <n> bytes of config text; the file is gone afterwards. */
static inline struct loaded *load_bytes(const char *data, size_t n)
{
    struct loaded *l = calloc(1, sizeof *l);
    cr_assert_not_null(l);
    write_tmp(l->path, sizeof l->path, data, n);
    l->rc = config_load(&l->cfg, l->path, &l->errs);
    unlink(l->path);
    return l;
}

static inline struct loaded *load(const char *text)
{
    return load_bytes(text, strlen(text));
}

static inline void done(struct loaded *l)
{
    config_free(&l->cfg);
    free(l);
}

static inline void dump_errors(const struct loaded *l)
{
    for (unsigned i = 0; i < l->errs.n; i++)
        fprintf(stderr, "  got: %s\n", l->errs.msg[i]);
}

static inline void expect_ok(const struct loaded *l)
{
    if (l->rc != 0 || l->errs.n != 0)
        dump_errors(l);
    cr_assert_eq(l->rc, 0, "config_load returned %d", l->rc);
    cr_assert_eq(l->errs.n, 0);
}

/* Each of <exp> is the message after the path: ":3: unknown key ...". */
static inline void expect_errors(const struct loaded *l, const char *const *exp, size_t n)
{
    char want[CONFIG_ERROR_LEN + 64];
    if (l->errs.n != n)
        dump_errors(l);
    cr_assert_eq(l->rc, -EINVAL, "config_load returned %d", l->rc);
    cr_assert_eq(l->errs.n, n, "%u errors, expected %zu", l->errs.n, n);
    for (size_t i = 0; i < n; i++) {
        snprintf(want, sizeof want, "%s%s", l->path, exp[i]);
        cr_expect_str_eq(l->errs.msg[i], want, "error %zu:\n  got:  %s\n  want: %s", i,
                         l->errs.msg[i], want);
    }
}

#define EXPECT_ERRORS(l, ...)                                                                      \
    do {                                                                                           \
        static const char *const exp_[] = {__VA_ARGS__};                                           \
        expect_errors(l, exp_, sizeof exp_ / sizeof exp_[0]);                                      \
    } while (0)

static inline uint16_t addr_port(const struct config_addr *a)
{
    if (a->ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

static inline void expect_ipv4(const struct config_addr *a, const char *ip, uint16_t port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
    char buf[INET_ADDRSTRLEN];
    cr_assert_eq(a->ss.ss_family, AF_INET);
    cr_assert_eq(a->len, sizeof(struct sockaddr_in));
    cr_assert_not_null(inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf));
    cr_assert_str_eq(buf, ip);
    cr_assert_eq(addr_port(a), port);
}

static inline void expect_ipv6(const struct config_addr *a, const char *ip, uint16_t port)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
    char buf[INET6_ADDRSTRLEN];
    cr_assert_eq(a->ss.ss_family, AF_INET6);
    cr_assert_eq(a->len, sizeof(struct sockaddr_in6));
    cr_assert_not_null(inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf));
    cr_assert_str_eq(buf, ip);
    cr_assert_eq(addr_port(a), port);
}

#define A16 "aaaaaaaaaaaaaaaa"

static const char KEY_A[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
static const char KEY_B[] = "60303AE22B998861BCE3B28F33EEC1BE758A213C86C93C076DBE9F558C11C752";

struct case_ {
    const char *text; /* file */
    const char *err;  /* the one error after the path, NULL = loads */
};

static inline void run_cases(const struct case_ *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct loaded *l = load(cases[i].text);
        if (!cases[i].err) {
            if (l->rc != 0)
                fprintf(stderr, "case: %s", cases[i].text);
            expect_ok(l);
        } else {
            if (l->errs.n != 1 || !strstr(l->errs.msg[0], cases[i].err))
                fprintf(stderr, "case: %s", cases[i].text);
            expect_errors(l, &cases[i].err, 1);
        }
        done(l);
    }
}

static inline void expect_default_values(const struct config *c)
{
    expect_ipv4(&c->listen, "0.0.0.0", 8080);
    cr_assert_str_eq(c->listen.text, "0.0.0.0:8080");
    expect_ipv4(&c->tls_listen, "0.0.0.0", 8443);
    cr_assert_str_eq(c->tls_listen.text, "0.0.0.0:8443");
    cr_assert_str_eq(c->tls_cert, "");
    cr_assert_str_eq(c->tls_key, "");
    expect_ipv4(&c->admin_listen, "127.0.0.1", 9090);
    cr_assert_str_eq(c->admin_listen.text, "127.0.0.1:9090");
    cr_assert_str_eq(c->control_socket, "/run/sluice/control.sock");
    cr_assert_str_eq(c->state_dir, "/var/lib/sluice");
    cr_assert_eq(c->workers, 0);
    cr_assert_eq(c->drain_timeout_ms, 30000);
    cr_assert_eq(c->max_connections, 16384);
    cr_assert_eq(c->batch_wait_us, 0);
    cr_assert_eq(c->log_level, 2); /* LOG_INFO */

    cr_assert_eq(c->max_request_line, 8192);
    cr_assert_eq(c->max_header_bytes, 32768);
    cr_assert_eq(c->max_headers, 100);
    cr_assert_eq(c->max_body_size, 4u << 20);
    cr_assert_eq(c->header_timeout_ms, 10000);
    cr_assert_eq(c->body_timeout_ms, 30000);
    cr_assert_eq(c->keepalive_timeout_ms, 75000);
    cr_assert_eq(c->keepalive_requests, 1000);

    cr_assert_eq(c->connect_timeout_ms, 3000);
    cr_assert_eq(c->upstream_keepalive, 1024);
    cr_assert_eq(c->upstream_idle_timeout_ms, 60000);

    cr_assert_eq(c->first_token_timeout_ms, 60000);
    cr_assert_eq(c->token_idle_timeout_ms, 30000);
    cr_assert_eq(c->stream_buffer_max, 256u << 10);
    cr_assert_eq(c->slow_consumer_timeout_ms, 10000);
    cr_assert_eq(c->max_event_size, 256u << 10);

    cr_assert_eq(c->slab_size, 16384);
    cr_assert_eq(c->slabs, 1024);
    cr_assert_eq(c->recv_buffer_size, 4096);
    cr_assert_eq(c->recv_buffers, 1024);
    cr_assert_eq(c->send_zc_threshold, 0);

    cr_assert_eq(c->n_backends, 1);
    cr_assert_not_null(c->backends);
    const struct config_backend *b = &c->backends[0];
    cr_assert_str_eq(b->name, "default");
    cr_assert_str_eq(b->url, "http://127.0.0.1:8000");
    cr_assert_str_eq(b->host, "127.0.0.1");
    cr_assert_eq(b->port, 8000);
    expect_ipv4(&b->addr, "127.0.0.1", 8000);
    cr_assert_str_eq(b->addr.text, "127.0.0.1:8000");
    cr_assert_eq(b->kind, BACKEND_OPENAI);

    cr_assert_eq(c->auth_enabled, false);
    cr_assert_eq(c->n_tenants, 0);
    cr_assert_null(c->tenants);
}

#endif
