/*
 * events — the records that cross the shared-memory rings.
 *
 * Up (worker -> control plane): what happened to streams, for the governor
 * (first tokens with their TTFT), the operator's views (top, tenants) and
 * the logs.  Counters and gauges do not travel here: they live in each
 * worker's slot, exact and drop-free; an event lost to a full ring costs a
 * sample, never a count.
 *
 * Down (control plane -> worker): operator commands that target a worker's
 * own state.  Limits and rollout percentages do not travel here either:
 * the workers read them from the shared tables on every admission.
 *
 * Every record fits one ring slot (SHM_RING_REC_SIZE bytes).  A reader
 * checks the type and bounds of everything it uses: the rings are shared
 * with other processes, and a slot being recycled may hold anything.
 */
#ifndef SLUICE_EVENTS_H
#define SLUICE_EVENTS_H

#include <stdint.h>

#include "shared/shm_ring.h"

#define EV_STREAM_ID_LEN 16

enum ev_type {
    EV_NONE = 0,
    EV_ADMIT,         /* a stream was admitted (value = queue wait, us) */
    EV_FIRST_TOKEN,   /* value = backend TTFT in us (from admission); reason 1 = it was
                         reported overdue before; count = the client's TTFT in us
                         (from the request, saturating) */
    EV_TOKENS,        /* a batch of tokens relayed (count) */
    EV_END,           /* stream ended: status, flags (EVF_*), count = tokens, value =
                         duration us */
    EV_BACKEND_ERROR, /* reason = enum api_error of the failure */
    EV_REJECT,        /* refused at admission: reason = enum ev_reject */
    EV_PONG,          /* answer to CMD_PING: value = the ping's sequence */
    EV_TTFT_OVERDUE,  /* admitted target_ttft_ms ago, no first token yet: value = age, us;
                         count = streams admitted on the node with it, itself included */
    EV_TYPE_COUNT,
};

/* Why a request was refused (also the label of sluice_rejected_total). */
enum ev_reject {
    REJ_QUEUE_FULL = 0,   /* over the limit and the admission queue was full */
    REJ_QUEUE_TIMEOUT,    /* waited queue_ttl_ms for admission */
    REJ_QUEUE_SHED,       /* shed by CoDel while the queue stayed long */
    REJ_TENANT_STREAMS,   /* tenant at its concurrent-stream limit (429) */
    REJ_TENANT_TOKENS,    /* tenant's token budget could not cover the request (429) */
    REJ_TENANT_EXHAUSTED, /* budget ran out while streaming: stream ended (429 event) */
    REJ_DRAINING,         /* node draining */
    REJ_BACKENDS_FULL,    /* every backend for the model at max_inflight (503, load shedding) */
    REJ_QOS_SHED,         /* a QoS policy's shed_load (503) */
    REJ_COUNT,
};

/* "queue_full", "queue_timeout", ...; NULL out of range. */
static inline const char *ev_reject_name(unsigned r)
{
    static const char *const names[REJ_COUNT] = {
        "queue_full",       "queue_timeout", "queue_shed",    "tenant_streams", "tenant_tokens",
        "tenant_exhausted", "draining",      "backends_full", "qos_shed",
    };
    return r < REJ_COUNT ? names[r] : NULL;
}

struct ev_rec {
    uint8_t type;    /* enum ev_type */
    uint8_t reason;  /* EV_REJECT: enum ev_reject; EV_BACKEND_ERROR: enum api_error */
    uint16_t tenant; /* index in the shared tenant table */
    uint16_t status; /* EV_END: HTTP status given to the client */
    uint16_t backend;
    uint32_t count;                /* tokens */
    uint32_t worker;               /* worker number */
    uint64_t value;                /* us, or a sequence (see the types) */
    uint64_t t_ms;                 /* CLOCK_MONOTONIC ms when it happened */
    char stream[EV_STREAM_ID_LEN]; /* not NUL-terminated when full */
    uint8_t features;              /* the stream's rollout bits (bit per enum rollout_feature) */
    uint8_t flags;                 /* EV_END: EVF_* */
};

/* How a stream ended, beyond its status (EV_END flags). */
#define EVF_FAILED 0x01 /* ended by a failure (backend, timeout, internal), also mid-stream */
#define EVF_GONE   0x02 /* the client left before the end */
#define EVF_SLOW   0x04 /* cut: the client did not read (slow_consumer_timeout) */
_Static_assert(sizeof(struct ev_rec) <= SHM_RING_REC_SIZE, "an event must fit a ring slot");

enum cmd_type {
    CMD_NONE = 0,
    CMD_PING,          /* answer with EV_PONG carrying <value> */
    CMD_CANCEL_STREAM, /* end the stream <stream> (operator), upstream cancelled */
    CMD_TYPE_COUNT,
};

struct cmd_rec {
    uint8_t type; /* enum cmd_type */
    uint8_t pad[7];
    uint64_t value;
    char stream[EV_STREAM_ID_LEN];
};
_Static_assert(sizeof(struct cmd_rec) <= SHM_RING_REC_SIZE, "a command must fit a ring slot");

#endif
