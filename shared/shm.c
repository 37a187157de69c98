/* shm — see shm.h. */
#include "shared/shm.h"
#include "shared/clock.h"

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const int code_status[SHM_N_CODES] = {
#define SHM_CODE_VALUE(c) c,
    SHM_CODES(SHM_CODE_VALUE)
#undef SHM_CODE_VALUE
        0,
};

enum shm_code shm_code_index(int status)
{
    for (unsigned i = 0; i < SHM_CODE_OTHER; i++)
        if (code_status[i] == status)
            return (enum shm_code)i;
    return SHM_CODE_OTHER;
}

int shm_code_status(enum shm_code c)
{
    return (unsigned)c < SHM_N_CODES ? code_status[c] : 0;
}

static size_t slots_offset(unsigned nslots)
{
    size_t off = sizeof(struct shm_segment) + (size_t)nslots * sizeof(struct shm_slot_hdr);
    return (off + 63) & ~(size_t)63;
}

static size_t ring_pair_size(void)
{
    return shm_ring_bytes(SHM_EV_RING_CAP) + shm_ring_bytes(SHM_CMD_RING_CAP);
}

int shm_create(struct shm *s, unsigned nslots)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    if (nslots > SHM_MAX_SLOTS)
        return -EINVAL;
    /* Rings come last, page-aligned: a slot's rings are touched (and so
     * take memory) only once a process has claimed that slot. */
    size_t rings_off = slots_offset(nslots) + (size_t)nslots * sizeof(struct shm_slot);
    rings_off = (rings_off + 4095) & ~(size_t)4095;
    size_t size = rings_off + (size_t)nslots * ring_pair_size();
    size = (size + 4095) & ~(size_t)4095;
    int fd = memfd_create("sluice-shm", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)size) < 0)
        goto fail;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        goto fail;
    s->seg = p;
    s->size = size;
    s->fd = fd;
    s->seg->magic = SHM_MAGIC;
    s->seg->version = SHM_VERSION;
    s->seg->nslots = nslots;
    s->seg->size = size;
    s->seg->rings_off = rings_off;
    s->seg->ring_pair_size = ring_pair_size();
    return 0;
fail:;
    int err = -errno;
    close(fd);
    return err;
}

void shm_destroy(struct shm *s)
{
    if (s->seg)
        munmap(s->seg, s->size);
    if (s->fd >= 0)
        close(s->fd);
    s->seg = NULL;
    s->fd = -1;
}

struct shm_slot *shm_slot(const struct shm *s, unsigned idx)
{
    char *base = (char *)s->seg + slots_offset(s->seg->nslots);
    return (struct shm_slot *)(base + (size_t)idx * sizeof(struct shm_slot));
}

struct shm_ring *shm_ev_ring(const struct shm *s, unsigned idx)
{
    char *base = (char *)s->seg + s->seg->rings_off + (size_t)idx * s->seg->ring_pair_size;
    return (struct shm_ring *)base;
}

struct shm_ring *shm_cmd_ring(const struct shm *s, unsigned idx)
{
    return (struct shm_ring *)((char *)shm_ev_ring(s, idx) + shm_ring_bytes(SHM_EV_RING_CAP));
}

static void live_bit(struct shm *s, unsigned idx, bool on)
{
    _Atomic uint64_t *w = &s->seg->tables.live_workers[idx / 64];
    uint64_t bit = 1ULL << (idx % 64);
    if (on)
        atomic_fetch_or_explicit(w, bit, memory_order_release);
    else
        atomic_fetch_and_explicit(w, ~bit, memory_order_release);
}

