/*
 * clock — CLOCK_MONOTONIC in nanoseconds and milliseconds (vDSO: no
 * syscall).  Every process of a node reads the same clock, so a worker's
 * heartbeat can be compared with the supervisor's now.
 */
#ifndef SLUICE_CLOCK_H
#define SLUICE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_mono_ms(void)
{
    return clock_mono_ns() / 1000000;
}

#endif
