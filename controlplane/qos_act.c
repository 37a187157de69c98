/* qos_act — see qos_state.h: what QoS decisions do, and what they leave
 * behind (audit lines, the webhook, qos.json). */
#include "controlplane/qos_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controlplane/rollout_state.h"
#include "controlplane/webhook.h"
#include "shared/clock.h"
#include "shared/log.h"

/* ---- audit and alerts ------------------------------------------------------- */

static void remember(struct qos_state *s, const char *line)
{
    char *copy = strdup(line);
    if (!copy)
        return;
    if (s->ev_len == EVENTS_KEPT) {
        free(s->events[s->ev_head]);
        s->ev_head = (s->ev_head + 1) % EVENTS_KEPT;
        s->ev_len--;
    }
    s->events[(s->ev_head + s->ev_len) % EVENTS_KEPT] = copy;
    s->ev_len++;
}

static void iso_now(char *buf, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, n - k, ".%03uZ", (unsigned)(ts.tv_nsec / 1000000) % 1000);
}

/* One decision: audit line, memory, log, and (alerts) the webhook. */
void qos_decide(struct qos_state *s, json_t *o, bool alert)
{
    char t[40];
    iso_now(t, sizeof t);
    json_object_set_new(o, "time", json_string(t));
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!line)
        return;
    if (rstate_audit(s->cfg->state_dir, line) < 0)
        log_warn("cannot append to %s/audit.log", s->cfg->state_dir);
    remember(s, line);
    log_info("qos: %s", line);
    if (alert)
        webhook_post(s->wh, line);
    free(line);
}

bool qos_observing(const struct qos_state *s)
{
    const struct shm_tables *tb = &s->cp->shm->seg->tables;
    return s->cfg->qos_observe_only ||
           atomic_load_explicit(&tb->rollout[FEAT_QOS_MONITORING], memory_order_relaxed) < 100;
}

/* ---- actions -------------------------------------------------------------------- */

static unsigned busiest_tenant(struct qos_state *s, const struct target *t)
{
    /* The tenant of a tenant target; for the node, the one with the most
     * requests in the policy's window (the one flooding). */
    const struct scope *sc = &s->scopes[t->scope];
    if (sc->kind == SC_TENANT)
        return sc->idx;
    const struct config_slo *o = &s->cfg->slos[t->pol];
    unsigned k = (o->window_ms + s->cfg->qos_interval_ms - 1) / s->cfg->qos_interval_ms;
    unsigned best = UINT32_MAX;
    uint64_t most = 0;
    for (unsigned i = 0; i < s->nscopes; i++) {
        const struct scope *c = &s->scopes[i];
        if (c->kind != SC_TENANT)
            continue;
        uint64_t n = 0;
        for (unsigned j = 0; j < k && j < s->nb && s->evaluated > j; j++) {
            const struct bucket *b = &c->b[(s->evaluated - 1 - j) % s->nb];
            if (b->epoch == s->evaluated - 1 - j)
                n += b->ended + b->rejected;
        }
        if (n > most) {
            most = n;
            best = c->idx;
        }
    }
    return best;
}

void qos_set_rollout(struct qos_state *s, unsigned f, unsigned pct, const char *why)
{
    char who[96];
    snprintf(who, sizeof who, "qos %s", why);
    cp_rollout_set(s->cp, f, pct, who);
}

/* Applies (or, observing, only describes) action <a> for <t>; fills the
 * undo record and the before/after for the audit line. */