int shm_slot_claim(struct shm *s, unsigned worker, enum shm_role role, uint32_t generation)
{
    for (unsigned i = 0; i < s->seg->nslots; i++) {
        struct shm_slot_hdr *h = &s->seg->hdr[i];
        if (atomic_load_explicit(&h->state, memory_order_acquire) != SHM_SLOT_FREE)
            continue;
        /* Dekker with shm_cp_enter: announce the claim, then wait until the
         * control plane is out of this slot's rings before resetting them.
         * It holds them for microseconds; the bound is for a control plane
         * that died inside (shm_cp_reset clears it too). */
        atomic_fetch_add_explicit(&h->claims, 1, memory_order_seq_cst);
        atomic_thread_fence(memory_order_seq_cst);
        for (unsigned spin = 0;
             atomic_load_explicit(&h->cp_busy, memory_order_seq_cst) && spin < 100000; spin++)
            sched_yield();
        memset(shm_slot(s, i), 0, sizeof(struct shm_slot));
        atomic_store_explicit(&h->pid, 0, memory_order_relaxed);
        h->worker = (uint16_t)worker;
        h->role = (uint16_t)role;
        h->generation = generation;
        atomic_store_explicit(&h->heartbeat_ms, 0, memory_order_relaxed);
        atomic_store_explicit(&h->draining, 0, memory_order_relaxed);
        /* The control plane reads a worker's event ring only while its
         * slot is live, so the rings are fresh before the slot goes live. */
        shm_ring_init(shm_ev_ring(s, i), SHM_EV_RING_CAP);
        shm_ring_init(shm_cmd_ring(s, i), SHM_CMD_RING_CAP);
        atomic_store_explicit(&h->state, SHM_SLOT_LIVE, memory_order_release);
        if (role == SHM_ROLE_WORKER)
            live_bit(s, i, true);
        return (int)i;
    }
    return -ENOSPC;
}

/* Finds or creates the label entry in <t> (used by both workers and the fold). */
static struct shm_ttft_label *label_find(struct shm_ttft_label *t, const char *tenant,
                                         const char *backend, const char *model)
{
    for (unsigned i = 0; i < SHM_TTFT_LABELS; i++) {
        struct shm_ttft_label *l = &t[i];
        if (!atomic_load_explicit(&l->used, memory_order_acquire)) {
            /* The last entry is kept for everything that did not fit: it
             * is labelled "other" throughout, so no tenant's samples are
             * exported under another's name. */
            if (i == SHM_TTFT_LABELS - 1)
                tenant = backend = model = "other";
            snprintf(l->tenant, sizeof l->tenant, "%s", tenant);
            snprintf(l->backend, sizeof l->backend, "%s", backend);
            snprintf(l->model, sizeof l->model, "%s", model);
            atomic_store_explicit(&l->used, 1, memory_order_release);
            return l;
        }
        if (i == SHM_TTFT_LABELS - 1 ||
            (strcmp(l->tenant, tenant) == 0 && strcmp(l->backend, backend) == 0 &&
             strcmp(l->model, model) == 0))
            return l;
    }
    return &t[SHM_TTFT_LABELS - 1];
}

struct hist *shm_ttft_hist(struct shm_slot *slot, const char *tenant, const char *backend,
                           const char *model)
{
    return &label_find(slot->ttft, tenant, backend, model)->h;
}

static void fold_counter(_Atomic uint64_t *dst, _Atomic uint64_t *src)
{
    shm_add(dst, atomic_load_explicit(src, memory_order_relaxed));
}

