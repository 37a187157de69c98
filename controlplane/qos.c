/* qos — see qos.h. */
#include "controlplane/qos.h"
#include "controlplane/qos_state.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "controlplane/control.h"
#include "controlplane/rollout_state.h"
#include "controlplane/webhook.h"
#include "shared/clock.h"
#include "shared/events.h"
#include "shared/log.h"
#include "shared/sbuf.h"
#include "shared/shm.h"
#include "shared/sketch.h"

/* ---- scopes and buckets -------------------------------------------------- */

static int scope_new(struct qos_state *s, uint8_t kind, uint16_t idx)
{
    if (s->nscopes == s->cap_scopes) {
        unsigned cap = s->cap_scopes ? s->cap_scopes * 2 : 8;
        struct scope *n = realloc(s->scopes, cap * sizeof *n);
        if (!n)
            return -1;
        s->scopes = n;
        s->cap_scopes = cap;
    }
    struct scope *sc = &s->scopes[s->nscopes];
    sc->kind = kind;
    sc->idx = idx;
    sc->b = calloc(s->nb, sizeof *sc->b);
    if (!sc->b)
        return -1;
    for (unsigned i = 0; i < s->nb; i++) {
        sc->b[i].epoch = UINT64_MAX;
        if (kind == SC_NODE && !(sc->b[i].itl = calloc(1, sizeof *sc->b[i].itl)))
            return -1;
    }
    return (int)s->nscopes++;
}

static struct bucket *bucket_of(struct qos_state *s, struct scope *sc, uint64_t epoch)
{
    struct bucket *b = &sc->b[epoch % s->nb];
    if (b->epoch != epoch) {
        struct sketch_snap *itl = b->itl;
        memset(b, 0, sizeof *b);
        b->epoch = epoch;
        b->itl = itl;
        if (itl)
            memset(itl, 0, sizeof *itl);
    }
    return b;
}

static int tenant_scope(struct qos_state *s, unsigned t)
{
    if (t >= SHM_MAX_TENANTS || !s->want_tenants)
        return -1;
    if (s->tenant_scope[t] < 0)
        s->tenant_scope[t] = scope_new(s, SC_TENANT, (uint16_t)t);
    return s->tenant_scope[t];
}

static const char *tenant_name(const struct qos_state *s, unsigned t)
{
    const struct shm_tables *tb = &s->cp->shm->seg->tables;
    return t < SHM_MAX_TENANTS && atomic_load_explicit(&tb->tenants[t].used, memory_order_acquire)
               ? tb->tenants[t].name
               : "default";
}

void qos_scope_label(const struct qos_state *s, const struct scope *sc, char *buf, size_t n)
{
    if (sc->kind == SC_NODE)
        snprintf(buf, n, "node");
    else if (sc->kind == SC_TENANT)
        snprintf(buf, n, "tenant:%s", tenant_name(s, sc->idx));
    else
        snprintf(buf, n, "backend:%s", s->cfg->backends[sc->idx].name);
}

/* ---- events ----------------------------------------------------------------- */

static void count(struct qos_state *s, int si, const struct ev_rec *ev, uint64_t epoch)
{
    if (si < 0)
        return;
    struct bucket *b = bucket_of(s, &s->scopes[si], epoch);
    if (ev->type == EV_FIRST_TOKEN) {
        sketch_snap_record(&b->ttft, ev->count);
    } else if (ev->type == EV_END) {
        b->ended++;
        b->failed += (ev->flags & EVF_FAILED) || ev->status >= 500;
        b->gone += (ev->flags & EVF_GONE) != 0;
        b->slow += (ev->flags & EVF_SLOW) != 0;
    } else if (ev->type == EV_REJECT) {
        b->rejected++;
    }
}

static void watch_event(struct qos_state *s, const struct ev_rec *ev)
{
    for (unsigned f = 0; f < FEAT_COUNT; f++) {
        struct watch *w = &s->watch[f];
        if (!w->on)
            continue;
        struct path *p = &w->path[(ev->features >> f) & 1];
        if (ev->type == EV_FIRST_TOKEN)
            sketch_snap_record(&p->ttft, ev->count);
        else if (ev->type == EV_END) {
            p->requests++;
            p->failed += (ev->flags & EVF_FAILED) || ev->status >= 500;
        }
    }
}

