/*
 * shm — the shared-memory segment of one sluice node.
 *
 * The supervisor creates it (a memfd, mapped MAP_SHARED before any fork) and
 * every child inherits the mapping.  It holds one slot per running child
 * process: the worker writes its own counters, gauges and histograms there
 * with single-writer relaxed stores (never a lock, never a syscall), and the
 * control plane reads every slot to export /metrics.
 *
 * Slots belong to a process instance, not to a worker number: a restarted or
 * reloaded worker gets a fresh slot, so an old worker still draining and its
 * replacement never write the same counters.  When the supervisor reaps a
 * child it folds the slot's counters into the `retired` totals and frees the
 * slot, so Prometheus counters never go backwards and a dead worker's gauges
 * (its active streams) vanish with it instead of leaking.  The fold runs
 * under a sequence counter; readers retry while it is odd or changed.
 *
 * Ownership: the supervisor owns the segment and slot states; a child owns
 * the contents of its slot while it runs.  No pointers are stored inside
 * the segment (it may map at different addresses in a future exec model).
 */
#ifndef SLUICE_SHM_H
#define SLUICE_SHM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/events.h"
#include "shared/hist.h"
#include "shared/rollout.h"
#include "shared/shm_ring.h"
#include "shared/sketch.h"

#define SHM_MAGIC         0x31454349554c53ULL /* "SLUICE1" */
#define SHM_VERSION       1
#define SHM_TTFT_LABELS   32
#define SHM_LABEL_TENANT  32
#define SHM_LABEL_BACKEND 64
#define SHM_LABEL_MODEL   96
#define SHM_MAX_SLOTS     1024 /* bound of the live-worker bitmap */
#define SHM_MAX_TENANTS   1025 /* CONFIG_MAX_TENANTS and the implicit "default" */
#define SHM_TENANT_NAME   64
#define SHM_MAX_BACKENDS  256  /* backend names ever configured (reloads add, never reuse) */
#define SHM_EV_RING_CAP   4096 /* events up, per process slot */
#define SHM_CMD_RING_CAP  64   /* commands down, per process slot */

/* HTTP statuses counted by sluice_requests_total{code}; anything else "other".
 * 499 is a client that went away before its response started (nginx's use). */
/* clang-format off */
#define SHM_CODES(X) \
    X(200) X(204) X(400) X(401) X(403) X(404) X(405) X(408) X(410) X(413) X(414) X(429) X(431) \
    X(499) X(500) X(501) X(502) X(503) X(504) X(505)
/* clang-format on */
enum shm_code {
#define SHM_CODE_ENUM(c) SHM_CODE_##c,
    SHM_CODES(SHM_CODE_ENUM)
#undef SHM_CODE_ENUM
        SHM_CODE_OTHER,
    SHM_N_CODES,
};

/* Resume requests (GET /v1/streams/<id>) by how they ended. */
enum shm_resume_result {
    SHM_RESUME_OK = 0,    /* attached here: replay, then live */
    SHM_RESUME_RELAYED,   /* relayed to the worker that holds the stream */
    SHM_RESUME_NOT_FOUND, /* unknown, expired, or another tenant's (404) */
    SHM_RESUME_GAP,       /* Last-Event-ID older than the retained events (410) */
    SHM_RESUME_INVALID,   /* Last-Event-ID not of this stream, or past its end (400) */
    SHM_RESUME_CANCELLED, /* DELETE: the client stopped the stream (204) */
    SHM_RESUME_COUNT,
};