void shm_slot_release(struct shm *s, unsigned idx)
{
    struct shm_segment *seg = s->seg;
    struct shm_slot *slot = shm_slot(s, idx);
    struct shm_counters *r = &seg->retired.c;
    struct shm_counters *c = &slot->c;

    /* Out of the node sums first: from here on no admission counts this
     * worker's streams, which died with it. */
    if (seg->hdr[idx].role == SHM_ROLE_WORKER)
        live_bit(s, idx, false);
    /* Tokens it held reserved for streams that no longer exist go back. */
    unsigned nt = atomic_load_explicit(&seg->tables.ntenants, memory_order_acquire);
    for (unsigned t = 0; t < nt && t < SHM_MAX_TENANTS; t++) {
        int64_t held = atomic_load_explicit(&slot->tenant_reserved[t], memory_order_relaxed);
        if (held > 0)
            atomic_fetch_add_explicit(&seg->tables.tenants[t].tokens_avail, held,
                                      memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&seg->retired_ring_dropped, shm_ring_dropped(shm_ev_ring(s, idx)),
                              memory_order_relaxed);

    atomic_fetch_add_explicit(&seg->fold_seq, 1, memory_order_acq_rel);
    atomic_thread_fence(memory_order_release);
    for (unsigned i = 0; i < SHM_N_CODES; i++)
        fold_counter(&r->requests[i], &c->requests[i]);
    fold_counter(&r->tokens, &c->tokens);
    fold_counter(&r->upstream_cancellations, &c->upstream_cancellations);
    fold_counter(&r->slow_consumers, &c->slow_consumers);
    fold_counter(&r->accepted, &c->accepted);
    fold_counter(&r->upstream_connects, &c->upstream_connects);
    fold_counter(&r->upstream_reused, &c->upstream_reused);
    fold_counter(&r->upstream_errors, &c->upstream_errors);
    fold_counter(&r->upstream_retries, &c->upstream_retries);
    fold_counter(&r->sends, &c->sends);
    fold_counter(&r->sends_zc, &c->sends_zc);
    fold_counter(&r->recv_enobufs, &c->recv_enobufs);
    fold_counter(&r->slab_waits, &c->slab_waits);
    fold_counter(&r->bytes_out, &c->bytes_out);
    for (unsigned i = 0; i < REJ_COUNT; i++)
        fold_counter(&r->rejected[i], &c->rejected[i]);
    fold_counter(&r->admitted, &c->admitted);
    fold_counter(&r->queued, &c->queued);
    for (unsigned i = 0; i < FEAT_COUNT; i++) {
        fold_counter(&r->rollout_on[i], &c->rollout_on[i]);
        fold_counter(&r->rollout_off[i], &c->rollout_off[i]);
    }
    fold_counter(&r->tokens_charged, &c->tokens_charged);
    fold_counter(&r->cancels_by_cmd, &c->cancels_by_cmd);
    fold_counter(&r->h2_conns, &c->h2_conns);
    fold_counter(&r->h2_streams, &c->h2_streams);
    fold_counter(&r->h2_refused, &c->h2_refused);
    fold_counter(&r->h2_resets, &c->h2_resets);
    fold_counter(&r->h2_abuse, &c->h2_abuse);
    fold_counter(&r->ws_conns, &c->ws_conns);
    fold_counter(&r->ws_msgs_in, &c->ws_msgs_in);
    fold_counter(&r->ws_msgs_out, &c->ws_msgs_out);
    fold_counter(&r->tls_handshakes, &c->tls_handshakes);
    fold_counter(&r->tls_failures, &c->tls_failures);
    fold_counter(&r->tls_resumed, &c->tls_resumed);
    fold_counter(&r->resume_retained, &c->resume_retained);
    for (unsigned i = 0; i < SHM_RESUME_COUNT; i++)
        fold_counter(&r->resumes[i], &c->resumes[i]);
    fold_counter(&r->resume_expired, &c->resume_expired);
    fold_counter(&r->resume_takeovers, &c->resume_takeovers);
    fold_counter(&r->resume_dropped, &c->resume_dropped);
    fold_counter(&r->resume_overflows, &c->resume_overflows);
    fold_counter(&r->resume_log_full, &c->resume_log_full);
    fold_counter(&r->backend_panics, &c->backend_panics);
    fold_counter(&r->affinity_picks, &c->affinity_picks);
    struct hist_snap snap = {0};
    hist_snap_add(&snap, &c->itl);
    hist_fold(&r->itl, &snap);
    for (unsigned i = 0; i < SHM_TTFT_LABELS; i++) {
        struct shm_ttft_label *l = &slot->ttft[i];
        if (!atomic_load_explicit(&l->used, memory_order_acquire))
            break;
        struct hist_snap ls = {0};
        hist_snap_add(&ls, &l->h);
        hist_fold(&label_find(seg->retired.ttft, l->tenant, l->backend, l->model)->h, &ls);
    }
    memset(slot, 0, sizeof *slot);
    atomic_store_explicit(&seg->hdr[idx].pid, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&seg->hdr[idx].claims, 1, memory_order_release);
    atomic_store_explicit(&seg->hdr[idx].state, SHM_SLOT_FREE, memory_order_release);
    atomic_thread_fence(memory_order_release);
    atomic_fetch_add_explicit(&seg->fold_seq, 1, memory_order_acq_rel);
}

uint32_t shm_read_begin(const struct shm *s)
{
    for (;;) {
        uint32_t v = atomic_load_explicit(&s->seg->fold_seq, memory_order_acquire);
        if (!(v & 1))
            return v;
        sched_yield();
    }
}

int shm_read_retry(const struct shm *s, uint32_t token)
{
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&s->seg->fold_seq, memory_order_relaxed) != token;
}