void qos_on_event(struct qos *q, const struct ev_rec *ev)
{
    struct qos_state *s = q->s;
    if (!s || (ev->type != EV_FIRST_TOKEN && ev->type != EV_END && ev->type != EV_REJECT))
        return;
    uint64_t epoch = ev->t_ms / s->cfg->qos_interval_ms;
    if (epoch < s->evaluated)
        epoch = s->evaluated; /* late: counted in the interval still open */
    count(s, 0, ev, epoch);
    count(s, ev->tenant != UINT16_MAX ? tenant_scope(s, ev->tenant) : -1, ev, epoch);
    if (ev->type != EV_REJECT && ev->backend < CONFIG_MAX_BACKENDS)
        count(s, s->backend_scope[ev->backend], ev, epoch);
    watch_event(s, ev);
}

/* ---- evaluation ---------------------------------------------------------------- */

static bool evaluate_value(struct qos_state *s, const struct target *t, double *value)
{
    const struct config_slo *o = &s->cfg->slos[t->pol];
    struct scope *sc = &s->scopes[t->scope];
    unsigned k = (o->window_ms + s->cfg->qos_interval_ms - 1) / s->cfg->qos_interval_ms;
    if (k > s->nb)
        k = s->nb;
    uint64_t ended = 0, failed = 0, gone = 0, slow = 0, rejected = 0, qpeak = 0;
    memset(&s->merged, 0, sizeof s->merged);
    bool itl = o->metric == SLO_ITL_P99;
    for (unsigned j = 0; j < k && j < s->evaluated; j++) {
        uint64_t e = s->evaluated - 1 - j;
        const struct bucket *b = &sc->b[e % s->nb];
        if (b->epoch != e)
            continue;
        ended += b->ended;
        failed += b->failed;
        gone += b->gone;
        slow += b->slow;
        rejected += b->rejected;
        if (b->queue_peak > qpeak)
            qpeak = b->queue_peak;
        if (itl && b->itl)
            sketch_merge(&s->merged, b->itl);
        else if (!itl)
            sketch_merge(&s->merged, &b->ttft);
    }
    double q = o->metric == SLO_TTFT_P50 ? 0.5 : o->metric == SLO_TTFT_P95 ? 0.95 : 0.99;
    switch (o->metric) {
    case SLO_TTFT_P50:
    case SLO_TTFT_P95:
    case SLO_TTFT_P99:
    case SLO_ITL_P99:
        if (!s->merged.count)
            return false;
        *value = (double)sketch_quantile(&s->merged, q) / 1000.0;
        return true;
    case SLO_ERROR_RATE:
        *value = ended ? (double)failed / (double)ended : 0;
        return ended > 0;
    case SLO_REJECT_RATE:
        *value = ended + rejected ? (double)rejected / (double)(ended + rejected) : 0;
        return ended + rejected > 0;
    case SLO_DISCONNECT_RATE:
        *value = ended ? (double)gone / (double)ended : 0;
        return ended > 0;
    case SLO_SLOW_CONSUMER_RATE:
        *value = ended ? (double)slow / (double)ended : 0;
        return ended > 0;
    default:
        *value = (double)qpeak;
        return true;
    }
}

static json_t *decision(struct qos_state *s, const struct target *t, const char *step,
                        const char *action)
{
    const struct config_slo *o = &s->cfg->slos[t->pol];
    char sc[96];
    qos_scope_label(s, &s->scopes[t->scope], sc, sizeof sc);
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:f, s:f, s:s, s:s, s:i, s:b}", "policy", o->name, "scope",
                  sc, "metric", slo_metric_name((unsigned)o->metric), "severity",
                  slo_severity_name((unsigned)o->severity), "value", t->have_value ? t->value : 0.0,
                  "threshold", o->threshold, "step", step, "action", action, "level", (int)t->level,
                  "observe_only", qos_observing(s));
    return j;
}

static unsigned undos_recent(const struct target *t, uint64_t now, uint64_t window)
{
    unsigned n = 0;
    for (unsigned i = 0; i < t->n_undo && i < UNDO_HISTORY; i++)
        if (now - t->undo_ms[i] <= window)
            n++;
    return n;
}

