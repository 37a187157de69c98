/* stream_event — see stream_event.h. */
#include "dataplane/stream_event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/admission.h"
#include "dataplane/api_error.h"
#include "dataplane/client.h"
#include "dataplane/resume.h"
#include "dataplane/stream.h"
#include "dataplane/upstream.h"
#include "shared/clock.h"
#include "shared/fmt.h"
#include "shared/hist.h"

/* Every event goes out as its own HTTP chunk; the size line is written
 * before the size is known, so it has a fixed width (leading zeros are
 * valid chunk-size syntax, RFC 9112 §7.1) and is patched at the end.  The
 * width is the fewest hex digits any event can need (worker.chunk_digits,
 * from max_event_size): 5 by default, so 7 bytes of framing per token. */
#define CHUNK_HDR_MAX 18 /* 16 digits and CRLF */

static int big_append(struct stream *st, const char *p, size_t n);

static struct worker *W(const struct stream *st)
{
    return st->w;
}

void sev_drop_partial(struct stream *st)
{
    if (!st->in_event)
        return;
    if (st->big) {
        free(st->big);
        st->big = NULL;
        st->big_len = st->big_cap = 0;
    } else {
        outq_truncate(&st->c->out, &W(st)->slabs, &st->ev_mark);
    }
    st->in_event = false;
}

void sev_to_heap(struct stream *st)
{
    struct worker *w = W(st);
    if (st->heap_events)
        return;
    uint32_t framing = st->chunked_out ? w->chunk_digits + 2 : 0;
    if (st->in_event && !st->big) {
        /* The event is contiguous in the outq (append_event keeps it so). */
        struct outq *q = &st->c->out;
        uint32_t since = outq_since(q, &w->slabs, &st->ev_mark);
        const char *src = outq_mark_ptr(q, &w->slabs, &st->ev_mark);
        st->big_len = 0;
        if (big_append(st, src, since) < 0)
            return; /* failed the stream */
        outq_truncate(q, &w->slabs, &st->ev_mark);
    }
    if (st->in_event && framing) {
        memmove(st->big, st->big + framing, st->big_len - framing);
        st->big_len -= framing;
        st->ev_prefix -= framing;
    }
    st->chunked_out = false;
    st->heap_events = true;
}

int sev_begin(struct stream *st)
{
    struct worker *w = W(st);
    char pre[CHUNK_HDR_MAX + 64];
    int n = 0;
    if (st->heap_events) {
        /* The log keeps events without transport framing. */
        memcpy(pre, "id: ", 4);
        memcpy(pre + 4, st->id, STREAM_ID_LEN);
        n = 4 + STREAM_ID_LEN;
        pre[n++] = ':';
        n += (int)fmt_u64(pre + n, st->seq + 1);
        pre[n++] = '\n';
        st->big_len = 0;
        st->ev_prefix = (uint32_t)n;
        if (big_append(st, pre, (size_t)n) < 0)
            return -1;
        st->in_event = true;
        return 0;
    }
    struct outq *q = &st->c->out;
    if (st->chunked_out) {
        unsigned d = w->chunk_digits;
        memset(pre, '0', d);
        pre[d] = '\r';
        pre[d + 1] = '\n';
        n = (int)d + 2;
    }
    if (!st->forwarded) {
        /* (A relayed resume's events carry the owner's ids already.) */
        memcpy(pre + n, "id: ", 4);
        n += 4;
        memcpy(pre + n, st->id, STREAM_ID_LEN);
        n += STREAM_ID_LEN;
        pre[n++] = ':';
        n += (int)fmt_u64(pre + n, st->seq + 1);
        pre[n++] = '\n';
    }
    int err = outq_mark(q, &w->slabs, &st->ev_mark);
    char *dst = err ? NULL : outq_extend_contig(q, &w->slabs, &st->ev_mark, (size_t)n, &err);
    if (!dst) {
        stream_fail(st, API_ERR_OVERLOADED, "no buffer space for the stream");
        return -1;
    }
    memcpy(dst, pre, (size_t)n);
    outq_advance(q, &w->slabs, (size_t)n);
    st->ev_prefix = (uint32_t)n;
    st->in_event = true;
    return 0;
}

static int big_append(struct stream *st, const char *p, size_t n)
{
    const struct config *cfg = W(st)->cfg;
    size_t limit = (size_t)cfg->max_event_size + st->ev_prefix + 2;
    if ((size_t)st->big_len + n > limit) {
        stream_fail(st, API_ERR_BACKEND_BAD, "the backend sent an event over max_event_size");
        return -1;
    }
    if (st->big_len + n > st->big_cap) {
        size_t cap = st->big_cap ? st->big_cap : st->heap_events ? 4096 : 65536;
        while (cap < st->big_len + n)
            cap *= 2;
        if (cap > limit)
            cap = limit;
        char *nb = realloc(st->big, cap);
        if (!nb) {
            stream_fail(st, API_ERR_OVERLOADED, "out of memory for a large event");
            return -1;
        }
        st->big = nb;
        st->big_cap = (uint32_t)cap;
    }
    memcpy(st->big + st->big_len, p, n);
    st->big_len += (uint32_t)n;
    return 0;
}

