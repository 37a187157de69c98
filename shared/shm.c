/* shm — see shm.h. */
#include "shared/shm.h"

#include <errno.h>
#include <sched.h>
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

int shm_create(struct shm *s, unsigned nslots)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    size_t size = slots_offset(nslots) + (size_t)nslots * sizeof(struct shm_slot);
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

int shm_slot_claim(struct shm *s, unsigned worker, enum shm_role role, uint32_t generation)
{
    for (unsigned i = 0; i < s->seg->nslots; i++) {
        struct shm_slot_hdr *h = &s->seg->hdr[i];
        if (atomic_load_explicit(&h->state, memory_order_acquire) != SHM_SLOT_FREE)
            continue;
        memset(shm_slot(s, i), 0, sizeof(struct shm_slot));
        atomic_store_explicit(&h->pid, 0, memory_order_relaxed);
        h->worker = (uint16_t)worker;
        h->role = (uint16_t)role;
        h->generation = generation;
        atomic_store_explicit(&h->heartbeat_ms, 0, memory_order_relaxed);
        atomic_store_explicit(&h->draining, 0, memory_order_relaxed);
        atomic_store_explicit(&h->state, SHM_SLOT_LIVE, memory_order_release);
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