void qos_apply(struct qos_state *s, struct target *t, const struct slo_action *a, struct undo *u,
               json_t *o, bool dry)
{
    struct shm_tables *tb = &s->cp->shm->seg->tables;
    const struct config_slo *p = &s->cfg->slos[t->pol];
    memset(u, 0, sizeof *u);
    u->kind = a->kind;
    switch (a->kind) {
    case ACT_LOWER_LIMIT: {
        uint32_t before = atomic_load_explicit(&tb->qos_limit, memory_order_relaxed);
        int64_t adm = shm_node_admitted(s->cp->shm);
        uint64_t base = before ? before : (uint64_t)(adm > 0 ? adm : 1);
        uint32_t after = (uint32_t)(base * (100 - a->pct) / 100);
        if (after < s->cfg->min_concurrent)
            after = s->cfg->min_concurrent;
        u->before[0] = before;
        json_object_set_new(o, "before", json_integer(before));
        json_object_set_new(o, "after", json_integer(after));
        if (!dry)
            atomic_store_explicit(&tb->qos_limit, after, memory_order_relaxed);
        break;
    }
    case ACT_THROTTLE_TENANT: {
        unsigned ti = busiest_tenant(s, t);
        if (ti == UINT32_MAX) {
            json_object_set_new(o, "note", json_string("no tenant to throttle"));
            u->tenant = UINT16_MAX;
            break;
        }
        struct shm_tenant *tn = &tb->tenants[ti];
        uint32_t before = atomic_load_explicit(&tn->qos_cap, memory_order_relaxed);
        int64_t now = shm_node_tenant_streams(s->cp->shm, ti);
        uint64_t base = before ? before : (uint64_t)(now > 1 ? now : 2);
        uint32_t after = (uint32_t)(base / 2 ? base / 2 : 1);
        u->tenant = (uint16_t)ti;
        u->before[0] = before;
        json_object_set_new(o, "tenant", json_string(tn->name));
        json_object_set_new(o, "before", json_integer(before));
        json_object_set_new(o, "after", json_integer(after));
        if (!dry)
            atomic_store_explicit(&tn->qos_cap, after, memory_order_relaxed);
        break;
    }
    case ACT_DISABLE_FEATURE:
    case ACT_PROTOCOL_FALLBACK: {
        unsigned f = a->kind == ACT_PROTOCOL_FALLBACK ? FEAT_HTTP2_TRANSPORT : a->feature;
        u->before[0] = atomic_load_explicit(&tb->rollout[f], memory_order_relaxed);
        u->tenant = (uint16_t)f;
        json_object_set_new(o, "feature", json_string(rollout_name((enum rollout_feature)f)));
        json_object_set_new(o, "before", json_integer(u->before[0]));
        json_object_set_new(o, "after", json_integer(0));
        if (!dry)
            qos_set_rollout(s, f, 0, p->name);
        break;
    }
    case ACT_SHED_LOAD: {
        uint32_t before = atomic_load_explicit(&tb->qos_shed_pct, memory_order_relaxed);
        uint32_t after = a->pct > before ? a->pct : before;
        u->before[0] = before;
        json_object_set_new(o, "before", json_integer(before));
        json_object_set_new(o, "after", json_integer(after));
        if (!dry)
            atomic_store_explicit(&tb->qos_shed_pct, after, memory_order_relaxed);
        break;
    }
    case ACT_SAFE_MODE:
        for (unsigned f = 0; f < FEAT_COUNT; f++) {
            u->before[f] = atomic_load_explicit(&tb->rollout[f], memory_order_relaxed);
            if (!dry && u->before[f])
                qos_set_rollout(s, f, 0, p->name);
        }
        json_object_set_new(o, "after", json_string("every feature at 0 %"));
        break;
    default: /* alert: the decision line is the alert */
        break;
    }
}

void qos_undo(struct qos_state *s, struct target *t, const struct undo *u, json_t *o, bool dry)
{
    struct shm_tables *tb = &s->cp->shm->seg->tables;
    const struct config_slo *p = &s->cfg->slos[t->pol];
    switch (u->kind) {
    case ACT_LOWER_LIMIT:
        json_object_set_new(o, "after", json_integer(u->before[0]));
        if (!dry)
            atomic_store_explicit(&tb->qos_limit, u->before[0], memory_order_relaxed);
        break;
    case ACT_THROTTLE_TENANT:
        if (u->tenant >= SHM_MAX_TENANTS)
            break;
        json_object_set_new(o, "tenant", json_string(tb->tenants[u->tenant].name));
        json_object_set_new(o, "after", json_integer(u->before[0]));
        if (!dry)
            atomic_store_explicit(&tb->tenants[u->tenant].qos_cap, u->before[0],
                                  memory_order_relaxed);
        break;
    case ACT_DISABLE_FEATURE:
    case ACT_PROTOCOL_FALLBACK:
        json_object_set_new(o, "feature",
                            json_string(rollout_name((enum rollout_feature)u->tenant)));
        json_object_set_new(o, "after", json_integer(u->before[0]));
        if (!dry)
            qos_set_rollout(s, u->tenant, u->before[0], p->name);
        break;
    case ACT_SHED_LOAD:
        json_object_set_new(o, "after", json_integer(u->before[0]));
        if (!dry)
            atomic_store_explicit(&tb->qos_shed_pct, u->before[0], memory_order_relaxed);
        break;
    case ACT_SAFE_MODE:
        for (unsigned f = 0; f < FEAT_COUNT; f++)
            if (!dry && u->before[f])
                qos_set_rollout(s, f, u->before[f], p->name);
        json_object_set_new(o, "after", json_string("features as they were"));
        break;
    default:
        break;
    }
}