int shm_tenant_find(const struct shm *s, const char *name)
{
    const struct shm_tables *t = &s->seg->tables;
    unsigned n = atomic_load_explicit(&t->ntenants, memory_order_acquire);
    for (unsigned i = 0; i < n && i < SHM_MAX_TENANTS; i++)
        if (strcmp(t->tenants[i].name, name) == 0)
            return (int)i;
    return -ENOENT;
}

int shm_backend_find(const struct shm *s, const char *name)
{
    const struct shm_tables *t = &s->seg->tables;
    unsigned n = atomic_load_explicit(&t->nbackends, memory_order_acquire);
    for (unsigned i = 0; i < n && i < SHM_MAX_BACKENDS; i++)
        if (strcmp(t->backends[i].name, name) == 0)
            return (int)i;
    return -ENOENT;
}

/* The models lists are written by the control plane only, under a
 * sequence count that is odd while it writes; a reader retries. */
static void seq_write(struct shm_backend *e, char *dst, size_t size, const char *list)
{
    uint32_t seq = atomic_load_explicit(&e->models_seq, memory_order_relaxed);
    atomic_store_explicit(&e->models_seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    snprintf(dst, size, "%s", list);
    atomic_store_explicit(&e->models_seq, seq + 2, memory_order_release);
}

static void seq_read(const struct shm_backend *e, const char *src, size_t size, char *out,
                     size_t cap)
{
    for (int tries = 0; tries < 100; tries++) {
        uint32_t s1 = atomic_load_explicit(&e->models_seq, memory_order_acquire);
        if (s1 & 1)
            continue;
        size_t n = cap - 1 < size ? cap - 1 : size;
        memcpy(out, src, n);
        out[n] = '\0';
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&e->models_seq, memory_order_relaxed) == s1)
            return;
    }
    out[0] = '\0'; /* a writer that never finishes: know nothing */
}

void shm_backend_set_models(struct shm_backend *e, const char *list)
{
    seq_write(e, e->models, sizeof e->models, list);
}

void shm_backend_models(const struct shm_backend *e, char *out, size_t cap)
{
    seq_read(e, e->models, sizeof e->models, out, cap);
}

void shm_backend_set_loaded(struct shm_backend *e, const char *list)
{
    seq_write(e, e->loaded, sizeof e->loaded, list);
    atomic_store_explicit(&e->loaded_ms, clock_mono_ms(), memory_order_release);
}

void shm_backend_loaded(const struct shm_backend *e, char *out, size_t cap)
{
    seq_read(e, e->loaded, sizeof e->loaded, out, cap);
}

int shm_backend_add(struct shm *s, const char *name)
{
    struct shm_tables *t = &s->seg->tables;
    int i = shm_backend_find(s, name);
    if (i >= 0)
        return i;
    /* Never reused: a worker of the old configuration may still count
     * requests under an index, and health and ejection outlive reloads. */
    unsigned n = atomic_load_explicit(&t->nbackends, memory_order_relaxed);
    if (n >= SHM_MAX_BACKENDS)
        return -ENOSPC;
    struct shm_backend *e = &t->backends[n];
    snprintf(e->name, sizeof e->name, "%s", name);
    atomic_store_explicit(&e->up, 1, memory_order_relaxed);
    atomic_store_explicit(&e->used, 1, memory_order_relaxed);
    atomic_store_explicit(&t->nbackends, n + 1, memory_order_release);
    return (int)n;
}

