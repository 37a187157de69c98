/* admission — see admission.h. */
#include "dataplane/admission.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/admit_queue.h"
#include "dataplane/api_error.h"
#include "dataplane/auth.h"
#include "dataplane/client.h"
#include "dataplane/resume.h"
#include "dataplane/stream.h"
#include "dataplane/worker.h"
#include "shared/clock.h"
#include "shared/log.h"
#include "shared/shm.h"

#define TOKEN_BATCH   32 /* tokens per EV_TOKENS event */
#define CHARGE_BATCH  16 /* tokens taken from a bucket at once beyond a reservation */
#define PUMP_EVERY_MS 8  /* how often a non-empty queue looks for free node slots */

static struct shm_tenant *tenant_of(const struct worker *w, unsigned t)
{
    return &w->shm->seg->tables.tenants[t];
}

int adm_init(struct worker *w)
{
    const struct config *cfg = w->cfg;
    struct aq_params p;
    aq_params_default(&p);
    p.capacity = cfg->queue_max ? cfg->queue_max : 1;
    p.ttl_ms = cfg->queue_ttl_ms;
    /* CoDel: when the queue has not emptied for a whole interval at a
     * quarter of the TTL, it is standing (the backends are saturated, not
     * bursting), and waiting the whole TTL would only make more requests
     * miss their TTFT: entries older than half the TTL are shed then. */
    p.codel_target_ms = cfg->queue_ttl_ms / 4;
    p.codel_interval_ms = cfg->sample_interval_ms;
    int ret = aq_init(&w->aq, &p);
    if (ret < 0)
        return ret;
    w->tenant_map = calloc(cfg->n_tenants + 1, sizeof *w->tenant_map);
    if (!w->tenant_map) {
        aq_destroy(&w->aq);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < cfg->n_tenants; i++) {
        int t = shm_tenant_find(w->shm, cfg->tenants[i].name);
        /* The supervisor made every entry before forking; a full table
         * leaves the tenant unlimited (it said so in its log). */
        w->tenant_map[i] = t < 0 ? UINT16_MAX : (uint16_t)t;
    }
    int d = shm_tenant_find(w->shm, AUTH_DEFAULT_TENANT);
    w->default_tenant = d < 0 ? UINT16_MAX : (uint16_t)d;
    w->ev_ring = shm_ev_ring(w->shm, (unsigned)w->slot_idx);
    w->cmd_ring = shm_cmd_ring(w->shm, (unsigned)w->slot_idx);
    w->adm_timer.kind = TK_ADMIT;
    w->overdue_timer.kind = TK_OVERDUE;
    list_init(&w->awaiting_ft);
    return 0;
}

void adm_destroy(struct worker *w)
{
    aq_destroy(&w->aq);
    free(w->tenant_map);
    w->tenant_map = NULL;
}

unsigned adm_tenant_index(const struct worker *w, const char *tenant)
{
    const struct config *cfg = w->cfg;
    if (tenant && cfg->n_tenants && tenant >= cfg->tenants[0].name &&
        tenant <= cfg->tenants[cfg->n_tenants - 1].name) {
        size_t i = (size_t)(tenant - cfg->tenants[0].name) / sizeof cfg->tenants[0];
        return w->tenant_map[i];
    }
    return w->default_tenant;
}

void adm_event(struct worker *w, const struct ev_rec *ev)
{
    (void)shm_ring_push(w->ev_ring, ev, sizeof *ev);
}

static void stream_event(struct stream *st, uint8_t type, uint8_t reason, uint32_t count,
                         uint64_t value)
{
    struct worker *w = st->w;
    struct ev_rec ev = {
        .type = type,
        .reason = reason,
        .tenant = st->tenant,
        .status = st->status,
        .backend = st->bk_counted || st->pool ? st->bk : 0,
        .count = count,
        .worker = w->id,
        .value = value,
        .t_ms = w->now_ms,
        .features = st->features,
        .flags = st->end_flags,
    };
    memcpy(ev.stream, st->id, sizeof ev.stream);
    adm_event(w, &ev);
}

static void reject(struct stream *st, enum ev_reject why)
{
    struct worker *w = st->w;
    shm_add(&w->slot->c.rejected[why], 1);
    stream_event(st, EV_REJECT, (uint8_t)why, 0, 0);
}

