/*
 * qos_state — what qos.c (evaluation) and qos_act.c (actions, audit,
 * persistence) share: the windows, targets and watches of the QoS engine.
 * Private to those two files; single-threaded (the control plane).
 */
#ifndef SLUICE_QOS_STATE_H
#define SLUICE_QOS_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "controlplane/control.h"
#include "shared/shm.h"
#include "shared/sketch.h"

struct webhook;

#define MAX_BUCKETS  64  /* intervals a window may span */
#define MAX_TARGETS  256 /* policy x scope pairs */
#define EVENTS_KEPT  256 /* decisions `sluicectl events` can show */
#define UNDO_HISTORY 16  /* undo times kept per target for loop detection */
#define COLLECT_GRACE                                                                              \
    1500 /* ms after an interval ends past which a silent worker is not awaited                    \
          */

enum scope_kind { SC_NODE = 0, SC_TENANT, SC_BACKEND };

struct bucket {
    uint64_t epoch; /* UINT64_MAX: unused */
    uint32_t ended, failed, gone, slow, rejected;
    uint32_t queue_peak;
    struct sketch_snap ttft; /* the client's, ms -> us */
    struct sketch_snap *itl; /* node only: gaps between tokens */
};

struct scope {
    uint8_t kind;
    uint16_t idx;     /* shm tenant index or config backend index */
    struct bucket *b; /* nb, by epoch % nb */
};

/* What an applied action changed, to undo it. */
struct undo {
    uint8_t kind;
    uint16_t tenant;
    uint32_t before[FEAT_COUNT];
};

struct target {
    unsigned pol;   /* index in cfg->slos */
    int scope;      /* index in scopes */
    unsigned level; /* actions applied */
    uint64_t next_ok_ms;
    uint64_t healthy_since_ms;
    bool breached, have_value, frozen;
    uint64_t frozen_until_ms;
    double value;
    uint64_t violations;
    uint64_t undo_ms[UNDO_HISTORY];
    unsigned n_undo;
    struct undo undo[SLO_MAX_ACTIONS];
};

struct path {
    uint32_t requests, failed;
    struct sketch_snap ttft;
};

struct watch {
    bool on;
    unsigned was, now;
    uint64_t since_ms;
    struct path path[2]; /* 0: old path, 1: new */
};

struct qos_state {
    struct cp *cp;
    const struct config *cfg;
    struct webhook *wh;
    unsigned nb;        /* buckets per scope */
    uint64_t epoch;     /* the interval now being filled */
    uint64_t evaluated; /* the last interval evaluated + 1 */
    struct scope *scopes;
    unsigned nscopes, cap_scopes;
    int tenant_scope[SHM_MAX_TENANTS]; /* -1: none */
    int backend_scope[CONFIG_MAX_BACKENDS];
    bool want_tenants; /* some policy looks at tenants */
    struct target targets[MAX_TARGETS];
    unsigned ntargets;
    uint64_t remediations[ACT_COUNT];
    uint64_t observed[ACT_COUNT];
    uint64_t rollbacks;
    struct watch watch[FEAT_COUNT];
    char *events[EVENTS_KEPT];
    unsigned ev_head, ev_len;
    struct sketch_snap merged; /* scratch */
};

/* qos.c */
void qos_scope_label(const struct qos_state *s, const struct scope *sc, char *buf, size_t n);

/* qos_act.c: decisions (audit line, memory, log, webhook), whether the
 * engine only observes, what an action does and how it is undone, and the
 * targets' state on disk. */
void qos_decide(struct qos_state *s, json_t *o, bool alert);
bool qos_observing(const struct qos_state *s);
void qos_set_rollout(struct qos_state *s, unsigned f, unsigned pct, const char *why);
void qos_apply(struct qos_state *s, struct target *t, const struct slo_action *a, struct undo *u,
               json_t *o, bool dry);
void qos_undo(struct qos_state *s, struct target *t, const struct undo *u, json_t *o, bool dry);
void qos_save(struct qos_state *s);
void qos_load(struct qos_state *s);

#endif