/* Adds event bytes, keeping the event contiguous: in the outq while it fits
 * in a slab, on the heap (rare: events over a slab) when it does not. */
int sev_append(struct stream *st, const char *p, size_t n)
{
    struct worker *w = W(st);
    if (st->big)
        return big_append(st, p, n);
    struct outq *q = &st->c->out;
    int err = 0;
    char *dst = outq_extend_contig(q, &w->slabs, &st->ev_mark, n, &err);
    if (dst) {
        memcpy(dst, p, n);
        outq_advance(q, &w->slabs, n);
        return 0;
    }
    if (err == -E2BIG) {
        uint32_t since = outq_since(q, &w->slabs, &st->ev_mark);
        const char *src = outq_mark_ptr(q, &w->slabs, &st->ev_mark);
        st->big_len = 0;
        if (big_append(st, src, since) < 0)
            return -1;
        outq_truncate(q, &w->slabs, &st->ev_mark);
        return big_append(st, p, n);
    }
    stream_fail(st, API_ERR_OVERLOADED, "no buffer space for the stream");
    return -1;
}

static void count_token(struct stream *st)
{
    struct worker *w = W(st);
    uint64_t now = clock_mono_ns();
    if (st->forwarded) {
        /* A relayed resume: the owner counted these tokens already. */
        st->first_content = true;
        st->t_last_ns = now;
        return;
    }
    if (!st->first_content) {
        st->first_content = true;
        if (st->is_completion) {
            if (!st->ttft_hist)
                st->ttft_hist =
                    shm_ttft_hist(w->slot, st->tenant_name ? st->tenant_name : "default",
                                  st->pool->be->name, st->model);
            hist_record(st->ttft_hist, &hist_ttft_bounds, (now - st->t0_ns) / 1000);
            adm_first_token(st, (now - st->t0_ns) / 1000);
        }
    } else {
        uint64_t gap_us = (now - st->t_last_ns) / 1000;
        hist_record(&w->slot->c.itl, &hist_itl_bounds, gap_us);
        sketch_record(&w->slot->itl_win, w->now_ms / w->cfg->qos_interval_ms, gap_us);
    }
    st->t_last_ns = now;
    st->tokens++;
    shm_add(&w->slot->c.tokens, 1);
}

/* What every finished event does to the stream's clocks and counts. */
static void after_event(struct stream *st, unsigned flags)
{
    if (flags & SSE_EV_CONTENT)
        count_token(st);
    else
        st->t_last_ns = st->first_content ? clock_mono_ns() : st->t_last_ns;
    if (flags & SSE_EV_DONE)
        st->done_seen = true;
    stream_rearm_timer(st);
    if (st->c)
        worker_mark_dirty(W(st), st->c);
}

/* The tenant cannot pay for this token: it does not go out. */
static bool unpaid(struct stream *st, unsigned flags)
{
    if (!(flags & SSE_EV_CONTENT) || !st->is_completion || adm_charge(st))
        return false;
    sev_drop_partial(st);
    stream_fail(st, API_ERR_TENANT_EXHAUSTED, NULL);
    return true;
}

/* An event assembled on the heap goes to the event log only (resume.c
 * sends it on to an attached client from there). */
/* Whether the event's JSON has `"choices": []` (the usage chunk's mark). */
static bool empty_choices(const char *ev, size_t len)
{
    const char *end = ev + len;
    const char *p = memmem(ev, len, "\"choices\"", 9);
    if (!p)
        return false;
    p += 9;
    while (p < end && (*p == ' ' || *p == ':'))
        p++;
    if (p == end || *p++ != '[')
        return false;
    while (p < end && *p == ' ')
        p++;
    return p < end && *p == ']';
}

/* A continuation's events before its first token (its role event) repeat
 * what the client has: they are not relayed.  Content is noted for a later
 * continuation. */
static bool skip_or_note(struct stream *st, unsigned flags, const char *ev, size_t len)
{
    if (st->continuing) {
        if (!(flags & (SSE_EV_CONTENT | SSE_EV_DONE))) {
            sev_drop_partial(st);
            return true;
        }
        st->continuing = false;
    }
    if (st->cont && (flags & SSE_EV_CONTENT) && cont_note(&st->text, st->chat, ev, len) < 0)
        st->cont = false; /* out of memory: this stream will not be continued */
    if (!(flags & (SSE_EV_CONTENT | SSE_EV_DONE)) && st->is_completion && empty_choices(ev, len) &&
        memmem(ev, len, "\"usage\"", 7)) {
        /* The usage chunk: the backend's own count of the tokens. */
        struct usage_scan u;
        usage_scan_init(&u);
        usage_scan_feed(&u, ev, len);
        st->usage_seen = usage_scan_result(&u, &st->usage_tokens);
        if (st->strip_usage) {
            sev_drop_partial(st);
            return true;
        }
    }
    return false;
}