static void step_target(struct qos_state *s, struct target *t, uint64_t now)
{
    const struct config_slo *o = &s->cfg->slos[t->pol];
    bool dry = qos_observing(s);
    t->have_value = evaluate_value(s, t, &t->value);
    bool breached = t->have_value && t->value > o->threshold;
    if (t->frozen && now >= t->frozen_until_ms) {
        t->frozen = false;
        t->n_undo = 0;
        qos_decide(s, decision(s, t, "unfreeze", "-"), false);
        qos_save(s);
    }
    if (breached) {
        t->violations++;
        t->healthy_since_ms = 0;
        if (!t->breached)
            log_info("qos: %s breached (%g > %g)", o->name, t->value, o->threshold);
        t->breached = true;
        if (t->frozen || t->level >= o->n_actions || now < t->next_ok_ms)
            return;
        if (undos_recent(t, now, s->cfg->qos_loop_window_ms) >= s->cfg->qos_loop_max) {
            /* applied and undone again and again: hold still and tell */
            t->frozen = true;
            t->frozen_until_ms = now + s->cfg->qos_loop_window_ms;
            qos_decide(s, decision(s, t, "freeze", "loop detected"), true);
            qos_save(s);
            return;
        }
        const struct slo_action *a = &o->actions[t->level];
        json_t *j = decision(s, t, "apply", slo_action_name(a->kind));
        qos_apply(s, t, a, &t->undo[t->level], j, dry);
        t->level++;
        json_object_set_new(j, "level", json_integer(t->level));
        t->next_ok_ms = now + (a->cooldown_ms ? a->cooldown_ms : o->cooldown_ms);
        if (dry)
            s->observed[a->kind]++;
        else
            s->remediations[a->kind]++;
        qos_decide(s, j, a->kind == ACT_ALERT || o->severity == SLO_CRITICAL);
        qos_save(s);
        return;
    }
    t->breached = false;
    if (!t->level)
        return;
    if (!t->healthy_since_ms)
        t->healthy_since_ms = now;
    if (now - t->healthy_since_ms < o->hold_ms || now < t->next_ok_ms)
        return;
    t->level--;
    const struct undo *u = &t->undo[t->level];
    json_t *j = decision(s, t, "undo", slo_action_name(u->kind));
    qos_undo(s, t, u, j, dry);
    t->undo_ms[t->n_undo++ % UNDO_HISTORY] = now;
    t->healthy_since_ms = now; /* a whole hold again before the next undo */
    qos_decide(s, j, u->kind == ACT_ALERT);
    qos_save(s);
}

static void add_target(struct qos_state *s, unsigned pol, int scope)
{
    for (unsigned i = 0; i < s->ntargets; i++)
        if (s->targets[i].pol == pol && s->targets[i].scope == scope)
            return;
    if (s->ntargets >= MAX_TARGETS || scope < 0)
        return;
    struct target *t = &s->targets[s->ntargets++];
    memset(t, 0, sizeof *t);
    t->pol = pol;
    t->scope = scope;
}

/* The targets of every policy: "*" gains one per tenant seen. */
static void targets_update(struct qos_state *s)
{
    const struct shm_tables *tb = &s->cp->shm->seg->tables;
    for (unsigned p = 0; p < s->cfg->n_slos; p++) {
        const struct config_slo *o = &s->cfg->slos[p];
        if (o->backend[0]) {
            for (unsigned b = 0; b < s->cfg->n_backends; b++)
                if (strcmp(s->cfg->backends[b].name, o->backend) == 0)
                    add_target(s, p, s->backend_scope[b]);
        } else if (!o->tenant[0]) {
            add_target(s, p, 0);
        } else {
            unsigned n = atomic_load_explicit(&tb->ntenants, memory_order_acquire);
            for (unsigned t = 0; t < n && t < SHM_MAX_TENANTS; t++) {
                if (strcmp(o->tenant, "*") != 0 && strcmp(o->tenant, tb->tenants[t].name) != 0)
                    continue;
                if (strcmp(o->tenant, "*") == 0 && s->tenant_scope[t] < 0)
                    continue; /* no traffic yet */
                add_target(s, p, tenant_scope(s, t));
            }
        }
    }
}

static bool workers_left(struct qos_state *s, uint64_t epoch)
{
    SHM_FOR_EACH_WORKER (s->cp->shm, idx)
        if (sketch_epoch(&shm_slot(s->cp->shm, idx)->itl_win) <= epoch)
            return false;
    return true;
}

/* The workers' gap windows of a finished interval, into the node bucket. */
static void collect_itl(struct qos_state *s, uint64_t epoch)
{
    struct bucket *b = bucket_of(s, &s->scopes[0], epoch);
    struct sketch_snap snap;
    SHM_FOR_EACH_WORKER (s->cp->shm, idx) {
        int rc = sketch_collect(&shm_slot(s->cp->shm, idx)->itl_win, epoch, &snap);
        if (rc == 0)
            sketch_merge(b->itl, &snap);
    }
}

