/*
 * server — llmsim's event loop, connections and plain endpoints (see server.h).
 *
 * Each connection is registered once, edge-triggered, for
 * EPOLLIN | EPOLLOUT | EPOLLRDHUP and never modified again: reads go until
 * the socket is drained, EPOLLOUT edges only come after a write hit EAGAIN,
 * and EPOLLRDHUP reports a client's close at once even while llmsim is not
 * reading (an abort is counted in the same loop turn).  Within a turn, I/O
 * events are handled before timers, so a close that races a token deadline
 * is an abort, not one more token.
 */
#include "perf/llmsim/server.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "perf/llmsim/api.h"
#include "perf/llmsim/gen.h"

#define EVENTS_MAX    1024
#define ACCEPT_BURST  256
#define READ_MIN_ROOM 1024
#define READ_FIRST    4096
#define IN_LIMIT      (LLMSIM_MAX_HEAD + LLMSIM_MAX_BODY + 2 * LLMSIM_PIPELINE_MAX)

/* Addresses used as epoll tags for the two non-connection descriptors. */
static char listen_tag;
static char signal_tag;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t real_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

/* --- output ------------------------------------------------------------ */

int conn_send(struct server *s, struct conn *c, const char *p, size_t n)
{
    (void)s;
    if (c->flags & CF_ERR)
        return -EPIPE;
    if (bbuf_pending(&c->out) == 0 && c->gate == SIZE_MAX) {
        for (;;) {
            ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
            if (w >= 0) {
                if ((size_t)w == n)
                    return 0;
                p += w;
                n -= (size_t)w;
                break;
            }
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            c->flags |= CF_ERR | CF_EOF;
            return -EPIPE;
        }
    }
    bbuf_put(&c->out, p, n);
    if (c->out.failed) {
        c->flags |= CF_ERR;
        return -ENOMEM;
    }
    return 0;
}