/* Takes <want> tokens from the tenant's bucket if it holds them. */
static bool bucket_take(struct shm_tenant *t, int64_t want)
{
    int64_t avail = atomic_load_explicit(&t->tokens_avail, memory_order_relaxed);
    while (avail >= want) {
        if (atomic_compare_exchange_weak_explicit(&t->tokens_avail, &avail, avail - want,
                                                  memory_order_relaxed, memory_order_relaxed))
            return true;
    }
    return false;
}

/* Seconds until <want> tokens will be back at the budget's refill rate. */
static uint32_t budget_retry_s(const struct shm_tenant *t, int64_t want)
{
    uint64_t tpm = atomic_load_explicit(&t->tokens_per_minute, memory_order_relaxed);
    int64_t avail = atomic_load_explicit(&t->tokens_avail, memory_order_relaxed);
    int64_t missing = want - avail; /* a bucket in debt owes that too */
    if (!tpm || missing <= 0)
        return 1;
    uint64_t s = ((uint64_t)missing * 60 + tpm - 1) / tpm;
    return s < 1 ? 1 : s > 3600 ? 3600 : (uint32_t)s;
}

/* Tenant checks (2 and 3 of the header); 0 or -api_error. */
static int tenant_check(struct stream *st)
{
    struct worker *w = st->w;
    if (st->tenant == UINT16_MAX)
        return 0;
    struct shm_tenant *t = tenant_of(w, st->tenant);
    uint32_t lim = atomic_load_explicit(&t->conc_limit, memory_order_relaxed);
    uint32_t cap = atomic_load_explicit(&t->qos_cap, memory_order_relaxed); /* a QoS throttle */
    if (cap && (!lim || cap < lim))
        lim = cap;
    if (lim && shm_node_tenant_streams(w->shm, st->tenant) >= lim) {
        st->retry_after_s = 1;
        reject(st, REJ_TENANT_STREAMS);
        return -API_ERR_TENANT_STREAMS;
    }
    uint64_t tpm = atomic_load_explicit(&t->tokens_per_minute, memory_order_relaxed);
    if (tpm) {
        int64_t want = (uint64_t)st->want_tokens < tpm ? st->want_tokens : (int64_t)tpm;
        if (atomic_load_explicit(&t->tokens_avail, memory_order_relaxed) < want) {
            st->retry_after_s = budget_retry_s(t, want);
            reject(st, REJ_TENANT_TOKENS);
            return -API_ERR_TENANT_TOKENS;
        }
    }
    return 0;
}

/* Takes the slot, the tenant's stream and the reservation.  0 or -api_error. */
static int admit(struct stream *st)
{
    struct worker *w = st->w;
    if (st->tenant != UINT16_MAX) {
        struct shm_tenant *t = tenant_of(w, st->tenant);
        uint64_t tpm = atomic_load_explicit(&t->tokens_per_minute, memory_order_relaxed);
        if (tpm) {
            /* A request that could never fit is capped at the whole
             * budget: it may start, and is ended if it really uses more. */
            int64_t want = (uint64_t)st->want_tokens < tpm ? st->want_tokens : (int64_t)tpm;
            if (!bucket_take(t, want)) {
                st->retry_after_s = budget_retry_s(t, want);
                reject(st, REJ_TENANT_TOKENS);
                return -API_ERR_TENANT_TOKENS;
            }
            st->budgeted = true;
            st->reserved = want;
            shm_gauge_add(&w->slot->tenant_reserved[st->tenant], want);
        }
        atomic_store_explicit(
            &w->slot->tenant_streams[st->tenant],
            atomic_load_explicit(&w->slot->tenant_streams[st->tenant], memory_order_relaxed) + 1,
            memory_order_relaxed);
    }
    st->admitted = true;
    st->adm_ns = clock_mono_ns();
    /* Its place on the node: if this stream's first token turns out
     * overdue, the governor learns that this many was too many. */
    int64_t on_node = shm_node_admitted(w->shm) + 1;
    st->adm_rank = on_node > UINT32_MAX ? UINT32_MAX : (uint32_t)on_node;
    /* A response not streamed has no first token to wait for: its first
     * byte comes after the whole generation, which says nothing of queues. */
    if (st->client_sse) {
        list_add_tail(&w->awaiting_ft, &st->ft_node);
        if (!tw_linked(&w->overdue_timer))
            tw_set(&w->tw, &w->overdue_timer, st->adm_ns / 1000000 + w->cfg->target_ttft_ms);
    }
    shm_gauge_add(&w->slot->g.admitted, 1);
    shm_add(&w->slot->c.admitted, 1);
    stream_event(st, EV_ADMIT, 0, 0, st->enq_ms ? (w->now_ms - st->enq_ms) * 1000 : 0);
    return 0;
}