/* Monotonic totals: summed over live slots plus `retired`. */
struct shm_counters {
    _Atomic uint64_t requests[SHM_N_CODES];
    _Atomic uint64_t tokens;                 /* content events relayed */
    _Atomic uint64_t upstream_cancellations; /* upstream requests cut because the client left */
    _Atomic uint64_t slow_consumers;         /* clients cut for not reading */
    _Atomic uint64_t accepted;               /* client connections */
    _Atomic uint64_t upstream_connects;      /* new backend connections */
    _Atomic uint64_t upstream_reused;        /* requests sent on a pooled connection */
    _Atomic uint64_t upstream_errors;        /* refused/reset/timeout before a response */
    _Atomic uint64_t upstream_retries;       /* stale pooled connection, sent again */
    _Atomic uint64_t sends;                  /* client sends, plain */
    _Atomic uint64_t sends_zc;               /* client sends, SEND_ZC from registered slabs */
    _Atomic uint64_t recv_enobufs;           /* receive buffer ring ran dry */
    _Atomic uint64_t slab_waits;             /* stream paused because the slab pool was empty */
    _Atomic uint64_t bytes_out;              /* bytes sent to clients */
    _Atomic uint64_t rejected[REJ_COUNT];    /* refused at admission, by reason */
    _Atomic uint64_t admitted;               /* streams admitted (all of them) */
    _Atomic uint64_t queued;                 /* ... of which waited in the admission queue */
    _Atomic uint64_t rollout_on[FEAT_COUNT]; /* requests inside each feature's rollout */
    _Atomic uint64_t rollout_off[FEAT_COUNT];
    _Atomic uint64_t tokens_charged;  /* tokens charged to tenant budgets */
    _Atomic uint64_t cancels_by_cmd;  /* streams ended by an operator's command */
    _Atomic uint64_t h2_conns;        /* connections that spoke HTTP/2 */
    _Atomic uint64_t h2_streams;      /* HTTP/2 requests (streams opened by clients) */
    _Atomic uint64_t h2_refused;      /* h2 attempts refused (disabled, or outside the rollout) */
    _Atomic uint64_t h2_resets;       /* streams the client reset before their end */
    _Atomic uint64_t h2_abuse;        /* connections ended for abuse (GOAWAY with an error) */
    _Atomic uint64_t ws_conns;        /* connections upgraded to WebSocket */
    _Atomic uint64_t ws_msgs_in;      /* requests received as WebSocket messages */
    _Atomic uint64_t ws_msgs_out;     /* messages sent to WebSocket clients */
    _Atomic uint64_t tls_handshakes;  /* TLS handshakes completed */
    _Atomic uint64_t tls_failures;    /* TLS handshakes or records that failed */
    _Atomic uint64_t tls_resumed;     /* handshakes that resumed a session (ticket) */
    _Atomic uint64_t resume_retained; /* resumable streams kept after their client left */
    _Atomic uint64_t resumes[SHM_RESUME_COUNT];
    _Atomic uint64_t resume_expired;   /* retained streams nobody came back for */
    _Atomic uint64_t resume_takeovers; /* resumes that took a stream from an older connection */
    _Atomic uint64_t resume_dropped;   /* finished retained streams dropped for memory */
    _Atomic uint64_t resume_overflows; /* event logs that lost their past (no room at all) */
    _Atomic uint64_t resume_log_full;  /* backend paused because a stream's event log was full */
    _Atomic uint64_t backend_panics;   /* picks among down backends: none for the model was up */
    _Atomic uint64_t affinity_picks;   /* backends chosen by prefix affinity */
    struct hist itl;
};

/* Instant values: meaningful only for live slots. */
struct shm_gauges {
    _Atomic int64_t streams_active;
    _Atomic int64_t connections;
    _Atomic int64_t upstream_conns;
    _Atomic int64_t upstream_idle;
    _Atomic int64_t slabs_used;
    _Atomic int64_t admitted;       /* completion streams holding an admission */
    _Atomic int64_t queue_len;      /* requests waiting for admission */
    _Atomic int64_t h2_conns;       /* HTTP/2 connections open */
    _Atomic int64_t ws_conns;       /* WebSocket connections open */
    _Atomic int64_t resume_streams; /* resumable streams retained for a client that left */
    _Atomic int64_t resume_bytes;   /* memory of the event logs of resumable streams */
};

