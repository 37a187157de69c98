/*
 * timeseries — per-second series and offered-load schedule (see timeseries.h).
 */
#include "perf/loadgen/timeseries.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S       1000000000LL
#define SCHEDULE_MAX   10000       /* points */
#define SCHEDULE_T_MAX (1000000.0) /* seconds */
#define CONC_MAX       10000000

int ts_schedule_parse(const char *s, struct ts_schedule *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    if (cap > SCHEDULE_MAX) {
        snprintf(err, errlen, "--schedule: at most %d points", SCHEDULE_MAX);
        return -EINVAL;
    }
    out->v = calloc(cap, sizeof(*out->v));
    if (!out->v) {
        snprintf(err, errlen, "--schedule: out of memory");
        return -ENOMEM;
    }
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        double t = strtod(p, &end);
        if (errno || end == p || *end != ':' || !(t >= 0) || t > SCHEDULE_T_MAX)
            goto bad;
        p = end + 1;
        errno = 0;
        long long c = strtoll(p, &end, 10);
        if (errno || end == p || (*end != ',' && *end) || c < 0 || c > CONC_MAX)
            goto bad;
        int64_t t_ns = (int64_t)(t * 1e9 + 0.5);
        if (out->n > 0 && t_ns <= out->v[out->n - 1].t_ns) {
            snprintf(err, errlen, "--schedule: times must increase (%g s comes after %g s)", t,
                     (double)out->v[out->n - 1].t_ns / 1e9);
            ts_schedule_free(out);
            return -EINVAL;
        }
        out->v[out->n].t_ns = t_ns;
        out->v[out->n].conc = (uint32_t)c;
        out->n++;
        if ((uint32_t)c > out->max_conc)
            out->max_conc = (uint32_t)c;
        if (!*end)
            break;
        p = end + 1;
    }
    return 0;
bad:
    snprintf(err, errlen,
             "--schedule wants SECONDS:STREAMS[,SECONDS:STREAMS...], e.g. 0:10,30:100 (at "
             "\"%.40s\")",
             p);
    ts_schedule_free(out);
    return -EINVAL;
}

void ts_schedule_free(struct ts_schedule *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

uint32_t ts_schedule_at(const struct ts_schedule *s, int64_t t_ns)
{
    uint32_t c = 0;
    for (size_t i = 0; i < s->n && s->v[i].t_ns <= t_ns; i++)
        c = s->v[i].conc;
    return c;
}

int64_t ts_schedule_next(const struct ts_schedule *s, int64_t t_ns)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].t_ns > t_ns)
            return s->v[i].t_ns;
    return INT64_MAX;
}

void ts_init(struct ts_series *ts, int64_t t0)
{
    memset(ts, 0, sizeof(*ts));
    ts->t0 = t0;
}

void ts_free(struct ts_series *ts)
{
    for (size_t i = 0; i < ts->n; i++)
        free(ts->b[i].ttft.v);
    free(ts->b);
    memset(ts, 0, sizeof(*ts));
}

static int ts_reserve(struct ts_series *ts, size_t want)
{
    if (want <= ts->cap)
        return 0;
    size_t cap = ts->cap ? ts->cap : 256;
    while (cap < want) {
        if (cap > SIZE_MAX / 2 / sizeof(*ts->b))
            return -ENOMEM;
        cap *= 2;
    }
    struct ts_bucket *b = realloc(ts->b, cap * sizeof(*b));
    if (!b)
        return -ENOMEM;
    memset(b + ts->cap, 0, (cap - ts->cap) * sizeof(*b));
    ts->b = b;
    ts->cap = cap;
    return 0;
}

struct ts_bucket *ts_at(struct ts_series *ts, int64_t now)
{
    size_t i = now > ts->t0 ? (size_t)((now - ts->t0) / NS_PER_S) : 0;
    if (i >= ts->n) {
        if (ts_reserve(ts, i + 1) < 0) {
            ts->dropped++;
            return NULL;
        }
        ts->n = i + 1;
    }
    return &ts->b[i];
}