/* Retry-After for a request the queue could not admit: 1..3 s, spread so
 * that refused clients do not all come back in the same second. */
static uint32_t queue_retry_s(struct worker *w)
{
    uint32_t x = w->rng ? w->rng : (w->stream_salt | 1);
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    w->rng = x;
    return 1 + x % 3;
}

/* The governor's limit binds the streams in its rollout; a QoS
 * lower_limit binds every stream. */
static uint32_t node_limit(const struct worker *w, bool governed)
{
    const struct shm_tables *tb = &w->shm->seg->tables;
    uint32_t lim = governed ? atomic_load_explicit(&tb->admit_limit, memory_order_relaxed) : 0;
    uint32_t q = atomic_load_explicit(&tb->qos_limit, memory_order_relaxed);
    return q && (!lim || q < lim) ? q : lim;
}

static bool node_has_room(struct worker *w, bool governed)
{
    uint32_t lim = node_limit(w, governed);
    return !lim || shm_node_admitted(w->shm) < lim;
}

static void arm_timer(struct worker *w)
{
    if (!aq_len(&w->aq)) {
        tw_cancel(&w->tw, &w->adm_timer);
        return;
    }
    uint64_t when = aq_next_deadline_ms(&w->aq, w->now_ms);
    if (when > w->now_ms + PUMP_EVERY_MS)
        when = w->now_ms + PUMP_EVERY_MS;
    tw_set(&w->tw, &w->adm_timer, when);
}

static void queue_gauge(struct worker *w)
{
    int64_t n = aq_len(&w->aq);
    atomic_store_explicit(&w->slot->g.queue_len, n, memory_order_relaxed);
}

int adm_begin(struct stream *st, uint32_t max_tokens, uint32_t cost)
{
    struct conn *c = st->c;
    struct worker *w = c->w;
    const struct shm_tables *tb = &w->shm->seg->tables;
    st->tenant = (uint16_t)adm_tenant_index(w, c->tenant);
    for (unsigned f = 0; f < FEAT_COUNT; f++) {
        unsigned pct = atomic_load_explicit(&tb->rollout[f], memory_order_relaxed);
        if (rollout_in(pct, c->rollout_bucket[f])) {
            st->features |= (uint8_t)(1u << f);
            shm_add(&w->slot->c.rollout_on[f], 1);
        } else {
            shm_add(&w->slot->c.rollout_off[f], 1);
        }
    }
    if (st->tenant != UINT16_MAX) {
        const struct shm_tenant *t = tenant_of(w, st->tenant);
        uint32_t dflt = atomic_load_explicit(&t->default_max_tokens, memory_order_relaxed);
        st->want_tokens = max_tokens ? max_tokens : dflt;
    }
    uint32_t shed = atomic_load_explicit(&tb->qos_shed_pct, memory_order_relaxed);
    if (shed && rollout_bucket(FEAT_QOS_MONITORING, st->id, STREAM_ID_LEN) < shed) {
        /* a QoS policy sheds this share of new requests */
        st->retry_after_s = 1;
        reject(st, REJ_QOS_SHED);
        return -API_ERR_OVERLOADED;
    }
    int ret = tenant_check(st);
    if (ret < 0)
        return ret;
    st->governed = ((st->features >> FEAT_ADAPTIVE_GOVERNOR) & 1) ||
                   atomic_load_explicit(&tb->qos_limit, memory_order_relaxed);
    if (st->governed &&
        (aq_len(&w->aq) || !node_has_room(w, st->features & 1u << FEAT_ADAPTIVE_GOVERNOR))) {
        if (!w->cfg->queue_max || aq_push(&w->aq, &st->aq, cost, w->now_ms) < 0) {
            st->retry_after_s = queue_retry_s(w);
            reject(st, REJ_QUEUE_FULL);
            return -API_ERR_OVERLOADED;
        }
        st->enq_ms = w->now_ms;
        shm_add(&w->slot->c.queued, 1);
        queue_gauge(w);
        arm_timer(w);
        return ADM_QUEUED;
    }
    ret = admit(st);
    return ret < 0 ? ret : ADM_GO;
}

