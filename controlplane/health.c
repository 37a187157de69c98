/* health — see health.h. */
#include "controlplane/health.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shared/clock.h"
#include "shared/config.h"
#include "shared/log.h"
#include "shared/shm.h"

enum hc_state {
    HC_IDLE = 0,
    HC_CONNECTING,
    HC_READING,
};

struct hc_check {
    const struct config_backend *be;
    int shm_idx;
    int fd;
    uint8_t state; /* enum hc_state */
    uint64_t next_ms;
    uint64_t deadline_ms;
    uint32_t passes; /* in a row */
    uint32_t fails;  /* in a row */
    char req[256];
    size_t req_len;
    char buf[64]; /* enough for the status line */
    size_t len;
};

int health_init(struct health *h, int ep, const struct config *cfg, struct shm *shm)
{
    memset(h, 0, sizeof *h);
    h->ep = ep;
    h->cfg = cfg;
    h->shm = shm;
    if (!cfg->health_interval_ms || !cfg->n_backends)
        return 0;
    h->checks = calloc(cfg->n_backends, sizeof *h->checks);
    if (!h->checks)
        return -ENOMEM;
    h->n = cfg->n_backends;
    uint64_t now = clock_mono_ms();
    for (unsigned i = 0; i < h->n; i++) {
        struct hc_check *c = &h->checks[i];
        c->be = &cfg->backends[i];
        c->shm_idx = shm_backend_find(shm, c->be->name);
        c->fd = -1;
        /* spread over the first interval, not all at once */
        c->next_ms = now + (uint64_t)cfg->health_interval_ms * i / h->n;
        int n = snprintf(c->req, sizeof c->req,
                         "GET /health HTTP/1.1\r\nHost: %s\r\nUser-Agent: sluice-health\r\n"
                         "Connection: close\r\n\r\n",
                         c->be->host);
        c->req_len = n > 0 && (size_t)n < sizeof c->req ? (size_t)n : 0;
    }
    return 0;
}

bool health_owns(const struct health *h, const void *tag)
{
    const struct hc_check *c = tag;
    return h->n && c >= h->checks && c < h->checks + h->n;
}

static void end_check(struct health *h, struct hc_check *c)
{
    if (c->fd >= 0) {
        epoll_ctl(h->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = HC_IDLE;
    c->len = 0;
}

static struct shm_backend *entry(struct health *h, const struct hc_check *c)
{
    return c->shm_idx < 0 ? NULL : &h->shm->seg->tables.backends[c->shm_idx];
}

static void verdict(struct health *h, struct hc_check *c, bool ok, const char *why)
{
    end_check(h, c);
    struct shm_backend *e = entry(h, c);
    if (!e)
        return;
    bool up = atomic_load_explicit(&e->up, memory_order_relaxed);
    if (ok) {
        c->fails = 0;
        c->passes++;
        if (!up && c->passes >= h->cfg->health_rise) {
            atomic_store_explicit(&e->up, 1, memory_order_relaxed);
            log_info("backend %s is up again (%u checks passed)", c->be->name, c->passes);
        }
        return;
    }
    c->passes = 0;
    c->fails++;
    atomic_fetch_add_explicit(&e->checks_failed, 1, memory_order_relaxed);
    if (up && c->fails >= h->cfg->health_fall) {
        atomic_store_explicit(&e->up, 0, memory_order_relaxed);
        log_warn("backend %s is down: %u checks failed (last: %s)", c->be->name, c->fails, why);
    } else {
        log_debug("backend %s: health check failed: %s", c->be->name, why);
    }
}

static void start_check(struct health *h, struct hc_check *c, uint64_t now)
{
    c->next_ms = now + h->cfg->health_interval_ms;
    c->deadline_ms = now + h->cfg->health_timeout_ms;
    int fd = socket(c->be->addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        verdict(h, c, false, strerror(errno));
        return;
    }
    c->fd = fd;
    int rc = connect(fd, (const struct sockaddr *)&c->be->addr.ss, c->be->addr.len);
    if (rc < 0 && errno != EINPROGRESS) {
        verdict(h, c, false, strerror(errno));
        return;
    }
    c->state = HC_CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        verdict(h, c, false, strerror(errno));
}

void health_on_event(struct health *h, void *tag, uint32_t events)
{
    struct hc_check *c = tag;
    if (c->fd < 0)
        return;
    if (c->state == HC_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            verdict(h, c, false, strerror(err));
            return;
        }
        /* The request is tiny: one send takes it, or the check fails. */
        if (send(c->fd, c->req, c->req_len, MSG_NOSIGNAL) != (ssize_t)c->req_len) {
            verdict(h, c, false, "cannot send the request");
            return;
        }
        c->state = HC_READING;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(h->ep, EPOLL_CTL_MOD, c->fd, &ev);
        return;
    }
    (void)events;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        verdict(h, c, false, n == 0 ? "closed without an answer" : strerror(errno));
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    if (c->len < 12 && !memchr(c->buf, '\n', c->len))
        return; /* the status line is not complete yet */
    /* "HTTP/1.x NNN" */
    const char *b = c->buf;
    if (c->len < 12 || memcmp(b, "HTTP/1.", 7) != 0 || (b[7] != '0' && b[7] != '1') ||
        b[8] != ' ' || b[9] < '1' || b[9] > '5' || b[10] < '0' || b[10] > '9' || b[11] < '0' ||
        b[11] > '9') {
        verdict(h, c, false, "not an HTTP answer");
        return;
    }
    unsigned status =
        (unsigned)(b[9] - '0') * 100 + (unsigned)(b[10] - '0') * 10 + (unsigned)(b[11] - '0');
    char why[32];
    snprintf(why, sizeof why, "status %u", status);
    verdict(h, c, status >= 200 && status < 300, why);
}

void health_poll(struct health *h, uint64_t now_ms)
{
    for (unsigned i = 0; i < h->n; i++) {
        struct hc_check *c = &h->checks[i];
        if (c->state != HC_IDLE && now_ms >= c->deadline_ms)
            verdict(h, c, false, "timed out");
        if (c->state == HC_IDLE && now_ms >= c->next_ms)
            start_check(h, c, now_ms);
    }
}

void health_close(struct health *h)
{
    for (unsigned i = 0; i < h->n; i++)
        end_check(h, &h->checks[i]);
    free(h->checks);
    h->checks = NULL;
    h->n = 0;
}