void ts_started(struct ts_series *ts, int64_t now)
{
    struct ts_bucket *b = ts_at(ts, now);
    if (b)
        b->started++;
}

static void count_status(struct ts_bucket *b, unsigned code, uint64_t n)
{
    for (int i = 0; i < TS_STATUS_SLOTS; i++) {
        if (b->status[i].n == 0 || b->status[i].code == code) {
            b->status[i].code = (uint16_t)code;
            b->status[i].n += (uint32_t)n;
            return;
        }
    }
    b->status_other += n;
}

void ts_ended(struct ts_series *ts, int64_t now, enum stats_outcome o, unsigned status)
{
    struct ts_bucket *b = ts_at(ts, now);
    if (!b)
        return;
    if ((unsigned)o >= STATS_OUTCOME_COUNT)
        o = STATS_PROTOCOL;
    b->ended[o]++;
    if (o == STATS_STATUS)
        count_status(b, status, 1);
}

void ts_token(struct ts_series *ts, int64_t now, bool first, int64_t ttft_ns, bool slo_ok)
{
    struct ts_bucket *b = ts_at(ts, now);
    if (!b)
        return;
    b->tokens++;
    if (slo_ok)
        b->tokens_slo++;
    if (first) {
        stats_add(&b->ttft, ttft_ns);
        if (slo_ok)
            b->first_tokens_slo++;
    }
}

void ts_inflight(struct ts_series *ts, int64_t now, long long inflight)
{
    struct ts_bucket *b = ts_at(ts, now);
    if (b && inflight > 0 && (uint64_t)inflight > b->inflight_max)
        b->inflight_max = (uint64_t)inflight;
}

int ts_merge(struct ts_series *into, const struct ts_series *from)
{
    int rc = 0;
    into->dropped += from->dropped;
    if (from->n > into->n) {
        if (ts_reserve(into, from->n) < 0) {
            into->dropped += from->n;
            return -ENOMEM;
        }
        into->n = from->n;
    }
    for (size_t i = 0; i < from->n; i++) {
        struct ts_bucket *d = &into->b[i];
        const struct ts_bucket *s = &from->b[i];
        d->started += s->started;
        for (int k = 0; k < STATS_OUTCOME_COUNT; k++)
            d->ended[k] += s->ended[k];
        for (int k = 0; k < TS_STATUS_SLOTS && s->status[k].n; k++)
            count_status(d, s->status[k].code, s->status[k].n);
        d->status_other += s->status_other;
        d->tokens += s->tokens;
        d->tokens_slo += s->tokens_slo;
        d->first_tokens_slo += s->first_tokens_slo;
        if (s->inflight_max > d->inflight_max)
            d->inflight_max = s->inflight_max;
        if (stats_samples_merge(&d->ttft, &s->ttft) < 0)
            rc = -ENOMEM;
    }
    return rc;
}

/* Rounded to 3 decimals (ms: to the microsecond), as in report.c. */
static json_t *num(double v)
{
    return json_real((double)(long long)(v * 1000.0 + 0.5) / 1000.0);
}

static json_t *ttft_summary(struct stats_samples *ss)
{
    struct stats_summary s;
    stats_summarize(ss, &s);
    json_t *o = json_object();
    bool any = s.count > 0 && ss->n > 0;
    json_object_set_new(o, "p50", any ? num(s.p50) : json_null());
    json_object_set_new(o, "p90", any ? num(s.p90) : json_null());
    json_object_set_new(o, "p95", any ? num(s.p95) : json_null());
    json_object_set_new(o, "p99", any ? num(s.p99) : json_null());
    json_object_set_new(o, "max", any ? num(s.max) : json_null());
    json_object_set_new(o, "mean", any ? num(s.mean) : json_null());
    json_object_set_new(o, "count", json_integer((json_int_t)s.count));
    return o;
}