void adm_end(struct stream *st)
{
    struct worker *w = st->w;
    if (aq_queued(&st->aq)) {
        aq_remove(&w->aq, &st->aq);
        queue_gauge(w);
        arm_timer(w);
    }
    if (!st->admitted)
        return;
    st->admitted = false;
    if (list_linked(&st->ft_node))
        list_del(&st->ft_node);
    shm_gauge_add(&w->slot->g.admitted, -1);
    if (st->tenant != UINT16_MAX) {
        atomic_store_explicit(
            &w->slot->tenant_streams[st->tenant],
            atomic_load_explicit(&w->slot->tenant_streams[st->tenant], memory_order_relaxed) - 1,
            memory_order_relaxed);
        int64_t back = st->reserved + st->prepaid;
        if (back > 0) {
            atomic_fetch_add_explicit(&tenant_of(w, st->tenant)->tokens_avail, back,
                                      memory_order_relaxed);
            shm_gauge_add(&w->slot->tenant_reserved[st->tenant], -back);
        }
        st->reserved = st->prepaid = 0;
    }
    if (st->tokens % TOKEN_BATCH)
        stream_event(st, EV_TOKENS, 0, st->tokens % TOKEN_BATCH, 0);
    stream_event(st, EV_END, 0, st->tokens, (clock_mono_ns() - st->t0_ns) / 1000);
    /* A slot is free: someone waiting here may have it. */
    if (aq_len(&w->aq))
        w->adm_pump_pending = true;
}

bool adm_charge(struct stream *st)
{
    struct worker *w = st->w;
    if (st->budgeted) {
        if (st->reserved > 0) {
            st->reserved--;
        } else if (st->prepaid > 0) {
            st->prepaid--;
        } else {
            /* Beyond the reservation: take a few at a time from the
             * bucket, never more than it has, so it is never overspent. */
            struct shm_tenant *t = tenant_of(w, st->tenant);
            int64_t avail = atomic_load_explicit(&t->tokens_avail, memory_order_relaxed);
            int64_t take;
            do {
                if (avail <= 0) {
                    shm_add(&w->slot->c.rejected[REJ_TENANT_EXHAUSTED], 1);
                    stream_event(st, EV_REJECT, REJ_TENANT_EXHAUSTED, st->tokens, 0);
                    return false;
                }
                take = avail < CHARGE_BATCH ? avail : CHARGE_BATCH;
            } while (!atomic_compare_exchange_weak_explicit(&t->tokens_avail, &avail, avail - take,
                                                            memory_order_relaxed,
                                                            memory_order_relaxed));
            shm_gauge_add(&w->slot->tenant_reserved[st->tenant], take);
            st->prepaid = take - 1;
        }
        shm_gauge_add(&w->slot->tenant_reserved[st->tenant], -1);
        shm_add(&w->slot->c.tokens_charged, 1);
    }
    /* The event goes out now: st->tokens counts it once it has. */
    if ((st->tokens + 1) % TOKEN_BATCH == 0)
        stream_event(st, EV_TOKENS, 0, TOKEN_BATCH, 0);
    return true;
}

void adm_charge_all(struct stream *st, uint32_t tokens)
{
    struct worker *w = st->w;
    if (st->budgeted) {
        int64_t n = tokens, covered = 0;
        int64_t r = n < st->reserved ? n : st->reserved;
        st->reserved -= r;
        covered += r;
        r = n - covered < st->prepaid ? n - covered : st->prepaid;
        st->prepaid -= r;
        covered += r;
        if (n > covered)
            atomic_fetch_sub_explicit(&tenant_of(w, st->tenant)->tokens_avail, n - covered,
                                      memory_order_relaxed);
        shm_gauge_add(&w->slot->tenant_reserved[st->tenant], -covered);
        shm_add(&w->slot->c.tokens_charged, (uint64_t)n);
    }
    st->tokens += tokens;
    shm_add(&w->slot->c.tokens, tokens);
    if (tokens >= TOKEN_BATCH)
        stream_event(st, EV_TOKENS, 0, tokens - tokens % TOKEN_BATCH, 0);
}

void adm_first_token(struct stream *st, uint64_t ttft_us)
{
    if (!st->admitted)
        return;
    if (list_linked(&st->ft_node))
        list_del(&st->ft_node);
    /* The governor steers on the backend's TTFT (value); service levels
     * are the client's (count). */
    stream_event(st, EV_FIRST_TOKEN, st->overdue ? 1 : 0,
                 ttft_us > UINT32_MAX ? UINT32_MAX : (uint32_t)ttft_us,
                 (clock_mono_ns() - st->adm_ns) / 1000);
}

