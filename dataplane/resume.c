/* resume — see resume.h. */
#include "dataplane/resume.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dataplane/api_error.h"
#include "dataplane/client.h"
#include "dataplane/h1_parser.h"
#include "dataplane/resume_id.h"
#include "dataplane/stream.h"
#include "dataplane/stream_event.h"
#include "dataplane/upstream.h"
#include "dataplane/worker.h"
#include "shared/clock.h"
#include "shared/log.h"
#include "shared/sbuf.h"

#define LOG_MIN_CAP    4096
#define HEADROOM_MAX   (64u * 1024)
#define PEERS_MAX      64
#define RELAY_HEAD_MAX 16384

_Static_assert(RESUME_ID_LEN == STREAM_ID_LEN, "a stream id is what resume parses");

/* A pool of connections to another worker's resume socket. */
struct resume_peer {
    char owner[RESUME_OWNER_LEN];
    struct config_backend be;
    struct backend_pool pool;
};

/* ---- the worker's side ----------------------------------------------------- */

static void own_owner(const struct worker *w, char out[RESUME_OWNER_LEN + 1])
{
    snprintf(out, RESUME_OWNER_LEN + 1, "%02x%06x", w->id & 0xff, w->stream_salt & 0xffffff);
}

/* The abstract unix socket of the worker instance <owner>: the supervisor's
 * pid keeps two sluices on one host (tests, a blue/green pair) apart. */
static void socket_addr(const char *owner, struct sockaddr_un *sa, socklen_t *len)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    int n = snprintf(sa->sun_path + 1, sizeof sa->sun_path - 1, "sluice-resume-%d-%.*s",
                     (int)getppid(), RESUME_OWNER_LEN, owner);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

int resume_init(struct worker *w)
{
    const struct config *cfg = w->cfg;
    list_init(&w->resumable);
    list_init(&w->resume_done);
    w->resume_fd = -1;
    w->resume_mem_max = cfg->resume_memory_max / config_worker_count(cfg);
    if (!cfg->resume_retention_s)
        return 0;
    char owner[RESUME_OWNER_LEN + 1];
    own_owner(w, owner);
    struct sockaddr_un sa;
    socklen_t len;
    socket_addr(owner, &sa, &len);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (const struct sockaddr *)&sa, len) < 0 || listen(fd, 512) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    w->resume_fd = fd;
    return 0;
}

static void peers_close(struct worker *w)
{
    for (unsigned i = 0; i < w->npeers; i++) {
        struct backend_pool *pool = &w->peers[i].pool;
        struct list_node *n;
        while ((n = list_pop_head(&pool->idle)) != NULL) {
            struct upconn *u = container_of(n, struct upconn, node);
            list_init(&u->node);
            pool->nidle--;
            shm_gauge_add(&w->slot->g.upstream_idle, -1);
            upstream_release(u, true);
        }
    }
}

void resume_drain(struct worker *w)
{
    peers_close(w);
}

void resume_drop_all(struct worker *w)
{
    struct list_node *n = w->resumable.next;
    while (n != &w->resumable) {
        struct stream_retain *rt = container_of(n, struct stream_retain, node);
        n = n->next;
        if (rt->detached) /* attached ones go with their connections */
            stream_abandon(rt->owner);
    }
}

void resume_destroy(struct worker *w)
{
    resume_drop_all(w); /* ended streams kept for a replay do not hold an exit */
    peers_close(w);
    if (w->resume_fd >= 0)
        close(w->resume_fd);
    w->resume_fd = -1;
    free(w->peers);
    w->peers = NULL;
    w->npeers = 0;
}

bool resume_holding(const struct worker *w)
{
    /* A stream still running for a client that left keeps a draining
     * worker; one that has ended does not (it would only be replayed). */
    if (!w->resume_detached)
        return false;
    for (const struct list_node *n = w->resumable.next; n != &w->resumable; n = n->next) {
        const struct stream_retain *rt = container_of(n, struct stream_retain, node);
        if (rt->detached && !rt->ended)
            return true;
    }
    return false;
}

