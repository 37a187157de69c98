/*
 * report — the table and the JSON of an llmload run (see report.h).
 */
#include "perf/loadgen/report.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

static double per_s(uint64_t n, double s)
{
    return s > 0 ? (double)n / s : 0.0;
}

static void table_row(FILE *f, const char *name, const struct stats_summary *s)
{
    if (s->count == 0) {
        fprintf(f, "  %-12s %10s %10s %10s %10s %10s %10d\n", name, "-", "-", "-", "-", "-", 0);
        return;
    }
    fprintf(f, "  %-12s %10.2f %10.2f %10.2f %10.2f %10.2f %10llu\n", name, s->p50, s->p90, s->p99,
            s->max, s->mean, (unsigned long long)s->count);
}

void report_table(FILE *f, const struct report *r)
{
    const struct stats *st = r->st;
    uint64_t failed = stats_failed(st);
    fprintf(f, "llmload %s\n", r->url);
    fprintf(f, "  concurrency  %u (%u thread%s)\n", r->concurrency, r->threads,
            r->threads == 1 ? "" : "s");
    fprintf(f, "  streams      started %llu, completed %llu, failed %llu",
            (unsigned long long)st->started, (unsigned long long)st->by_outcome[STATS_OK],
            (unsigned long long)failed);
    if (failed) {
        const char *sep = " (";
        for (int o = STATS_OK + 1; o < STATS_OUTCOME_COUNT; o++) {
            if (o == STATS_STATUS) {
                for (int code = 0; code < STATS_STATUS_SLOTS; code++) {
                    if (st->by_status[code]) {
                        fprintf(f, "%sstatus_%d %llu", sep, code,
                                (unsigned long long)st->by_status[code]);
                        sep = ", ";
                    }
                }
            } else if (st->by_outcome[o]) {
                fprintf(f, "%s%s %llu", sep, stats_outcome_name((enum stats_outcome)o),
                        (unsigned long long)st->by_outcome[o]);
                sep = ", ";
            }
        }
        fputc(')', f);
    }
    fputc('\n', f);
    fprintf(f, "  in flight    %llu at most\n", (unsigned long long)r->peak_streams);
    fprintf(f, "  requests/s   %.2f\n", per_s(st->by_outcome[STATS_OK], r->duration_s));
    fprintf(f, "  tokens       %llu (%.2f tokens/s)\n", (unsigned long long)st->tokens,
            per_s(st->tokens, r->duration_s));
    fprintf(f, "  %-12s %10s %10s %10s %10s %10s %10s\n", "", "p50", "p90", "p99", "max", "mean",
            "count");
    table_row(f, "TTFT (ms)", &r->ttft);
    table_row(f, "ITL (ms)", &r->itl);
    fprintf(f, "  wall time    %.3f s\n", r->duration_s);
    fprintf(f, "  client CPU   %.3f s (user %.3f, sys %.3f); %llu events, %llu connects\n",
            r->cpu_user_s + r->cpu_sys_s, r->cpu_user_s, r->cpu_sys_s,
            (unsigned long long)st->events, (unsigned long long)st->connects);
    uint64_t dropped = st->ttft.dropped + st->itl.dropped;
    if (dropped)
        fprintf(f, "  warning      %llu samples dropped (out of memory)\n",
                (unsigned long long)dropped);
    if (r->verify)
        fprintf(f, "  verify       %llu streams checked, %llu violations\n",
                (unsigned long long)r->verify_streams, (unsigned long long)r->verify_errors);
    fflush(f);
}

/* Rounded to 3 decimals (ms: to the microsecond), so the JSON holds no float noise. */
static json_t *num(double v)
{
    return json_real((double)(long long)(v * 1000.0 + 0.5) / 1000.0);
}

