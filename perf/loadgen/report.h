/*
 * report — writes the results of an llmload run: a table for people and a
 * JSON object for scripts (same figures; JSON keys are documented in
 * perf/loadgen/README.md and are a contract for the benchmark scripts).
 */
#ifndef LLMLOAD_REPORT_H
#define LLMLOAD_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "perf/loadgen/stats.h"

struct report {
    const char *url;
    uint32_t concurrency;
    uint32_t threads;
    uint64_t peak_streams; /* the most streams in flight at once */
    double duration_s;     /* wall time of the run, first start to last stream end */
    const struct stats *st;
    struct stats_summary ttft, itl;
    double cpu_user_s, cpu_sys_s;
    bool verify;
    uint64_t verify_errors, verify_streams;
};

void report_table(FILE *f, const struct report *r);

/* Writes the JSON object to <path> ("-": stdout).  Returns 0 or -errno. */
int report_json(const char *path, const struct report *r);

#endif
