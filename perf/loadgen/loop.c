/*
 * loop — epoll loop that drives llmload connections (see loop.h).
 */
#include "perf/loadgen/loop.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define RBUF_SIZE  ((size_t)64 * 1024)
#define MAX_EVENTS 512
#define SCAN_NS    (100 * 1000000LL) /* timeouts and backoffs are checked this often */
#define BACKOFF_NS (100 * 1000000LL) /* wait after a failed connect */

/* Slot states (struct conn.state).  S_IDLE: started, between sockets or streams.
 * S_PARKED: not wanted by the schedule now (may keep an idle socket). */
enum { S_OFF, S_IDLE, S_QUEUED, S_BACKOFF, S_PARKED, S_CONNECTING, S_SENDING, S_STREAM };

struct loop {
    const struct loop_config *cfg;
    struct loop_shared *sh;
    int epfd;
    struct conn *conns;
    uint32_t n;
    uint32_t first, step; /* slot i is connection first + i * step */
    uint32_t wanted;      /* --schedule: slots below this one are wanted now */
    int64_t next_sched;   /* --schedule: when the wanted count changes next */
    uint32_t next_ramp;   /* slots below this one have been started */
    uint32_t active;      /* started slots not yet S_OFF */
    uint32_t connecting;
    uint32_t *queue; /* ring of slots waiting for a connect slot */
    uint32_t q_cap;  /* its size: n, at least 1 */
    uint32_t q_head, q_len;
    bool stopping;
    int64_t grace_end;
    int64_t next_scan;
    int64_t t_end;
    int connect_errno;
    char *rbuf;
    struct stats stats;
    struct ts_series ts;
    struct verify_ctx *verify;
    struct conn_env env;
};

static void slot_next(struct loop *l, struct conn *c, int64_t now);
static void slot_connect(struct loop *l, struct conn *c, int64_t now);

struct loop *loop_new(const struct loop_config *cfg, struct loop_shared *sh, uint32_t first,
                      uint32_t step)
{
    struct loop *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->cfg = cfg;
    l->sh = sh;
    l->epfd = -1;
    l->first = first;
    l->step = step;
    stats_init(&l->stats);
    ts_init(&l->ts, 0);
    for (uint32_t g = first; g < cfg->concurrency; g += step)
        l->n++;
    l->q_cap = l->n ? l->n : 1;
    l->conns = calloc(l->q_cap, sizeof(*l->conns));
    l->queue = calloc(l->q_cap, sizeof(*l->queue));
    l->rbuf = malloc(RBUF_SIZE);
    if (!l->conns || !l->queue || !l->rbuf)
        goto fail;
    for (uint32_t i = 0; i < l->n; i++)
        conn_init(&l->conns[i], first + i * step);
    if (cfg->verify) {
        l->verify = malloc(sizeof(*l->verify));
        if (!l->verify)
            goto fail;
        verify_ctx_init(l->verify, cfg->expect_tokens, &sh->verify_printed, 10);
    }
    l->env.stats = &l->stats;
    l->env.verify = l->verify;
    l->env.ts = cfg->timeseries ? &l->ts : NULL;
    l->env.slo_ttft_ns = cfg->slo_ttft_ns;
    l->env.stream = cfg->stream;
    l->env.inflight = &sh->inflight;
    l->env.limits = (struct h1_limits){
        .max_request_line = 8192,
        .max_header_bytes = CONN_HEAD_MAX,
        .max_headers = CONN_MAX_HEADERS,
        .max_body = UINT64_MAX,
    };
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0)
        goto fail;
    return l;
fail : {
    int e = errno ? errno : ENOMEM;
    loop_free(l);
    errno = e;
    return NULL;
}
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    for (uint32_t i = 0; l->conns && i < l->n; i++) {
        if (l->conns[i].fd >= 0)
            close(l->conns[i].fd);
        conn_free(&l->conns[i]);
    }
    if (l->epfd >= 0)
        close(l->epfd);
    stats_free(&l->stats);
    ts_free(&l->ts);
    free(l->verify);
    free(l->conns);
    free(l->queue);
    free(l->rbuf);
    free(l);
}

struct stats *loop_stats(struct loop *l)
{
    return &l->stats;
}

struct ts_series *loop_timeseries(struct loop *l)
{
    return l->cfg->timeseries ? &l->ts : NULL;
}

const struct verify_ctx *loop_verify(const struct loop *l)
{
    return l->verify;
}

int64_t loop_end_time(const struct loop *l)
{
    return l->t_end;
}

