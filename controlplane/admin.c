/* admin — see admin.h. */
#include "shared/clock.h"
#include "controlplane/admin.h"
#include "controlplane/qos.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "controlplane/metrics.h"
#include "dataplane/h1_parser.h"
#include "shared/log.h"
#include "shared/sbuf.h"

#define ADMIN_IN_MAX      8192
#define ADMIN_OUT_MAX     (8u << 20)
#define ADMIN_IDLE_MS     60000
#define ADMIN_MAX_HEADERS 64

struct admin_conn {
    int fd;
    int idx;
    char in[ADMIN_IN_MAX];
    size_t in_len;
    struct sbuf out;
    size_t out_off;
    bool close_after;
    uint64_t last_ms;
};

int admin_init(struct admin *a, int ep, int listen_fd, const struct config *cfg,
               const struct shm *shm, unsigned nworkers)
{
    memset(a, 0, sizeof *a);
    a->listen_fd = listen_fd;
    a->ep = ep;
    a->cfg = cfg;
    a->shm = shm;
    a->nworkers = nworkers;
    a->started_ms = clock_mono_ms();
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = a};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev) < 0)
        return -errno;
    return 0;
}

static void conn_close(struct admin *a, struct admin_conn *c)
{
    epoll_ctl(a->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    a->conns[c->idx] = NULL;
    sbuf_free(&c->out);
    free(c);
}

static void respond(struct admin_conn *c, int status, const char *reason, const char *ctype,
                    const char *body, size_t len)
{
    sbuf_printf(&c->out,
                "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                "Cache-Control: no-store\r\n%s\r\n",
                status, reason, ctype, len, c->close_after ? "Connection: close\r\n" : "");
    sbuf_put(&c->out, body, len);
}

static void status_json(struct admin *a, const struct metrics_snapshot *s, struct sbuf *b)
{
    const struct shm_segment *seg = a->shm->seg;
    uint64_t now = clock_mono_ms();
    uint64_t requests = 0;
    for (unsigned i = 0; i < SHM_N_CODES; i++)
        requests += s->requests[i];
    sbuf_printf(b,
                "{\"version\":\"%s\",\"uptime_s\":%llu,\"workers_expected\":%u,"
                "\"workers_live\":%u,\"workers_draining\":%u,\"streams_active\":%lld,"
                "\"connections_active\":%lld,\"requests_total\":%llu,\"tokens_total\":%llu,"
                "\"upstream_cancellations_total\":%llu,\"slow_consumers_total\":%llu,"
                "\"governor_limit\":%u,\"admitted_streams\":%lld,\"admission_queue\":%lld,"
                "\"rollout\":{",
                SLUICE_VERSION, (unsigned long long)((now - a->started_ms) / 1000), a->nworkers,
                s->workers_live, s->workers_draining, (long long)s->streams_active,
                (long long)s->connections, (unsigned long long)requests,
                (unsigned long long)s->tokens, (unsigned long long)s->upstream_cancellations,
                (unsigned long long)s->slow_consumers, s->admit_limit, (long long)s->admitted_now,
                (long long)s->queue_len);
    for (unsigned f = 0; f < FEAT_COUNT; f++)
        sbuf_printf(b, "%s\"%s\":%u", f ? "," : "", rollout_name((enum rollout_feature)f),
                    s->rollout_pct[f]);
    sbuf_puts(b, "},\"workers\":[");
    bool first = true;
    for (unsigned i = 0; i < seg->nslots; i++) {
        const struct shm_slot_hdr *h = &seg->hdr[i];
        if (atomic_load_explicit(&h->state, memory_order_acquire) != SHM_SLOT_LIVE ||
            h->role != SHM_ROLE_WORKER)
            continue;
        const struct shm_slot *sl = shm_slot(a->shm, i);
        uint64_t hb = atomic_load_explicit(&h->heartbeat_ms, memory_order_relaxed);
        sbuf_printf(b,
                    "%s{\"worker\":%u,\"pid\":%d,\"generation\":%u,\"draining\":%s,"
                    "\"heartbeat_age_ms\":%lld,\"connections\":%lld,\"streams\":%lld,"
                    "\"admitted\":%lld,\"queued\":%lld,\"tokens\":%llu}",
                    first ? "" : ",", h->worker,
                    (int)atomic_load_explicit(&h->pid, memory_order_relaxed), h->generation,
                    atomic_load_explicit(&h->draining, memory_order_relaxed) ? "true" : "false",
                    hb ? (long long)(now - hb) : -1LL,
                    (long long)atomic_load_explicit(&sl->g.connections, memory_order_relaxed),
                    (long long)atomic_load_explicit(&sl->g.streams_active, memory_order_relaxed),
                    (long long)atomic_load_explicit(&sl->g.admitted, memory_order_relaxed),
                    (long long)atomic_load_explicit(&sl->g.queue_len, memory_order_relaxed),
                    (unsigned long long)atomic_load_explicit(&sl->c.tokens, memory_order_relaxed));
        first = false;
    }
    sbuf_puts(b, "]");
    if (a->qos) {
        /* the QoS policies' current window values */
        json_t *q = qos_status_json(a->qos);
        char *t = q ? json_dumps(q, JSON_COMPACT) : NULL;
        json_decref(q);
        if (t)
            sbuf_printf(b, ",\"qos\":%s", t);
        free(t);
    }
    sbuf_puts(b, "}\n");
}

static void handle(struct admin *a, struct admin_conn *c, const struct h1_request *req)
{
    static struct metrics_snapshot snap; /* large; one request at a time */
    const char *json = "application/json";
    bool get = req->method_len == 3 && memcmp(req->method, "GET", 3) == 0;
#define PATH_IS(s) (req->path_len == sizeof(s) - 1 && memcmp(req->path, s, sizeof(s) - 1) == 0)
    if (!PATH_IS("/metrics") && !PATH_IS("/healthz") && !PATH_IS("/readyz") &&
        !PATH_IS("/status")) {
        static const char b[] = "{\"error\":{\"message\":\"no such admin route\","
                                "\"type\":\"invalid_request_error\",\"param\":null,"
                                "\"code\":\"not_found\"}}";
        respond(c, 404, "Not Found", json, b, sizeof b - 1);
        return;
    }
    if (!get) {
        static const char b[] = "{\"error\":{\"message\":\"use GET\","
                                "\"type\":\"invalid_request_error\",\"param\":null,"
                                "\"code\":\"method_not_allowed\"}}";
        respond(c, 405, "Method Not Allowed", json, b, sizeof b - 1);
        return;
    }
    metrics_collect(a->shm, &snap);
    struct sbuf body;
    sbuf_init(&body, ADMIN_OUT_MAX);
    if (PATH_IS("/metrics")) {
        metrics_render(&snap, &body);
        metrics_render_backends(a->shm, a->cfg, clock_mono_ms(), &body);
        if (a->qos)
            qos_metrics(a->qos, &body);
        respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body.p ? body.p : "",
                body.len);
    } else if (PATH_IS("/healthz")) {
        bool ok = snap.workers_live > snap.workers_draining;
        sbuf_printf(&body, "{\"status\":\"%s\",\"workers_live\":%u}\n", ok ? "ok" : "down",
                    snap.workers_live);
        respond(c, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", json, body.p, body.len);
    } else if (PATH_IS("/readyz")) {
        bool ok = snap.workers_live - snap.workers_draining >= a->nworkers;
        sbuf_printf(&body, "{\"ready\":%s,\"workers_live\":%u,\"workers_expected\":%u}\n",
                    ok ? "true" : "false", snap.workers_live - snap.workers_draining, a->nworkers);
        respond(c, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", json, body.p, body.len);
    } else {
        status_json(a, &snap, &body);
        respond(c, 200, "OK", json, body.p, body.len);
    }
    sbuf_free(&body);
#undef PATH_IS
}

static void flush_out(struct admin *a, struct admin_conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                epoll_ctl(a->ep, EPOLL_CTL_MOD, c->fd, &ev);
                return;
            }
            conn_close(a, c);
            return;
        }
        c->out_off += (size_t)n;
    }
    sbuf_free(&c->out);
    c->out_off = 0;
    if (c->close_after) {
        conn_close(a, c);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(a->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void on_readable(struct admin *a, struct admin_conn *c)
{
    for (;;) {
        if (c->in_len == sizeof c->in) {
            c->close_after = true;
            static const char b[] = "{\"error\":{\"message\":\"request too large\","
                                    "\"type\":\"invalid_request_error\",\"param\":null,"
                                    "\"code\":\"headers_too_large\"}}";
            respond(c, 431, "Request Header Fields Too Large", "application/json", b, sizeof b - 1);
            flush_out(a, c);
            return;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close(a, c);
            return;
        }
        if (n < 0)
            break;
        c->in_len += (size_t)n;
    }
    c->last_ms = clock_mono_ms();
    /* Answer every complete request in the buffer, in order. */
    for (;;) {
        struct h1_header hdrs[ADMIN_MAX_HEADERS];
        struct h1_limits lim = {.max_request_line = 4096,
                                .max_header_bytes = ADMIN_IN_MAX,
                                .max_headers = ADMIN_MAX_HEADERS,
                                .max_body = 0};
        struct h1_request req = {.headers = hdrs};
        int rc = h1_parse_request(c->in, c->in_len, &lim, &req);
        if (rc == 0)
            break;
        if (rc < 0) {
            c->close_after = true;
            char b[256];
            int bl = snprintf(b, sizeof b,
                              "{\"error\":{\"message\":\"%s\",\"type\":\"invalid_request_error\","
                              "\"param\":null,\"code\":\"bad_request\"}}",
                              h1_err_message(-rc));
            respond(c, h1_err_status(-rc), "Bad Request", "application/json", b, (size_t)bl);
            c->in_len = 0;
            break;
        }
        if (!(req.flags & H1_F_KEEP_ALIVE) || (req.flags & (H1_F_CHUNKED | H1_F_CONTENT_LENGTH)))
            c->close_after = true; /* no admin route takes a body */
        handle(a, c, &req);
        memmove(c->in, c->in + rc, c->in_len - (size_t)rc);
        c->in_len -= (size_t)rc;
        if (c->close_after)
            break;
    }
    if (c->out.len)
        flush_out(a, c);
}

static void on_accept(struct admin *a)
{
    for (;;) {
        int fd = accept4(a->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int idx = -1;
        for (int i = 0; i < ADMIN_MAX_CONNS; i++)
            if (!a->conns[i]) {
                idx = i;
                break;
            }
        struct admin_conn *c = idx >= 0 ? calloc(1, sizeof *c) : NULL;
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->idx = idx;
        c->last_ms = clock_mono_ms();
        sbuf_init(&c->out, ADMIN_OUT_MAX);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(c);
            continue;
        }
        a->conns[idx] = c;
    }
}

void admin_on_event(struct admin *a, void *tag, uint32_t events)
{
    if (tag == a) {
        on_accept(a);
        return;
    }
    struct admin_conn *c = tag;
    if (events & (EPOLLERR | EPOLLHUP)) {
        conn_close(a, c);
        return;
    }
    if (events & EPOLLOUT) {
        flush_out(a, c);
        return;
    }
    if (events & EPOLLIN)
        on_readable(a, c);
}

void admin_sweep(struct admin *a, uint64_t now_ms)
{
    for (int i = 0; i < ADMIN_MAX_CONNS; i++) {
        struct admin_conn *c = a->conns[i];
        if (c && now_ms - c->last_ms > ADMIN_IDLE_MS)
            conn_close(a, c);
    }
}

void admin_close_all(struct admin *a)
{
    for (int i = 0; i < ADMIN_MAX_CONNS; i++)
        if (a->conns[i])
            conn_close(a, a->conns[i]);
}