struct shm_ttft_label {
    _Atomic uint32_t used; /* set last (release) when the strings are written */
    char tenant[SHM_LABEL_TENANT];
    char backend[SHM_LABEL_BACKEND];
    char model[SHM_LABEL_MODEL];
    struct hist h;
};

struct shm_slot {
    struct shm_counters c;
    /* Gaps between tokens, per QoS evaluation interval (sketch.h: this
     * worker writes, the control plane collects each finished interval). */
    struct sketch_win itl_win;
    struct shm_gauges g;
    struct shm_ttft_label ttft[SHM_TTFT_LABELS];
    /* Per tenant (index in the tenant table), written by the worker only:
     * its streams, and the tokens it holds reserved for them.  A dead
     * worker's entries vanish with its slot (the reservations go back to
     * the budgets), so no count can outlive the streams it counts. */
    _Atomic int32_t tenant_streams[SHM_MAX_TENANTS];
    _Atomic int64_t tenant_reserved[SHM_MAX_TENANTS];
    /* Requests this worker has on each backend now (index in the backend
     * table); summed over workers for the node-wide count. */
    _Atomic int32_t backend_inflight[SHM_MAX_BACKENDS];
};

/* One tenant's shared state.  The limits are written by the supervisor
 * (start, reload), conc_limit by the control plane (burst decay), and the
 * token bucket is charged by workers and refilled by the control plane with
 * atomic read-modify-writes. */
struct shm_tenant {
    char name[SHM_TENANT_NAME]; /* written once, before `used` */
    _Atomic uint32_t used;
    _Atomic uint32_t hard_limit;  /* 0 = none */
    _Atomic uint32_t burst_limit; /* >= hard_limit, or 0 */
    _Atomic uint32_t decay_ms;
    _Atomic uint32_t default_max_tokens;
    _Atomic uint32_t conc_limit;        /* effective stream limit now; 0 = none */
    _Atomic uint32_t qos_cap;           /* a QoS throttle's stream limit (qos.c); 0 = none */
    _Atomic uint64_t tokens_per_minute; /* 0 = no budget */
    _Atomic int64_t tokens_avail;       /* the bucket; may dip below 0 by a batch */
} __attribute__((aligned(64)));

/* One backend's shared state, found by name (a reload keeps it).  `up` is
 * the control plane's active checks; the rest is written by any worker
 * with atomic read-modify-writes (passive checks, outlier ejection). */
struct shm_backend {
    char name[SHM_LABEL_BACKEND]; /* written once, before `used` */
    _Atomic uint32_t used;
    _Atomic uint32_t up;             /* 1 = checks pass (or none run), 0 = down */
    _Atomic uint32_t fail_streak;    /* failed requests in a row, node-wide */
    _Atomic uint32_t ejections;      /* ejections in a row: the next lasts 2^n times longer */
    _Atomic uint64_t eject_until_ms; /* CLOCK_MONOTONIC; 0 = not ejected */
    _Atomic uint64_t ejected_total;
    _Atomic uint64_t failures_total; /* requests that failed on it (connect, reset, 5xx, timeout) */
    _Atomic uint64_t failovers_total; /* requests moved from it to another backend */
    _Atomic uint64_t checks_failed;   /* active checks that failed */
    /* Saturation, from the backend's own metrics (vLLM /metrics), by the
     * control plane: its queue, what it runs, its KV cache use. */
    _Atomic uint32_t waiting;
    _Atomic uint32_t running;
    _Atomic uint32_t kv_permille;
    _Atomic uint64_t load_ms; /* when they were read; 0 = never */
    /* The models it lists itself (GET /v1/models), comma-separated, for a
     * backend configured without `models`; written by the control plane
     * under models_seq (odd while it writes). */
    _Atomic uint32_t gpu_mem_permille; /* its GPU's memory in use (agent), the fullest GPU */
    _Atomic uint64_t gpu_ms;           /* when that was read; 0 = never */
    _Atomic uint32_t models_seq;
    char models[512];
    /* The models an Ollama backend holds in memory (GET /api/ps), under
     * models_seq too; loaded_ms is when it was read, 0 = never. */
    _Atomic uint64_t loaded_ms;
    char loaded[256];
} __attribute__((aligned(64)));

