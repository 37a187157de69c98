/*
 * prom_text — reads a value out of a Prometheus text exposition (a backend's
 * /metrics: vLLM's num_requests_waiting and the like).  Pure; the bytes
 * come from outside (fuzzed: tests/fuzz/fuzz_prom_text.c).
 */
#ifndef SLUICE_PROM_TEXT_H
#define SLUICE_PROM_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Sums the samples of metric <name> (any labels: `name{...} v` or `name v`)
 * in <text>, skipping values that are not non-negative numbers.  False when
 * there is no such sample. */
bool prom_sum(const char *text, size_t len, const char *name, double *sum);

#endif
