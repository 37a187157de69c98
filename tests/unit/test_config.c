/*
 * Unit tests for shared/config: every default, every value syntax accepted
 * and refused, every error message with its line, inih's quirks (long lines,
 * BOM, comments, indentation) and the copy/free ownership rules.
 *
 * Config files are written to /tmp (mkstemp) and removed after loading.
 * Host names used: "localhost" (from /etc/hosts) and names under the
 * reserved ".invalid" domain, which never resolve.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/config.h"
#include "shared/rollout.h"

/* ---- helpers ------------------------------------------------------------ */

struct loaded {
    struct config cfg;
    struct config_errors errs;
    char path[64];
    int rc;
};

static void write_tmp(char *path, size_t len, const char *data, size_t n)
{
    snprintf(path, len, "/tmp/sluice_cfg_test_XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
    cr_assert_eq(write(fd, data, n), (ssize_t)n);
    close(fd);
}

/* Loads <n> bytes of config text; the file is gone afterwards. */
static struct loaded *load_bytes(const char *data, size_t n)
{
    struct loaded *l = calloc(1, sizeof *l);
    cr_assert_not_null(l);
    write_tmp(l->path, sizeof l->path, data, n);
    l->rc = config_load(&l->cfg, l->path, &l->errs);
    unlink(l->path);
    return l;
}

static struct loaded *load(const char *text)
{
    return load_bytes(text, strlen(text));
}

static void done(struct loaded *l)
{
    config_free(&l->cfg);
    free(l);
}

static void dump_errors(const struct loaded *l)
{
    for (unsigned i = 0; i < l->errs.n; i++)
        fprintf(stderr, "  got: %s\n", l->errs.msg[i]);
}

static void expect_ok(const struct loaded *l)
{
    if (l->rc != 0 || l->errs.n != 0)
        dump_errors(l);
    cr_assert_eq(l->rc, 0, "config_load returned %d", l->rc);
    cr_assert_eq(l->errs.n, 0);
}

/* Each of <exp> is the message after the path: ":3: unknown key ...". */
static void expect_errors(const struct loaded *l, const char *const *exp, size_t n)
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

static uint16_t addr_port(const struct config_addr *a)
{
    if (a->ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

static void expect_ipv4(const struct config_addr *a, const char *ip, uint16_t port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
    char buf[INET_ADDRSTRLEN];
    cr_assert_eq(a->ss.ss_family, AF_INET);
    cr_assert_eq(a->len, sizeof(struct sockaddr_in));
    cr_assert_not_null(inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf));
    cr_assert_str_eq(buf, ip);
    cr_assert_eq(addr_port(a), port);
}

static void expect_ipv6(const struct config_addr *a, const char *ip, uint16_t port)
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

/* ---- defaults ----------------------------------------------------------- */

static void expect_default_values(const struct config *c)
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

Test(config_defaults, every_key_has_its_documented_default)
{
    struct config c;
    cr_assert_eq(config_defaults(&c), 0);
    expect_default_values(&c);
    cr_assert_str_eq(c.path, "");
    config_free(&c);
}

Test(config_defaults, empty_file_gives_the_defaults)
{
    struct loaded *l = load("");
    expect_ok(l);
    expect_default_values(&l->cfg);
    cr_assert_str_eq(l->cfg.path, l->path);

    struct config d;
    cr_assert_eq(config_defaults(&d), 0);
    cr_assert_eq(memcmp(&d, &l->cfg, offsetof(struct config, backends)), 0);
    cr_assert_eq(memcmp(d.backends, l->cfg.backends, sizeof *d.backends), 0);
    config_free(&d);
    done(l);
}

/* Writing each default in a file gives exactly what config_defaults gives:
 * the schema's default text goes through the file's parser. */
Test(config_defaults, writing_each_default_changes_nothing)
{
    struct config d;
    cr_assert_eq(config_defaults(&d), 0);
    for (const struct config_key *k = config_schema(); k->section; k++) {
        if (strchr(k->section, '*'))
            continue;
        char text[512];
        snprintf(text, sizeof text, "[%s]\n%s = %s\n", k->section, k->name, k->def);
        struct loaded *l = load(text);
        expect_ok(l);
        cr_assert_eq(memcmp(&d, &l->cfg, offsetof(struct config, backends)), 0, "%s.%s", k->section,
                     k->name);
        done(l);
    }
    config_free(&d);
}

Test(config_defaults, free_zeroes_and_is_idempotent)
{
    struct config c;
    cr_assert_eq(config_defaults(&c), 0);
    config_free(&c);
    cr_assert_null(c.backends);
    cr_assert_eq(c.n_backends, 0);
    cr_assert_eq(c.max_headers, 0);
    config_free(&c);
    config_free(NULL);
}

/* ---- schema ------------------------------------------------------------- */

Test(config_schema, entries_are_complete_and_unique)
{
    static const char *const sections[] = {
        "server",  "http", "http2",    "cors",      "websocket", "rollout", "upstream", "stream",
        "buffers", "auth", "governor", "backend *", "tenant *",  "qos",     "slo *"};
    unsigned n = 0;
    for (const struct config_key *k = config_schema(); k->section; k++, n++) {
        cr_assert_not_null(k->name);
        cr_assert_not_null(k->def);
        cr_assert_not_null(k->help);
        cr_assert_gt(strlen(k->help), 5, "%s", k->name);
        bool known = false;
        for (size_t i = 0; i < sizeof sections / sizeof *sections; i++)
            known |= strcmp(k->section, sections[i]) == 0;
        cr_assert(known, "section %s", k->section);
        for (const struct config_key *o = config_schema(); o != k; o++)
            cr_assert(strcmp(o->section, k->section) != 0 || strcmp(o->name, k->name) != 0,
                      "%s.%s twice", k->section, k->name);
    }
    cr_assert_eq(n, 121);
}

static char *print_schema(bool markdown)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    config_schema_print(f, markdown);
    fclose(f);
    return buf;
}

Test(config_schema, markdown_table_lists_every_key)
{
    char *md = print_schema(true);
    static const char head[] = "| Section | Key | Default | Meaning |\n|---|---|---|---|\n";
    cr_assert(strncmp(md, head, strlen(head)) == 0, "%s", md);
    for (const struct config_key *k = config_schema(); k->section; k++) {
        char sec[32], row[256];
        snprintf(sec, sizeof sec, "%s", k->section);
        char *star = strstr(sec, " *");
        if (star)
            snprintf(star, sizeof sec - (size_t)(star - sec), " NAME");
        if (k->def[0])
            snprintf(row, sizeof row, "| %s | %s | `%s` | %s |\n", sec, k->name, k->def, k->help);
        else
            snprintf(row, sizeof row, "| %s | %s | (none) | %s |\n", sec, k->name, k->help);
        cr_assert_not_null(strstr(md, row), "missing row: %s", row);
    }
    cr_assert_not_null(strstr(md, "| server | listen | `0.0.0.0:8080` |"));
    cr_assert_not_null(strstr(md, "| backend NAME | url | (none) |"));
    cr_assert_not_null(strstr(md, "| tenant NAME | key_sha256 | (none) |"));
    free(md);
}

Test(config_schema, plain_listing_lists_every_key)
{
    char *txt = print_schema(false);
    for (const struct config_key *k = config_schema(); k->section; k++) {
        char needle[128];
        snprintf(needle, sizeof needle, "  %s ", k->name);
        cr_assert_not_null(strstr(txt, needle), "missing %s", k->name);
        cr_assert_not_null(strstr(txt, k->help));
    }
    cr_assert_not_null(strstr(txt, "[server]\n"));
    cr_assert_not_null(strstr(txt, "[backend NAME]\n"));
    cr_assert_not_null(strstr(txt, "[tenant NAME]\n"));
    /* aligned: every default starts in the same column */
    const char *a = strstr(txt, "  listen ");
    const char *b = strstr(txt, "  max_request_line ");
    cr_assert(a && b);
    size_t ca = strcspn(a + 2 + strlen("listen"), "0") + strlen("listen");
    size_t cb = strcspn(b + 2 + strlen("max_request_line"), "8") + strlen("max_request_line");
    cr_assert_eq(ca, cb);
    free(txt);
}

/* ---- value parsers ------------------------------------------------------ */

Test(config_parse, sizes_accepted)
{
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {
        {"0", 0},
        {"4096", 4096},
        {"007", 7},
        {"16k", 16384},
        {"16K", 16384},
        {"16KiB", 16384},
        {"4m", 4u << 20},
        {"4M", 4u << 20},
        {"4MiB", 4u << 20},
        {"1g", 1u << 30},
        {"1G", 1u << 30},
        {"1GiB", 1u << 30},
        {"18446744073709551615", UINT64_MAX},
        {"17179869183G", 17179869183ull << 30},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        uint64_t v = 1234;
        cr_assert_eq(config_parse_size(ok[i].s, &v), 0, "%s", ok[i].s);
        cr_assert_eq(v, ok[i].v, "%s", ok[i].s);
    }
}

Test(config_parse, sizes_refused)
{
    static const char *const bad[] = {"",    "k",    "16kb", "16KB", "16 k",  " 16", "16 ",
                                      "-1",  "+1",   "1.5k", "16Ki", "16kib", "16t", "0x10",
                                      "1e3", "16mb", "K16",  "16kk", "16B"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint64_t v = 1234;
        cr_assert_eq(config_parse_size(bad[i], &v), -EINVAL, "'%s'", bad[i]);
        cr_assert_eq(v, 1234, "'%s' wrote its output", bad[i]);
    }
    static const char *const big[] = {"18446744073709551616", "99999999999999999999999",
                                      "17179869184G", "17592186044416m", "18014398509481984k"};
    for (size_t i = 0; i < sizeof big / sizeof *big; i++) {
        uint64_t v = 1234;
        cr_assert_eq(config_parse_size(big[i], &v), -ERANGE, "'%s'", big[i]);
        cr_assert_eq(v, 1234);
    }
}

Test(config_parse, durations_accepted)
{
    static const struct {
        const char *s;
        uint32_t ms;
    } ok[] = {
        {"250ms", 250},
        {"10s", 10000},
        {"5m", 300000},
        {"1h", 3600000},
        {"7", 7000},
        {"0", 0},
        {"0ms", 0},
        {"4294967295ms", UINT32_MAX},
        {"4294967s", 4294967000u},
        {"4294967", 4294967000u},
        {"71582m", 4294920000u},
        {"1193h", 4294800000u},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        uint32_t v = 1234;
        cr_assert_eq(config_parse_duration_ms(ok[i].s, &v), 0, "%s", ok[i].s);
        cr_assert_eq(v, ok[i].ms, "%s", ok[i].s);
    }
}

Test(config_parse, durations_refused)
{
    static const char *const bad[] = {"",     "s",     "ms",  "10 s", " 10s", "10sec",
                                      "1.5s", "-1s",   "+1s", "10S",  "10MS", "10d",
                                      "10us", "1h30m", "h",   "10mss"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint32_t v = 1234;
        cr_assert_eq(config_parse_duration_ms(bad[i], &v), -EINVAL, "'%s'", bad[i]);
        cr_assert_eq(v, 1234);
    }
    static const char *const big[] = {"4294967296ms", "4294968s", "4294968",
                                      "71583m",       "1194h",    "99999999999999999999999s"};
    for (size_t i = 0; i < sizeof big / sizeof *big; i++) {
        uint32_t v = 1234;
        cr_assert_eq(config_parse_duration_ms(big[i], &v), -ERANGE, "'%s'", big[i]);
        cr_assert_eq(v, 1234);
    }
}

Test(config_parse, booleans)
{
    static const char *const yes[] = {"true", "yes", "on", "1", "TRUE", "Yes", "ON"};
    static const char *const no[] = {"false", "no", "off", "0", "FALSE", "No", "Off"};
    static const char *const bad[] = {"", "2", "yess", "t", "f", "y", "n", "enabled", " true"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        bool v = false;
        cr_assert_eq(config_parse_bool(yes[i], &v), 0, "%s", yes[i]);
        cr_assert_eq(v, true, "%s", yes[i]);
    }
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        bool v = true;
        cr_assert_eq(config_parse_bool(no[i], &v), 0, "%s", no[i]);
        cr_assert_eq(v, false, "%s", no[i]);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        bool v = true;
        cr_assert_eq(config_parse_bool(bad[i], &v), -EINVAL, "'%s'", bad[i]);
        cr_assert_eq(v, true);
    }
}

