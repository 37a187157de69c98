/* balance — see balance.h. */
#include "dataplane/balance.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/api_error.h"
#include "dataplane/upstream.h"
#include "dataplane/worker.h"
#include "shared/log.h"
#include "shared/sbuf.h"
#include "shared/strlist.h"

#define EJECT_DOUBLINGS 6 /* the longest ejection is 64 x eject_time */

static struct shm_backend *entry(const struct worker *w, unsigned b)
{
    int i = w->pools[b].shm_idx;
    return i < 0 ? NULL : &w->shm->seg->tables.backends[i];
}

int bal_init(struct worker *w)
{
    for (unsigned b = 0; b < w->npools; b++) {
        w->pools[b].shm_idx = shm_backend_find(w->shm, w->pools[b].be->name);
        uint64_t h = 0xcbf29ce484222325ULL;
        for (const char *p = w->pools[b].be->name; *p; p++)
            h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
        w->pools[b].name_hash = h;
    }
    return 0;
}

/* The models of backend <b>: its `models`, or, configured without, the
 * ones it listed itself (the control plane asks it), or "" (any). */
static const char *models_of(const struct worker *w, unsigned b, char *buf, size_t cap)
{
    const struct shm_backend *e = entry(w, b);
    if (w->pools[b].be->models[0] || !e)
        return w->pools[b].be->models;
    shm_backend_models(e, buf, cap);
    return buf;
}

bool bal_serves(const struct worker *w, unsigned b, const char *model)
{
    char buf[sizeof((struct shm_backend *)0)->models + 1];
    const char *list = models_of(w, b, buf, sizeof buf);
    return !list[0] || !model || strlist_has(list, model, strlen(model));
}

static int64_t inflight(const struct worker *w, unsigned b)
{
    int i = w->pools[b].shm_idx;
    return i < 0 ? w->pools[b].nconns : shm_node_backend_inflight(w->shm, (unsigned)i);
}

/* The backend's own queue (vLLM num_requests_waiting, read by the control
 * plane), while the reading is fresh: requests that wait there will wait
 * longer still for a new one, whatever the outstanding counts say. */
static int64_t queued(const struct worker *w, unsigned b)
{
    const struct shm_backend *e = entry(w, b);
    if (!e)
        return 0;
    uint64_t at = atomic_load_explicit(&e->load_ms, memory_order_relaxed);
    uint64_t fresh = 3ull * (w->cfg->health_interval_ms ? w->cfg->health_interval_ms : 1000);
    if (!at || at + fresh < w->now_ms)
        return 0;
    return atomic_load_explicit(&e->waiting, memory_order_relaxed);
}

/* Its GPU's memory, read from the agent on its host while fresh, is past
 * gpu_memory_max: a new request there risks an out-of-memory failure. */
static bool gpu_full(const struct worker *w, const struct shm_backend *e)
{
    uint32_t max = w->cfg->gpu_memory_max;
    uint64_t at = atomic_load_explicit(&e->gpu_ms, memory_order_relaxed);
    uint64_t fresh = 3ull * (w->cfg->health_interval_ms ? w->cfg->health_interval_ms : 1000);
    return max && at && at + fresh >= w->now_ms &&
           atomic_load_explicit(&e->gpu_mem_permille, memory_order_relaxed) >= max * 10;
}

bool bal_usable(const struct worker *w, unsigned b)
{
    const struct shm_backend *e = entry(w, b);
    if (!e)
        return true;
    return atomic_load_explicit(&e->up, memory_order_relaxed) &&
           atomic_load_explicit(&e->eject_until_ms, memory_order_relaxed) <= w->now_ms &&
           !gpu_full(w, e);
}

/* An Ollama backend that, by its fresh /api/ps, does not hold <model> in
 * memory: a request there waits for the model to load (seconds). */
static bool cold(const struct worker *w, unsigned b, const char *model)
{
    const struct shm_backend *e = entry(w, b);
    if (!model || !e || w->pools[b].be->kind != BACKEND_OLLAMA)
        return false;
    uint64_t at = atomic_load_explicit(&e->loaded_ms, memory_order_acquire);
    uint64_t fresh = 3ull * (w->cfg->health_interval_ms ? w->cfg->health_interval_ms : 1000);
    if (!at || at + fresh < w->now_ms)
        return false;
    char list[sizeof e->loaded + 1];
    shm_backend_loaded(e, list, sizeof list);
    return !strlist_has(list, model, strlen(model));
}