/* Read-mostly node tables: the control plane writes, workers read on every
 * admission with plain atomic loads (each value stands alone; none needs to
 * be read together with another). */
struct shm_tables {
    _Atomic uint32_t admit_limit;     /* governor's node limit; 0 = not set yet */
    _Atomic uint32_t queue_budget_ms; /* how long a request may wait for admission now */
    /* QoS remediation (controlplane/qos.c), for every stream whatever its
     * rollout: a node stream limit (0 = none) and a share of new requests
     * refused (percent). */
    _Atomic uint32_t qos_limit;
    _Atomic uint32_t qos_shed_pct;
    _Atomic uint32_t rollout[FEAT_COUNT]; /* percent, 0..100 */
    _Atomic uint32_t rollout_loaded;      /* the control plane has applied its state file */
    _Atomic int32_t consumer_pid;         /* the control plane that owns the event rings */
    _Atomic uint32_t ntenants;            /* entries of tenants[] in use */
    _Atomic uint64_t live_workers[SHM_MAX_SLOTS / 64]; /* bit per worker slot, by the supervisor */
    struct shm_tenant tenants[SHM_MAX_TENANTS];
    _Atomic uint32_t nbackends; /* entries of backends[] in use */
    struct shm_backend backends[SHM_MAX_BACKENDS];
};

enum shm_slot_state {
    SHM_SLOT_FREE = 0,
    SHM_SLOT_LIVE = 1,
};

enum shm_role {
    SHM_ROLE_WORKER = 0,
    SHM_ROLE_CONTROL = 1,
};

/* Compact per-slot header, kept apart from the slots so a reader scanning
 * for live slots touches a few pages, not the whole segment. */
struct shm_slot_hdr {
    _Atomic uint32_t state; /* enum shm_slot_state */
    _Atomic int32_t pid;
    uint16_t worker; /* worker number (CPU index) */
    uint16_t role;   /* enum shm_role */
    uint32_t generation;
    _Atomic uint64_t heartbeat_ms; /* CLOCK_MONOTONIC ms, written by the child */
    _Atomic uint64_t draining;     /* 1 once the child drains */
    _Atomic uint32_t claims;       /* bumped at every claim and release */
    _Atomic uint32_t cp_busy;      /* the control plane is using this slot's rings */
} __attribute__((aligned(64)));

struct shm_segment {
    uint64_t magic;
    uint32_t version;
    uint32_t nslots;
    uint64_t size;
    _Atomic uint32_t fold_seq;
    uint64_t rings_off;      /* where the per-slot rings start */
    uint64_t ring_pair_size; /* bytes of one slot's event + command rings */
    _Atomic uint64_t retired_ring_dropped;
    struct shm_tables tables;
    struct shm_slot retired;
    struct shm_slot_hdr hdr[]; /* nslots of them, then the slots (see shm_slot()), then rings */
};

struct shm {
    struct shm_segment *seg;
    size_t size;
    int fd;
};

/* Creates and maps a segment for <nslots> processes.  Returns 0 or -errno. */
int shm_create(struct shm *s, unsigned nslots);
void shm_destroy(struct shm *s);

struct shm_slot *shm_slot(const struct shm *s, unsigned idx);

/* Supervisor: takes a free slot for a child about to be forked (state LIVE,
 * contents zero).  Returns the index or -ENOSPC. */
int shm_slot_claim(struct shm *s, unsigned worker, enum shm_role role, uint32_t generation);
/* Supervisor, after the child is reaped: folds its counters into `retired`
 * and frees the slot. */
void shm_slot_release(struct shm *s, unsigned idx);