int conn_flush(struct server *s, struct conn *c)
{
    (void)s;
    while (bbuf_pending(&c->out) > 0 && c->gate > 0) {
        size_t n = bbuf_pending(&c->out);
        if (n > c->gate)
            n = c->gate;
        ssize_t w = send(c->fd, c->out.p + c->out.off, n, MSG_NOSIGNAL);
        if (w > 0) {
            bbuf_consume(&c->out, (size_t)w);
            if (c->gate != SIZE_MAX)
                c->gate -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        c->flags |= CF_ERR | CF_EOF;
        return -EPIPE;
    }
    /* Keep a small queue allocated for the next time; give back a big one. */
    if (bbuf_pending(&c->out) == 0 && c->out.cap > LLMSIM_PIPELINE_MAX)
        bbuf_free(&c->out);
    return 0;
}

/* The last byte of a response left: back to reading, or close.  Like
 * uvicorn, an idle keep-alive connection is closed after keepalive_ns; the
 * timer is dropped as soon as request bytes arrive. */
static void response_sent(struct server *s, struct conn *c)
{
    if (!(c->flags & CF_KEEP_ALIVE) || (c->flags & CF_EOF)) {
        conn_close(s, c, false);
        return;
    }
    c->phase = PH_READ;
    if (s->keepalive_ns && bbuf_pending(&c->in) == 0)
        theap_set(&s->timers, &c->timer, s->now + s->keepalive_ns);
}

void conn_response_done(struct server *s, struct conn *c)
{
    c->flags &= ~(CF_STREAM | CF_CHAT | CF_USAGE | CF_BLOCKED | CF_CONTINUE);
    c->gate = SIZE_MAX;
    if (bbuf_pending(&c->out) > 0) {
        if (conn_flush(s, c) < 0) {
            conn_close(s, c, false);
            return;
        }
        if (bbuf_pending(&c->out) > 0) {
            c->phase = PH_FLUSH;
            return;
        }
    }
    response_sent(s, c);
}

void conn_reply(struct server *s, struct conn *c, int status, const char *extra, const char *ctype,
                bool head_only)
{
    if (s->tmp.failed) {
        /* Only a non-streaming answer of millions of tokens gets here. */
        static const char msg[] = "llmsim: the response is over the 64 MiB output limit";
        conn_reply_error(s, c, 500, NULL, msg, sizeof(msg) - 1);
        return;
    }
    bbuf_reset(&s->hdr);
    resp_head(&s->hdr, &s->date, status, extra, ctype, s->tmp.len, (c->flags & CF_KEEP_ALIVE) != 0);
    if (s->hdr.failed) {
        conn_close(s, c, false);
        return;
    }
    /* uvicorn writes the head and the body separately. */
    if (conn_send(s, c, s->hdr.p, s->hdr.len) < 0) {
        conn_close(s, c, false);
        return;
    }
    if (!head_only && resp_status_has_body(status) && s->tmp.len > 0 &&
        conn_send(s, c, s->tmp.p, s->tmp.len) < 0) {
        conn_close(s, c, false);
        return;
    }
    conn_response_done(s, c);
}

void conn_reply_error(struct server *s, struct conn *c, int status, const char *extra,
                      const char *msg, size_t msg_len)
{
    bbuf_reset(&s->tmp);
    resp_error_body(&s->tmp, status, resp_error_type(status), msg, msg_len);
    conn_reply(s, c, status, extra, "application/json", false);
}

/* --- connections ------------------------------------------------------- */

void conn_close(struct server *s, struct conn *c, bool rst)
{
    if (c->phase == PH_CLOSED)
        return;
    if (c->flags & CF_ACTIVE)
        gen_abort(s, c);
    theap_cancel(&s->timers, &c->timer);
    if (rst) {
        struct linger l = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
    close(c->fd);
    c->fd = -1;
    bbuf_free(&c->in);
    bbuf_free(&c->out);
    c->phase = PH_CLOSED;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    s->n_conns--;
    c->next_dead = s->dead;
    s->dead = c;
}

static void conn_new(struct server *s, int fd)
{
    if (theap_reserve(&s->timers, s->n_conns + 1) < 0) {
        close(fd);
        return;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->phase = PH_READ;
    c->flags = CF_KEEP_ALIVE;
    theap_node_init(&c->timer);
    sim_seq_init(&c->seq);
    bbuf_init(&c->in, IN_LIMIT);
    bbuf_init(&c->out, LLMSIM_OUT_MAX);
    c->gate = SIZE_MAX;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        close(fd);
        free(c);
        return;
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
}

static void on_accept(struct server *s)
{
    for (int i = 0; i < ACCEPT_BURST; i++) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if ((errno == EMFILE || errno == ENFILE) && s->spare_fd >= 0) {
                /* Out of descriptors: accept and drop one so the listener
                 * does not stay readable forever. */
                close(s->spare_fd);
                fd = accept(s->lfd, NULL, NULL);
                if (fd >= 0)
                    close(fd);
                s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (!s->o->quiet)
                    fprintf(stderr, "llmsim: out of file descriptors, dropped a connection\n");
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn_new(s, fd);
    }
}

/* Reads what the socket has, within the input bounds. */
static void conn_read(struct server *s, struct conn *c)
{
    for (;;) {
        if (c->flags & CF_EOF)
            return;
        if (c->phase != PH_READ && bbuf_pending(&c->in) >= LLMSIM_PIPELINE_MAX) {
            c->flags |= CF_READ_FULL;
            return;
        }
        /* 4 KiB fits a typical request; big bodies double from there. */
        if (c->in.cap - c->in.len < READ_MIN_ROOM &&
            bbuf_reserve(&c->in, c->in.cap ? c->in.cap : READ_FIRST) < 0) {
            c->flags |= CF_READ_FULL;
            return;
        }
        size_t room = c->in.cap - c->in.len;
        ssize_t n = recv(c->fd, c->in.p + c->in.len, room, 0);
        if (n > 0) {
            c->in.len += (size_t)n;
            if (c->phase == PH_READ)
                theap_cancel(&s->timers, &c->timer);
            /* A short read drained the socket; a later arrival is a new edge. */
            if ((size_t)n < room)
                return;
            continue;
        }
        if (n == 0) {
            c->flags |= CF_EOF;
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            c->flags |= CF_EOF | CF_ERR;
        return;
    }
}

/* --- requests ---------------------------------------------------------- */

static void reply_parse_error(struct server *s, struct conn *c, int err)
{
    int status = h1_err_status(err);
    c->flags &= ~CF_KEEP_ALIVE;
    bbuf_reset(&s->tmp);
    bbuf_puts(&s->tmp, status == 400 ? "Invalid HTTP request received." : h1_err_message(err));
    if (status == 413)
        conn_reply_error(s, c, 413, NULL, "Request body too large.", 23);
    else
        conn_reply(s, c, status, NULL, "text/plain; charset=utf-8", false);
}

static void maybe_continue(struct server *s, struct conn *c, const struct h1_request *req)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (!(req->flags & H1_F_EXPECT_CONTINUE) || (c->flags & CF_CONTINUE))
        return;
    c->flags |= CF_CONTINUE;
    if (conn_send(s, c, cont, sizeof(cont) - 1) < 0)
        c->flags |= CF_EOF;
}

/* Decodes a chunked body in place, behind the head: payload is moved down
 * to the end of the payload so far, and the consumed framing is squeezed
 * out so the input holds only head + payload + an undecoded tail.
 * 1 when complete (*body_len, *consumed set), 0 for more, or -enum h1_err. */
static int decode_chunked(struct conn *c, size_t head, size_t *body_len, size_t *consumed)
{
    char *base = c->in.p + c->in.off;
    size_t avail = bbuf_pending(&c->in);
    if (!(c->flags & CF_CHUNKING)) {
        h1_chunked_init(&c->chunked, true);
        c->body_raw = c->body_dec = head;
        c->flags |= CF_CHUNKING;
    }
    int rc = 0;
    while (c->body_raw < avail) {
        size_t used = 0, dlen = 0;
        const char *data = NULL;
        rc = h1_chunked_feed(&c->chunked, base + c->body_raw, avail - c->body_raw, &used, &data,
                             &dlen);
        if (rc < 0) {
            c->flags &= ~CF_CHUNKING;
            return -H1_ERR_BAD_CHUNK;
        }
        if (dlen > 0) {
            if (c->body_dec - head + dlen > LLMSIM_MAX_BODY) {
                c->flags &= ~CF_CHUNKING;
                return -H1_ERR_BODY_TOO_LARGE;
            }
            memmove(base + c->body_dec, data, dlen);
            c->body_dec += dlen;
        }
        c->body_raw += used;
        if (rc == 1 || used == 0)
            break;
    }
    if (rc == 1) {
        *body_len = c->body_dec - head;
        *consumed = c->body_raw;
        c->flags &= ~CF_CHUNKING;
        return 1;
    }
    if (c->body_raw > c->body_dec) {
        memmove(base + c->body_dec, base + c->body_raw, avail - c->body_raw);
        c->in.len -= c->body_raw - c->body_dec;
        c->body_raw = c->body_dec;
    }
    return 0;
}

static void fill_counters(const struct server *s, struct resp_counters *out)
{
    *out = s->cnt;
    out->running = s->sim.running;
    out->waiting = s->sim.waiting;
    out->peak = s->sim.peak;
    out->connections = s->n_conns;
}

static void dispatch_generation(struct server *s, struct conn *c, bool chat,
                                const struct h1_request *req, const char *body, size_t body_len)
{
    struct req_overrides ov;
    struct req_error err;
    s->cnt.requests++;
    if (req_overrides(req, &ov, &err) < 0) {
        conn_reply_error(s, c, err.status, NULL, err.msg, err.msg_len);
        return;
    }
    struct fault f = ov.has_fault ? ov.fault : server_default_fault(s);
    if (f.kind != FAULT_NONE)
        s->cnt.faults++;
    if (gen_immediate_fault(s, c, &f))
        return;
    struct req_gen g;
    if (req_parse_body(chat, body, body_len, &s->req_models, &g, &err) < 0) {
        conn_reply_error(s, c, err.status, NULL, err.msg, err.msg_len);
        return;
    }
    gen_start(s, c, chat, &g, &ov, &f);
}

static void dispatch(struct server *s, struct conn *c, const struct h1_request *req,
                     const char *body, size_t body_len)
{
    if (s->o->api != LLMSIM_API_OPENAI && api_dispatch(s, c, req, body, body_len))
        return;
    bool head_only = false;
    const char *allow = NULL;
    enum req_route rt = req_route(req, &head_only, &allow);
    struct resp_counters cnt;
    bbuf_reset(&s->tmp);
    switch (rt) {
    case ROUTE_CHAT:
    case ROUTE_COMPLETIONS:
        dispatch_generation(s, c, rt == ROUTE_CHAT, req, body, body_len);
        return;
    case ROUTE_HEALTH:
        conn_reply(s, c, 200, NULL, NULL, head_only);
        return;
    case ROUTE_MODELS: {
        char hex[32 * LLMSIM_MAX_MODELS];
        for (uint32_t i = 0; i < s->o->n_models; i++)
            resp_uuid_hex(&s->rng, hex + 32 * i);
        resp_models_body(&s->tmp, s->models, s->o->n_models, (uint64_t)s->date.sec,
                         s->o->max_model_len, hex);
        conn_reply(s, c, 200, NULL, "application/json", head_only);
        return;
    }
    case ROUTE_STATS:
        fill_counters(s, &cnt);
        resp_stats_body(&s->tmp, &cnt);
        conn_reply(s, c, 200, NULL, "application/json", head_only);
        return;
    case ROUTE_METRICS:
        fill_counters(s, &cnt);
        resp_metrics_body(&s->tmp, &cnt, s->models, s->sim.model_running, s->sim.model_waiting,
                          s->o->n_models);
        conn_reply(s, c, 200, NULL, "text/plain; version=0.0.4; charset=utf-8", head_only);
        return;
    case ROUTE_BAD_METHOD:
        resp_detail_body(&s->tmp, "Method Not Allowed");
        conn_reply(s, c, 405, allow, "application/json", false);
        return;
    case ROUTE_NOT_FOUND:
    default:
        resp_detail_body(&s->tmp, "Not Found");
        conn_reply(s, c, 404, NULL, "application/json", false);
        return;
    }
}

/* Answers every complete request in the input, while the connection is
 * between requests. */
static void conn_process(struct server *s, struct conn *c)
{
    while (c->phase == PH_READ) {
        size_t avail = bbuf_pending(&c->in);
        if (avail == 0) {
            /* Idle connections hold no input memory. */
            bbuf_free(&c->in);
            return;
        }
        const char *buf = c->in.p + c->in.off;
        struct h1_header hdrs[LLMSIM_MAX_HEADERS];
        struct h1_request req;
        memset(&req, 0, sizeof(req));
        req.headers = hdrs;
        int r = h1_parse_request(buf, avail, &s->limits, &req);
        if (r == 0)
            return;
        if (r < 0) {
            reply_parse_error(s, c, -r);
            return;
        }
        size_t head = (size_t)r, consumed = head, body_len = 0;
        if (req.flags & H1_F_CHUNKED) {
            int d = decode_chunked(c, head, &body_len, &consumed);
            if (d < 0) {
                reply_parse_error(s, c, -d);
                return;
            }
            if (d == 0) {
                maybe_continue(s, c, &req);
                return;
            }
            buf = c->in.p + c->in.off; /* unchanged, but re-read after the moves */
        } else if ((req.flags & H1_F_CONTENT_LENGTH) && req.content_length > 0) {
            if (req.content_length > avail - head) {
                maybe_continue(s, c, &req);
                /* Room for the whole body at once (the parser bounded it). */
                (void)bbuf_reserve(&c->in, head + (size_t)req.content_length - avail);
                return;
            }
            body_len = (size_t)req.content_length;
            consumed = head + body_len;
        }
        if (req.flags & H1_F_KEEP_ALIVE)
            c->flags |= CF_KEEP_ALIVE;
        else
            c->flags &= ~CF_KEEP_ALIVE;
        c->flags &= ~CF_CONTINUE;
        /* Consuming only moves offsets, so buf stays valid during dispatch. */
        bbuf_consume(&c->in, consumed);
        theap_cancel(&s->timers, &c->timer);
        dispatch(s, c, &req, buf + head, body_len);
        /* A running stream holds no input memory either. */
        if (bbuf_pending(&c->in) == 0)
            bbuf_free(&c->in);
    }
}

/* Does whatever the connection's state allows now: answer buffered
 * requests, resume reading, act on the client's close. */
static void conn_advance(struct server *s, struct conn *c)
{
    while (c->phase == PH_READ) {
        conn_process(s, c);
        if (c->phase != PH_READ || !(c->flags & CF_READ_FULL))
            break;
        c->flags &= ~CF_READ_FULL;
        size_t before = bbuf_pending(&c->in);
        conn_read(s, c);
        if (bbuf_pending(&c->in) == before)
            break;
    }
    if (c->phase == PH_CLOSED || !(c->flags & CF_EOF))
        return;
    /* The client is gone.  An open request is an abort; a finished answer
     * still draining goes on while the socket takes it (a half-close). */
    if (!(c->flags & CF_ACTIVE) && !(c->flags & CF_ERR) && c->phase == PH_FLUSH &&
        bbuf_pending(&c->out) > 0) {
        c->flags &= ~CF_KEEP_ALIVE;
        return;
    }
    conn_close(s, c, false);
}

static void conn_on_event(struct server *s, struct conn *c, uint32_t ev)
{
    if (c->phase == PH_CLOSED)
        return;
    if ((ev & EPOLLOUT) && bbuf_pending(&c->out) > 0) {
        if (conn_flush(s, c) < 0) {
            conn_close(s, c, false);
            return;
        }
        if (bbuf_pending(&c->out) == 0) {
            if (c->phase == PH_GEN)
                gen_on_drained(s, c);
            else if (c->phase == PH_FLUSH)
                response_sent(s, c);
            if (c->phase == PH_CLOSED)
                return;
        }
    }
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        conn_read(s, c);
        if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            c->flags |= CF_EOF;
        if (ev & (EPOLLHUP | EPOLLERR))
            c->flags |= CF_ERR;
    }
    conn_advance(s, c);
}

static void run_timers(struct server *s)
{
    for (;;) {
        struct theap_node *t = theap_peek(&s->timers);
        if (!t || t->due > s->now)
            return;
        theap_cancel(&s->timers, t);
        struct conn *c = (struct conn *)(void *)((char *)t - offsetof(struct conn, timer));
        if (c->phase == PH_READ) {
            /* The keep-alive timeout of an idle connection. */
            conn_close(s, c, false);
            continue;
        }
        gen_on_timer(s, c);
        if (c->phase == PH_READ)
            conn_advance(s, c);
    }
}

static void free_dead(struct server *s)
{
    while (s->dead) {
        struct conn *c = s->dead;
        s->dead = c->next_dead;
        free(c);
    }
}

static void on_signal(struct server *s)
{
    struct signalfd_siginfo si;
    while (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        s->stop = true;
        s->stop_signal = (int)si.ssi_signo;
        s->stop_pid = (int)si.ssi_pid;
    }
}

int server_run(struct server *s)
{
    static struct epoll_event evs[EVENTS_MAX];
    bool have_pwait2 = true;
    while (!s->stop) {
        s->now = mono_ns();
        struct theap_node *t = theap_peek(&s->timers);
        uint64_t wait_ns = 0;
        struct timespec ts, *tsp = NULL;
        if (t) {
            wait_ns = t->due > s->now ? t->due - s->now : 0;
            ts.tv_sec = (time_t)(wait_ns / 1000000000u);
            ts.tv_nsec = (long)(wait_ns % 1000000000u);
            tsp = &ts;
        }
        int n;
        if (have_pwait2) {
            n = epoll_pwait2(s->epfd, evs, EVENTS_MAX, tsp, NULL);
            if (n < 0 && errno == ENOSYS) {
                have_pwait2 = false;
                continue;
            }
        } else {
            int ms = tsp ? (int)((wait_ns + 999999u) / 1000000u) : -1;
            n = epoll_wait(s->epfd, evs, EVENTS_MAX, ms);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        s->now = mono_ns();
        resp_date_update(&s->date, real_sec());
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &listen_tag)
                on_accept(s);
            else if (p == &signal_tag)
                on_signal(s);
            else
                conn_on_event(s, p, evs[i].events);
        }
        run_timers(s);
        free_dead(s);
    }
    return 0;
}

/* --- set-up ------------------------------------------------------------ */

static void prom_escape(struct bbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            bbuf_puts(b, "\\\\");
        else if (s[i] == '"')
            bbuf_puts(b, "\\\"");
        else if (s[i] == '\n')
            bbuf_puts(b, "\\n");
        else
            bbuf_put(b, s + i, 1);
    }
}