/* Is (n + 1) / weight of a lower than of b?  (Cross-multiplied.) */
static bool lighter(int64_t na, uint32_t wa, int64_t nb, uint32_t wb)
{
    return (uint64_t)(na + 1) * wb < (uint64_t)(nb + 1) * wa;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Rendezvous (highest random weight) hashing with bounded loads: each
 * backend of priority <prio> that can take the request gets a score from
 * the prefix and its name (weighted: -weight / ln u), and the best scored
 * whose load is under affinity_load x (average + 1) takes it.  The same
 * prefix scores the backends the same way on every worker and every node,
 * and a backend that leaves moves only its own prefixes. */
/* The concurrent requests backend <b> takes from this request's kind: its
 * max_inflight, less the reserve for a request without priority; 0 = no cap. */
static int64_t cap_for(const struct worker *w, unsigned b, bool priority)
{
    uint32_t cap = w->pools[b].be->max_inflight;
    if (!cap || priority || !w->cfg->upstream_reserve)
        return cap;
    int64_t c = (int64_t)cap * (100 - w->cfg->upstream_reserve) / 100;
    return c > 0 ? c : -1; /* -1: nothing left for it */
}

static bool full(const struct worker *w, unsigned b, bool priority, int64_t n)
{
    int64_t cap = cap_for(w, b, priority);
    return cap && n >= (cap < 0 ? 0 : cap);
}

/* Whether <b> serves the request's model over an API it may go to. */
static bool eligible(const struct worker *w, unsigned b, const struct bal_req *rq)
{
    return (!rq->kinds || (rq->kinds >> w->pools[b].be->kind & 1)) && bal_serves(w, b, rq->model);
}

static int affine(struct worker *w, const struct bal_req *rq, uint32_t prio)
{
    uint64_t prefix = rq->prefix, tried = rq->tried;
    int64_t load[64];
    int64_t sum = 0;
    unsigned count = 0;
    for (unsigned b = 0; b < w->npools && b < 64; b++) {
        const struct config_backend *be = w->pools[b].be;
        load[b] = -1;
        if (be->priority != prio || (tried & (1ull << b)) || !eligible(w, b, rq) ||
            !bal_usable(w, b))
            continue;
        int64_t n = inflight(w, b);
        if (full(w, b, rq->priority, n))
            continue;
        load[b] = n + queued(w, b);
        sum += load[b];
        count++;
    }
    if (count < 2)
        return -1;
    double bound = w->cfg->affinity_load * ((double)sum / count + 1);
    int best = -1;
    double best_score = 0;
    for (unsigned b = 0; b < w->npools && b < 64; b++) {
        if (load[b] < 0 || (double)load[b] + 1 > bound)
            continue;
        uint64_t h = mix64(prefix ^ w->pools[b].name_hash);
        double u = ((double)(h >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
        double score = -(double)w->pools[b].be->weight / log(u);
        if (best < 0 || score > best_score) {
            best = (int)b;
            best_score = score;
        }
    }
    if (best >= 0)
        shm_add(&w->slot->c.affinity_picks, 1);
    return best;
}

/* bal_pick's search; with <healthy_only>, no fail-open pick of a backend
 * that is down. */
static int pick(struct worker *w, const struct bal_req *rq, int *api_err, bool healthy_only)
{
    uint64_t tried = rq->tried;
    int best = -1, best_sick = -1;
    int64_t best_n = 0, sick_n = 0;
    bool best_cold = false;
    bool served = false;
    /* Ties go round the backends, not always to the first. */
    unsigned start = w->bal_rr++ % (w->npools ? w->npools : 1);
    for (unsigned k = 0; k < w->npools; k++) {
        unsigned b = (start + k) % w->npools;
        const struct config_backend *be = w->pools[b].be;
        if (!eligible(w, b, rq))
            continue;
        served = true;
        if (tried & (1ull << b))
            continue;
        int64_t n = inflight(w, b);
        if (full(w, b, rq->priority, n))
            continue;
        n += queued(w, b); /* its load: outstanding, and what queues inside it */
        if (!bal_usable(w, b)) {
            if (best_sick < 0 || lighter(n, be->weight, sick_n, w->pools[best_sick].be->weight)) {
                best_sick = (int)b;
                sick_n = n;
            }
            continue;
        }
        bool c = cold(w, b, rq->model);
        if (best >= 0) {
            const struct config_backend *bb = w->pools[best].be;
            if (be->priority > bb->priority)
                continue;
            /* Among equals, one that holds the model beats one that must
             * load it; then round_robin takes the first eligible from the
             * rotating start, least_outstanding the lightest. */
            if (be->priority == bb->priority &&
                (c > best_cold ||
                 (c == best_cold && (w->cfg->balance == CONFIG_BALANCE_RR ||
                                     !lighter(n, be->weight, best_n, bb->weight)))))
                continue;
        }
        best = (int)b;
        best_n = n;
        best_cold = c;
    }
    if (best >= 0 && rq->prefix && w->cfg->balance == CONFIG_BALANCE_LEAST) {
        int a = affine(w, rq, w->pools[best].be->priority);
        if (a >= 0)
            best = a;
    }
    if (best < 0 && best_sick >= 0 && !healthy_only) {
        best = best_sick; /* every one is down: try the least loaded anyway */
        shm_add(&w->slot->c.backend_panics, 1);
    }
    if (best < 0)
        *api_err = !served ? API_ERR_MODEL_NOT_FOUND : API_ERR_OVERLOADED;
    return best;
}

int bal_pick(struct worker *w, const struct bal_req *rq, int *api_err)
{
    const char *group = rq->avoid >= 0 ? w->pools[rq->avoid].be->group : "";
    if (group[0]) {
        /* The GPU that failed it is likely to fail it again (its other
         * servers share its memory and its driver): another GPU first. */
        struct bal_req other = *rq;
        for (unsigned b = 0; b < w->npools && b < 64; b++)
            if (strcmp(w->pools[b].be->group, group) == 0)
                other.tried |= 1ull << b;
        int b = pick(w, &other, api_err, true);
        if (b >= 0)
            return b;
    }
    return pick(w, rq, api_err, false);
}

void bal_begin(struct worker *w, unsigned b)
{
    int i = w->pools[b].shm_idx;
    if (i >= 0)
        atomic_store_explicit(
            &w->slot->backend_inflight[i],
            atomic_load_explicit(&w->slot->backend_inflight[i], memory_order_relaxed) + 1,
            memory_order_relaxed);
}

void bal_end(struct worker *w, unsigned b)
{
    int i = w->pools[b].shm_idx;
    if (i >= 0)
        atomic_store_explicit(
            &w->slot->backend_inflight[i],
            atomic_load_explicit(&w->slot->backend_inflight[i], memory_order_relaxed) - 1,
            memory_order_relaxed);
}

void bal_success(struct worker *w, unsigned b)
{
    struct shm_backend *e = entry(w, b);
    if (!e)
        return;
    if (atomic_load_explicit(&e->fail_streak, memory_order_relaxed))
        atomic_store_explicit(&e->fail_streak, 0, memory_order_relaxed);
    /* Healthy again for a while after its last ejection: the next one
     * starts short again. */
    uint64_t until = atomic_load_explicit(&e->eject_until_ms, memory_order_relaxed);
    if (atomic_load_explicit(&e->ejections, memory_order_relaxed) &&
        w->now_ms > until + 4ull * w->cfg->eject_time_ms)
        atomic_store_explicit(&e->ejections, 0, memory_order_relaxed);
}

void bal_failure(struct worker *w, unsigned b, const char *why)
{
    struct shm_backend *e = entry(w, b);
    if (!e)
        return;
    atomic_fetch_add_explicit(&e->failures_total, 1, memory_order_relaxed);
    uint32_t streak = atomic_fetch_add_explicit(&e->fail_streak, 1, memory_order_relaxed) + 1;
    uint32_t after = w->cfg->eject_after;
    if (!after || streak < after)
        return;
    uint64_t until = atomic_load_explicit(&e->eject_until_ms, memory_order_relaxed);
    if (until > w->now_ms)
        return; /* already out */
    uint32_t n = atomic_fetch_add_explicit(&e->ejections, 1, memory_order_relaxed);
    uint64_t ms = (uint64_t)w->cfg->eject_time_ms << (n < EJECT_DOUBLINGS ? n : EJECT_DOUBLINGS);
    /* One worker wins the ejection; the streak starts again after it. */
    if (!atomic_compare_exchange_strong_explicit(&e->eject_until_ms, &until, w->now_ms + ms,
                                                 memory_order_relaxed, memory_order_relaxed))
        return;
    atomic_store_explicit(&e->fail_streak, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->ejected_total, 1, memory_order_relaxed);
    log_warn("backend %s ejected for %llu ms after %u failures in a row (last: %s)",
             w->pools[b].be->name, (unsigned long long)ms, streak, why);
}

void bal_failover(struct worker *w, unsigned b)
{
    struct shm_backend *e = entry(w, b);
    if (e)
        atomic_fetch_add_explicit(&e->failovers_total, 1, memory_order_relaxed);
}

/* Appends the models of <list> not already in <b> (a JSON list being built)
 * as OpenAI model objects owned by <owner>. */
static void add_models(struct sbuf *b, const char *list, const char *owner, bool *first)
{
    const char *p;
    size_t len;
    while (strlist_next(&list, &p, &len)) {
        char esc[512];
        size_t n = api_json_escape(esc, sizeof esc, p, len);
        char needle[600];
        snprintf(needle, sizeof needle, "{\"id\":\"%.*s\",", (int)n, esc);
        if (!b->p || !memmem(b->p, b->len, needle, strlen(needle))) {
            sbuf_printf(b, "%s%s\"object\":\"model\",\"created\":0,\"owned_by\":\"%s\"}",
                        *first ? "" : ",", needle, owner);
            *first = false;
        }
    }
}

int bal_models_json(const struct worker *w, struct sbuf *b)
{
    bool any_usable = false;
    char buf[sizeof((struct shm_backend *)0)->models + 1];
    for (unsigned i = 0; i < w->npools; i++) {
        if (!models_of(w, i, buf, sizeof buf)[0])
            return -ENOENT; /* that one's models are its own to tell */
        any_usable |= bal_usable(w, i);
    }
    bool first = true;
    sbuf_puts(b, "{\"object\":\"list\",\"data\":[");
    for (unsigned i = 0; i < w->npools; i++)
        if (!any_usable || bal_usable(w, i))
            add_models(b, models_of(w, i, buf, sizeof buf), w->pools[i].be->name, &first);
    sbuf_puts(b, "]}");
    return b->err ? b->err : 0;
}
