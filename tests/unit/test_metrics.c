/*
 * Unit tests for controlplane/metrics: a shared segment with known counts
 * in live and folded slots, collected and rendered, and the exact lines of
 * the Prometheus text checked (cumulative buckets, le values, _sum in
 * seconds, _count, label escaping), plus a syntax check of every line.
 */
#include <criterion/criterion.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/metrics.h"
#include "shared/hist.h"
#include "shared/sbuf.h"
#include "shared/shm.h"

static const char *const ttft_le[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
                                      "0.75",  "1",    "2.5",   "5",    "10",  "30",   "60"};
static const char *const itl_le[] = {"0.001", "0.0025", "0.005", "0.01", "0.02", "0.05", "0.1",
                                     "0.25",  "0.5",    "1",     "2.5",  "5",    "10"};

#define WEIRD_MODEL "a\"b\\c\nd"

static struct shm shm;
static char *page;

/*
 * Live worker A, live worker B, live control plane C, and worker D that
 * died and was folded.
 */
static int setup_segment(void)
{
    cr_assert_eq(shm_create(&shm, 4), 0);
    int d = shm_slot_claim(&shm, 2, SHM_ROLE_WORKER, 1);
    struct shm_slot *sd = shm_slot(&shm, (unsigned)d);
    shm_add(&sd->c.requests[shm_code_index(200)], 1);
    shm_add(&sd->c.requests[shm_code_index(418)], 4);
    shm_add(&sd->c.tokens, 7);
    shm_add(&sd->c.upstream_cancellations, 1);
    shm_gauge_add(&sd->g.streams_active, 100);
    hist_record(&sd->c.itl, &hist_itl_bounds, 2500);
    hist_record(shm_ttft_hist(sd, "default", "vllm", "llama"), &hist_ttft_bounds, 70000000);
    shm_slot_release(&shm, (unsigned)d);

    int a = shm_slot_claim(&shm, 0, SHM_ROLE_WORKER, 2);
    int b = shm_slot_claim(&shm, 1, SHM_ROLE_WORKER, 2);
    int c = shm_slot_claim(&shm, 0, SHM_ROLE_CONTROL, 2);
    struct shm_slot *sa = shm_slot(&shm, (unsigned)a);
    struct shm_slot *sb = shm_slot(&shm, (unsigned)b);
    struct shm_slot *sc = shm_slot(&shm, (unsigned)c);
    shm_add(&sa->c.requests[shm_code_index(200)], 5);
    shm_add(&sa->c.requests[shm_code_index(404)], 1);
    shm_add(&sb->c.requests[shm_code_index(200)], 2);
    shm_add(&sb->c.requests[shm_code_index(503)], 3);
    shm_add(&sc->c.requests[shm_code_index(200)], 1);
    shm_add(&sa->c.tokens, 100);
    shm_add(&sb->c.tokens, 50);
    shm_add(&sa->c.upstream_cancellations, 2);
    shm_gauge_add(&sa->g.streams_active, 3);
    shm_gauge_add(&sb->g.streams_active, 4);
    hist_record(&sa->c.itl, &hist_itl_bounds, 500);
    hist_record(&sa->c.itl, &hist_itl_bounds, 1000);
    hist_record(&sa->c.itl, &hist_itl_bounds, 1001);
    hist_record(&sb->c.itl, &hist_itl_bounds, 20000000);
    struct hist *la = shm_ttft_hist(sa, "default", "vllm", "llama");
    hist_record(la, &hist_ttft_bounds, 5000);
    hist_record(la, &hist_ttft_bounds, 5001);
    hist_record(shm_ttft_hist(sb, "default", "vllm", "llama"), &hist_ttft_bounds, 60000000);
    hist_record(shm_ttft_hist(sb, "acme", "ollama", WEIRD_MODEL), &hist_ttft_bounds, 100);
    return a;
}

static void render(void)
{
    static struct metrics_snapshot snap; /* large */
    metrics_collect(&shm, &snap);
    struct sbuf b;
    sbuf_init(&b, 1 << 20);
    cr_assert_eq(metrics_render(&snap, &b), 0);
    free(page);
    /* with a leading newline so that every line is "\n...\n" */
    size_t n = b.len;
    page = malloc(n + 2);
    page[0] = '\n';
    memcpy(page + 1, b.p, n + 1);
    sbuf_free(&b);
    cr_assert_eq(page[n], '\n', "the page ends with a newline");
}

static void teardown(void)
{
    free(page);
    page = NULL;
    shm_destroy(&shm);
}

static void line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void line(const char *fmt, ...)
{
    char want[512];
    want[0] = '\n';
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(want + 1, sizeof want - 2, fmt, ap);
    va_end(ap);
    cr_assert(n > 0 && (size_t)n < sizeof want - 2);
    want[n + 1] = '\n';
    want[n + 2] = '\0';
    cr_assert_not_null(strstr(page, want), "missing line: %.*s\npage:%s", n, want + 1, page);
    char *first = strstr(page, want);
    cr_assert_null(strstr(first + 1, want), "line twice: %.*s", n, want + 1);
}