struct stream *resume_find(struct worker *w, const char *id)
{
    for (struct list_node *n = w->resumable.next; n != &w->resumable; n = n->next) {
        struct stream_retain *rt = container_of(n, struct stream_retain, node);
        if (memcmp(rt->owner->id, id, RESUME_ID_LEN) == 0)
            return rt->owner;
    }
    return NULL;
}

/* ---- memory ------------------------------------------------------------- */

static void set_detached(struct stream *st, bool on)
{
    struct worker *w = st->w;
    if (st->rt->detached == on)
        return;
    st->rt->detached = on;
    w->resume_detached += on ? 1 : -1;
    shm_gauge_add(&w->slot->g.resume_streams, on ? 1 : -1);
}

int resume_track(struct stream *st)
{
    struct worker *w = st->w;
    struct stream_retain *rt = calloc(1, sizeof *rt);
    if (!rt)
        return -ENOMEM;
    elog_init(&rt->log, 1);
    rt->owner = st;
    rt->cursor = 1;
    list_add_tail(&w->resumable, &rt->node);
    list_init(&rt->done_node);
    st->rt = rt;
    return 0;
}

void resume_untrack(struct stream *st)
{
    struct worker *w = st->w;
    struct stream_retain *rt = st->rt;
    set_detached(st, false);
    list_del(&rt->node);
    if (list_linked(&rt->done_node))
        list_del(&rt->done_node);
    w->resume_mem -= rt->mem;
    shm_gauge_add(&w->slot->g.resume_bytes, -(int64_t)rt->mem);
    elog_free(&rt->log);
    free(rt);
    st->rt = NULL;
}

static uint64_t allowed_cap(const struct stream *st);

/* Drops the oldest finished stream retained for a client that left, to
 * give its memory to <st>, when the worker's memory is what holds <st>'s
 * log back (not its own resume_buffer_max).  False when that does not help. */
static bool drop_oldest_done(struct worker *w, const struct stream *st)
{
    if (allowed_cap(st) >= w->cfg->resume_buffer_max)
        return false;
    for (struct list_node *n = w->resume_done.next; n != &w->resume_done; n = n->next) {
        struct stream_retain *rt = container_of(n, struct stream_retain, done_node);
        if (rt->owner == st)
            continue;
        log_info("stream %s: retained events dropped for memory (resume_memory_max)",
                 rt->owner->id);
        shm_add(&w->slot->c.resume_dropped, 1);
        stream_abandon(rt->owner);
        return true;
    }
    return false;
}

/* The largest buffer the log may have now. */
static uint64_t allowed_cap(const struct stream *st)
{
    const struct worker *w = st->w;
    const struct stream_retain *rt = st->rt;
    uint64_t spare = w->resume_mem_max > w->resume_mem ? w->resume_mem_max - w->resume_mem : 0;
    uint64_t cap = rt->log.cap + spare;
    uint64_t max = w->cfg->resume_buffer_max;
    if (cap > max)
        cap = max;
    return cap > rt->log.cap ? cap : rt->log.cap;
}

/* Records the attached client was handed (and so may be evicted). */
static uint64_t evictable(const struct stream_retain *rt)
{
    if (rt->detached || rt->cursor_pos < rt->log.head)
        return 0;
    return rt->cursor_pos - rt->log.head;
}

static uint64_t room(const struct stream *st)
{
    uint64_t cap = allowed_cap(st);
    uint64_t used = elog_used(&st->rt->log);
    return (cap > used ? cap - used : 0) + evictable(st->rt);
}

static uint64_t headroom(const struct config *cfg)
{
    uint64_t h = cfg->resume_buffer_max / 4;
    return h < HEADROOM_MAX ? h : HEADROOM_MAX;
}

static bool grow(struct stream *st, uint64_t need)
{
    struct worker *w = st->w;
    struct stream_retain *rt = st->rt;
    uint64_t used = elog_used(&rt->log);
    uint64_t max = allowed_cap(st);
    uint64_t want = rt->log.cap ? (uint64_t)rt->log.cap * 2 : LOG_MIN_CAP;
    while (want < used + need)
        want *= 2;
    if (want > max)
        want = max;
    if (want < used + need || want <= rt->log.cap || elog_grow(&rt->log, (uint32_t)want) < 0)
        return false;
    uint32_t delta = (uint32_t)want - rt->mem;
    rt->mem = (uint32_t)want;
    w->resume_mem += delta;
    shm_gauge_add(&w->slot->g.resume_bytes, delta);
    return true;
}

