/*
 * admin — the admin HTTP endpoint (default 127.0.0.1:9090): /metrics in
 * Prometheus text format, /healthz, /readyz and /status (JSON).
 *
 * A small non-blocking HTTP/1.1 server on epoll: requests are parsed with
 * the data plane's h1_parser, answered from a fresh metrics snapshot, with
 * keep-alive (Prometheus scrapes reuse connections) and bounded input,
 * output and connection count.  Runs in the control-plane process.
 */
#ifndef SLUICE_ADMIN_H
#define SLUICE_ADMIN_H

#include <stdint.h>

#include "shared/config.h"
#include "shared/shm.h"

#define ADMIN_MAX_CONNS 256

struct admin_conn;

struct qos;

struct admin {
    int listen_fd;
    int ep;
    const struct config *cfg;
    const struct shm *shm;
    unsigned nworkers;
    uint64_t started_ms;
    struct admin_conn *conns[ADMIN_MAX_CONNS];
    const struct qos *qos; /* its metrics and /status part; NULL = none */
};

/* Registers the listener with <ep>.  0 or -errno. */
int admin_init(struct admin *a, int ep, int listen_fd, const struct config *cfg,
               const struct shm *shm, unsigned nworkers);
/* Handles an epoll event whose data.ptr is <tag> (the admin or a conn). */
void admin_on_event(struct admin *a, void *tag, uint32_t events);
/* Closes connections idle for too long. */
void admin_sweep(struct admin *a, uint64_t now_ms);
void admin_close_all(struct admin *a);

#endif