static int init_models(struct server *s)
{
    const struct llmsim_opts *o = s->o;
    /* Escaping at most multiplies by 6; reserve once so pointers stay put. */
    size_t need = 0;
    for (uint32_t i = 0; i < o->n_models; i++)
        need += 12 * strlen(o->models[i]) + 2;
    bbuf_init(&s->model_text, need + 16);
    if (bbuf_reserve(&s->model_text, need + 16) < 0)
        return -ENOMEM;
    size_t max_json = 0;
    for (uint32_t i = 0; i < o->n_models; i++) {
        const char *name = o->models[i];
        size_t len = strlen(name);
        s->model_names[i] = name;
        s->model_lens[i] = (uint32_t)len;
        size_t at = s->model_text.len;
        bbuf_json_esc(&s->model_text, name, len);
        s->models[i].json = s->model_text.p + at;
        s->models[i].json_len = (uint32_t)(s->model_text.len - at);
        at = s->model_text.len;
        prom_escape(&s->model_text, name, len);
        s->models[i].prom = s->model_text.p + at;
        s->models[i].prom_len = (uint32_t)(s->model_text.len - at);
        if (s->models[i].json_len > max_json)
            max_json = s->models[i].json_len;
    }
    if (s->model_text.failed)
        return -ENOMEM;
    s->req_models.names = s->model_names;
    s->req_models.lens = s->model_lens;
    s->req_models.n = o->n_models;
    s->ev_cap = RESP_EVENT_MAX(max_json);
    s->ev = malloc(s->ev_cap);
    return s->ev ? 0 : -ENOMEM;
}