/* Holds the backend while the log has too little room for what may still
 * arrive: a detached stream's log must never lose an event. */
static void maybe_hold(struct stream *st)
{
    struct stream_retain *rt = st->rt;
    struct worker *w = st->w;
    uint64_t h = headroom(w->cfg);
    if (rt->log_paused || !st->up || st->phase == SP_DONE)
        return;
    while (room(st) < h && drop_oldest_done(w, st))
        ;
    if (room(st) >= h)
        return;
    rt->log_paused = true;
    st->blocked_since_ms = w->now_ms;
    shm_add(&w->slot->c.resume_log_full, 1);
    upstream_pause(st->up);
    stream_rearm_timer(st);
}

static void maybe_release(struct stream *st)
{
    struct stream_retain *rt = st->rt;
    uint64_t h = headroom(st->w->cfg);
    uint64_t want = 2 * h < st->w->cfg->resume_buffer_max / 2 ? 2 * h : h;
    if (!rt->log_paused || room(st) < want)
        return;
    rt->log_paused = false;
    st->t_last_ns = clock_mono_ns();
    stream_upstream_kick(st);
    stream_rearm_timer(st);
}

/* A detached stream that has ended will not grow: its log gives back the
 * rest of its buffer (doubling leaves up to half of it unused). */
static void trim(struct stream *st)
{
    struct worker *w = st->w;
    struct stream_retain *rt = st->rt;
    if (elog_trim(&rt->log) < 0)
        return;
    uint32_t freed = rt->mem - rt->log.cap;
    rt->mem = rt->log.cap;
    w->resume_mem -= freed;
    shm_gauge_add(&w->slot->g.resume_bytes, -(int64_t)freed);
}

/* ---- the log ------------------------------------------------------------- */

void resume_record(struct stream *st, const char *p, size_t n)
{
    struct worker *w = st->w;
    struct stream_retain *rt = st->rt;
    struct elog *l = &rt->log;
    while (!elog_fits(l, n)) {
        if (grow(st, elog_rec_size(n)))
            continue;
        /* A running stream comes before a finished one whose client left. */
        if (drop_oldest_done(w, st))
            continue;
        if (!rt->detached && l->first_seq < rt->cursor && elog_evict(l))
            continue;
        /* No room, even with nothing kept: what came before is lost for a
         * client that resumes from before here (it gets 410). */
        shm_add(&w->slot->c.resume_overflows, 1);
        log_warn("stream %s: event %llu (%zu bytes) finds no room in the event log: "
                 "earlier events can no longer be resumed",
                 st->id, (unsigned long long)l->next_seq, n);
        if (rt->replaying && st->c) {
            /* The attached client was still to get some of them. */
            client_abort(st->c); /* detaches st */
        }
        elog_reset(l, l->next_seq);
        if (elog_fits(l, n) || grow(st, elog_rec_size(n)))
            break;
        elog_reset(l, l->next_seq + 1); /* not even this one */
        if (!rt->detached && !rt->replaying) {
            rt->cursor = l->next_seq;
            rt->cursor_pos = l->tail;
        }
        return;
    }
    elog_push(l, p, n);
    if (!rt->detached && !rt->replaying) {
        /* live: the client has it in its outq already */
        rt->cursor = l->next_seq;
        rt->cursor_pos = l->tail;
        return;
    }
    maybe_hold(st);
    if (rt->replaying)
        resume_pump(st);
}

/* ---- detaching and attaching --------------------------------------------- */

