/* view — see view.h. */
#include "controlplane/view.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define POP_BATCH 64

int view_init(struct view *v, struct shm *shm, uint32_t target_ms)
{
    memset(v, 0, sizeof *v);
    v->shm = shm;
    v->overdue_us = 2ull * target_ms * 1000;
    v->ttft_us = calloc(VIEW_TTFT_MAX, sizeof *v->ttft_us);
    v->sec_ttft_us = calloc(VIEW_TTFT_MAX, sizeof *v->sec_ttft_us);
    if (!v->ttft_us || !v->sec_ttft_us) {
        view_free(v);
        return -ENOMEM;
    }
    return 0;
}

void view_free(struct view *v)
{
    free(v->ttft_us);
    free(v->sec_ttft_us);
    v->ttft_us = v->sec_ttft_us = NULL;
}

static void on_event(struct view *v, unsigned slot, const struct ev_rec *ev)
{
    if (ev->type == EV_NONE || ev->type >= EV_TYPE_COUNT)
        return; /* not ours to interpret */
    v->events[ev->type]++;
    if (v->sink)
        v->sink(v->sink_ctx, ev);
    switch (ev->type) {
    case EV_FIRST_TOKEN: {
        uint32_t us = ev->value > UINT32_MAX ? UINT32_MAX : (uint32_t)ev->value;
        /* One already reported overdue is in a governor interval already. */
        if (ev->reason == 0 && v->n_ttft < VIEW_TTFT_MAX)
            v->ttft_us[v->n_ttft++] = us;
        if (v->n_sec_ttft < VIEW_TTFT_MAX)
            v->sec_ttft_us[v->n_sec_ttft++] = us;
        v->cur.first_tokens++;
        break;
    }
    case EV_TTFT_OVERDUE: {
        uint64_t us = ev->value > v->overdue_us ? ev->value : v->overdue_us;
        if (ev->count && (!v->overdue_rank || ev->count < v->overdue_rank))
            v->overdue_rank = ev->count;
        if (v->n_ttft < VIEW_TTFT_MAX)
            v->ttft_us[v->n_ttft++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
        break;
    }
    case EV_END:
        v->cur.ended++;
        break;
    case EV_REJECT:
        v->cur.rejected++;
        break;
    case EV_PONG:
        v->pongs++;
        if (slot < SHM_MAX_SLOTS)
            v->last_pong_ms[slot] = ev->t_ms;
        break;
    default:
        break;
    }
}

void view_poll(struct view *v, uint64_t now_ms)
{
    (void)now_ms;
    unsigned char buf[POP_BATCH][SHM_RING_REC_SIZE];
    SHM_FOR_EACH_WORKER (v->shm, idx) {
        if (!shm_cp_enter(v->shm, idx))
            continue;
        struct shm_ring *r = shm_ev_ring(v->shm, idx);
        unsigned n;
        /* Bounded: a worker that floods its ring cannot keep us here. */
        for (unsigned round = 0; round < 64 && (n = shm_ring_pop(r, buf, POP_BATCH)) > 0; round++) {
            for (unsigned i = 0; i < n; i++) {
                struct ev_rec ev;
                memcpy(&ev, buf[i], sizeof ev);
                on_event(v, idx, &ev);
            }
        }
        shm_cp_leave(v->shm, idx);
    }
    int64_t adm = shm_node_admitted(v->shm);
    if (adm > 0 && (uint64_t)adm > v->inflight_peak)
        v->inflight_peak = (unsigned)adm;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted <s>. */
static uint32_t pct(const uint32_t *s, unsigned n, unsigned p)
{
    if (!n)
        return 0;
    unsigned rank = (p * n + 99) / 100;
    return s[rank ? rank - 1 : 0];
}

void view_take_interval(struct view *v, unsigned *n, double *p50_ms, double *p90_ms, double *p95_ms,
                        unsigned *inflight_peak, unsigned *overdue_rank)
{
    *overdue_rank = v->overdue_rank;
    v->overdue_rank = 0;
    *n = v->n_ttft;
    qsort(v->ttft_us, v->n_ttft, sizeof *v->ttft_us, cmp_u32);
    *p50_ms = pct(v->ttft_us, v->n_ttft, 50) / 1000.0;
    *p90_ms = pct(v->ttft_us, v->n_ttft, 90) / 1000.0;
    *p95_ms = pct(v->ttft_us, v->n_ttft, 95) / 1000.0;
    *inflight_peak = v->inflight_peak;
    v->n_ttft = 0;
    int64_t adm = shm_node_admitted(v->shm);
    v->inflight_peak = adm > 0 ? (unsigned)adm : 0;
}

uint64_t view_tokens_total(const struct view *v)
{
    const struct shm_segment *seg = v->shm->seg;
    uint64_t t = 0;
    for (;;) {
        uint32_t tok = shm_read_begin(v->shm);
        t = atomic_load_explicit(&seg->retired.c.tokens, memory_order_relaxed);
        for (unsigned i = 0; i < seg->nslots; i++) {
            if (atomic_load_explicit(&seg->hdr[i].state, memory_order_acquire) != SHM_SLOT_LIVE)
                continue;
            t += atomic_load_explicit(&shm_slot(v->shm, i)->c.tokens, memory_order_relaxed);
        }
        if (!shm_read_retry(v->shm, tok))
            return t;
    }
}

void view_tick_second(struct view *v, uint64_t now_ms, uint32_t limit)
{
    uint64_t tokens = view_tokens_total(v);
    struct view_second *s = &v->cur;
    s->t_ms = now_ms;
    s->tokens =
        v->have_base && tokens >= v->tokens_at_sec_start ? tokens - v->tokens_at_sec_start : 0;
    qsort(v->sec_ttft_us, v->n_sec_ttft, sizeof *v->sec_ttft_us, cmp_u32);
    s->ttft_p50_ms = pct(v->sec_ttft_us, v->n_sec_ttft, 50) / 1000;
    s->ttft_p95_ms = pct(v->sec_ttft_us, v->n_sec_ttft, 95) / 1000;
    int64_t adm = shm_node_admitted(v->shm);
    int64_t q = shm_node_queued(v->shm);
    s->admitted = adm > 0 ? (uint32_t)adm : 0;
    s->queued = q > 0 ? (uint32_t)q : 0;
    s->limit = limit;
    v->hist[v->head] = *s;
    v->head = (v->head + 1) % VIEW_HISTORY;
    if (v->nhist < VIEW_HISTORY)
        v->nhist++;
    memset(&v->cur, 0, sizeof v->cur);
    v->n_sec_ttft = 0;
    v->tokens_at_sec_start = tokens;
    v->have_base = true;
}

const struct view_second *view_second_at(const struct view *v, unsigned i)
{
    if (i >= v->nhist)
        return NULL;
    return &v->hist[(v->head + VIEW_HISTORY - 1 - i) % VIEW_HISTORY];
}

unsigned view_broadcast(struct view *v, const struct cmd_rec *cmd)
{
    unsigned n = 0;
    SHM_FOR_EACH_WORKER (v->shm, idx) {
        if (!shm_cp_enter(v->shm, idx))
            continue;
        if (shm_ring_push(shm_cmd_ring(v->shm, idx), cmd, sizeof *cmd) == 0)
            n++;
        shm_cp_leave(v->shm, idx);
    }
    return n;
}

void view_ping(struct view *v, uint64_t now_ms)
{
    struct cmd_rec cmd = {.type = CMD_PING, .value = now_ms};
    v->pings_sent += view_broadcast(v, &cmd);
}