/* A backend's own `id:` lines (another sluice in front of its backend, or
 * a server that numbers its events) would come after sluice's and win
 * (the last id field counts): each becomes a comment, same length, in
 * place.  <p> follows sluice's id line, so a match at its start has the
 * '\n' before it. */
static void mute_ids(char *p, size_t n)
{
    char *end = p + n;
    for (char *q = p - 1; q + 4 <= end && (q = memmem(q, (size_t)(end - q), "\nid:", 4)); q += 4)
        memcpy(q + 1, ":id", 3);
}

static int finish_heap_event(struct stream *st)
{
    if (!st->forwarded)
        mute_ids(st->big + st->ev_prefix, st->big_len - st->ev_prefix);
    unsigned flags = sse_event_scan(st->big + st->ev_prefix, st->big_len - st->ev_prefix);
    if (skip_or_note(st, flags, st->big + st->ev_prefix, st->big_len - st->ev_prefix))
        return 0;
    if (unpaid(st, flags))
        return -1;
    st->seq++;
    st->in_event = false;
    uint32_t n = st->big_len;
    st->big_len = 0; /* the buffer is kept for the next event */
    resume_record(st, st->big, n);
    after_event(st, flags);
    return 0;
}

int sev_finish(struct stream *st)
{
    struct worker *w = W(st);
    if (st->heap_events)
        return finish_heap_event(st);
    struct conn *c = st->c;
    struct outq *q = &c->out;
    if (st->chunked_out && sev_append(st, "\r\n", 2) < 0)
        return -1;
    char *base;
    uint32_t total;
    if (st->big) {
        base = st->big;
        total = st->big_len;
    } else {
        base = outq_mark_ptr(q, &w->slabs, &st->ev_mark);
        total = outq_since(q, &w->slabs, &st->ev_mark);
    }
    uint32_t trailer = st->chunked_out ? 2 : 0;
    uint32_t framing = st->chunked_out ? w->chunk_digits + 2 : 0;
    if (!st->forwarded)
        mute_ids(base + st->ev_prefix, total - st->ev_prefix - trailer);
    unsigned flags = sse_event_scan(base + st->ev_prefix, total - st->ev_prefix - trailer);
    if (skip_or_note(st, flags, base + st->ev_prefix, total - st->ev_prefix - trailer))
        return 0;
    if (unpaid(st, flags))
        return -1;
    if (st->chunked_out) {
        fmt_hexn(base, total - framing - trailer, w->chunk_digits);
    }
    st->seq++; /* comments too: every id on the wire is unique and increasing */
    if (st->rt)
        resume_record(st, base + framing, total - framing - trailer);
    if (st->big) {
        int err = outq_write(q, &w->slabs, st->big, st->big_len);
        free(st->big);
        st->big = NULL;
        st->big_len = st->big_cap = 0;
        if (err) {
            st->in_event = false;
            stream_fail(st, API_ERR_OVERLOADED, "no buffer space for the stream");
            return -1;
        }
    }
    st->in_event = false;
    stream_commit(st);
    after_event(st, flags);
    return 0;
}

/* Emits a whole event made here (not relayed), the way relayed ones go. */
int sev_emit(struct stream *st, const char *p, size_t n)
{
    if (sev_begin(st) < 0 || sev_append(st, p, n) < 0)
        return -1;
    return sev_finish(st);
}

int sev_line(struct stream *st, const char *p, size_t n, unsigned flags)
{
    struct worker *w = W(st);
    struct outq *q = &st->c->out;
    if (unpaid(st, flags))
        return -1;
    int err = 0;
    if (st->chunked_out) {
        char hdr[20];
        int hl = snprintf(hdr, sizeof hdr, "%zx\r\n", n + 1);
        err = outq_write(q, &w->slabs, hdr, (size_t)hl);
        err |= outq_write(q, &w->slabs, p, n);
        err |= outq_write(q, &w->slabs, "\n\r\n", 3);
    } else {
        err = outq_write(q, &w->slabs, p, n);
        err |= outq_write(q, &w->slabs, "\n", 1);
    }
    if (err) {
        stream_fail(st, API_ERR_OVERLOADED, "no buffer space for the stream");
        return -1;
    }
    st->seq++;
    stream_commit(st);
    after_event(st, flags);
    return 0;
}