int loop_connect_errno(const struct loop *l)
{
    return l->connect_errno;
}

static void slot_close(struct loop *l, struct conn *c)
{
    if (c->fd >= 0) {
        close(c->fd); /* also leaves the epoll set */
        c->fd = -1;
    }
    if (c->state == S_CONNECTING)
        l->connecting--;
    if (c->state >= S_CONNECTING)
        c->state = S_IDLE;
    c->reused = false;
}

static void slot_off(struct loop *l, struct conn *c)
{
    slot_close(l, c);
    if (c->state != S_OFF) {
        c->state = S_OFF;
        l->active--;
    }
}

/* Without --schedule every slot is always wanted. */
static bool slot_wanted(const struct loop *l, const struct conn *c)
{
    return !l->cfg->schedule || (uint32_t)(c - l->conns) < l->wanted;
}

/* Not wanted now: keep an idle kept-alive socket for when it is again. */
static void slot_park(struct loop *l, struct conn *c)
{
    if (c->fd < 0 || !c->reusable || c->state == S_CONNECTING)
        slot_close(l, c);
    c->state = S_PARKED;
}

static bool take_budget(struct loop *l)
{
    return !l->sh->limited || atomic_fetch_sub(&l->sh->remaining, 1) > 0;
}

static void stream_begin(struct loop *l, struct conn *c, int64_t now)
{
    l->stats.started++;
    if (l->env.ts)
        ts_started(l->env.ts, now);
    c->requests++;
    long long now_in = atomic_fetch_add_explicit(&l->sh->inflight, 1, memory_order_relaxed) + 1;
    long long peak = atomic_load_explicit(&l->sh->peak_inflight, memory_order_relaxed);
    while (now_in > peak &&
           !atomic_compare_exchange_weak_explicit(&l->sh->peak_inflight, &peak, now_in,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
    c->retrying = false;
    c->t_start = now;
    conn_begin(c, &l->env);
}

static void pump_queue(struct loop *l, int64_t now)
{
    while (l->q_len > 0 && l->connecting < l->cfg->connect_cap) {
        struct conn *c = &l->conns[l->queue[l->q_head]];
        l->q_head = (l->q_head + 1) % l->q_cap;
        l->q_len--;
        if (c->state == S_QUEUED && !slot_wanted(l, c))
            slot_park(l, c);
        else if (c->state == S_QUEUED)
            slot_connect(l, c, now);
    }
}

static void want_connect(struct loop *l, struct conn *c, int64_t now)
{
    if (l->connecting < l->cfg->connect_cap) {
        slot_connect(l, c, now);
        return;
    }
    c->state = S_QUEUED;
    l->queue[(l->q_head + l->q_len) % l->q_cap] = (uint32_t)(c - l->conns);
    l->q_len++;
}

static void connect_failed(struct loop *l, struct conn *c, int err, int64_t now)
{
    if (!l->connect_errno)
        l->connect_errno = err ? err : ECONNREFUSED;
    conn_end(c, &l->env, STATS_CONNECT);
    slot_close(l, c);
    if (l->stopping) {
        slot_off(l, c);
        return;
    }
    /* Without a pause a refused port would be hammered in a tight loop. */
    c->state = S_BACKOFF;
    c->t_wake = now + BACKOFF_NS;
}

static void slot_connect(struct loop *l, struct conn *c, int64_t now)
{
    const struct loop_config *cfg = l->cfg;
    if (!c->retrying) {
        if (!take_budget(l)) {
            slot_off(l, c);
            return;
        }
        stream_begin(l, c, now);
    }
    c->state = S_CONNECTING;
    l->connecting++;
    int fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        connect_failed(l, c, errno, now);
        return;
    }
    c->fd = fd;
    c->gen++;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (cfg->n_sources > 0) {
        const struct sockaddr_storage *src = &cfg->sources[c->index % cfg->n_sources];
        socklen_t sl =
            src->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        /* Let connect() pick the port per destination, not bind() per source. */
        (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, (const struct sockaddr *)src, sl) < 0) {
            connect_failed(l, c, errno, now);
            return;
        }
    }
    if (connect(fd, (const struct sockaddr *)&cfg->addr, cfg->addr_len) < 0 &&
        errno != EINPROGRESS) {
        connect_failed(l, c, errno, now);
        return;
    }
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.u64 = ((uint64_t)c->gen << 32) | (uint64_t)(c - l->conns),
    };
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        connect_failed(l, c, errno, now);
}