bool resume_detach(struct stream *st)
{
    struct worker *w = st->w;
    struct stream_retain *rt = st->rt;
    struct conn *c = st->c;
    /* Only a stream whose client saw its id (the first event) can be
     * resumed; one the client cancelled (HTTP/2 RST_STREAM) is not to be;
     * and a drain past its deadline keeps nothing. */
    if (!c || c->cancelled || !st->head_committed || st->mode != RM_SSE || st->status != 200 ||
        w->cut)
        return false;
    sev_to_heap(st);
    if (!st->rt)
        return false;
    c->st = NULL;
    st->c = NULL;
    st->paused = false;
    rt->replaying = false;
    set_detached(st, true);
    rt->until_ms = w->now_ms + (uint64_t)w->cfg->resume_retention_s * 1000;
    if (st->phase == SP_DONE && !list_linked(&rt->done_node)) {
        list_add_tail(&w->resume_done, &rt->done_node);
        trim(st);
    }
    shm_add(&w->slot->c.resume_retained, 1);
    log_debug("stream %s: client left after event %llu; retained for %u s", st->id,
              (unsigned long long)st->seq, w->cfg->resume_retention_s);
    stream_upstream_kick(st); /* it may have been paused for the client */
    maybe_hold(st);
    stream_rearm_timer(st);
    return true;
}

void resume_ended(struct stream *st)
{
    struct worker *w = st->w;
    struct stream_retain *rt = st->rt;
    rt->ended = true;
    if (rt->detached) {
        if (!list_linked(&rt->done_node))
            list_add_tail(&w->resume_done, &rt->done_node);
        trim(st);
        stream_rearm_timer(st);
        return;
    }
    resume_pump(st);
}

bool resume_expired(struct stream *st)
{
    struct worker *w = st->w;
    if (w->now_ms < st->rt->until_ms)
        return false;
    log_info("stream %s: not resumed within %u s: %s", st->id, w->cfg->resume_retention_s,
             st->phase == SP_DONE ? "events dropped" : "cancelled");
    shm_add(&w->slot->c.resume_expired, 1);
    stream_abandon(st);
    return true;
}

void resume_pump(struct stream *st)
{
    struct conn *c = st->c;
    struct stream_retain *rt = st->rt;
    if (!c || !rt->replaying)
        return;
    struct worker *w = st->w;
    struct outq *q = &c->out;
    bool wrote = false;
    while (rt->cursor < rt->log.next_seq && outq_pending(q) < w->cfg->stream_buffer_max) {
        const char *p1, *p2;
        size_t n1, n2;
        uint64_t next = elog_read(&rt->log, rt->cursor_pos, &p1, &n1, &p2, &n2);
        struct outq_mark mark;
        int err = outq_mark(q, &w->slabs, &mark);
        if (!err && st->chunked_out) {
            char hdr[24];
            int hl = snprintf(hdr, sizeof hdr, "%zx\r\n", n1 + n2);
            err = outq_write(q, &w->slabs, hdr, (size_t)hl);
        }
        err = err || outq_write(q, &w->slabs, p1, n1);
        err = err || (n2 && outq_write(q, &w->slabs, p2, n2));
        err = err || (st->chunked_out && outq_write(q, &w->slabs, "\r\n", 2));
        if (err) {
            outq_truncate(q, &w->slabs, &mark);
            if (!wrote && !outq_pending(q)) {
                /* No buffer at all and nothing in flight to wait for: the
                 * client comes back later, nothing is lost. */
                log_warn("stream %s: no buffer to replay into: client cut", st->id);
                client_abort(c); /* detaches st */
                return;
            }
            break;
        }
        rt->cursor++;
        rt->cursor_pos = next;
        wrote = true;
    }
    if (wrote) {
        outq_commit(q);
        worker_mark_dirty(w, c);
    }
    if (rt->cursor == rt->log.next_seq && !st->in_event) {
        rt->replaying = false;
        if (rt->ended) {
            if (st->chunked_out && outq_write(q, &w->slabs, "0\r\n\r\n", 5) == 0)
                outq_commit(q);
            client_stream_done(c);
        } else {
            /* Caught up: from the next event on, straight to the client
             * again (and to the log beside it). */
            st->heap_events = false;
            free(st->big);
            st->big = NULL;
            st->big_len = st->big_cap = 0;
            st->blocked_since_ms = w->now_ms;
        }
    }
    maybe_release(st);
}