int server_init(struct server *s, const struct llmsim_opts *o, int lfd)
{
    memset(s, 0, sizeof(*s));
    s->o = o;
    s->lfd = lfd;
    s->epfd = s->sigfd = s->spare_fd = -1;
    s->limits.max_request_line = 16384;
    s->limits.max_header_bytes = LLMSIM_MAX_HEAD;
    s->limits.max_headers = LLMSIM_MAX_HEADERS;
    s->limits.max_body = LLMSIM_MAX_BODY;
    struct sim_params sp = {
        .max_batch = o->max_batch,
        .batch_slowdown = o->batch_slowdown,
        .prefill_slowdown = o->prefill_slowdown,
        .prefill_ns_per_token = (uint64_t)llround(o->prefill_us * 1e3),
    };
    sim_init(&s->sim, &sp);
    if (pcache_init(&s->pcache, o->prefix_cache_blocks) < 0)
        return -ENOMEM;
    theap_init(&s->timers);
    s->ttft_ns = (uint64_t)llround(o->ttft_ms * 1e6);
    s->itl_ns = (uint64_t)llround(o->itl_ms * 1e6);
    s->keepalive_ns = (uint64_t)llround(o->keepalive_s * 1e9);
    bbuf_init(&s->tmp, LLMSIM_OUT_MAX);
    bbuf_init(&s->hdr, 64u << 10);
    resp_date_update(&s->date, real_sec());
    s->start_sec = s->date.sec;
    if (getrandom(&s->rng, sizeof(s->rng), 0) != (ssize_t)sizeof(s->rng))
        s->rng = mono_ns() ^ ((uint64_t)getpid() << 32);

    int rc = init_models(s);
    if (rc < 0)
        return rc;
    if (theap_reserve(&s->timers, 1024) < 0)
        return -ENOMEM;

    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -errno;
    s->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->sigfd < 0)
        return -errno;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listen_tag};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &ev) < 0)
        return -errno;
    ev.data.ptr = &signal_tag;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->sigfd, &ev) < 0)
        return -errno;
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return 0;
}