Test(metrics, counters_and_gauges, .fini = teardown)
{
    setup_segment();
    render();
    line("# TYPE sluice_requests_total counter");
    line("sluice_requests_total{code=\"200\"} 9");
    line("sluice_requests_total{code=\"404\"} 1");
    line("sluice_requests_total{code=\"503\"} 3");
    line("sluice_requests_total{code=\"500\"} 0");
    line("sluice_requests_total{code=\"499\"} 0");
    line("sluice_requests_total{code=\"other\"} 4");
    line("# TYPE sluice_tokens_total counter");
    line("sluice_tokens_total 157");
    line("# TYPE sluice_upstream_cancellations_total counter");
    line("sluice_upstream_cancellations_total 3");
    line("# TYPE sluice_streams_active gauge");
    line("sluice_streams_active 7");
    /* every counted status has its line, once */
    for (unsigned i = 0; i < SHM_CODE_OTHER; i++) {
        int st = shm_code_status((enum shm_code)i);
        line("sluice_requests_total{code=\"%d\"} %d", st,
             st == 200   ? 9
             : st == 404 ? 1
             : st == 503 ? 3
                         : 0);
    }
}

Test(metrics, inter_token_histogram, .fini = teardown)
{
    setup_segment();
    render();
    line("# TYPE sluice_inter_token_seconds histogram");
    /* 500, 1000 | 1001, 2500 | ... | 20 s */
    static const int cum[] = {2, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4};
    cr_assert_eq(hist_itl_bounds.n, sizeof itl_le / sizeof itl_le[0]);
    for (unsigned i = 0; i < hist_itl_bounds.n; i++)
        line("sluice_inter_token_seconds_bucket{le=\"%s\"} %d", itl_le[i], cum[i]);
    line("sluice_inter_token_seconds_bucket{le=\"+Inf\"} 5");
    line("sluice_inter_token_seconds_sum 20.005001");
    line("sluice_inter_token_seconds_count 5");
}

Test(metrics, ttft_histogram_by_label, .fini = teardown)
{
    setup_segment();
    render();
    line("# TYPE sluice_ttft_seconds histogram");
    const char *l = "tenant=\"default\",backend=\"vllm\",model=\"llama\"";
    /* 5 ms | 5.001 ms | ... | 60 s | 70 s (folded from the dead worker) */
    cr_assert_eq(hist_ttft_bounds.n, sizeof ttft_le / sizeof ttft_le[0]);
    for (unsigned i = 0; i < hist_ttft_bounds.n; i++)
        line("sluice_ttft_seconds_bucket{%s,le=\"%s\"} %d", l, ttft_le[i],
             i == 0   ? 1
             : i < 13 ? 2
                      : 3);
    line("sluice_ttft_seconds_bucket{%s,le=\"+Inf\"} 4", l);
    line("sluice_ttft_seconds_sum{%s} 130.010001", l);
    line("sluice_ttft_seconds_count{%s} 4", l);
    /* the model name escaped: \" \\ \n */
    const char *w = "tenant=\"acme\",backend=\"ollama\",model=\"a\\\"b\\\\c\\nd\"";
    line("sluice_ttft_seconds_bucket{%s,le=\"0.005\"} 1", w);
    line("sluice_ttft_seconds_bucket{%s,le=\"+Inf\"} 1", w);
    line("sluice_ttft_seconds_sum{%s} 0.000100", w);
    line("sluice_ttft_seconds_count{%s} 1", w);
}

/* ---- a syntax check of the whole page ------------------------------------ */

static bool name_char(char c, bool first)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':' ||
           (!first && isdigit((unsigned char)c));
}

/* Checks one sample line; returns the metric name length. */
static size_t check_sample(const char *s, size_t len)
{
    size_t i = 0;
    cr_assert(len > 0 && name_char(s[0], true), "bad name: %.*s", (int)len, s);
    while (i < len && name_char(s[i], false))
        i++;
    size_t name_len = i;
    if (i < len && s[i] == '{') {
        i++;
        while (i < len && s[i] != '}') {
            cr_assert(name_char(s[i], true), "bad label name: %.*s", (int)len, s);
            while (i < len && name_char(s[i], false))
                i++;
            cr_assert(i + 1 < len && s[i] == '=' && s[i + 1] == '"', "%.*s", (int)len, s);
            i += 2;
            while (i < len && s[i] != '"') {
                if (s[i] == '\\') {
                    cr_assert(i + 1 < len && strchr("\\\"n", s[i + 1]), "bad escape: %.*s",
                              (int)len, s);
                    i++;
                }
                i++;
            }
            cr_assert(i < len, "unterminated label value: %.*s", (int)len, s);
            i++;
            if (s[i] == ',')
                i++;
        }
        cr_assert(i < len, "unterminated labels: %.*s", (int)len, s);
        i++;
    }
    cr_assert(i < len && s[i] == ' ', "no space before the value: %.*s", (int)len, s);
    i++;
    char num[64];
    cr_assert(len - i > 0 && len - i < sizeof num, "%.*s", (int)len, s);
    memcpy(num, s + i, len - i);
    num[len - i] = '\0';
    char *end;
    strtod(num, &end);
    cr_assert(*end == '\0', "value not a number: %.*s", (int)len, s);
    return name_len;
}