static void attach(struct conn *c, struct stream *st, uint64_t after)
{
    struct worker *w = c->w;
    struct stream_retain *rt = st->rt;
    if (st->c) {
        /* Still attached to a connection the client has abandoned (its
         * FIN or RST not seen yet): the newest connection wins. */
        struct conn *old = st->c;
        if (!resume_detach(st)) {
            client_respond_error(c, API_ERR_STREAM_NOT_FOUND, NULL);
            return;
        }
        shm_add(&w->slot->c.resume_takeovers, 1);
        log_info("stream %s: resumed by a new connection; closing the old one", st->id);
        client_abort(old);
    }
    if (list_linked(&rt->done_node))
        list_del(&rt->done_node);
    set_detached(st, false);
    st->c = c;
    c->st = st;
    st->chunked_out = !c->virt && !c->http10;
    if (c->http10)
        c->keepalive = false;
    char head[1024];
    int n =
        snprintf(head, sizeof head,
                 "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n%s%sX-Request-Id: %.*s\r\n"
                 "%s\r\n",
                 st->chunked_out ? "Transfer-Encoding: chunked\r\n" : "", c->cors ? c->cors : "",
                 (int)c->reqid_len, c->reqid,
                 !c->keepalive || w->draining ? "Connection: close\r\n"
                 : c->http10                  ? "Connection: keep-alive\r\n"
                                              : "");
    if (n < 0 || (size_t)n >= sizeof head || outq_write(&c->out, &w->slabs, head, (size_t)n)) {
        client_abort(c); /* detaches st again */
        return;
    }
    outq_commit(&c->out);
    c->status = 200;
    rt->cursor = after + 1;
    (void)elog_find(&rt->log, rt->cursor, &rt->cursor_pos); /* checked by the caller */
    rt->replaying = true;
    st->blocked_since_ms = w->now_ms;
    worker_mark_dirty(w, c);
    stream_rearm_timer(st);
    resume_pump(st);
}

/* ---- requests ------------------------------------------------------------- */

static struct backend_pool *peer_pool(struct worker *w, const char *owner)
{
    if (!w->peers && !(w->peers = calloc(PEERS_MAX, sizeof *w->peers)))
        return NULL;
    struct resume_peer *spare = NULL;
    for (unsigned i = 0; i < w->npeers; i++) {
        struct resume_peer *p = &w->peers[i];
        if (memcmp(p->owner, owner, RESUME_OWNER_LEN) == 0)
            return &p->pool;
        if (!spare && p->pool.nconns == 0)
            spare = p;
    }
    struct resume_peer *p = w->npeers < PEERS_MAX ? &w->peers[w->npeers++] : spare;
    if (!p)
        return NULL;
    memset(p, 0, sizeof *p);
    memcpy(p->owner, owner, RESUME_OWNER_LEN);
    snprintf(p->be.name, sizeof p->be.name, "worker %.*s", RESUME_OWNER_LEN, owner);
    snprintf(p->be.host, sizeof p->be.host, "sluice-resume");
    struct sockaddr_un sa;
    socklen_t len;
    socket_addr(owner, &sa, &len);
    memcpy(&p->be.addr.ss, &sa, len);
    p->be.addr.len = len;
    p->pool.be = &p->be;
    p->pool.shm_idx = -1; /* another worker, not a backend of the table */
    list_init(&p->pool.idle);
    return &p->pool;
}

void resume_on_head(struct conn *c, const struct h1_request *req)
{
    struct worker *w = c->w;
    char id[RESUME_ID_LEN + 1];
    if (resume_id_from_path(req->path, req->path_len, id) < 0) {
        c->pending_err = API_ERR_STREAM_NOT_FOUND;
        return;
    }
    memcpy(c->resume_id, id, sizeof c->resume_id);
    c->resume_after = 0;
    c->resume_cancel = req->method_len == 6 && memcmp(req->method, "DELETE", 6) == 0;
    const struct h1_header *lei = h1_header_find(req->headers, req->n_headers, "last-event-id");
    if (lei && resume_id_last_event(lei->value, lei->value_len, id, &c->resume_after) < 0) {
        c->pending_err = API_ERR_BAD_LAST_EVENT_ID;
        return;
    }
    char own[RESUME_OWNER_LEN + 1];
    own_owner(w, own);
    if (memcmp(id, own, RESUME_OWNER_LEN) == 0)
        return; /* ours */
    if (c->internal || !w->cfg->resume_retention_s) {
        c->pending_err = API_ERR_STREAM_NOT_FOUND; /* never a second hop */
        return;
    }
    /* Another worker's: the request goes there, with what it needs to
     * check it again (the key, the position). */
    struct sbuf b;
    sbuf_init(&b, RELAY_HEAD_MAX);
    sbuf_printf(&b, "%s /v1/streams/%s HTTP/1.1\r\nHost: sluice-resume\r\n",
                c->resume_cancel ? "DELETE" : "GET", id);
    const struct h1_header *authz = h1_header_find(req->headers, req->n_headers, "authorization");
    if (authz)
        sbuf_printf(&b, "Authorization: %.*s\r\n", (int)authz->value_len, authz->value);
    if (lei)
        sbuf_printf(&b, "Last-Event-ID: %.*s\r\n", (int)lei->value_len, lei->value);
    sbuf_printf(&b, "X-Request-Id: %.*s\r\n", (int)c->reqid_len, c->reqid);
    if (b.err) {
        sbuf_free(&b);
        c->pending_err = API_ERR_INTERNAL;
        return;
    }
    size_t len, cap;
    c->up_head = sbuf_take(&b, &len, &cap);
    c->up_head_len = (uint32_t)len;
    c->up_head_cap = (uint32_t)cap;
}

