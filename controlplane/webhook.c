/* webhook — see webhook.h. */
#include "controlplane/webhook.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shared/clock.h"
#include "shared/config.h"
#include "shared/log.h"

enum { WH_IDLE = 0, WH_CONNECTING, WH_READING };

void webhook_init(struct webhook *h, int ep, const struct config *cfg)
{
    memset(h, 0, sizeof *h);
    h->ep = ep;
    h->cfg = cfg;
    h->fd = -1;
}

static bool enabled(const struct webhook *h)
{
    return h->cfg->qos_webhook.url[0] != '\0';
}

void webhook_post(struct webhook *h, const char *json)
{
    if (!enabled(h))
        return;
    char *copy = strdup(json);
    if (!copy)
        return;
    if (h->len == WEBHOOK_QUEUE) {
        free(h->queue[h->head]);
        h->head = (h->head + 1) % WEBHOOK_QUEUE;
        h->len--;
        h->attempts = 0;
        h->dropped++;
    }
    h->queue[(h->head + h->len) % WEBHOOK_QUEUE] = copy;
    h->len++;
}

bool webhook_owns(const struct webhook *h, const void *tag)
{
    return tag == (const void *)h;
}

static void end_attempt(struct webhook *h)
{
    if (h->fd >= 0) {
        epoll_ctl(h->ep, EPOLL_CTL_DEL, h->fd, NULL);
        close(h->fd);
    }
    h->fd = -1;
    h->state = WH_IDLE;
    h->blen = 0;
}

static void pop(struct webhook *h)
{
    free(h->queue[h->head]);
    h->queue[h->head] = NULL;
    h->head = (h->head + 1) % WEBHOOK_QUEUE;
    h->len--;
    h->attempts = 0;
    h->next_ms = 0;
}

static void attempt_failed(struct webhook *h, const char *why)
{
    end_attempt(h);
    h->attempts++;
    if (h->attempts > h->cfg->qos_webhook_retries) {
        log_warn("qos webhook %s: giving up on an alert after %u attempts (%s)",
                 h->cfg->qos_webhook.url, h->attempts, why);
        h->failed++;
        pop(h);
        return;
    }
    h->next_ms = clock_mono_ms() + (1000ull << (h->attempts - 1));
    log_info("qos webhook %s: %s; again in %llu ms", h->cfg->qos_webhook.url, why,
             (unsigned long long)(1000ull << (h->attempts - 1)));
}

static void start(struct webhook *h, uint64_t now)
{
    const struct config_backend *be = &h->cfg->qos_webhook;
    h->deadline_ms = now + h->cfg->qos_webhook_timeout_ms;
    h->fd = socket(be->addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (h->fd < 0) {
        attempt_failed(h, strerror(errno));
        return;
    }
    if (connect(h->fd, (const struct sockaddr *)&be->addr.ss, be->addr.len) < 0 &&
        errno != EINPROGRESS) {
        attempt_failed(h, strerror(errno));
        return;
    }
    h->state = WH_CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = h};
    if (epoll_ctl(h->ep, EPOLL_CTL_ADD, h->fd, &ev) < 0)
        attempt_failed(h, strerror(errno));
}

void webhook_on_event(struct webhook *h)
{
    if (h->fd < 0)
        return;
    if (h->state == WH_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            attempt_failed(h, strerror(err));
            return;
        }
        const struct config_backend *be = &h->cfg->qos_webhook;
        const char *body = h->queue[h->head];
        size_t bl = strlen(body);
        char head[640];
        int n = snprintf(head, sizeof head,
                         "POST %s HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: sluice-qos\r\n"
                         "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n",
                         h->cfg->qos_webhook_path, be->host, (unsigned)be->port, bl);
        struct iovec iov[2] = {{head, (size_t)n}, {(void *)body, bl}};
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
        if (n < 0 || (size_t)n >= sizeof head ||
            sendmsg(h->fd, &msg, MSG_NOSIGNAL) != (ssize_t)((size_t)n + bl)) {
            attempt_failed(h, "cannot send the alert");
            return;
        }
        h->state = WH_READING;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = h};
        epoll_ctl(h->ep, EPOLL_CTL_MOD, h->fd, &ev);
        return;
    }
    ssize_t k = recv(h->fd, h->buf + h->blen, sizeof h->buf - 1 - h->blen, 0);
    if (k < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (k <= 0) {
        attempt_failed(h, k == 0 ? "closed without an answer" : strerror(errno));
        return;
    }
    h->blen += (unsigned)k;
    if (h->blen < 12)
        return;
    bool ok = memcmp(h->buf, "HTTP/1.", 7) == 0 && h->buf[9] == '2';
    if (!ok) {
        char why[40];
        snprintf(why, sizeof why, "answered %.3s", h->buf + 9);
        attempt_failed(h, why);
        return;
    }
    end_attempt(h);
    h->sent++;
    pop(h);
}

void webhook_poll(struct webhook *h, uint64_t now_ms)
{
    if (h->state != WH_IDLE && now_ms >= h->deadline_ms)
        attempt_failed(h, "timed out");
    if (h->state == WH_IDLE && h->len && now_ms >= h->next_ms)
        start(h, now_ms);
}

void webhook_close(struct webhook *h)
{
    end_attempt(h);
    while (h->len)
        pop(h);
}