static void check_rollbacks(struct qos_state *s, uint64_t now);

static void evaluate(struct qos_state *s, uint64_t epoch, uint64_t now)
{
    collect_itl(s, epoch);
    s->evaluated = epoch + 1;
    targets_update(s);
    for (unsigned i = 0; i < s->ntargets; i++)
        step_target(s, &s->targets[i], now);
    check_rollbacks(s, now);
}

void qos_poll(struct qos *q, uint64_t now_ms)
{
    struct qos_state *s = q->s;
    if (!s)
        return;
    uint64_t iv = s->cfg->qos_interval_ms;
    struct bucket *b = bucket_of(s, &s->scopes[0], now_ms / iv);
    int64_t queued = shm_node_queued(s->cp->shm);
    if (queued > 0 && (uint64_t)queued > b->queue_peak)
        b->queue_peak = (uint32_t)queued;
    /* Each finished interval once, when every worker has left it (an idle
     * worker moves on at its next loop turn, within a second), or after a
     * grace past which a silent worker is not waited for. */
    if (!s->evaluated && now_ms / iv)
        s->evaluated = now_ms / iv - 1; /* start where we are */
    while (s->evaluated && s->evaluated < now_ms / iv) {
        uint64_t e = s->evaluated;
        if (now_ms < (e + 1) * iv + COLLECT_GRACE && !workers_left(s, e))
            return;
        evaluate(s, e, now_ms);
    }
}

/* ---- rollout rollback ---------------------------------------------------------- */

void qos_rollout_changed(struct qos *q, unsigned feature, unsigned was, unsigned now,
                         const char *who)
{
    struct qos_state *s = q->s;
    if (!s || feature >= FEAT_COUNT || strncmp(who, "qos ", 4) == 0)
        return;
    struct watch *w = &s->watch[feature];
    memset(w, 0, sizeof *w);
    /* Only a rise to a share leaves both paths to compare. */
    if (now > was && now < 100) {
        w->on = true;
        w->was = was;
        w->now = now;
        w->since_ms = clock_mono_ms();
    }
}

static double ttft_level(const struct qos_state *s)
{
    for (unsigned p = 0; p < s->cfg->n_slos; p++) {
        const struct config_slo *o = &s->cfg->slos[p];
        if (o->metric == SLO_TTFT_P95 && !o->tenant[0] && !o->backend[0])
            return o->threshold;
    }
    return s->cfg->target_ttft_ms;
}

static void check_rollbacks(struct qos_state *s, uint64_t now)
{
    (void)now;
    for (unsigned f = 0; f < FEAT_COUNT; f++) {
        struct watch *w = &s->watch[f];
        if (!w->on)
            continue;
        struct path *o = &w->path[0], *n = &w->path[1];
        double limit = s->cfg->qos_rollback_error_rate;
        double nr = n->requests ? (double)n->failed / n->requests : 0;
        double orate = o->requests ? (double)o->failed / o->requests : 0;
        const char *why = NULL;
        char detail[160];
        if (n->requests >= s->cfg->qos_rollback_min_requests && nr > limit && orate <= limit) {
            why = "error_rate";
            snprintf(detail, sizeof detail, "new path %.4f (%u/%u), old path %.4f (%u/%u)", nr,
                     n->failed, n->requests, orate, o->failed, o->requests);
        } else if (n->ttft.count >= 20 && o->ttft.count >= 20) {
            double lvl = ttft_level(s);
            double np = sketch_quantile(&n->ttft, 0.95) / 1000.0;
            double op = sketch_quantile(&o->ttft, 0.95) / 1000.0;
            if (np > lvl && op <= lvl) {
                why = "ttft_p95";
                snprintf(detail, sizeof detail, "new path %.1f ms, old path %.1f ms (level %.0f)",
                         np, op, lvl);
            }
        }
        if (!why)
            continue;
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:b}", "policy", "rollback",
                              "feature", rollout_name((enum rollout_feature)f), "metric", why,
                              "step", "rollback", "before", (int)w->now, "after", (int)w->was,
                              "detail", detail, "observe_only", qos_observing(s));
        bool dry = qos_observing(s);
        w->on = false;
        if (!dry) {
            qos_set_rollout(s, f, w->was, "rollback");
            s->rollbacks++;
        }
        qos_decide(s, j, true);
    }
}