static void refuse(struct conn *c, enum shm_resume_result why, int api_err, const char *detail)
{
    shm_add(&c->w->slot->c.resumes[why], 1);
    client_respond_error(c, api_err, detail);
}

void resume_dispatch(struct conn *c)
{
    struct worker *w = c->w;
    if (c->up_head) {
        struct backend_pool *pool = peer_pool(w, c->resume_id);
        char *head = c->up_head;
        c->up_head = NULL;
        if (!pool) {
            free(head);
            refuse(c, SHM_RESUME_NOT_FOUND, API_ERR_OVERLOADED, "too many workers to relay to");
            return;
        }
        shm_add(&w->slot->c.resumes[SHM_RESUME_RELAYED], 1);
        if (stream_start_forward(c, pool, head, c->up_head_len, c->up_head_cap) < 0)
            client_respond_error(c, API_ERR_OVERLOADED, NULL);
        return;
    }
    struct stream *st = resume_find(w, c->resume_id);
    const char *why = NULL;
    if (!st)
        why = "unknown or expired";
    else if (!st->head_committed || st->mode != RM_SSE)
        why = "no event sent yet";
    else if (!st->tenant_name || !c->tenant || strcmp(st->tenant_name, c->tenant) != 0)
        why = "another tenant's";
    if (why) {
        /* The same answer whatever the reason: ids are not to be probed. */
        log_info("request %.*s: resume of stream %s refused: %s", (int)c->reqid_len, c->reqid,
                 c->resume_id, why);
        refuse(c, SHM_RESUME_NOT_FOUND, API_ERR_STREAM_NOT_FOUND, NULL);
        return;
    }
    struct stream_retain *rt = st->rt;
    if (c->resume_cancel) {
        /* The client stops on purpose (over HTTP/1.1, closing the
         * connection only says it dropped): the backend stops too. */
        shm_add(&w->slot->c.resumes[SHM_RESUME_CANCELLED], 1);
        log_info("stream %s: cancelled by its client", st->id);
        if (st->c) {
            st->c->cancelled = true; /* and not retained once its reader is done */
            stream_cancel(st, "the stream was cancelled by its client");
        } else {
            stream_abandon(st);
        }
        client_respond(c, 204, NULL, NULL, "", 0);
        return;
    }
    if (c->resume_after >= rt->log.next_seq) {
        refuse(c, SHM_RESUME_INVALID, API_ERR_BAD_LAST_EVENT_ID, NULL);
        return;
    }
    if (c->resume_after + 1 < rt->log.first_seq) {
        char detail[160];
        snprintf(detail, sizeof detail,
                 "the events after %llu are no longer retained (the oldest kept is %llu)",
                 (unsigned long long)c->resume_after, (unsigned long long)rt->log.first_seq);
        refuse(c, SHM_RESUME_GAP, API_ERR_RESUME_GAP, detail);
        return;
    }
    shm_add(&w->slot->c.resumes[SHM_RESUME_OK], 1);
    log_debug("stream %s: resumed after event %llu of %llu", st->id,
              (unsigned long long)c->resume_after, (unsigned long long)(rt->log.next_seq - 1));
    attach(c, st, c->resume_after);
}