void adm_on_overdue_timer(struct worker *w)
{
    uint64_t target_ns = (uint64_t)w->cfg->target_ttft_ms * 1000000;
    uint64_t now = clock_mono_ns();
    while (!list_empty(&w->awaiting_ft)) {
        struct stream *st = container_of(w->awaiting_ft.next, struct stream, ft_node);
        if (now - st->adm_ns < target_ns) {
            tw_set(&w->tw, &w->overdue_timer, (st->adm_ns + target_ns) / 1000000 + 1);
            return;
        }
        list_del(&st->ft_node);
        st->overdue = true;
        stream_event(st, EV_TTFT_OVERDUE, 0, st->adm_rank, (now - st->adm_ns) / 1000);
    }
}

void adm_backend_error(struct stream *st, int api_err)
{
    stream_event(st, EV_BACKEND_ERROR, (uint8_t)api_err, st->tokens, 0);
}

/* How long a request may wait: what the TTFT budget leaves after the
 * backend's own recent TTFT (the control plane's estimate), at most
 * queue_ttl_ms; CoDel's target follows at a quarter of it. */
static void queue_budget(struct worker *w)
{
    uint32_t ttl = w->cfg->queue_ttl_ms;
    uint32_t b = atomic_load_explicit(&w->shm->seg->tables.queue_budget_ms, memory_order_relaxed);
    if (b && b < ttl)
        ttl = b;
    aq_set_limits(&w->aq, ttl, ttl / 4);
}

void adm_pump(struct worker *w)
{
    w->adm_pump_pending = false;
    if (!aq_len(&w->aq))
        return;
    queue_budget(w);
    enum aq_drop_reason why;
    struct aq_entry *e;
    while ((e = aq_expire(&w->aq, w->now_ms, &why)) != NULL) {
        struct stream *st = container_of(e, struct stream, aq);
        st->retry_after_s = queue_retry_s(w);
        reject(st, why == AQ_DROP_TTL ? REJ_QUEUE_TIMEOUT : REJ_QUEUE_SHED);
        queue_gauge(w);
        stream_admission_failed(st, API_ERR_QUEUE_TIMEOUT);
    }
    while (aq_len(&w->aq) && node_has_room(w, true)) {
        e = aq_pop(&w->aq, w->now_ms);
        struct stream *st = container_of(e, struct stream, aq);
        queue_gauge(w);
        int ret = tenant_check(st);
        if (ret == 0)
            ret = admit(st);
        if (ret < 0)
            stream_admission_failed(st, -ret);
        else
            stream_admitted(st);
    }
    queue_gauge(w);
    arm_timer(w);
}

void adm_on_timer(struct worker *w)
{
    adm_pump(w);
}

static struct stream *find_stream(struct worker *w, const char *id)
{
    struct list_node *n;
    for (n = w->conns.next; n != &w->conns; n = n->next) {
        struct conn *c = container_of(n, struct conn, node);
        if (c->st && strncmp(c->st->id, id, EV_STREAM_ID_LEN) == 0)
            return c->st;
    }
    return resume_find(w, id); /* a stream retained for a client that left */
}

void adm_poll_commands(struct worker *w)
{
    struct cmd_rec cmds[8];
    unsigned n;
    _Static_assert(sizeof cmds[0] <= SHM_RING_REC_SIZE, "");
    unsigned char raw[8][SHM_RING_REC_SIZE];
    while ((n = shm_ring_pop(w->cmd_ring, raw, 8)) > 0) {
        for (unsigned i = 0; i < n; i++) {
            memcpy(&cmds[i], raw[i], sizeof cmds[i]);
            const struct cmd_rec *cmd = &cmds[i];
            if (cmd->type == CMD_PING) {
                struct ev_rec ev = {
                    .type = EV_PONG, .worker = w->id, .value = cmd->value, .t_ms = w->now_ms};
                adm_event(w, &ev);
            } else if (cmd->type == CMD_CANCEL_STREAM) {
                struct stream *st = find_stream(w, cmd->stream);
                if (st) {
                    log_info("stream %.16s: cancelled by the operator", st->id);
                    shm_add(&w->slot->c.cancels_by_cmd, 1);
                    stream_cancel(st, NULL);
                }
            }
        }
    }
}