Test(metrics, page_syntax, .fini = teardown)
{
    setup_segment();
    render();
    char types[64][96];
    unsigned ntypes = 0;
    const char *p = page + 1;
    while (*p) {
        const char *nl = strchr(p, '\n');
        cr_assert_not_null(nl);
        size_t len = (size_t)(nl - p);
        cr_assert_gt(len, 0, "empty line");
        if (strncmp(p, "# TYPE ", 7) == 0) {
            /* "# TYPE <name> <type>" */
            const char *sp = memchr(p + 7, ' ', len - 7);
            cr_assert_not_null(sp, "%.*s", (int)len, p);
            char name[96], type[32];
            size_t nl_name = (size_t)(sp - (p + 7)), tl = len - 8 - nl_name;
            cr_assert(nl_name > 0 && nl_name < sizeof name && tl < sizeof type);
            memcpy(name, p + 7, nl_name);
            name[nl_name] = '\0';
            memcpy(type, sp + 1, tl);
            type[tl] = '\0';
            cr_assert(!strcmp(type, "counter") || !strcmp(type, "gauge") ||
                          !strcmp(type, "histogram"),
                      "type %s", type);
            for (unsigned k = 0; k < ntypes; k++)
                cr_assert_str_neq(types[k], name, "TYPE of %s twice", name);
            cr_assert_lt(ntypes, 64);
            snprintf(types[ntypes++], sizeof types[0], "%s", name);
        } else if (strncmp(p, "# HELP ", 7) == 0) {
            /* fine */
        } else {
            cr_assert_neq(p[0], '#', "unknown comment: %.*s", (int)len, p);
            size_t nl_ = check_sample(p, len);
            /* the family was typed before its samples */
            bool found = false;
            for (unsigned k = 0; k < ntypes && !found; k++) {
                size_t tl = strlen(types[k]);
                if (tl == nl_ && !strncmp(p, types[k], tl))
                    found = true;
                static const char *const sfx[] = {"_bucket", "_sum", "_count"};
                for (int j = 0; j < 3 && !found; j++)
                    if (tl + strlen(sfx[j]) == nl_ && !strncmp(p, types[k], tl) &&
                        !strncmp(p + tl, sfx[j], strlen(sfx[j])))
                        found = true;
            }
            cr_assert(found, "sample before its TYPE: %.*s", (int)len, p);
        }
        p = nl + 1;
    }
    static const char *const required[] = {
        "sluice_ttft_seconds",   "sluice_inter_token_seconds",
        "sluice_streams_active", "sluice_requests_total",
        "sluice_tokens_total",   "sluice_upstream_cancellations_total",
    };
    for (size_t r = 0; r < sizeof required / sizeof required[0]; r++) {
        bool found = false;
        for (unsigned k = 0; k < ntypes; k++)
            found |= !strcmp(types[k], required[r]);
        cr_assert(found, "metric %s of DESIGN.md missing", required[r]);
    }
}

/* Folding a worker's slot moves its counters, not the totals: every counter
 * line is unchanged, and its gauge is gone. */
Test(metrics, fold_keeps_page_totals, .fini = teardown)
{
    int a = setup_segment();
    render();
    char *before = strdup(page);
    shm_slot_release(&shm, (unsigned)a);
    render();
    line("sluice_requests_total{code=\"200\"} 9");
    line("sluice_requests_total{code=\"404\"} 1");
    line("sluice_tokens_total 157");
    line("sluice_upstream_cancellations_total 3");
    line("sluice_inter_token_seconds_bucket{le=\"+Inf\"} 5");
    line("sluice_inter_token_seconds_sum 20.005001");
    line("sluice_ttft_seconds_count{tenant=\"default\",backend=\"vllm\",model=\"llama\"} 4");
    line("sluice_streams_active 4");
    /* everything but the gauges that lived in A is byte-identical */
    char *x = before + 1, *y = page + 1;
    while (*x && *y) {
        char *ex = strchr(x, '\n'), *ey = strchr(y, '\n');
        size_t lx = (size_t)(ex - x), ly = (size_t)(ey - y);
        bool same = lx == ly && !memcmp(x, y, lx);
        if (!same)
            cr_assert(!strncmp(x, "sluice_streams_active ", 22) ||
                          !strncmp(x, "sluice_workers ", 15) ||
                          !strncmp(x, "sluice_slabs_used ", 18) ||
                          !strncmp(x, "sluice_connections_active ", 26) ||
                          !strncmp(x, "sluice_upstream_connections{", 28),
                      "line changed by the fold: %.*s -> %.*s", (int)lx, x, (int)ly, y);
        x = ex + 1;
        y = ey + 1;
    }
    cr_assert(!*x && !*y, "same number of lines");
    free(before);
}