Test(config_parse, addresses_accepted)
{
    struct config_addr a;
    cr_assert_eq(config_parse_addr("0.0.0.0:8080", &a), 0);
    expect_ipv4(&a, "0.0.0.0", 8080);
    cr_assert_str_eq(a.text, "0.0.0.0:8080");

    cr_assert_eq(config_parse_addr("127.0.0.1:0", &a), 0);
    expect_ipv4(&a, "127.0.0.1", 0);

    cr_assert_eq(config_parse_addr("10.1.2.3:65535", &a), 0);
    expect_ipv4(&a, "10.1.2.3", 65535);

    cr_assert_eq(config_parse_addr("*:80", &a), 0);
    expect_ipv4(&a, "0.0.0.0", 80);
    cr_assert_str_eq(a.text, "*:80");

    cr_assert_eq(config_parse_addr("[::1]:9090", &a), 0);
    expect_ipv6(&a, "::1", 9090);
    cr_assert_str_eq(a.text, "[::1]:9090");

    cr_assert_eq(config_parse_addr("[::]:443", &a), 0);
    expect_ipv6(&a, "::", 443);

    cr_assert_eq(config_parse_addr("[2001:db8::7]:1", &a), 0);
    expect_ipv6(&a, "2001:db8::7", 1);

    cr_assert_eq(config_parse_addr("localhost:81", &a), 0);
    cr_assert(a.ss.ss_family == AF_INET || a.ss.ss_family == AF_INET6);
    cr_assert_eq(addr_port(&a), 81);
    cr_assert_str_eq(a.text, "localhost:81");
}