static json_t *summary(const struct stats_summary *s)
{
    json_t *o = json_object();
    bool any = s->count > 0;
    json_object_set_new(o, "p50", any ? num(s->p50) : json_null());
    json_object_set_new(o, "p90", any ? num(s->p90) : json_null());
    json_object_set_new(o, "p99", any ? num(s->p99) : json_null());
    json_object_set_new(o, "max", any ? num(s->max) : json_null());
    json_object_set_new(o, "mean", any ? num(s->mean) : json_null());
    json_object_set_new(o, "count", json_integer((json_int_t)s->count));
    return o;
}

int report_json(const char *path, const struct report *r)
{
    const struct stats *st = r->st;
    json_t *o = json_object();
    json_t *reasons = json_object();
    for (int k = STATS_OK + 1; k < STATS_OUTCOME_COUNT; k++) {
        if (k == STATS_STATUS) {
            for (int code = 0; code < STATS_STATUS_SLOTS; code++) {
                if (st->by_status[code]) {
                    char name[32];
                    snprintf(name, sizeof(name), "status_%d", code);
                    json_object_set_new(reasons, name,
                                        json_integer((json_int_t)st->by_status[code]));
                }
            }
        } else if (st->by_outcome[k]) {
            json_object_set_new(reasons, stats_outcome_name((enum stats_outcome)k),
                                json_integer((json_int_t)st->by_outcome[k]));
        }
    }
    json_object_set_new(o, "url", json_string(r->url));
    json_object_set_new(o, "concurrency", json_integer(r->concurrency));
    json_object_set_new(o, "threads", json_integer(r->threads));
    json_object_set_new(o, "duration_s", num(r->duration_s));
    json_object_set_new(o, "started", json_integer((json_int_t)st->started));
    json_object_set_new(o, "completed", json_integer((json_int_t)st->by_outcome[STATS_OK]));
    json_object_set_new(o, "failed", json_integer((json_int_t)stats_failed(st)));
    json_object_set_new(o, "failed_by_reason", reasons);
    json_object_set_new(o, "peak_streams", json_integer((json_int_t)r->peak_streams));
    json_object_set_new(o, "tokens", json_integer((json_int_t)st->tokens));
    json_object_set_new(o, "tokens_per_s", num(per_s(st->tokens, r->duration_s)));
    json_object_set_new(o, "requests_per_s", num(per_s(st->by_outcome[STATS_OK], r->duration_s)));
    json_object_set_new(o, "ttft_ms", summary(&r->ttft));
    json_object_set_new(o, "itl_ms", summary(&r->itl));
    json_object_set_new(o, "events", json_integer((json_int_t)st->events));
    json_object_set_new(o, "bytes_received", json_integer((json_int_t)st->bytes_in));
    json_object_set_new(o, "connects", json_integer((json_int_t)st->connects));
    json_object_set_new(o, "retries", json_integer((json_int_t)st->retries));
    uint64_t dropped = st->ttft.dropped + st->itl.dropped;
    json_object_set_new(o, "samples_dropped", json_integer((json_int_t)dropped));
    json_object_set_new(o, "client_cpu_s", num(r->cpu_user_s + r->cpu_sys_s));
    json_object_set_new(o, "client_cpu_user_s", num(r->cpu_user_s));
    json_object_set_new(o, "client_cpu_sys_s", num(r->cpu_sys_s));
    json_object_set_new(o, "verify", json_boolean(r->verify));
    json_object_set_new(o, "verify_errors", json_integer((json_int_t)r->verify_errors));
    json_object_set_new(o, "verified_streams", json_integer((json_int_t)r->verify_streams));

    int rc = 0;
    size_t flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15);
    if (strcmp(path, "-") == 0) {
        rc = json_dumpf(o, stdout, flags);
        fputc('\n', stdout);
        fflush(stdout);
        rc = rc < 0 ? -EIO : 0;
    } else {
        FILE *f = fopen(path, "w");
        if (!f) {
            rc = -errno;
        } else {
            if (json_dumpf(o, f, flags) < 0)
                rc = -EIO;
            fputc('\n', f);
            if (fclose(f) != 0 && rc == 0)
                rc = -errno;
        }
    }
    json_decref(o);
    return rc;
}