/* The socket broke while the stream was running. */
static void stream_broken(struct loop *l, struct conn *c, bool reset, int64_t now)
{
    int rc = conn_eof(c, &l->env, reset, now);
    slot_close(l, c);
    if (rc == CONN_RETRY) {
        l->stats.retries++;
        c->retrying = true;
        conn_begin(c, &l->env);
        slot_connect(l, c, now); /* past the cap: the stream has started already */
        return;
    }
    slot_next(l, c, now);
}

static void send_request(struct loop *l, struct conn *c)
{
    const struct loop_config *cfg = l->cfg;
    while (c->wr_off < cfg->req_len) {
        ssize_t n = send(c->fd, cfg->req + c->wr_off, cfg->req_len - c->wr_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->wr_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        stream_broken(l, c, true, stats_now_ns());
        return;
    }
    conn_sent(c, stats_now_ns());
    c->state = S_STREAM;
}

/* Starts the slot's next stream, or retires the slot. */
static void slot_next(struct loop *l, struct conn *c, int64_t now)
{
    if (l->stopping || (l->cfg->once && c->requests > 0)) {
        slot_off(l, c);
        return;
    }
    if (!slot_wanted(l, c)) {
        slot_park(l, c);
        return;
    }
    if (c->retry_after_ms && l->cfg->retry_after) {
        /* The server asked for a pause: the same socket, later. */
        c->t_wake = now + (int64_t)c->retry_after_ms * 1000000;
        c->retry_after_ms = 0;
        if (c->fd < 0 || !c->reusable)
            slot_close(l, c);
        c->state = S_BACKOFF;
        return;
    }
    if (c->fd >= 0 && c->reusable) {
        if (!take_budget(l)) {
            slot_off(l, c);
            return;
        }
        stream_begin(l, c, now);
        c->reused = true;
        c->state = S_SENDING;
        c->wr_off = 0;
        send_request(l, c);
        return;
    }
    slot_close(l, c);
    want_connect(l, c, now);
}

static void on_readable(struct loop *l, struct conn *c, uint32_t events)
{
    bool hup = (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    for (;;) {
        ssize_t n = read(c->fd, l->rbuf, RBUF_SIZE);
        int64_t now = stats_now_ns();
        if (n > 0) {
            l->stats.bytes_in += (uint64_t)n;
            if (conn_feed(c, &l->env, l->rbuf, (size_t)n, now) == CONN_ENDED) {
                if (!c->reusable)
                    slot_close(l, c);
                slot_next(l, c, now);
                return;
            }
            /* A short read drained the socket: edge-triggered epoll reports new data. */
            if ((size_t)n < RBUF_SIZE && !hup)
                return;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        stream_broken(l, c, n < 0, now);
        return;
    }
}

static int socket_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return errno;
    return err;
}

static void on_event(struct loop *l, const struct epoll_event *ev)
{
    uint32_t idx = (uint32_t)ev->data.u64;
    uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
    if (idx >= l->n)
        return;
    struct conn *c = &l->conns[idx];
    if (c->gen != gen || c->fd < 0)
        return; /* for a socket closed earlier in this batch */
    uint32_t e = ev->events;
    if (c->state == S_CONNECTING) {
        int64_t now = stats_now_ns();
        if (e & (EPOLLERR | EPOLLHUP)) {
            connect_failed(l, c, socket_error(c->fd), now);
            pump_queue(l, now);
            return;
        }
        if (!(e & EPOLLOUT))
            return;
        l->connecting--;
        l->stats.connects++;
        c->state = S_SENDING;
        c->wr_off = 0;
        send_request(l, c);
        pump_queue(l, now);
    } else if (c->state == S_SENDING) {
        send_request(l, c);
    }
    if (c->state == S_STREAM && (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        on_readable(l, c, e);
}

static int64_t ramp_time(const struct loop *l, uint32_t slot)
{
    const struct loop_config *cfg = l->cfg;
    if (cfg->ramp_ns <= 0 || cfg->concurrency == 0)
        return l->sh->t0;
    return l->sh->t0 + (int64_t)((__int128)cfg->ramp_ns * l->conns[slot].index / cfg->concurrency);
}

/* Timeouts, backoffs; every SCAN_NS. */
static void scan(struct loop *l, int64_t now)
{
    const struct loop_config *cfg = l->cfg;
    for (uint32_t i = 0; i < l->n; i++) {
        struct conn *c = &l->conns[i];
        switch (c->state) {
        case S_BACKOFF:
            if (now >= c->t_wake)
                slot_next(l, c, now);
            break;
        case S_CONNECTING:
            if (now - c->t_start > cfg->timeout_ns)
                connect_failed(l, c, ETIMEDOUT, now);
            break;
        case S_SENDING:
        case S_STREAM:
            if (now - c->t_start > cfg->timeout_ns) {
                conn_end(c, &l->env, STATS_TIMEOUT);
                slot_close(l, c);
                slot_next(l, c, now);
            }
            break;
        default:
            break;
        }
    }
    pump_queue(l, now);
}

static void begin_stop(struct loop *l, int64_t now)
{
    l->stopping = true;
    l->grace_end = now + l->cfg->grace_ns;
    l->next_ramp = l->n;
    l->q_len = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        struct conn *c = &l->conns[i];
        if (c->state == S_QUEUED || c->state == S_BACKOFF || c->state == S_PARKED)
            slot_off(l, c);
    }
}

/* The grace time is over: whatever still runs has timed out. */
static void abort_all(struct loop *l)
{
    for (uint32_t i = 0; i < l->n; i++) {
        struct conn *c = &l->conns[i];
        if (c->state == S_CONNECTING || c->state == S_SENDING || c->state == S_STREAM)
            conn_end(c, &l->env, STATS_TIMEOUT);
        slot_off(l, c);
    }
}

/* --schedule: the wanted count at <now>; wakes the parked slots now wanted. */
static void follow_schedule(struct loop *l, int64_t now)
{
    const struct ts_schedule *sch = l->cfg->schedule;
    int64_t t = now - l->sh->t0;
    uint32_t target = ts_schedule_at(sch, t);
    uint32_t want = target > l->first ? (target - l->first + l->step - 1) / l->step : 0;
    if (want > l->n)
        want = l->n;
    int64_t next = ts_schedule_next(sch, t);
    l->next_sched = next == INT64_MAX ? INT64_MAX : l->sh->t0 + next;
    uint32_t was = l->wanted;
    l->wanted = want;
    for (uint32_t i = was; i < want && !l->stopping; i++)
        if (l->conns[i].state == S_PARKED)
            slot_next(l, &l->conns[i], now);
}

int loop_run(struct loop *l)
{
    const struct loop_config *cfg = l->cfg;
    struct epoll_event evs[MAX_EVENTS];
    int64_t deadline = cfg->duration_ns >= 0 ? l->sh->t0 + cfg->duration_ns : INT64_MAX;
    l->next_scan = l->sh->t0 + SCAN_NS;
    l->ts.t0 = l->sh->t0;
    l->next_sched = INT64_MAX;
    if (cfg->schedule) {
        /* Every slot takes part from the start, parked until wanted. */
        for (uint32_t i = 0; i < l->n; i++)
            l->conns[i].state = S_PARKED;
        l->active = l->n;
        l->next_ramp = l->n;
        l->next_sched = l->sh->t0;
    }
    for (;;) {
        int64_t now = stats_now_ns();
        int intr = l->sh->interrupted ? *l->sh->interrupted : 0;
        if (!l->stopping && (now >= deadline || intr >= 1))
            begin_stop(l, now);
        if (l->stopping && (now >= l->grace_end || intr >= 2))
            abort_all(l);
        if (!l->stopping && now >= l->next_sched)
            follow_schedule(l, now);
        if (l->env.ts)
            ts_inflight(l->env.ts, now,
                        atomic_load_explicit(&l->sh->inflight, memory_order_relaxed));
        while (l->next_ramp < l->n && ramp_time(l, l->next_ramp) <= now) {
            struct conn *c = &l->conns[l->next_ramp++];
            l->active++;
            c->state = S_IDLE;
            slot_next(l, c, now);
        }
        if (now >= l->next_scan) {
            scan(l, now);
            l->next_scan = now + SCAN_NS;
        }
        if (l->active == 0 && l->next_ramp == l->n)
            break;
        int64_t wake = l->next_scan;
        if (l->next_ramp < l->n && ramp_time(l, l->next_ramp) < wake)
            wake = ramp_time(l, l->next_ramp);
        if (!l->stopping && deadline < wake)
            wake = deadline;
        if (!l->stopping && l->next_sched < wake)
            wake = l->next_sched;
        if (l->stopping && l->grace_end < wake)
            wake = l->grace_end;
        int64_t ms = wake > now ? (wake - now + 999999) / 1000000 : 0;
        int n = epoll_wait(l->epfd, evs, MAX_EVENTS, (int)ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            abort_all(l);
            l->t_end = stats_now_ns();
            return -e;
        }
        for (int i = 0; i < n; i++)
            on_event(l, &evs[i]);
    }
    l->t_end = stats_now_ns();
    return 0;
}