/* Control plane: begins using the rings of worker slot <idx>.  Returns
 * false when the slot is not a live worker (then nothing is held).  The
 * supervisor never re-initialises a slot's rings while they are in use, so
 * between enter and leave the rings are the ones of one process. */
bool shm_cp_enter(struct shm *s, unsigned idx);
void shm_cp_leave(struct shm *s, unsigned idx);
/* Supervisor: the control plane died; whatever it held is free. */
void shm_cp_reset(struct shm *s);

/* The slot's rings: events from its process, commands to it. */
struct shm_ring *shm_ev_ring(const struct shm *s, unsigned idx);
struct shm_ring *shm_cmd_ring(const struct shm *s, unsigned idx);

/* Supervisor: fills the tenant table entry for <name> (found or added) with
 * these limits; a new entry starts with a full token bucket.  Returns its
 * index, or -ENOSPC. */
int shm_tenant_set(struct shm *s, const char *name, uint32_t hard_limit, uint32_t burst_limit,
                   uint32_t decay_ms, uint64_t tokens_per_minute, uint32_t default_max_tokens);
/* The index of tenant <name>, or -ENOENT. */
int shm_tenant_find(const struct shm *s, const char *name);

/* Supervisor: the backend table entry for <name>, found or added (a new
 * one starts up and not ejected).  Its index, or -ENOSPC. */
int shm_backend_add(struct shm *s, const char *name);
/* The index of backend <name>, or -ENOENT. */
int shm_backend_find(const struct shm *s, const char *name);
/* Control plane: publishes the models backend <e> lists; workers: a copy
 * of them ("" when none were read). */
void shm_backend_set_models(struct shm_backend *e, const char *list);
void shm_backend_models(const struct shm_backend *e, char *out, size_t cap);
/* The same for the models an Ollama backend has loaded. */
void shm_backend_set_loaded(struct shm_backend *e, const char *list);
void shm_backend_loaded(const struct shm_backend *e, char *out, size_t cap);

/* Node-wide sums over the live worker slots (a dead worker's streams are not
 * in them: its slot left the set when it was reaped). */
int64_t shm_node_admitted(const struct shm *s);
int64_t shm_node_queued(const struct shm *s);
int64_t shm_node_tenant_streams(const struct shm *s, unsigned tenant);
int64_t shm_node_backend_inflight(const struct shm *s, unsigned backend);

/* Calls fn(slot index) for every live worker slot. */
#define SHM_FOR_EACH_WORKER(s, idx)                                                                \
    for (unsigned _w = 0, idx = 0; _w < SHM_MAX_SLOTS / 64; _w++)                                  \
        for (uint64_t _b =                                                                         \
                 atomic_load_explicit(&(s)->seg->tables.live_workers[_w], memory_order_acquire);   \
             _b && ((idx = _w * 64 + (unsigned)__builtin_ctzll(_b)), 1); _b &= _b - 1)

/* Status code -> counter index. */
enum shm_code shm_code_index(int status);
/* Counter index -> status (0 for SHM_CODE_OTHER). */
int shm_code_status(enum shm_code c);

/* Worker: the TTFT histogram for a label set in its slot, created on first
 * use; when the table is full the last entry is shared as model "other". */
struct hist *shm_ttft_hist(struct shm_slot *slot, const char *tenant, const char *backend,
                           const char *model);

/* Single-writer increment for counters in a slot. */
static inline void shm_add(_Atomic uint64_t *c, uint64_t v)
{
    hist_bump(c, v);
}
static inline void shm_gauge_add(_Atomic int64_t *g, int64_t v)
{
    atomic_store_explicit(g, atomic_load_explicit(g, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

/* Reader side of the fold sequence: begin returns a token, retry says whether
 * what was read in between must be read again. */
uint32_t shm_read_begin(const struct shm *s);
int shm_read_retry(const struct shm *s, uint32_t token);

#endif
