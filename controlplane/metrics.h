/*
 * metrics — the node's numbers, summed from every slot of the shared
 * segment (live processes plus the totals folded from dead ones), and
 * printed in Prometheus text format (version 0.0.4).
 *
 * Collection reads the segment with relaxed loads and retries while the
 * supervisor is folding a dead worker's slot, so a counter never appears
 * twice or not at all.  Runs in the control-plane process; allocates only
 * the output text.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stdint.h>

#include "shared/hist.h"
#include "shared/sbuf.h"
#include "shared/shm.h"

#define METRICS_MAX_LABELS 256

struct metrics_label {
    char tenant[SHM_LABEL_TENANT];
    char backend[SHM_LABEL_BACKEND];
    char model[SHM_LABEL_MODEL];
    struct hist_snap h;
};

struct metrics_snapshot {
    uint64_t requests[SHM_N_CODES];
    uint64_t tokens;
    uint64_t upstream_cancellations;
    uint64_t slow_consumers;
    uint64_t accepted;
    uint64_t upstream_connects;
    uint64_t upstream_reused;
    uint64_t upstream_errors;
    uint64_t upstream_retries;
    uint64_t sends;
    uint64_t sends_zc;
    uint64_t recv_enobufs;
    uint64_t slab_waits;
    uint64_t bytes_out;
    int64_t streams_active;
    int64_t connections;
    int64_t upstream_conns;
    int64_t upstream_idle;
    int64_t slabs_used;
    uint64_t rejected[REJ_COUNT];
    uint64_t admitted;
    uint64_t queued;
    uint64_t rollout_on[FEAT_COUNT];
    uint64_t rollout_off[FEAT_COUNT];
    uint64_t tokens_charged;
    uint64_t cancels_by_cmd;
    uint64_t ring_dropped;
    uint64_t h2_conns_total, h2_streams, h2_refused, h2_resets, h2_abuse;
    int64_t h2_conns;
    uint64_t ws_conns_total, ws_msgs_in, ws_msgs_out;
    uint64_t tls_handshakes, tls_failures, tls_resumed;
    uint64_t resume_retained, resumes[SHM_RESUME_COUNT], resume_expired, resume_takeovers;
    uint64_t resume_dropped, resume_overflows, resume_log_full;
    int64_t resume_streams, resume_bytes;
    uint64_t backend_panics, affinity_picks;
    int64_t ws_conns;
    int64_t admitted_now;
    int64_t queue_len;
    uint32_t admit_limit;
    uint32_t rollout_pct[FEAT_COUNT];
    struct hist_snap itl;
    struct metrics_label labels[METRICS_MAX_LABELS];
    unsigned nlabels;
    unsigned workers_live;
    unsigned workers_draining;
};

void metrics_collect(const struct shm *shm, struct metrics_snapshot *snap);

/* Appends the Prometheus page for <snap> to <out>.  0 or -errno. */
int metrics_render(const struct metrics_snapshot *snap, struct sbuf *out);

struct config;
/* The per-backend metrics of the configured backends (health, ejection,
 * outstanding requests, failures, failovers), read from the backend table. */
void metrics_render_backends(const struct shm *shm, const struct config *cfg, uint64_t now_ms,
                             struct sbuf *out);

#endif