Test(config_parse, addresses_refused)
{
    static const struct {
        const char *s;
        int rc;
    } bad[] = {
        {"", -EINVAL},
        {"1.2.3.4", -EINVAL},  /* no port */
        {"1.2.3.4:", -EINVAL}, /* empty port */
        {"1.2.3.4:65536", -ERANGE},
        {"1.2.3.4:-1", -EINVAL},
        {"1.2.3.4:http", -EINVAL}, /* numeric ports only */
        {"1.2.3.4:80 ", -EINVAL},
        {"1.2.3.4:99999999999999999999999", -ERANGE},
        {":80", -EINVAL},    /* no host: "*:80" means all */
        {"::1:80", -EINVAL}, /* IPv6 needs brackets */
        {"[::1]", -EINVAL},
        {"[::1:80", -EINVAL},
        {"[::1]80", -EINVAL},
        {"[zz]:80", -EINVAL},
        {"[1.2.3.4]:80", -EINVAL},
        {"[]:80", -EINVAL},
        {"1.2.3:80", -EINVAL}, /* no inet_aton shorthand */
        {"256.1.1.1:80", -EINVAL},
        {"1.2.3.4.5:80", -EINVAL},
        {"bad_host!:80", -EINVAL},
        {"-bad:80", -EINVAL},
        {"no-such-host.invalid:80", -ENOENT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct config_addr a;
        memset(&a, 0x5a, sizeof a);
        cr_assert_eq(config_parse_addr(bad[i].s, &a), bad[i].rc, "'%s'", bad[i].s);
        cr_assert_eq(a.text[0], 0x5a, "'%s' wrote its output", bad[i].s);
    }
    char longer[100];
    memset(longer, 'a', sizeof longer);
    memcpy(longer + sizeof longer - 4, ":80", 4);
    struct config_addr a;
    cr_assert_eq(config_parse_addr(longer, &a), -EINVAL);
}

/* ---- values in files: messages ------------------------------------------ */

struct case_ {
    const char *text; /* file */
    const char *err;  /* the one error after the path, NULL = loads */
};

static void run_cases(const struct case_ *cases, size_t n)
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

Test(config_values, address_messages)
{
    static const struct case_ cases[] = {
        {"[server]\nlisten = 1.2.3.4\n",
         ":2: [server] listen '1.2.3.4' has no port (expected IPv4:PORT, [IPv6]:PORT, *:PORT or "
         "HOST:PORT)"},
        {"[server]\nlisten = 1.2.3.4:99999\n",
         ":2: [server] listen '1.2.3.4:99999' has a bad port '99999' (expected 0..65535)"},
        {"[server]\nlisten = ::1:80\n",
         ":2: [server] listen '::1:80' needs brackets around an IPv6 address, e.g. [::1]:8080"},
        {"[server]\nlisten = :80\n",
         ":2: [server] listen ':80' has no host (write *:PORT for every address)"},
        {"[server]\nlisten = 1.2.3:80\n",
         ":2: [server] listen '1.2.3:80' has a bad IPv4 address '1.2.3'"},
        {"[server]\nlisten = [zz]:80\n",
         ":2: [server] listen '[zz]:80' has a bad IPv6 address '[zz]'"},
        {"[server]\nlisten = [::1:80\n",
         ":2: [server] listen '[::1:80' has no ']' after the IPv6 address"},
        {"[server]\nlisten = [::1]x80\n",
         ":2: [server] listen '[::1]x80' has unexpected text after ']'"},
        {"[server]\nadmin_listen = bad_name!:80\n",
         ":2: [server] admin_listen 'bad_name!:80' has a bad host name 'bad_name!'"},
        {"[server]\nlisten = [::]:8080\ntls_listen = *:0\nadmin_listen = localhost:9091\n", NULL},
    };
    run_cases(cases, sizeof cases / sizeof *cases);

    struct loaded *l = load("[server]\nlisten = no-such-host.invalid:80\n");
    cr_assert_eq(l->rc, -EINVAL);
    cr_assert_eq(l->errs.n, 1);
    char want[200];
    snprintf(want, sizeof want,
             "%s:2: [server] listen 'no-such-host.invalid:80' has a host 'no-such-host.invalid' "
             "that cannot be resolved (",
             l->path);
    cr_assert(strncmp(l->errs.msg[0], want, strlen(want)) == 0, "%s", l->errs.msg[0]);
    done(l);
}

Test(config_values, addresses_land_in_the_config)
{
    struct loaded *l =
        load("[server]\nlisten = [::1]:8081\ntls_listen = *:8444\nadmin_listen = 127.0.0.2:0\n");
    expect_ok(l);
    expect_ipv6(&l->cfg.listen, "::1", 8081);
    cr_assert_str_eq(l->cfg.listen.text, "[::1]:8081");
    expect_ipv4(&l->cfg.tls_listen, "0.0.0.0", 8444);
    expect_ipv4(&l->cfg.admin_listen, "127.0.0.2", 0);
    done(l);
}

Test(config_values, sizes_and_numbers)
{
    static const struct case_ cases[] = {
        {"[http]\nmax_body_size = 4x\n",
         ":2: [http] max_body_size '4x' is not a size (expected e.g. 4096, 16k, 16KiB, 4m, 4MiB, "
         "1g)"},
        {"[http]\nmax_body_size = 18446744073709551616\n",
         ":2: [http] max_body_size '18446744073709551616' is too large"},
        {"[http]\nmax_body_size = 17179869184g\n",
         ":2: [http] max_body_size '17179869184g' is too large"},
        {"[http]\nmax_body_size = 16g\n", NULL},
        {"[buffers]\nsend_zc_threshold = 4g\n",
         ":2: [buffers] send_zc_threshold '4g' is too large (at most 4294967295)"},
        {"[buffers]\nsend_zc_threshold = 4095m\n", NULL},
        {"[http]\nmax_headers = 1.5\n", ":2: [http] max_headers '1.5' is not a whole number"},
        {"[http]\nmax_headers = -1\n", ":2: [http] max_headers '-1' is not a whole number"},
        {"[http]\nmax_headers = 10k\n", ":2: [http] max_headers '10k' is not a whole number"},
        {"[http]\nmax_headers =\n", ":2: [http] max_headers '' is not a whole number"},
        {"[http]\nkeepalive_requests = 4294967296\n",
         ":2: [http] keepalive_requests '4294967296' is too large (at most 4294967295)"},
        {"[http]\nkeepalive_requests = 99999999999999999999999\n",
         ":2: [http] keepalive_requests '99999999999999999999999' is too large (at most "
         "4294967295)"},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

Test(config_values, durations_booleans_and_words)
{
    static const struct case_ cases[] = {
        {"[http]\nheader_timeout = 0\n", ":2: [http] header_timeout '0' must be greater than 0"},
        {"[http]\nbody_timeout = 0ms\n", ":2: [http] body_timeout '0ms' must be greater than 0"},
        {"[http]\nkeepalive_timeout = 10 s\n",
         ":2: [http] keepalive_timeout '10 s' is not a duration (expected e.g. 250ms, 10s, 5m, "
         "1h)"},
        {"[server]\ndrain_timeout = 50d\n",
         ":2: [server] drain_timeout '50d' is not a duration (expected e.g. 250ms, 10s, 5m, 1h)"},
        {"[upstream]\nconnect_timeout = 1194h\n",
         ":2: [upstream] connect_timeout '1194h' is too long (at most 4294967295ms, about 49 "
         "days)"},
        {"[auth]\nenabled = maybe\n",
         ":2: [auth] enabled 'maybe' is not a boolean (expected true/false, yes/no, on/off or "
         "1/0)"},
        {"[server]\nworkers = 0\n",
         ":2: [server] workers '0' is not valid (expected auto or 1..256)"},
        {"[server]\nworkers = 257\n",
         ":2: [server] workers '257' is not valid (expected auto or 1..256)"},
        {"[server]\nworkers = Auto\n",
         ":2: [server] workers 'Auto' is not valid (expected auto or 1..256)"},
        {"[server]\nlog_level = loud\n",
         ":2: [server] log_level 'loud' is not a log level (expected error, warn, info or debug)"},
        {"[server]\nlog_level = INFO\n",
         ":2: [server] log_level 'INFO' is not a log level (expected error, warn, info or debug)"},
        {"[server]\nstate_dir =\n", ":2: [server] state_dir '' must not be empty"},
        {"[server]\ncontrol_socket =\n", ":2: [server] control_socket '' must not be empty"},
        /* 12 + 96 = 108 characters: one more than sun_path holds */
        {"[server]\ncontrol_socket = /run/sluice/" A16 A16 A16 A16 A16 A16 "\n",
         ":2: [server] control_socket '/run/sluice/" A16 A16 A16 A16 A16 A16
         "' is too long (at most 107 bytes)"},
        {"[server]\ncontrol_socket = /run/sluice/" A16 A16 A16 A16 A16 "aaaaaaaaaaaaaaa\n", NULL},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

Test(config_values, values_land_in_the_config)
{
    struct loaded *l = load("[server]\n"
                            "workers = 12\n"
                            "drain_timeout = 250ms\n"
                            "max_connections = 1048576\n"
                            "log_level = debug\n"
                            "tls_listen = 127.0.0.1:8443\n"
                            "state_dir = /srv/sluice state\n"
                            "control_socket = /tmp/sluice.sock\n"
                            "[http]\n"
                            "max_request_line = 1m\n"
                            "max_header_bytes = 1MiB\n"
                            "max_headers = 256\n"
                            "max_body_size = 1GiB\n"
                            "header_timeout = 1h\n"
                            "body_timeout = 5m\n"
                            "keepalive_timeout = 3\n"
                            "keepalive_requests = 1\n"
                            "[upstream]\n"
                            "connect_timeout = 100ms\n"
                            "keepalive = 0\n"
                            "idle_timeout = 2m\n"
                            "[stream]\n"
                            "first_token_timeout = 2m\n"
                            "token_idle_timeout = 15s\n"
                            "stream_buffer_max = 64m\n"
                            "slow_consumer_timeout = 1s\n"
                            "max_event_size = 64m\n"
                            "[buffers]\n"
                            "slab_size = 1m\n"
                            "slabs = 16\n"
                            "recv_buffer_size = 512\n"
                            "recv_buffers = 32768\n"
                            "send_zc_threshold = 64k\n"
                            "[auth]\n"
                            "enabled = off\n");
    expect_ok(l);
    const struct config *c = &l->cfg;
    cr_assert_eq(c->workers, 12);
    cr_assert_eq(config_worker_count(c), 12);
    cr_assert_eq(c->drain_timeout_ms, 250);
    cr_assert_eq(c->max_connections, 1048576);
    cr_assert_eq(c->log_level, 3);
    expect_ipv4(&c->tls_listen, "127.0.0.1", 8443);
    cr_assert_str_eq(c->state_dir, "/srv/sluice state");
    cr_assert_str_eq(c->control_socket, "/tmp/sluice.sock");
    cr_assert_eq(c->max_request_line, 1u << 20);
    cr_assert_eq(c->max_header_bytes, 1u << 20);
    cr_assert_eq(c->max_headers, 256);
    cr_assert_eq(c->max_body_size, 1ull << 30);
    cr_assert_eq(c->header_timeout_ms, 3600000);
    cr_assert_eq(c->body_timeout_ms, 300000);
    cr_assert_eq(c->keepalive_timeout_ms, 3000);
    cr_assert_eq(c->keepalive_requests, 1);
    cr_assert_eq(c->connect_timeout_ms, 100);
    cr_assert_eq(c->upstream_keepalive, 0);
    cr_assert_eq(c->upstream_idle_timeout_ms, 120000);
    cr_assert_eq(c->first_token_timeout_ms, 120000);
    cr_assert_eq(c->token_idle_timeout_ms, 15000);
    cr_assert_eq(c->stream_buffer_max, 64ull << 20);
    cr_assert_eq(c->slow_consumer_timeout_ms, 1000);
    cr_assert_eq(c->max_event_size, 64u << 20);
    cr_assert_eq(c->slab_size, 1u << 20);
    cr_assert_eq(c->slabs, 16);
    cr_assert_eq(c->recv_buffer_size, 512);
    cr_assert_eq(c->recv_buffers, 32768);
    cr_assert_eq(c->send_zc_threshold, 65536);
    cr_assert_eq(c->auth_enabled, false);
    done(l);
}

Test(config_values, log_levels)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        char text[64];
        snprintf(text, sizeof text, "[server]\nlog_level = %s\n", names[i]);
        struct loaded *l = load(text);
        expect_ok(l);
        cr_assert_eq(l->cfg.log_level, i);
        done(l);
    }
}

Test(config_values, per_key_ranges)
{
    static const struct case_ cases[] = {
        {"[http]\nmax_headers = 0\n", ":2: [http] max_headers '0' must be between 1 and 256"},
        {"[http]\nmax_headers = 1\n", NULL},
        {"[http]\nmax_headers = 256\n", NULL},
        {"[http]\nmax_headers = 257\n", ":2: [http] max_headers '257' must be between 1 and 256"},
        {"[http]\nmax_request_line = 255\n",
         ":2: [http] max_request_line '255' must be between 256 and 1MiB"},
        {"[http]\nmax_request_line = 256\n", NULL},
        {"[http]\nmax_request_line = 1025k\n",
         ":2: [http] max_request_line '1025k' must be between 256 and 1MiB"},
        {"[http]\nmax_header_bytes = 2m\n",
         ":2: [http] max_header_bytes '2m' must be between 256 and 1MiB"},
        {"[http]\nmax_header_bytes = 8k\n", NULL},
        {"[http]\nkeepalive_requests = 0\n",
         ":2: [http] keepalive_requests '0' must be greater than 0"},
        {"[server]\nmax_connections = 0\n",
         ":2: [server] max_connections '0' must be between 1 and 1048576"},
        {"[server]\nmax_connections = 1048577\n",
         ":2: [server] max_connections '1048577' must be between 1 and 1048576"},
        {"[server]\nmax_connections = 1\n", NULL},
        {"[server]\nbatch_wait_us = 10001\n",
         ":2: [server] batch_wait_us '10001' must be between 0 and 10000"},
        {"[server]\nbatch_wait_us = 250us\n",
         ":2: [server] batch_wait_us '250us' is not a whole number"},
        {"[server]\nbatch_wait_us = 10000\n", NULL},
        {"[buffers]\nslab_size = 2k\n",
         ":2: [buffers] slab_size '2k' must be a power of two between 4KiB and 1MiB"},
        {"[buffers]\nslab_size = 12k\n",
         ":2: [buffers] slab_size '12k' must be a power of two between 4KiB and 1MiB"},
        {"[buffers]\nslab_size = 2m\n",
         ":2: [buffers] slab_size '2m' must be a power of two between 4KiB and 1MiB"},
        {"[buffers]\nslab_size = 4k\n", NULL},
        {"[buffers]\nslab_size = 64k\n", NULL},
        {"[buffers]\nslabs = 15\n", ":2: [buffers] slabs '15' must be between 16 and 1048576"},
        {"[buffers]\nslabs = 1048577\n",
         ":2: [buffers] slabs '1048577' must be between 16 and 1048576"},
        {"[buffers]\nslabs = 1000\n", NULL},
        {"[buffers]\nrecv_buffer_size = 256\n",
         ":2: [buffers] recv_buffer_size '256' must be a power of two between 512 and 64KiB"},
        {"[buffers]\nrecv_buffer_size = 3000\n",
         ":2: [buffers] recv_buffer_size '3000' must be a power of two between 512 and 64KiB"},
        {"[buffers]\nrecv_buffer_size = 128k\n",
         ":2: [buffers] recv_buffer_size '128k' must be a power of two between 512 and 64KiB"},
        {"[buffers]\nrecv_buffer_size = 64k\n", NULL},
        {"[buffers]\nrecv_buffers = 8\n",
         ":2: [buffers] recv_buffers '8' must be a power of two between 16 and 32768"},
        {"[buffers]\nrecv_buffers = 100\n",
         ":2: [buffers] recv_buffers '100' must be a power of two between 16 and 32768"},
        {"[buffers]\nrecv_buffers = 65536\n",
         ":2: [buffers] recv_buffers '65536' must be a power of two between 16 and 32768"},
        {"[buffers]\nrecv_buffers = 16\n", NULL},
        {"[stream]\nmax_event_size = 1023\n",
         ":2: [stream] max_event_size '1023' must be between 1KiB and 64MiB"},
        {"[stream]\nmax_event_size = 65m\n",
         ":2: [stream] max_event_size '65m' must be between 1KiB and 64MiB"},
        {"[stream]\nmax_event_size = 1k\n", NULL},
        {"[stream]\nstream_buffer_max = 16k\nmax_event_size = 16k\n", NULL},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

Test(config_values, settings_that_depend_on_each_other)
{
    static const struct case_ cases[] = {
        {"[http]\nmax_header_bytes = 4k\n",
         ":2: [http] max_header_bytes (4096) must be at least max_request_line (8192)"},
        {"[http]\nmax_request_line = 64k\n",
         ":2: [http] max_header_bytes (32768) must be at least max_request_line (65536)"},
        {"[http]\nmax_header_bytes = 8k\nmax_request_line = 8k\n", NULL},
        {"[stream]\nstream_buffer_max = 8k\nmax_event_size = 8k\n",
         ":2: [stream] stream_buffer_max (8192) must be at least [buffers] slab_size (16384)"},
        {"[buffers]\nslab_size = 512k\n",
         ":2: [stream] stream_buffer_max (262144) must be at least [buffers] slab_size (524288)"},
        {"[stream]\nmax_event_size = 2m\n",
         ":2: [stream] max_event_size (2097152) must be at most stream_buffer_max (262144)"},
        {"[stream]\nmax_event_size = 256k\n", NULL},
    };
    run_cases(cases, sizeof cases / sizeof *cases);

    /* Both sides wrong at once: both reported, on the line that was set. */
    struct loaded *l = load("[stream]\nstream_buffer_max = 8k\n");
    EXPECT_ERRORS(l,
                  ":2: [stream] stream_buffer_max (8192) must be at least [buffers] slab_size "
                  "(16384)",
                  ":2: [stream] max_event_size (262144) must be at most stream_buffer_max (8192)");
    done(l);
}

/* ---- the many-errors file ---------------------------------------------- */

Test(config_errors, every_error_with_its_line)
{
    struct loaded *l = load("; sluice test config\n"       /* 1 */
                            "[server]\n"                   /* 2 */
                            "listn = 0.0.0.0:80\n"         /* 3 */
                            "listen = 1.2.3.4\n"           /* 4 */
                            "workers = 0\n"                /* 5 */
                            "listen = 1.2.3.4:99999\n"     /* 6 */
                            "log_level = loud\n"           /* 7 */
                            "[http]\n"                     /* 8 */
                            "max_headers = 300\n"          /* 9 */
                            "max_body_size = 4x\n"         /* 10 */
                            "header_timeout = 0\n"         /* 11 */
                            "[buffers]\n"                  /* 12 */
                            "slab_size = 3k\n"             /* 13 */
                            "recv_buffers = 100\n"         /* 14 */
                            "[nope]\n"                     /* 15 */
                            "whatever = 1\n"               /* 16 */
                            "[backend a]\n"                /* 17 */
                            "kind = vllm\n"                /* 18 */
                            "[backend a]\n"                /* 19 */
                            "url = http://127.0.0.1\n"     /* 20 */
                            "[tenant t1]\n"                /* 21 */
                            "key_sha256 = abc\n"           /* 22 */
                            "hard_limit = x\n"             /* 23 */
                            "[auth]\n"                     /* 24 */
                            "enabled = maybe\n"            /* 25 */
                            "this line has no equals\n"    /* 26 */
                            "[stream\n"                    /* 27 */
                            "first_token_timeout = soon\n" /* 28: ignored, no section */
                            "[http]\n"                     /* 29 */
                            "max_headers = 5\n"            /* 30 */
    );
    EXPECT_ERRORS(
        l, ":3: unknown key 'listn' in [server] (did you mean 'listen'?)",
        ":4: [server] listen '1.2.3.4' has no port (expected IPv4:PORT, [IPv6]:PORT, *:PORT or "
        "HOST:PORT)",
        ":5: [server] workers '0' is not valid (expected auto or 1..256)",
        ":6: key 'listen' given twice in [server] (first at line 4)",
        ":7: [server] log_level 'loud' is not a log level (expected error, warn, info or debug)",
        ":9: [http] max_headers '300' must be between 1 and 256",
        ":10: [http] max_body_size '4x' is not a size (expected e.g. 4096, 16k, 16KiB, 4m, 4MiB, "
        "1g)",
        ":11: [http] header_timeout '0' must be greater than 0",
        ":13: [buffers] slab_size '3k' must be a power of two between 4KiB and 1MiB",
        ":14: [buffers] recv_buffers '100' must be a power of two between 16 and 32768",
        ":15: unknown section [nope]", ":17: [backend a] has no url",
        ":18: [backend a] kind 'vllm' is not supported (supported: openai, ollama, tfserving-rest)",
        ":19: section [backend a] given twice (first at line 17)",
        ":22: [tenant t1] key_sha256 'abc' is not 64 hex digits (got 3 characters)",
        ":23: [tenant t1] hard_limit 'x' is not a whole number",
        ":25: [auth] enabled 'maybe' is not a boolean (expected true/false, yes/no, on/off or 1/0)",
        ":26: expected 'key = value', '[section]' or a comment",
        ":27: section header has no closing ']'",
        ":30: key 'max_headers' given twice in [http] (first at line 9)");
    done(l);
}

Test(config_errors, too_many_errors_are_counted)
{
    char text[4096] = "[server]\n";
    for (int i = 0; i < CONFIG_MAX_ERRORS + 6; i++) {
        size_t n = strlen(text);
        snprintf(text + n, sizeof text - n, "bogus%d = 1\n", i);
    }
    struct loaded *l = load(text);
    cr_assert_eq(l->rc, -EINVAL);
    cr_assert_eq(l->errs.n, CONFIG_MAX_ERRORS);
    cr_assert_eq(l->errs.dropped, 6);
    char want[128];
    snprintf(want, sizeof want, "%s:2: unknown key 'bogus0' in [server]", l->path);
    cr_assert_str_eq(l->errs.msg[0], want);
    snprintf(want, sizeof want, "%s:65: unknown key 'bogus63' in [server]", l->path);
    cr_assert_str_eq(l->errs.msg[CONFIG_MAX_ERRORS - 1], want);

    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    config_errors_print(&l->errs, f);
    fclose(f);
    cr_assert_not_null(strstr(out, "unknown key 'bogus63' in [server]\n6 more errors\n"));
    cr_assert_null(strstr(out, "bogus64"));
    free(out);
    done(l);
}

Test(config_errors, print_singular_and_plain)
{
    struct config_errors e;
    memset(&e, 0, sizeof e);
    e.n = 2;
    snprintf(e.msg[0], sizeof e.msg[0], "a.ini:1: one");
    snprintf(e.msg[1], sizeof e.msg[1], "a.ini:2: two");
    e.dropped = 1;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    config_errors_print(&e, f);
    fclose(f);
    cr_assert_str_eq(out, "a.ini:1: one\na.ini:2: two\n1 more error\n");
    free(out);
}

Test(config_errors, null_errs_is_allowed)
{
    char path[64];
    write_tmp(path, sizeof path, "[nope]\n", 7);
    struct config c;
    cr_assert_eq(config_load(&c, path, NULL), -EINVAL);
    unlink(path);
    cr_assert_null(c.backends);
}

/* ---- keys and sections ------------------------------------------------- */

Test(config_keys, unknown_key_suggestions)
{
    static const struct case_ cases[] = {
        {"[server]\nlistn = *:1\n", ":2: unknown key 'listn' in [server] (did you mean 'listen'?)"},
        {"[server]\nlsiten = *:1\n",
         ":2: unknown key 'lsiten' in [server] (did you mean 'listen'?)"},
        {"[server]\nworker = 2\n",
         ":2: unknown key 'worker' in [server] (did you mean 'workers'?)"},
        {"[http]\nmax_header = 2\n",
         ":2: unknown key 'max_header' in [http] (did you mean 'max_headers'?)"},
        {"[server]\nLISTEN = *:1\n", ":2: unknown key 'LISTEN' in [server]"},
        {"[server]\nfoo = 1\n", ":2: unknown key 'foo' in [server]"},
        {"[server]\nurl = http://127.0.0.1\n",
         ":2: unknown key 'url' in [server] (it belongs in [backend NAME])"},
        {"[http]\nslab_size = 4k\n",
         ":2: unknown key 'slab_size' in [http] (it belongs in [buffers])"},
        {"[upstream]\nupstream_keepalive = 4\n",
         ":2: unknown key 'upstream_keepalive' in [upstream]"},
        {"[server]\n= 5\n", ":2: missing key name before '=' in [server]"},
        {"workers = 2\n[server]\n", ":1: key 'workers' is outside any section"},
    };
    run_cases(cases, sizeof cases / sizeof *cases);

    struct loaded *l = load("[backend a]\nurll = http://127.0.0.1\n");
    EXPECT_ERRORS(l, ":1: [backend a] has no url",
                  ":2: unknown key 'urll' in [backend a] (did you mean 'url'?)");
    done(l);
}

Test(config_keys, duplicate_keys)
{
    static const struct case_ cases[] = {
        {"[server]\nworkers = 2\nworkers = 3\n",
         ":3: key 'workers' given twice in [server] (first at line 2)"},
        /* a fixed section may be reopened, its keys still count once */
        {"[server]\nworkers = 2\n[http]\n[server]\nworkers = 3\n",
         ":5: key 'workers' given twice in [server] (first at line 2)"},
        {"[server]\nworkers = 2\n[http]\n[server]\nlog_level = warn\n", NULL},
        {"[backend a]\nurl = http://127.0.0.1\nurl = http://127.0.0.1:81\n",
         ":3: key 'url' given twice in [backend a] (first at line 2)"},
        {"[tenant a]\nkey_sha256 = "
         "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
         "key_sha256 = 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
         ":3: key 'key_sha256' given twice in [tenant a] (first at line 2)"},
        /* same key in two backends is not a duplicate */
        {"[backend a]\nurl = http://127.0.0.1\n[backend b]\nurl = http://127.0.0.1\n", NULL},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

Test(config_keys, section_headers)
{
    static const struct case_ cases[] = {
        {"[sever]\n", ":1: unknown section [sever] (did you mean [server]?)"},
        {"[backends x]\n", ":1: unknown section [backends] (did you mean [backend NAME]?)"},
        {"[Server]\n", ":1: unknown section [Server] (did you mean [server]?)"},
        {"[]\n", ":1: unknown section []"},
        {"[server x]\nworkers = 99999\n", ":1: section [server] takes no name (got [server x])"},
        {"[backend]\nurl = x\n", ":1: section [backend] needs a name: [backend NAME]"},
        {"[backend ]\n", ":1: section [backend] needs a name: [backend NAME]"},
        {"[tenant]\n", ":1: section [tenant] needs a name: [tenant NAME]"},
        {"[backend a b]\n", ":1: backend name 'a b' may only contain A-Z a-z 0-9 _ . -"},
        {"[tenant a/b]\n", ":1: tenant name 'a/b' may only contain A-Z a-z 0-9 _ . -"},
        {"[backend "
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\nurl = "
         "http://127.0.0.1\n",
         ":1: backend name 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' is "
         "too long (at most 63 characters)"},
        {"[server] junk\n", ":1: unexpected text after ']'"},
        {"[server\n", ":1: section header has no closing ']'"},
        {"[server ; comment]\n", ":1: section header has no closing ']'"},
        {"[ server ]\nworkers = 3\n", NULL},
        {"[server] ; comment\n[http]# comment\n", NULL},
        {"[backend A-z_0.9]\nurl = http://127.0.0.1\n", NULL},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

/* inih keeps 49 bytes of a section name; ours are read whole. */
Test(config_keys, long_backend_name_is_not_truncated)
{
    const char *name = "b123456789b123456789b123456789b123456789b123456789b123456789abc";
    char text[256];
    snprintf(text, sizeof text,
             "[backend %s]\nurl = http://127.0.0.1:9\n[tenant %s]\nkey_sha256 = %s\n", name, name,
             KEY_A);
    struct loaded *l = load(text);
    expect_ok(l);
    cr_assert_eq(strlen(name), CONFIG_NAME_MAX - 1);
    cr_assert_str_eq(l->cfg.backends[0].name, name);
    cr_assert_str_eq(l->cfg.tenants[0].name, name);
    cr_assert_not_null(config_backend_find(&l->cfg, name));
    done(l);
}

/* ---- backends ----------------------------------------------------------- */

Test(config_backends, default_backend_only_without_backend_sections)
{
    struct loaded *l = load("[server]\nworkers = 1\n");
    expect_ok(l);
    cr_assert_eq(l->cfg.n_backends, 1);
    cr_assert_not_null(config_backend_find(&l->cfg, "default"));
    done(l);

    l = load("[backend vllm]\nurl = http://127.0.0.1:8001\nkind = openai\n"
             "[backend other]\nurl = http://localhost\n");
    expect_ok(l);
    cr_assert_eq(l->cfg.n_backends, 2);
    cr_assert_null(config_backend_find(&l->cfg, "default"));
    const struct config_backend *b = config_backend_find(&l->cfg, "vllm");
    cr_assert_not_null(b);
    cr_assert_str_eq(b->url, "http://127.0.0.1:8001");
    cr_assert_str_eq(b->host, "127.0.0.1");
    cr_assert_eq(b->port, 8001);
    cr_assert_eq(b->kind, BACKEND_OPENAI);
    cr_assert_eq(b->line, 1);
    b = config_backend_find(&l->cfg, "other");
    cr_assert_not_null(b);
    cr_assert_str_eq(b->host, "localhost");
    cr_assert_eq(b->port, 80);
    cr_assert_eq(addr_port(&b->addr), 80);
    cr_assert_eq(b->line, 4);
    cr_assert_null(config_backend_find(&l->cfg, "vll"));
    done(l);
}

Test(config_backends, good_urls)
{
    static const struct {
        const char *url, *host, *text;
        uint16_t port;
    } ok[] = {
        {"http://127.0.0.1:8000", "127.0.0.1", "127.0.0.1:8000", 8000},
        {"http://127.0.0.1:8000/", "127.0.0.1", "127.0.0.1:8000", 8000},
        {"http://127.0.0.1", "127.0.0.1", "127.0.0.1:80", 80},
        {"http://10.0.0.7/", "10.0.0.7", "10.0.0.7:80", 80},
        {"http://[::1]:8001", "[::1]", "[::1]:8001", 8001},
        {"http://[::1]", "[::1]", "[::1]:80", 80},
        {"HTTP://127.0.0.1:65535", "127.0.0.1", "127.0.0.1:65535", 65535},
        {"http://localhost:9000", "localhost", NULL, 9000},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char text[256];
        snprintf(text, sizeof text, "[backend b]\nurl = %s\n", ok[i].url);
        struct loaded *l = load(text);
        expect_ok(l);
        const struct config_backend *b = &l->cfg.backends[0];
        cr_assert_str_eq(b->url, ok[i].url);
        cr_assert_str_eq(b->host, ok[i].host);
        cr_assert_eq(b->port, ok[i].port);
        cr_assert_eq(addr_port(&b->addr), ok[i].port);
        if (ok[i].text)
            cr_assert_str_eq(b->addr.text, ok[i].text);
        done(l);
    }
}

Test(config_backends, kinds_groups_and_tf_keys)
{
    struct loaded *l = load("[backend v]\nurl = http://127.0.0.1:8000\ngroup = gpu0\n"
                            "[backend o]\nurl = http://127.0.0.1:11434\nkind = ollama\n"
                            "group = gpu0\n"
                            "[backend t]\nurl = http://127.0.0.1:8501\nkind = tfserving-rest\n"
                            "tf_model = t5\ntf_signature = serving_default\ntf_input = text\n"
                            "tf_output = output_0\n");
    expect_ok(l);
    const struct config_backend *b = l->cfg.backends;
    cr_assert_eq(l->cfg.n_backends, 3);
    cr_assert_eq(b[0].kind, BACKEND_OPENAI);
    cr_assert_eq(b[1].kind, BACKEND_OLLAMA);
    cr_assert_eq(b[2].kind, BACKEND_TFSERVING);
    cr_assert_str_eq(b[0].group, "gpu0");
    cr_assert_str_eq(b[1].group, "gpu0");
    cr_assert_str_eq(b[2].group, "");
    cr_assert_str_eq(b[2].tf_model, "t5");
    cr_assert_str_eq(b[2].tf_signature, "serving_default");
    cr_assert_str_eq(b[2].tf_input, "text");
    cr_assert_str_eq(b[2].tf_output, "output_0");
    done(l);
}

Test(config_backends, bad_urls)
{
    static const struct case_ cases[] = {
        {"[backend b]\nurl = https://127.0.0.1\n",
         ":2: [backend b] url 'https://127.0.0.1' has scheme 'https', which is not supported "
         "(only http://)"},
        {"[backend b]\nurl = ftp://127.0.0.1\n",
         ":2: [backend b] url 'ftp://127.0.0.1' has scheme 'ftp', which is not supported (only "
         "http://)"},
        {"[backend b]\nurl = 127.0.0.1:8000\n",
         ":2: [backend b] url '127.0.0.1:8000' is not a URL (expected http://HOST[:PORT])"},
        {"[backend b]\nurl = http://127.0.0.1:8000/v1\n",
         ":2: [backend b] url 'http://127.0.0.1:8000/v1' has a path, query or fragment '/v1' "
         "(expected http://HOST[:PORT])"},
        {"[backend b]\nurl = http://127.0.0.1:8000//\n",
         ":2: [backend b] url 'http://127.0.0.1:8000//' has a path, query or fragment '//' "
         "(expected http://HOST[:PORT])"},
        {"[backend b]\nurl = http://127.0.0.1?x=1\n",
         ":2: [backend b] url 'http://127.0.0.1?x=1' has a path, query or fragment '?x=1' "
         "(expected http://HOST[:PORT])"},
        {"[backend b]\nurl = http://127.0.0.1#top\n",
         ":2: [backend b] url 'http://127.0.0.1#top' has a path, query or fragment '#top' "
         "(expected http://HOST[:PORT])"},
        {"[backend b]\nurl = http://user:pw@127.0.0.1:8000\n",
         ":2: [backend b] url 'http://user:pw@127.0.0.1:8000' has user info, which is not allowed "
         "(expected http://HOST[:PORT])"},
        {"[backend b]\nurl = http://127.0.0.1:0\n",
         ":2: [backend b] url 'http://127.0.0.1:0' has a bad port '0' (expected 1..65535)"},
        {"[backend b]\nurl = http://127.0.0.1:65536\n",
         ":2: [backend b] url 'http://127.0.0.1:65536' has a bad port '65536' (expected 1..65535)"},
        {"[backend b]\nurl = http://127.0.0.1:\n",
         ":2: [backend b] url 'http://127.0.0.1:' has a bad port '' (expected 1..65535)"},
        {"[backend b]\nurl = http://\n",
         ":2: [backend b] url 'http://' has no host (expected http://HOST[:PORT])"},
        {"[backend b]\nurl = http://:8000\n",
         ":2: [backend b] url 'http://:8000' has no host (expected http://HOST[:PORT])"},
        {"[backend b]\nurl = http://[::1:8000\n",
         ":2: [backend b] url 'http://[::1:8000' has no ']' after the IPv6 address"},
        {"[backend b]\nurl = http://::1:8000\n",
         ":2: [backend b] url 'http://::1:8000' needs brackets around an IPv6 address, e.g. "
         "[::1]:8080"},
        {"[backend b]\nurl = http://1.2.3/\n",
         ":2: [backend b] url 'http://1.2.3/' has a bad IPv4 address '1.2.3'"},
        {"[backend b]\nurl = http://bad_host!/\n",
         ":2: [backend b] url 'http://bad_host!/' has a bad host name 'bad_host!'"},
        {"[backend b]\nurl =\n",
         ":2: [backend b] url '' is not a URL (expected http://HOST[:PORT])"},
        {"[backend b]\nkind = grpc\nurl = http://127.0.0.1\n",
         ":2: [backend b] kind 'grpc' is not supported (supported: openai, ollama, "
         "tfserving-rest)"},
        {"[backend b]\nkind = OpenAI\nurl = http://127.0.0.1\n",
         ":2: [backend b] kind 'OpenAI' is not supported (supported: openai, ollama, "
         "tfserving-rest)"},
        {"[backend b]\nkind = openai\n", ":1: [backend b] has no url"},
        {"[backend b]\n[backend c]\nurl = http://127.0.0.1\n", ":1: [backend b] has no url"},
    };
    run_cases(cases, sizeof cases / sizeof *cases);

    struct loaded *l = load("[backend b]\nurl = http://no-such-host.invalid:8000\n");
    cr_assert_eq(l->errs.n, 1);
    char want[200];
    snprintf(want, sizeof want,
             "%s:2: [backend b] url 'http://no-such-host.invalid:8000' has a host "
             "'no-such-host.invalid' that cannot be resolved (",
             l->path);
    cr_assert(strncmp(l->errs.msg[0], want, strlen(want)) == 0, "%s", l->errs.msg[0]);
    done(l);
}

Test(config_backends, duplicate_and_too_many)
{
    struct loaded *l = load("[backend a]\nurl = http://127.0.0.1\n"
                            "[backend b]\nurl = http://127.0.0.1\n"
                            "[backend a]\nurl = http://127.0.0.1:81\nkind = nope\n");
    /* the second [backend a] is refused whole: its keys are not checked */
    EXPECT_ERRORS(l, ":5: section [backend a] given twice (first at line 1)");
    done(l);

    char text[8192] = "";
    for (int i = 0; i <= CONFIG_MAX_BACKENDS; i++) {
        size_t n = strlen(text);
        snprintf(text + n, sizeof text - n, "[backend b%d]\nurl = http://127.0.0.1:%d\n", i,
                 1000 + i);
    }
    l = load(text);
    EXPECT_ERRORS(l, ":129: too many [backend NAME] sections (at most 64)");
    done(l);
}

/* ---- tenants and auth --------------------------------------------------- */

Test(config_tenants, keys)
{
    char text[512];
    snprintf(text, sizeof text,
             "[auth]\nenabled = yes\n[tenant acme]\nkey_sha256 = %s\n[tenant b.c-d_e]\n"
             "key_sha256 = %s\n",
             KEY_A, KEY_B);
    struct loaded *l = load(text);
    expect_ok(l);
    cr_assert_eq(l->cfg.auth_enabled, true);
    cr_assert_eq(l->cfg.n_tenants, 2);
    const struct config_tenant *t = &l->cfg.tenants[0];
    cr_assert_str_eq(t->name, "acme");
    cr_assert(t->has_key);
    cr_assert_eq(t->line, 3);
    cr_assert_eq(t->key_sha256[0], 0x9f);
    cr_assert_eq(t->key_sha256[1], 0x86);
    cr_assert_eq(t->key_sha256[31], 0x08);
    t = &l->cfg.tenants[1];
    cr_assert_str_eq(t->name, "b.c-d_e");
    cr_assert_eq(t->key_sha256[0], 0x60);
    cr_assert_eq(t->key_sha256[31], 0x52);
    done(l);
}

Test(config_tenants, bad_keys)
{
    static const struct case_ cases[] = {
        {"[tenant a]\nkey_sha256 = "
         "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0\n",
         ":2: [tenant a] key_sha256 "
         "'9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0' is not 64 hex digits "
         "(got 63 characters)"},
        {"[tenant a]\nkey_sha256 = "
         "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a088\n",
         ":2: [tenant a] key_sha256 "
         "'9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a088' is not 64 hex "
         "digits (got 65 characters)"},
        {"[tenant a]\nkey_sha256 = "
         "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0g\n",
         ":2: [tenant a] key_sha256 "
         "'9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0g' is not 64 hex digits "
         "(bad character 'g')"},
        {"[tenant a]\nkey_sha256 =\n",
         ":2: [tenant a] key_sha256 '' is not 64 hex digits (got 0 characters)"},
        {"[tenant a]\n", NULL}, /* without [auth] a tenant needs no key */
        {"[tenant a]\n[auth]\nenabled = true\n[tenant b]\nkey_sha256 = "
         "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
         ":1: [tenant a] has no key_sha256 (required with [auth] enabled)"},
        {"[tenant a]\nkey_sha256 = "
         "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
         "[tenant b]\nkey_sha256 = "
         "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\n",
         ":3: [tenant b] has the same key_sha256 as [tenant a] (line 1)"},
        {"[tenant a]\nkey_sha256 = "
         "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n[tenant a]\n",
         ":3: section [tenant a] given twice (first at line 1)"},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

Test(config_tenants, auth_needs_a_keyed_tenant)
{
    static const struct case_ cases[] = {
        {"[auth]\nenabled = true\n",
         ":2: [auth] enabled = true but no [tenant NAME] has a key_sha256"},
        {"[auth]\nenabled = false\n", NULL},
        {"[auth]\n", NULL},
        /* a tenant without auth is fine: the key is not used yet */
        {"[tenant a]\nkey_sha256 = "
         "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
         NULL},
    };
    run_cases(cases, sizeof cases / sizeof *cases);

    /* a tenant with no key: that error, and the auth one */
    struct loaded *l = load("[tenant a]\n[auth]\nenabled = on\n");
    EXPECT_ERRORS(l, ":1: [tenant a] has no key_sha256 (required with [auth] enabled)",
                  ":3: [auth] enabled = true but no [tenant NAME] has a key_sha256");
    done(l);

    /* a bad key was reported; auth does not repeat it */
    l = load("[tenant a]\nkey_sha256 = 12\n[auth]\nenabled = on\n");
    EXPECT_ERRORS(l, ":2: [tenant a] key_sha256 '12' is not 64 hex digits (got 2 characters)");
    done(l);
}

/* ---- TLS and addresses that clash --------------------------------------- */

Test(config_server, tls_files)
{
    char cert[64], key[64], text[512];
    write_tmp(cert, sizeof cert, "cert\n", 5);
    write_tmp(key, sizeof key, "key\n", 4);

    snprintf(text, sizeof text, "[server]\ntls_cert = %s\ntls_key = %s\n", cert, key);
    struct loaded *l = load(text);
    expect_ok(l);
    cr_assert_str_eq(l->cfg.tls_cert, cert);
    cr_assert_str_eq(l->cfg.tls_key, key);
    done(l);

    snprintf(text, sizeof text, "[server]\ntls_cert = %s\n", cert);
    l = load(text);
    EXPECT_ERRORS(l, ":2: [server] tls_cert set without tls_key");
    done(l);

    snprintf(text, sizeof text, "[server]\n\ntls_key = %s\n", key);
    l = load(text);
    EXPECT_ERRORS(l, ":3: [server] tls_key set without tls_cert");
    done(l);

    snprintf(text, sizeof text, "[server]\ntls_cert = %s\ntls_key = /nonexistent/key.pem\n", cert);
    l = load(text);
    EXPECT_ERRORS(l, ":3: [server] tls_key '/nonexistent/key.pem' cannot be read: No such file "
                     "or directory");
    done(l);

    snprintf(text, sizeof text, "[server]\ntls_cert = /tmp\ntls_key = %s\n", key);
    l = load(text);
    EXPECT_ERRORS(l, ":2: [server] tls_cert '/tmp' is not a regular file");
    done(l);

    /* empty means off */
    l = load("[server]\ntls_cert =\ntls_key =\n");
    expect_ok(l);
    done(l);

    unlink(cert);
    unlink(key);
}

Test(config_server, listeners_may_not_share_an_address)
{
    static const struct case_ cases[] = {
        {"[server]\nadmin_listen = 0.0.0.0:8080\n",
         ":2: [server] listen and admin_listen are the same address '0.0.0.0:8080'"},
        {"[server]\nlisten = 127.0.0.1:9090\n",
         ":2: [server] listen and admin_listen are the same address '127.0.0.1:9090'"},
        /* tls_listen only counts with TLS on */
        {"[server]\ntls_listen = *:8080\n", NULL},
        /* port 0 is a fresh port each time */
        {"[server]\nlisten = 127.0.0.1:0\nadmin_listen = 127.0.0.1:0\n", NULL},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

Test(config_server, worker_count)
{
    struct config c;
    cr_assert_eq(config_defaults(&c), 0);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned want = cpus < 1 ? 1 : cpus > CONFIG_MAX_WORKERS ? CONFIG_MAX_WORKERS : (unsigned)cpus;
    cr_assert_eq(config_worker_count(&c), want);
    cr_assert_geq(config_worker_count(&c), 1);
    c.workers = 3;
    cr_assert_eq(config_worker_count(&c), 3);
    config_free(&c);
}

/* ---- file format -------------------------------------------------------- */

Test(config_file, missing_file)
{
    struct config c;
    struct config_errors e;
    const char *path = "/tmp/sluice_cfg_test_does/not/exist.ini";
    cr_assert_eq(config_load(&c, path, &e), -ENOENT);
    cr_assert_eq(e.n, 1);
    cr_assert_str_eq(e.msg[0],
                     "/tmp/sluice_cfg_test_does/not/exist.ini: cannot open: No such file or "
                     "directory");
    cr_assert_null(c.backends);
}

Test(config_file, directory)
{
    struct config c;
    struct config_errors e;
    cr_assert_eq(config_load(&c, "/tmp", &e), -EISDIR);
    cr_assert_eq(e.n, 1);
    cr_assert_str_eq(e.msg[0], "/tmp: cannot open: Is a directory");
}

Test(config_file, line_too_long)
{
    /* Debian's inih reads lines into 200 bytes: 198 characters, the
     * newline and the NUL. */
    char text[1024], pad[400];
    memset(pad, 'x', sizeof pad);
    snprintf(text, sizeof text, "[server]\n; %.*s\nstate_dir = /%.*s\nworkers = 2\n", 196, pad, 185,
             pad);
    struct loaded *l = load(text);
    expect_ok(l);
    cr_assert_eq(strlen(l->cfg.state_dir), 186);
    cr_assert_eq(l->cfg.workers, 2);
    done(l);

    snprintf(text, sizeof text,
             "[server]\n; %.*s\nstate_dir = /%.*s\nworkers = 2\nlog_level = debug x%.*s\n"
             "listn = 1\n",
             197, pad, 300, pad, 190, pad);
    l = load(text);
    /* the tails are not read as lines of their own */
    EXPECT_ERRORS(l, ":2: line too long (199 characters, at most 198)",
                  ":3: line too long (313 characters, at most 198)",
                  ":5: line too long (209 characters, at most 198)",
                  ":6: unknown key 'listn' in [server] (did you mean 'listen'?)");
    done(l);

    /* an unreadable section header: its keys are not given to the one before */
    snprintf(text, sizeof text, "[backend a]\nurl = http://127.0.0.1\n[backend %.*s]\nurl = x\n",
             200, pad);
    l = load(text);
    EXPECT_ERRORS(l, ":3: line too long (210 characters, at most 198)");
    done(l);

    /* far longer than our own buffer */
    size_t big = 100000;
    char *huge = malloc(big + 32);
    memcpy(huge, "[server]\n", 9);
    memset(huge + 9, 'y', big);
    memcpy(huge + 9 + big, "\nworkers = x\n", 14);
    l = load(huge);
    EXPECT_ERRORS(l, ":2: line too long (100000 characters, at most 198)",
                  ":3: [server] workers 'x' is not valid (expected auto or 1..256)");
    done(l);
    free(huge);
}

Test(config_file, bom_at_start)
{
    struct loaded *l = load("\xEF\xBB\xBF[server]\nworkers = 3\n");
    expect_ok(l);
    cr_assert_eq(l->cfg.workers, 3);
    done(l);

    l = load("\xEF\xBB\xBF; comment\n[server]\nworkers = 4\n");
    expect_ok(l);
    cr_assert_eq(l->cfg.workers, 4);
    done(l);

    /* only at the very start */
    l = load("[server]\n\xEF\xBB\xBFworkers = 4\n");
    EXPECT_ERRORS(l, ":2: unknown key '\xEF\xBB\xBFworkers' in [server]");
    done(l);
}

Test(config_file, comments)
{
    struct loaded *l = load("# hash comment\n"
                            "; semicolon comment\n"
                            "   ; indented comment\n"
                            "\n"
                            "[server] ; after a header\n"
                            "workers = 4 ; inline\n"
                            "state_dir = /a;b\n"
                            "control_socket = /tmp/s # not a comment\n"
                            "log_level = warn;\n"
                            "#[http]\n"
                            "drain_timeout = 5s\t; tab before the semicolon\n");
    EXPECT_ERRORS(l, ":9: [server] log_level 'warn;' is not a log level (expected error, warn, "
                     "info or debug)");
    done(l);

    l = load("# hash comment\n"
             "[server] ; after a header\n"
             "workers = 4 ; inline\n"
             "state_dir = /a;b\n"
             "control_socket = /tmp/s # not a comment\n"
             "drain_timeout = 5s\t; tab before the semicolon\n"
             "; [http]\n"
             "max_connections = 7\n");
    expect_ok(l);
    cr_assert_eq(l->cfg.workers, 4);
    cr_assert_str_eq(l->cfg.state_dir, "/a;b");
    cr_assert_str_eq(l->cfg.control_socket, "/tmp/s # not a comment");
    cr_assert_eq(l->cfg.drain_timeout_ms, 5000);
    cr_assert_eq(l->cfg.max_connections, 7);
    done(l);
}

Test(config_file, indentation_crlf_and_colons)
{
    /* An indented line is a key of its own, not inih's continuation line. */
    struct loaded *l = load("[server]\r\n"
                            "  workers = 2\r\n"
                            "\tlog_level = debug\r\n"
                            "state_dir: /srv/x\r\n"
                            "  [http]\r\n"
                            "  max_headers=9\r\n");
    expect_ok(l);
    cr_assert_eq(l->cfg.workers, 2);
    cr_assert_eq(l->cfg.log_level, 3);
    cr_assert_str_eq(l->cfg.state_dir, "/srv/x");
    cr_assert_eq(l->cfg.max_headers, 9);
    done(l);

    l = load("[server]\nworkers = 2\n   3\n");
    EXPECT_ERRORS(l, ":3: expected 'key = value', '[section]' or a comment");
    done(l);

    /* no newline at the end */
    l = load("[server]\nworkers = 5");
    expect_ok(l);
    cr_assert_eq(l->cfg.workers, 5);
    done(l);
}

Test(config_file, nul_byte)
{
    static const char text[] = "[server]\nwor\0kers = 2\nworkers = 3\n";
    struct loaded *l = load_bytes(text, sizeof text - 1);
    EXPECT_ERRORS(l, ":2: line contains a NUL byte");
    done(l);

    static const char header[] = "[server]\nworkers = 2\n[ser\0ver]\nworkers = 3\n";
    l = load_bytes(header, sizeof header - 1);
    EXPECT_ERRORS(l, ":3: line contains a NUL byte");
    done(l);
}

Test(config_file, the_design_example_loads)
{
    char text[1024];
    snprintf(text, sizeof text,
             "[server]\n"
             "listen = 0.0.0.0:8080            ; HTTP/1.1 and h2c\n"
             "tls_listen = 0.0.0.0:8443        ; off unless tls_cert and tls_key are set\n"
             "admin_listen = 127.0.0.1:9090\n"
             "control_socket = /run/sluice/control.sock   ; sluicectl --socket PATH\n"
             "state_dir = /var/lib/sluice                  ; rollout state, audit log\n"
             "workers = auto                   ; one per core\n"
             "\n"
             "[backend vllm]                   ; one section per backend\n"
             "url = http://127.0.0.1:8000\n"
             "kind = openai                    ; openai | ollama | tfserving-rest | ...\n"
             "\n"
             "[auth]                           ; API keys required once any tenant has one\n"
             "enabled = true\n"
             "\n"
             "[tenant acme]                    ; one section per tenant\n"
             "key_sha256 = %s               ; SHA-256 of the API key\n",
             KEY_A);
    struct loaded *l = load(text);
    expect_ok(l);
    cr_assert_eq(l->cfg.n_backends, 1);
    cr_assert_str_eq(l->cfg.backends[0].name, "vllm");
    cr_assert_eq(l->cfg.n_tenants, 1);
    cr_assert(l->cfg.auth_enabled);
    done(l);
}

/* ---- ownership ---------------------------------------------------------- */

Test(config_memory, copy_is_deep_and_free_releases)
{
    char text[4096] = "";
    for (int i = 0; i < 9; i++) {
        size_t n = strlen(text);
        snprintf(text + n, sizeof text - n, "[backend b%d]\nurl = http://127.0.0.1:%d\n", i,
                 2000 + i);
    }
    for (int i = 0; i < 7; i++) {
        size_t n = strlen(text);
        snprintf(text + n, sizeof text - n, "[tenant t%d]\nkey_sha256 = %062d%02d\n", i, 0, i);
    }
    struct loaded *l = load(text);
    expect_ok(l);
    cr_assert_eq(l->cfg.n_backends, 9);
    cr_assert_eq(l->cfg.n_tenants, 7);

    struct config *copy = malloc(sizeof *copy);
    cr_assert_eq(config_copy(copy, &l->cfg), 0);
    cr_assert_neq(copy->backends, l->cfg.backends);
    cr_assert_neq(copy->tenants, l->cfg.tenants);
    cr_assert_eq(memcmp(copy, &l->cfg, offsetof(struct config, backends)), 0);
    cr_assert_str_eq(copy->path, l->cfg.path);

    /* the original goes; the copy stands alone */
    done(l);
    cr_assert_eq(copy->n_backends, 9);
    cr_assert_str_eq(copy->backends[8].name, "b8");
    cr_assert_eq(copy->backends[8].port, 2008);
    cr_assert_str_eq(copy->tenants[6].name, "t6");
    cr_assert_eq(copy->tenants[6].key_sha256[31], 6);
    cr_assert_not_null(config_backend_find(copy, "b3"));

    struct config second;
    cr_assert_eq(config_copy(&second, copy), 0);
    config_free(copy);
    cr_assert_null(copy->backends);
    cr_assert_null(copy->tenants);
    cr_assert_eq(copy->n_backends, 0);
    cr_assert_eq(copy->n_tenants, 0);
    cr_assert_str_eq(second.backends[0].name, "b0");
    config_free(&second);
    free(copy);
}

Test(config_memory, copy_of_defaults_and_of_nothing)
{
    struct config a, b, empty, c;
    cr_assert_eq(config_defaults(&a), 0);
    cr_assert_eq(config_copy(&b, &a), 0);
    config_free(&a);
    expect_default_values(&b);
    config_free(&b);

    memset(&empty, 0, sizeof empty);
    cr_assert_eq(config_copy(&c, &empty), 0);
    cr_assert_null(c.backends);
    cr_assert_null(c.tenants);
    config_free(&c);
}

/* A failed load leaves nothing behind (ASan's leak check runs at exit). */
Test(config_memory, failed_load_releases)
{
    struct loaded *l = load("[backend a]\nurl = http://127.0.0.1\n[tenant t]\n[backend b]\n"
                            "url = https://x\n");
    cr_assert_eq(l->rc, -EINVAL);
    cr_assert_null(l->cfg.backends);
    cr_assert_null(l->cfg.tenants);
    cr_assert_eq(l->cfg.n_backends, 0);
    done(l);
}

Test(config_governor, defaults_and_values)
{
    struct loaded *l = load("");
    expect_ok(l);
    const struct config *c = &l->cfg;
    cr_assert_eq(c->gov_algorithm, CONFIG_GOV_GRADIENT);
    cr_assert_eq(c->target_ttft_ms, 550);
    cr_assert_eq(c->min_concurrent, 16);
    cr_assert_eq(c->max_concurrent, 80);
    cr_assert_eq(c->sample_interval_ms, 200);
    cr_assert_float_eq(c->gov_kp, 0.35, 1e-12);
    cr_assert_float_eq(c->gov_ki, 0.08, 1e-12);
    cr_assert_float_eq(c->gov_kd, 0.15, 1e-12);
    cr_assert_float_eq(c->gov_integral_saturation, 200.0, 1e-12);
    cr_assert_eq(c->queue_ttl_ms, 800);
    cr_assert_eq(c->queue_max, 1024);
    done(l);

    l = load("[governor]\nalgorithm = pid\nkp = 1.5\nki = 0\nkd = .25\nmin_concurrent = 2\n"
             "max_concurrent = 2\nqueue_max = 0\n");
    expect_ok(l);
    cr_assert_eq(l->cfg.gov_algorithm, CONFIG_GOV_PID);
    cr_assert_float_eq(l->cfg.gov_kp, 1.5, 1e-12);
    cr_assert_float_eq(l->cfg.gov_ki, 0.0, 1e-12);
    cr_assert_float_eq(l->cfg.gov_kd, 0.25, 1e-12);
    cr_assert_eq(l->cfg.min_concurrent, 2);
    cr_assert_eq(l->cfg.queue_max, 0);
    done(l);
}

Test(config_governor, bad_values)
{
    static const struct case_ cases[] = {
        {"[governor]\nalgorithm = vegas\n",
         ":2: [governor] algorithm 'vegas' is not supported (supported: pid, gradient)"},
        {"[governor]\nkp = -1\n", ":2: [governor] kp '-1' is not a non-negative decimal number"},
        {"[governor]\nkp = nan\n", ":2: [governor] kp 'nan' is not a non-negative decimal number"},
        {"[governor]\nkp = 0x10\n",
         ":2: [governor] kp '0x10' is not a non-negative decimal number"},
        {"[governor]\nkd = 1.5x\n",
         ":2: [governor] kd '1.5x' is not a non-negative decimal number"},
        {"[governor]\nki = 1001\n", ":2: [governor] ki '1001' must be between 0 and 1000"},
        {"[governor]\ntarget_ttft_ms = 0\n",
         ":2: [governor] target_ttft_ms '0' must be between 1 and 600000"},
        {"[governor]\nsample_interval_ms = 5\n",
         ":2: [governor] sample_interval_ms '5' must be between 10 and 60000"},
        {"[governor]\nmin_concurrent = 50\nmax_concurrent = 40\n",
         ":2: [governor] min_concurrent (50) must be at most max_concurrent (40)"},
        {"[governor]\nmin_concurrent = 100\n",
         ":2: [governor] min_concurrent (100) must be at most max_concurrent (80)"},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

Test(config_tenants, limits_and_budgets)
{
    struct loaded *l = load("[tenant acme]\nhard_limit = 20\nburst_limit = 32\ndecay_ms = 5000\n"
                            "tokens_per_minute = 600000\ndefault_max_tokens = 256\n"
                            "[tenant other]\n");
    expect_ok(l);
    cr_assert_eq(l->cfg.n_tenants, 2);
    const struct config_tenant *t = &l->cfg.tenants[0];
    cr_assert_eq(t->hard_limit, 20);
    cr_assert_eq(t->burst_limit, 32);
    cr_assert_eq(t->decay_ms, 5000);
    cr_assert_eq(t->tokens_per_minute, 600000);
    cr_assert_eq(t->default_max_tokens, 256);
    t = &l->cfg.tenants[1];
    cr_assert_eq(t->hard_limit, 0);
    cr_assert_eq(t->burst_limit, 0);
    cr_assert_eq(t->decay_ms, 60000);
    cr_assert_eq(t->tokens_per_minute, 0);
    cr_assert_eq(t->default_max_tokens, 1024);
    done(l);

    static const struct case_ cases[] = {
        {"[tenant a]\nhard_limit = 10\nburst_limit = 5\n",
         ":1: [tenant a] burst_limit (5) must be at least hard_limit (10)"},
        {"[tenant a]\nburst_limit = 5\n", ":1: [tenant a] burst_limit needs a hard_limit"},
        {"[tenant a]\ndecay_ms = 0\n",
         ":2: [tenant a] decay_ms '0' must be between 1 and 86400000"},
        {"[tenant a]\ndefault_max_tokens = 0\n",
         ":2: [tenant a] default_max_tokens '0' must be between 1 and 10000000"},
        {"[tenant a]\ntokens_per_minute = lots\n",
         ":2: [tenant a] tokens_per_minute 'lots' is not a whole number"},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}

Test(config_server, control_group)
{
    struct loaded *l = load("[server]\ncontrol_group = sluice-ops\n");
    expect_ok(l);
    cr_assert_str_eq(l->cfg.control_group, "sluice-ops");
    done(l);
}

#include "controlplane/governor.h"

/* The governor's own defaults (tests, fallback) and the config's must be
 * the same numbers: the README documents the config's. */
Test(config_governor, defaults_match_the_governor_module)
{
    struct config c;
    cr_assert_eq(config_defaults(&c), 0);
    struct gov_params p;
    gov_params_default(&p);
    cr_assert_eq((int)p.algo, c.gov_algorithm);
    cr_assert_float_eq(p.target_ttft_ms, (double)c.target_ttft_ms, 1e-9);
    cr_assert_eq(p.min_limit, c.min_concurrent);
    cr_assert_eq(p.max_limit, c.max_concurrent);
    cr_assert_eq(p.sample_interval_ms, c.sample_interval_ms);
    cr_assert_float_eq(p.kp, c.gov_kp, 1e-12);
    cr_assert_float_eq(p.ki, c.gov_ki, 1e-12);
    cr_assert_float_eq(p.kd, c.gov_kd, 1e-12);
    cr_assert_float_eq(p.integral_saturation, c.gov_integral_saturation, 1e-12);
    config_free(&c);
}

/* ---- [qos] and [slo NAME] ----------------------------------------------- */

Test(config_slo, policies_parse)
{
    struct loaded *l = load("[tenant acme]\n"
                            "[qos]\nevaluate_interval = 5s\nwebhook = http://127.0.0.1:9/hook/a\n"
                            "[slo fast]\nmetric = ttft_p95\nthreshold = 800\nwindow = 2m\n"
                            "severity = critical\n"
                            "actions = lower_limit 25%, throttle_tenant cooldown 1m, "
                            "disable_feature stream_resume, protocol_fallback, shed_load 10, "
                            "alert, safe_mode\n"
                            "[slo errs]\ntenant = acme\nmetric = error_rate\nthreshold = 0.01\n");
    expect_ok(l);
    const struct config *c = &l->cfg;
    cr_assert_eq(c->qos_interval_ms, 5000);
    cr_assert_str_eq(c->qos_webhook.host, "127.0.0.1");
    cr_assert_eq(c->qos_webhook.port, 9);
    cr_assert_str_eq(c->qos_webhook_path, "/hook/a");
    cr_assert_eq(c->n_slos, 2);
    const struct config_slo *f = &c->slos[0];
    cr_assert_eq(f->metric, SLO_TTFT_P95);
    cr_assert_float_eq(f->threshold, 800, 1e-9);
    cr_assert_eq(f->window_ms, 120000);
    cr_assert_eq(f->severity, SLO_CRITICAL);
    cr_assert_eq(f->n_actions, 7);
    cr_assert_eq(f->actions[0].kind, ACT_LOWER_LIMIT);
    cr_assert_eq(f->actions[0].pct, 25);
    cr_assert_eq(f->actions[1].kind, ACT_THROTTLE_TENANT);
    cr_assert_eq(f->actions[1].cooldown_ms, 60000);
    cr_assert_eq(f->actions[2].kind, ACT_DISABLE_FEATURE);
    cr_assert_eq(f->actions[2].feature, FEAT_STREAM_RESUME);
    cr_assert_eq(f->actions[4].pct, 10);
    cr_assert_eq(f->actions[6].kind, ACT_SAFE_MODE);
    cr_assert_eq(f->cooldown_ms, 30000); /* the default */
    const struct config_slo *e = &c->slos[1];
    cr_assert_str_eq(e->tenant, "acme");
    cr_assert_eq(e->n_actions, 1); /* default: alert */
    cr_assert_eq(e->actions[0].kind, ACT_ALERT);
    done(l);
}

Test(config_slo, errors_have_their_lines)
{
    static const struct case_ cases[] = {
        {"[slo a]\nmetric = ttft_p95\n", ":1: [slo a] has no threshold"},
        {"[slo a]\nthreshold = 1\n", ":1: [slo a] has no metric"},
        {"[slo a]\nmetric = latency\nthreshold = 1\n",
         ":2: [slo a] metric 'latency' is not supported (supported: ttft_p50, ttft_p95, ttft_p99, "
         "itl_p99, error_rate, reject_rate, disconnect_rate, slow_consumer_rate, queue_depth)"},
        {"[slo a]\nmetric = error_rate\nthreshold = 5\n",
         ":3: [slo a] threshold 5 is a rate: at most 1 (0.01 = 1 %)"},
        {"[slo a]\nmetric = ttft_p95\nthreshold = 1\nactions = lower_limit\n",
         ":4: [slo a] actions 'lower_limit' has lower_limit without a percentage 1..99 (e.g. "
         "'lower_limit 25')"},
        {"[slo a]\nmetric = ttft_p95\nthreshold = 1\nactions = alert, reboot\n",
         ":4: [slo a] actions 'alert, reboot' has an unknown action 'reboot' (expected "
         "lower_limit, throttle_tenant, disable_feature, protocol_fallback, shed_load, alert or "
         "safe_mode)"},
        {"[slo a]\nmetric = ttft_p95\nthreshold = 1\nactions = disable_feature warp\n",
         ":4: [slo a] actions 'disable_feature warp' has disable_feature without a feature "
         "(adaptive_governor, http2_transport, ttft_pipeline, qos_monitoring, stream_resume)"},
        {"[slo a]\nmetric = ttft_p95\nthreshold = 1\nactions = alert cooldown soon\n",
         ":4: [slo a] actions 'alert cooldown soon' has alert cooldown 'soon', which is not a "
         "duration (expected e.g. 250ms, 10s, 5m, 1h)"},
        {"[slo a]\nmetric = ttft_p95\nthreshold = 1\nactions = alert,\n",
         ":4: [slo a] actions 'alert,' has an empty action"},
        {"[slo a]\nmetric = ttft_p95\nthreshold = 1\nactions = safe_mode 5\n",
         ":4: [slo a] actions 'safe_mode 5' has safe_mode with an argument '5' it does not take"},
        {"[slo a]\nmetric = ttft_p95\nthreshold = 1\ntenant = ghost\n",
         ":1: [slo a] tenant 'ghost' is not a [tenant NAME] (or * or default)"},
        {"[slo a]\nmetric = ttft_p95\nthreshold = 1\nbackend = ghost\n",
         ":1: [slo a] backend 'ghost' is not a [backend NAME]"},
        {"[slo a]\nmetric = itl_p99\nthreshold = 1\ntenant = *\n",
         ":2: [slo a] itl_p99 is measured for the whole node only (no tenant, no backend)"},
        {"[slo a]\nmetric = ttft_p95\nthreshold = 1\n[slo a]\n",
         ":4: section [slo a] given twice (first at line 1)"},
        {"[qos]\nwebhook = ftp://x/\n",
         ":2: [qos] webhook 'ftp://x/' has scheme 'ftp', which is not supported (only http://)"},
        {"[slo ok]\nmetric = queue_depth\nthreshold = 50\nactions = shed_load 20 cooldown 5s\n",
         NULL},
    };
    run_cases(cases, sizeof cases / sizeof *cases);
}
