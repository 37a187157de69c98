/*
 * stats — counters and samples of one llmload run (see stats.h).
 */
#include "perf/loadgen/stats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void stats_init(struct stats *s)
{
    memset(s, 0, sizeof(*s));
}

void stats_free(struct stats *s)
{
    free(s->ttft.v);
    free(s->itl.v);
    memset(s, 0, sizeof(*s));
}

void stats_record(struct stats *s, enum stats_outcome o, unsigned status)
{
    if ((unsigned)o >= STATS_OUTCOME_COUNT)
        o = STATS_PROTOCOL;
    s->by_outcome[o]++;
    if (o == STATS_STATUS)
        s->by_status[status < STATS_STATUS_SLOTS ? status : 0]++;
}

uint64_t stats_failed(const struct stats *s)
{
    uint64_t n = 0;
    for (int i = STATS_OK + 1; i < STATS_OUTCOME_COUNT; i++)
        n += s->by_outcome[i];
    return n;
}

static int reserve(struct stats_samples *ss, size_t want)
{
    if (want <= ss->cap)
        return 0;
    size_t cap = ss->cap ? ss->cap : 4096;
    while (cap < want) {
        if (cap > SIZE_MAX / 2 / sizeof(uint32_t))
            return -ENOMEM;
        cap *= 2;
    }
    uint32_t *v = realloc(ss->v, cap * sizeof(uint32_t));
    if (!v)
        return -ENOMEM;
    ss->v = v;
    ss->cap = cap;
    return 0;
}

int stats_grow(struct stats_samples *ss)
{
    return reserve(ss, ss->n + 1);
}

int stats_samples_merge(struct stats_samples *into, const struct stats_samples *from)
{
    into->dropped += from->dropped;
    into->sum_ns += from->sum_ns;
    if (from->max_ns > into->max_ns)
        into->max_ns = from->max_ns;
    if (from->n == 0)
        return 0;
    if (reserve(into, into->n + from->n) < 0) {
        into->dropped += from->n;
        return -ENOMEM;
    }
    memcpy(into->v + into->n, from->v, from->n * sizeof(uint32_t));
    into->n += from->n;
    return 0;
}

int stats_merge(struct stats *into, const struct stats *from)
{
    into->started += from->started;
    for (int i = 0; i < STATS_OUTCOME_COUNT; i++)
        into->by_outcome[i] += from->by_outcome[i];
    for (int i = 0; i < STATS_STATUS_SLOTS; i++)
        into->by_status[i] += from->by_status[i];
    into->tokens += from->tokens;
    into->events += from->events;
    into->bytes_in += from->bytes_in;
    into->connects += from->connects;
    into->retries += from->retries;
    int a = stats_samples_merge(&into->ttft, &from->ttft);
    int b = stats_samples_merge(&into->itl, &from->itl);
    return a < 0 ? a : b;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* LSD radix sort, 4 passes of 8 bits; falls back to qsort without memory. */
static void sort_u32(uint32_t *v, size_t n)
{
    if (n < 256) {
        qsort(v, n, sizeof(*v), cmp_u32);
        return;
    }
    uint32_t *tmp = malloc(n * sizeof(*v));
    if (!tmp) {
        qsort(v, n, sizeof(*v), cmp_u32);
        return;
    }
    uint32_t *src = v, *dst = tmp;
    for (unsigned shift = 0; shift < 32; shift += 8) {
        size_t count[256] = {0};
        for (size_t i = 0; i < n; i++)
            count[(src[i] >> shift) & 0xff]++;
        if (count[(src[0] >> shift) & 0xff] == n)
            continue; /* every sample has the same digit: nothing to move */
        size_t pos = 0;
        for (int d = 0; d < 256; d++) {
            size_t c = count[d];
            count[d] = pos;
            pos += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[count[(src[i] >> shift) & 0xff]++] = src[i];
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != v)
        memcpy(v, src, n * sizeof(*v));
    free(tmp);
}

/* Nearest rank: the smallest sample with at least p % of the samples <= it. */
static double rank_ms(const uint32_t *v, size_t n, unsigned p)
{
    size_t r = (size_t)(((unsigned __int128)n * p + 99) / 100);
    if (r < 1)
        r = 1;
    return v[r - 1] / 1000.0;
}

void stats_summarize(struct stats_samples *ss, struct stats_summary *out)
{
    memset(out, 0, sizeof(*out));
    out->count = ss->n + ss->dropped;
    if (ss->n == 0)
        return;
    sort_u32(ss->v, ss->n);
    out->p50 = rank_ms(ss->v, ss->n, 50);
    out->p90 = rank_ms(ss->v, ss->n, 90);
    out->p95 = rank_ms(ss->v, ss->n, 95);
    out->p99 = rank_ms(ss->v, ss->n, 99);
    out->max = ss->max_ns / 1e6;
    out->mean = (double)ss->sum_ns / (double)(ss->n + ss->dropped) / 1e6;
}

const char *stats_outcome_name(enum stats_outcome o)
{
    static const char *const names[STATS_OUTCOME_COUNT] = {
        [STATS_OK] = "ok",
        [STATS_CONNECT] = "connect",
        [STATS_STATUS] = "status",
        [STATS_SSE_ERROR] = "sse_error",
        [STATS_EOF] = "eof",
        [STATS_TIMEOUT] = "timeout",
        [STATS_PROTOCOL] = "protocol",
    };
    return (unsigned)o < STATS_OUTCOME_COUNT ? names[o] : "?";
}