/* ---- setup and views ------------------------------------------------------------ */

int qos_init(struct qos *q, struct cp *cp, struct webhook *wh)
{
    q->s = NULL;
    const struct config *cfg = cp->cfg;
    struct qos_state *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->cp = cp;
    s->cfg = cfg;
    s->wh = wh;
    uint32_t longest = 0;
    for (unsigned p = 0; p < cfg->n_slos; p++) {
        if (cfg->slos[p].window_ms > longest)
            longest = cfg->slos[p].window_ms;
        /* tenant windows: for a tenant's policy, and to find whom to throttle */
        if (cfg->slos[p].tenant[0])
            s->want_tenants = true;
        for (unsigned a = 0; a < cfg->slos[p].n_actions; a++)
            if (cfg->slos[p].actions[a].kind == ACT_THROTTLE_TENANT)
                s->want_tenants = true;
    }
    unsigned nb = (longest + cfg->qos_interval_ms - 1) / cfg->qos_interval_ms + 2;
    s->nb = nb > MAX_BUCKETS ? MAX_BUCKETS : nb < 3 ? 3 : nb;
    for (unsigned i = 0; i < SHM_MAX_TENANTS; i++)
        s->tenant_scope[i] = -1;
    for (unsigned i = 0; i < CONFIG_MAX_BACKENDS; i++)
        s->backend_scope[i] = -1;
    if (scope_new(s, SC_NODE, 0) < 0)
        goto oom;
    for (unsigned p = 0; p < cfg->n_slos; p++) {
        for (unsigned b = 0; b < cfg->n_backends && cfg->slos[p].backend[0]; b++)
            if (strcmp(cfg->backends[b].name, cfg->slos[p].backend) == 0 &&
                s->backend_scope[b] < 0 &&
                (s->backend_scope[b] = scope_new(s, SC_BACKEND, (uint16_t)b)) < 0)
                goto oom;
    }
    q->s = s;
    /* Named tenants and the node have targets now, so a restart finds them. */
    const struct shm_tables *tb = &cp->shm->seg->tables;
    unsigned nt = atomic_load_explicit(&tb->ntenants, memory_order_acquire);
    for (unsigned t = 0; t < nt && t < SHM_MAX_TENANTS && s->want_tenants; t++)
        (void)tenant_scope(s, t);
    targets_update(s);
    qos_load(s);
    return 0;
oom:
    q->s = s;
    qos_free(q);
    return -ENOMEM;
}

void qos_free(struct qos *q)
{
    struct qos_state *s = q->s;
    if (!s)
        return;
    for (unsigned i = 0; i < s->nscopes; i++) {
        for (unsigned j = 0; s->scopes[i].b && j < s->nb; j++)
            free(s->scopes[i].b[j].itl);
        free(s->scopes[i].b);
    }
    free(s->scopes);
    for (unsigned i = 0; i < s->ev_len; i++)
        free(s->events[(s->ev_head + i) % EVENTS_KEPT]);
    free(s);
    q->s = NULL;
}

void *qos_status_json(const struct qos *q)
{
    const struct qos_state *s = q->s;
    json_t *arr = json_array();
    if (!s)
        return json_pack("{s:o}", "policies", arr);
    for (unsigned i = 0; i < s->ntargets; i++) {
        const struct target *t = &s->targets[i];
        const struct config_slo *o = &s->cfg->slos[t->pol];
        char sc[96];
        qos_scope_label(s, &s->scopes[t->scope], sc, sizeof sc);
        json_t *j = json_pack(
            "{s:s, s:s, s:s, s:f, s:s, s:i, s:i, s:b, s:b, s:I}", "policy", o->name, "scope", sc,
            "metric", slo_metric_name((unsigned)o->metric), "threshold", o->threshold, "state",
            t->frozen     ? "frozen"
            : t->breached ? "breached"
                          : "ok",
            "level", (int)t->level, "actions", (int)o->n_actions, "breached", t->breached, "frozen",
            t->frozen, "violations", (json_int_t)t->violations);
        json_object_set_new(j, "value", t->have_value ? json_real(t->value) : json_null());
        json_array_append_new(arr, j);
    }
    json_t *w = json_array();
    for (unsigned f = 0; f < FEAT_COUNT; f++) {
        const struct watch *x = &s->watch[f];
        if (x->on)
            json_array_append_new(
                w, json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i}", "feature",
                             rollout_name((enum rollout_feature)f), "was", (int)x->was, "now",
                             (int)x->now, "new_requests", (int)x->path[1].requests, "new_failed",
                             (int)x->path[1].failed, "old_requests", (int)x->path[0].requests,
                             "old_failed", (int)x->path[0].failed));
    }
    const struct shm_tables *tb = &s->cp->shm->seg->tables;
    return json_pack("{s:o, s:o, s:b, s:i, s:i, s:i}", "policies", arr, "rollback_watch", w,
                     "observe_only", qos_observing(s), "interval_ms", (int)s->cfg->qos_interval_ms,
                     "qos_limit", (int)atomic_load_explicit(&tb->qos_limit, memory_order_relaxed),
                     "shed_pct",
                     (int)atomic_load_explicit(&tb->qos_shed_pct, memory_order_relaxed));
}

