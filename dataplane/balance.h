/*
 * balance — which backend a request goes to, and what the workers learn
 * about the backends from the requests they send them.
 *
 * A request goes to a backend that serves its model, is not at its
 * max_inflight, is up (the control plane's active checks) and not ejected;
 * among those of the lowest priority (and of those, the ones that hold the
 * model in memory, for Ollama backends whose /api/ps says so), the one with
 * the fewest requests
 * outstanding per unit of weight, counted node-wide (every worker's count in
 * shared memory, so N workers do not each think a backend idle).  When every
 * backend for the model is down or ejected, the least loaded of them is
 * tried anyway (fail open: a lone backend that hiccuped must not turn into a
 * refusal of everything).  When every one is at max_inflight, the request is
 * refused at once (load shedding: 503 with Retry-After).
 *
 * Passive checks: a failed request (connect error, reset, 5xx, 429/503, no
 * first token in time) adds to the backend's node-wide failure streak, a
 * good answer clears it; eject_after failures in a row eject the backend
 * for eject_time, twice as long each time it is ejected again right after.
 *
 * Runs in a worker; its shared state is atomics in the backend table.
 */
#ifndef SLUICE_BALANCE_H
#define SLUICE_BALANCE_H

#include <stdbool.h>
#include <stdint.h>

struct worker;

/* Maps the configured backends to the shared table.  0 or -ENOMEM. */
int bal_init(struct worker *w);

/* The backend (index in the config) for a request for its model, skipping
 * those already tried.  With a prefix hash (prefix affinity on), among the
 * backends of the chosen priority the one rendezvous hashing gives the
 * prefix, unless its load is over affinity_load times the average (bounded
 * load: a hot prefix spills to the next in its order).  A request of a
 * tenant without priority sees each max_inflight less the [upstream]
 * reserve.  -1 when there is none, with *api_err: model_not_found (no
 * backend serves it) or overloaded (all full, or all tried). */
struct bal_req {
    const char *model; /* NULL: any backend will do */
    uint64_t prefix;   /* prompt-prefix hash, 0 = no affinity */
    uint64_t tried;    /* bit per backend index already tried */
    bool priority;     /* a priority tenant's: may use the reserved share */
    uint8_t kinds;     /* bit per enum backend_kind it may go to; 0 = any */
    int avoid;         /* a backend that failed it: its GPU group is tried last; -1 = none */
};
int bal_pick(struct worker *w, const struct bal_req *rq, int *api_err);

/* Whether backend <b> serves <model>. */
bool bal_serves(const struct worker *w, unsigned b, const char *model);

/* A request starts / ends on backend <b> (node-wide outstanding count). */
void bal_begin(struct worker *w, unsigned b);
void bal_end(struct worker *w, unsigned b);

/* What a request found: a good answer, or a failure (<why> for the log). */
void bal_success(struct worker *w, unsigned b);
void bal_failure(struct worker *w, unsigned b, const char *why);
/* A request moved off <b> to another backend. */
void bal_failover(struct worker *w, unsigned b);

/* Up and not ejected now (for /v1/models and the metrics). */
bool bal_usable(const struct worker *w, unsigned b);

struct sbuf;
/* GET /v1/models answered here: the union of the `models` of the usable
 * backends (of all, when none is), as OpenAI's list.  -ENOENT when some
 * backend has no `models` (then only it can say what it serves). */
int bal_models_json(const struct worker *w, struct sbuf *b);

#endif