int shm_tenant_set(struct shm *s, const char *name, uint32_t hard_limit, uint32_t burst_limit,
                   uint32_t decay_ms, uint64_t tokens_per_minute, uint32_t default_max_tokens)
{
    struct shm_tables *t = &s->seg->tables;
    int i = shm_tenant_find(s, name);
    struct shm_tenant *e;
    if (i < 0) {
        /* Entries are never reused: a stream of an old configuration may
         * still hold an index, and a tenant's budget outlives reloads. */
        unsigned n = atomic_load_explicit(&t->ntenants, memory_order_relaxed);
        if (n >= SHM_MAX_TENANTS)
            return -ENOSPC;
        e = &t->tenants[n];
        snprintf(e->name, sizeof e->name, "%s", name);
        atomic_store_explicit(&e->tokens_avail, (int64_t)tokens_per_minute, memory_order_relaxed);
        atomic_store_explicit(&e->used, 1, memory_order_relaxed);
        atomic_store_explicit(&t->ntenants, n + 1, memory_order_release);
        i = (int)n;
    } else {
        e = &t->tenants[i];
        /* A budget that was raised starts with the difference available. */
        uint64_t old = atomic_load_explicit(&e->tokens_per_minute, memory_order_relaxed);
        if (tokens_per_minute > old)
            atomic_fetch_add_explicit(&e->tokens_avail, (int64_t)(tokens_per_minute - old),
                                      memory_order_relaxed);
    }
    atomic_store_explicit(&e->hard_limit, hard_limit, memory_order_relaxed);
    atomic_store_explicit(&e->burst_limit, burst_limit, memory_order_relaxed);
    atomic_store_explicit(&e->decay_ms, decay_ms, memory_order_relaxed);
    atomic_store_explicit(&e->default_max_tokens, default_max_tokens, memory_order_relaxed);
    atomic_store_explicit(&e->tokens_per_minute, tokens_per_minute, memory_order_relaxed);
    /* Until the control plane says otherwise, the whole burst is allowed. */
    atomic_store_explicit(&e->conc_limit, burst_limit ? burst_limit : hard_limit,
                          memory_order_relaxed);
    return i;
}

int64_t shm_node_admitted(const struct shm *s)
{
    int64_t n = 0;
    SHM_FOR_EACH_WORKER (s, idx)
        n += atomic_load_explicit(&shm_slot(s, idx)->g.admitted, memory_order_relaxed);
    return n;
}

int64_t shm_node_queued(const struct shm *s)
{
    int64_t n = 0;
    SHM_FOR_EACH_WORKER (s, idx)
        n += atomic_load_explicit(&shm_slot(s, idx)->g.queue_len, memory_order_relaxed);
    return n;
}

int64_t shm_node_backend_inflight(const struct shm *s, unsigned backend)
{
    int64_t n = 0;
    if (backend >= SHM_MAX_BACKENDS)
        return 0;
    SHM_FOR_EACH_WORKER (s, idx)
        n += atomic_load_explicit(&shm_slot(s, idx)->backend_inflight[backend],
                                  memory_order_relaxed);
    return n;
}

int64_t shm_node_tenant_streams(const struct shm *s, unsigned tenant)
{
    int64_t n = 0;
    if (tenant >= SHM_MAX_TENANTS)
        return 0;
    SHM_FOR_EACH_WORKER (s, idx)
        n += atomic_load_explicit(&shm_slot(s, idx)->tenant_streams[tenant], memory_order_relaxed);
    return n;
}

bool shm_cp_enter(struct shm *s, unsigned idx)
{
    struct shm_slot_hdr *h = &s->seg->hdr[idx];
    uint32_t before = atomic_load_explicit(&h->claims, memory_order_seq_cst);
    if (atomic_load_explicit(&h->state, memory_order_acquire) != SHM_SLOT_LIVE ||
        h->role != SHM_ROLE_WORKER)
        return false;
    atomic_store_explicit(&h->cp_busy, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    /* A claim or release since we looked: the rings may be reset under us. */
    if (atomic_load_explicit(&h->claims, memory_order_seq_cst) != before ||
        atomic_load_explicit(&h->state, memory_order_acquire) != SHM_SLOT_LIVE) {
        atomic_store_explicit(&h->cp_busy, 0, memory_order_release);
        return false;
    }
    return true;
}

void shm_cp_leave(struct shm *s, unsigned idx)
{
    atomic_store_explicit(&s->seg->hdr[idx].cp_busy, 0, memory_order_release);
}

void shm_cp_reset(struct shm *s)
{
    for (unsigned i = 0; i < s->seg->nslots; i++)
        atomic_store_explicit(&s->seg->hdr[i].cp_busy, 0, memory_order_release);
}