void *qos_events_json(const struct qos *q, unsigned max)
{
    const struct qos_state *s = q->s;
    json_t *arr = json_array();
    if (!s)
        return arr;
    unsigned from = s->ev_len > max ? s->ev_len - max : 0;
    for (unsigned i = from; i < s->ev_len; i++) {
        json_t *j = json_loads(s->events[(s->ev_head + i) % EVENTS_KEPT], 0, NULL);
        if (j)
            json_array_append_new(arr, j);
    }
    return arr;
}

void qos_metrics(const struct qos *q, struct sbuf *b)
{
    const struct qos_state *s = q->s;
    sbuf_puts(b, "# HELP sluice_qos_violations_total Evaluations that found a service level "
                 "breached, by the policy's severity.\n"
                 "# TYPE sluice_qos_violations_total counter\n");
    for (unsigned sev = 0; sev < SLO_SEVERITY_COUNT; sev++) {
        uint64_t v = 0;
        for (unsigned k = 0; s && k < s->ntargets; k++)
            if ((unsigned)s->cfg->slos[s->targets[k].pol].severity == sev)
                v += s->targets[k].violations;
        sbuf_printf(b, "sluice_qos_violations_total{severity=\"%s\"} %llu\n",
                    slo_severity_name(sev), (unsigned long long)v);
    }
    sbuf_puts(b, "# HELP sluice_remediations_total Remediation actions applied, by action.\n"
                 "# TYPE sluice_remediations_total counter\n");
    for (unsigned a = 0; a < ACT_COUNT; a++)
        sbuf_printf(b, "sluice_remediations_total{action=\"%s\"} %llu\n", slo_action_name(a),
                    (unsigned long long)(s ? s->remediations[a] : 0));
    sbuf_printf(b, "sluice_remediations_total{action=\"rollback\"} %llu\n",
                (unsigned long long)(s ? s->rollbacks : 0));
    sbuf_puts(b, "# HELP sluice_qos_observed_total Remediation decisions made in observe-only "
                 "mode (nothing changed), by action.\n# TYPE sluice_qos_observed_total counter\n");
    for (unsigned a = 0; a < ACT_COUNT; a++)
        sbuf_printf(b, "sluice_qos_observed_total{action=\"%s\"} %llu\n", slo_action_name(a),
                    (unsigned long long)(s ? s->observed[a] : 0));
    if (!s)
        return;
    sbuf_puts(b, "# HELP sluice_qos_value A policy's metric over its window, by target.\n"
                 "# TYPE sluice_qos_value gauge\n");
    for (unsigned i = 0; i < s->ntargets; i++) {
        const struct target *t = &s->targets[i];
        if (!t->have_value)
            continue;
        char sc[96];
        qos_scope_label(s, &s->scopes[t->scope], sc, sizeof sc);
        sbuf_printf(b, "sluice_qos_value{slo=\"%s\",scope=\"%s\"} %g\n", s->cfg->slos[t->pol].name,
                    sc, t->value);
    }
    sbuf_puts(b, "# HELP sluice_qos_level Remediation actions in force, by target.\n"
                 "# TYPE sluice_qos_level gauge\n");
    for (unsigned i = 0; i < s->ntargets; i++) {
        const struct target *t = &s->targets[i];
        char sc[96];
        qos_scope_label(s, &s->scopes[t->scope], sc, sizeof sc);
        sbuf_printf(b, "sluice_qos_level{slo=\"%s\",scope=\"%s\"} %u\n", s->cfg->slos[t->pol].name,
                    sc, t->level);
    }
}