void server_fini(struct server *s)
{
    while (s->conns)
        conn_close(s, s->conns, false);
    free_dead(s);
    if (s->lfd >= 0)
        close(s->lfd);
    if (s->sigfd >= 0)
        close(s->sigfd);
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->spare_fd >= 0)
        close(s->spare_fd);
    s->lfd = s->sigfd = s->epfd = s->spare_fd = -1;
    theap_fini(&s->timers);
    pcache_free(&s->pcache);
    free(s->ev);
    s->ev = NULL;
    bbuf_free(&s->tmp);
    bbuf_free(&s->hdr);
    bbuf_free(&s->model_text);
}

struct fault server_default_fault(struct server *s)
{
    struct fault none = {0};
    if (s->o->fault.kind == FAULT_NONE || s->o->fault_rate >= 1.0)
        return s->o->fault;
    if (!s->fault_rng)
        s->fault_rng = 0x9e3779b97f4a7c15ULL; /* the same run faults the same requests */
    s->fault_rng ^= s->fault_rng << 13;
    s->fault_rng ^= s->fault_rng >> 7;
    s->fault_rng ^= s->fault_rng << 17;
    double u = (double)(s->fault_rng >> 11) / 9007199254740992.0;
    return u < s->o->fault_rate ? s->o->fault : none;
}
