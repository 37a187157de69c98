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
#include "tests/unit/config_fixture.h"
#include "shared/rollout.h"

/* ---- defaults ----------------------------------------------------------- */

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

/* A failed load leaves nothing behind (ASan's leak check runs at exit). */

Test(config_server, control_group)
{
    struct loaded *l = load("[server]\ncontrol_group = sluice-ops\n");
    expect_ok(l);
    cr_assert_str_eq(l->cfg.control_group, "sluice-ops");
    done(l);
}