static json_t *bucket_json(struct ts_bucket *b, size_t i, const struct ts_report *r)
{
    json_t *o = json_object();
    json_t *reasons = json_object();
    uint64_t failed = 0, rejected = 0;
    for (int k = STATS_OK + 1; k < STATS_OUTCOME_COUNT; k++) {
        failed += b->ended[k];
        if (k == STATS_STATUS) {
            for (int j = 0; j < TS_STATUS_SLOTS && b->status[j].n; j++) {
                char name[32];
                snprintf(name, sizeof(name), "status_%u", b->status[j].code);
                json_object_set_new(reasons, name, json_integer(b->status[j].n));
                if (b->status[j].code == 429 || b->status[j].code == 503)
                    rejected += b->status[j].n;
            }
            if (b->status_other)
                json_object_set_new(reasons, "status_other",
                                    json_integer((json_int_t)b->status_other));
        } else if (b->ended[k]) {
            json_object_set_new(reasons, stats_outcome_name((enum stats_outcome)k),
                                json_integer((json_int_t)b->ended[k]));
        }
    }
    uint32_t offered =
        r->schedule ? ts_schedule_at(r->schedule, (int64_t)i * NS_PER_S) : r->concurrency;
    json_object_set_new(o, "t_s", json_integer((json_int_t)i));
    json_object_set_new(o, "offered", json_integer(offered));
    json_object_set_new(o, "inflight_max", json_integer((json_int_t)b->inflight_max));
    json_object_set_new(o, "started", json_integer((json_int_t)b->started));
    json_object_set_new(o, "completed", json_integer((json_int_t)b->ended[STATS_OK]));
    json_object_set_new(o, "failed", json_integer((json_int_t)failed));
    json_object_set_new(o, "rejected", json_integer((json_int_t)rejected));
    json_object_set_new(o, "failed_by_reason", reasons);
    json_object_set_new(o, "tokens", json_integer((json_int_t)b->tokens));
    json_object_set_new(o, "tokens_slo", json_integer((json_int_t)b->tokens_slo));
    json_object_set_new(o, "first_tokens_slo", json_integer((json_int_t)b->first_tokens_slo));
    json_object_set_new(o, "ttft_ms", ttft_summary(&b->ttft));
    if (r->samples) {
        json_t *a = json_array(); /* sorted by ttft_summary */
        for (size_t k = 0; k < b->ttft.n; k++)
            json_array_append_new(a, json_real(b->ttft.v[k] / 1000.0));
        json_object_set_new(o, "ttft_samples_ms", a);
    }
    return o;
}

int ts_write_json(const char *path, struct ts_series *ts, const struct ts_report *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "interval_s", json_integer(1));
    json_object_set_new(o, "t0_monotonic_s", json_real((double)ts->t0 / 1e9));
    json_object_set_new(o, "slo_ttft_ms",
                        r->slo_ttft_ns >= 0 ? num((double)r->slo_ttft_ns / 1e6) : json_null());
    if (r->schedule) {
        json_t *sch = json_array();
        for (size_t i = 0; i < r->schedule->n; i++) {
            json_t *pt = json_object();
            json_object_set_new(pt, "t_s", num((double)r->schedule->v[i].t_ns / 1e9));
            json_object_set_new(pt, "streams", json_integer(r->schedule->v[i].conc));
            json_array_append_new(sch, pt);
        }
        json_object_set_new(o, "schedule", sch);
    } else {
        json_object_set_new(o, "schedule", json_null());
    }
    json_object_set_new(o, "dropped", json_integer((json_int_t)ts->dropped));
    json_t *secs = json_array();
    for (size_t i = 0; i < ts->n; i++)
        json_array_append_new(secs, bucket_json(&ts->b[i], i, r));
    json_object_set_new(o, "seconds", secs);

    int rc = 0;
    size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15);
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    if (!f) {
        rc = -errno;
    } else {
        if (json_dumpf(o, f, flags) < 0)
            rc = -EIO;
        fputc('\n', f);
        if (f == stdout) {
            fflush(f);
        } else if (fclose(f) != 0 && rc == 0) {
            rc = -errno;
        }
    }
    json_decref(o);
    return rc;
}