/* ---- persistence ------------------------------------------------------------- */

static int target_key(const struct qos_state *s, const struct target *t, char *buf, size_t n)
{
    char sc[96];
    qos_scope_label(s, &s->scopes[t->scope], sc, sizeof sc);
    return snprintf(buf, n, "%s@%s", s->cfg->slos[t->pol].name, sc);
}

void qos_save(struct qos_state *s)
{
    json_t *arr = json_array();
    for (unsigned i = 0; i < s->ntargets; i++) {
        const struct target *t = &s->targets[i];
        if (!t->level && !t->frozen)
            continue;
        char key[192];
        target_key(s, t, key, sizeof key);
        json_t *u = json_array();
        for (unsigned k = 0; k < t->level; k++) {
            json_t *b = json_array();
            for (unsigned f = 0; f < FEAT_COUNT; f++)
                json_array_append_new(b, json_integer(t->undo[k].before[f]));
            json_array_append_new(u, json_pack("{s:i, s:i, s:o}", "kind", t->undo[k].kind, "tenant",
                                               t->undo[k].tenant, "before", b));
        }
        json_array_append_new(arr, json_pack("{s:s, s:i, s:b, s:o}", "target", key, "level",
                                             (int)t->level, "frozen", t->frozen, "undo", u));
    }
    char path[PATH_MAX + 16], tmp[PATH_MAX + 24];
    snprintf(path, sizeof path, "%s/qos.json", s->cfg->state_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    json_t *root = json_pack("{s:i, s:o}", "version", 1, "targets", arr);
    if (json_dump_file(root, tmp, JSON_COMPACT) < 0 || rename(tmp, path) < 0)
        log_warn("qos: cannot save %s", path);
    json_decref(root);
}

/* A restarted control plane takes up the targets where they were. */
void qos_load(struct qos_state *s)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/qos.json", s->cfg->state_dir);
    json_t *root = json_load_file(path, 0, NULL);
    json_t *arr = json_object_get(root, "targets");
    size_t i;
    json_t *e;
    json_array_foreach (arr, i, e) {
        const char *key = json_string_value(json_object_get(e, "target"));
        for (unsigned k = 0; key && k < s->ntargets; k++) {
            struct target *t = &s->targets[k];
            char mine[192];
            target_key(s, t, mine, sizeof mine);
            if (strcmp(mine, key) != 0)
                continue;
            json_t *u = json_object_get(e, "undo");
            unsigned n = (unsigned)json_array_size(u);
            if (n > s->cfg->slos[t->pol].n_actions)
                break;
            for (unsigned j = 0; j < n; j++) {
                json_t *r = json_array_get(u, j);
                t->undo[j].kind = (uint8_t)json_integer_value(json_object_get(r, "kind"));
                t->undo[j].tenant = (uint16_t)json_integer_value(json_object_get(r, "tenant"));
                for (unsigned f = 0; f < FEAT_COUNT; f++)
                    t->undo[j].before[f] = (uint32_t)json_integer_value(
                        json_array_get(json_object_get(r, "before"), f));
            }
            t->level = n;
            t->frozen = json_is_true(json_object_get(e, "frozen"));
            t->frozen_until_ms = clock_mono_ms() + s->cfg->qos_loop_window_ms;
            log_info("qos: %s resumes at step %u%s", key, n, t->frozen ? " (frozen)" : "");
        }
    }
    json_decref(root);
}
