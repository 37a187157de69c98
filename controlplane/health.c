/* health — see health.h. */
#include "controlplane/health.h"

#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "controlplane/prom_text.h"
#include "shared/clock.h"
#include "shared/config.h"
#include "shared/log.h"
#include "shared/shm.h"

enum hc_state {
    HC_IDLE = 0,
    HC_CONNECTING,
    HC_READING,
};

#define METRICS_MAX   (1u << 20) /* a /metrics answer larger than this is not read */
#define LIST_EVERY_MS 30000      /* how often a backend's own model list is read again */

enum scrape {
    SC_NONE = 0, /* the health check itself */
    SC_METRICS,  /* GET /metrics: saturation */
    SC_MODELS,   /* GET /v1/models: what it serves */
    SC_AGENT,    /* GET /status of the GPU agent on its host: GPU memory */
};

struct hc_check {
    const struct config_backend *be;
    int shm_idx;
    int fd;
    uint8_t state; /* enum hc_state */
    uint64_t next_ms;
    uint64_t deadline_ms;
    uint32_t passes;  /* in a row */
    uint32_t fails;   /* in a row */
    uint8_t scrape;   /* enum scrape: what this connection reads, if not /health */
    uint64_t list_ms; /* next GET /v1/models (a backend without `models`) */
    char req[256];
    size_t req_len;
    char mreq[256];
    size_t mreq_len;
    char lreq[256];
    size_t lreq_len;
    char areq[256];
    size_t areq_len;
    struct sockaddr_storage agent; /* the backend's address on agent_port */
    char buf[64];                  /* enough for the status line */
    size_t len;
    char *mbuf; /* the /metrics answer */
    size_t mlen;
    size_t mcap;
};

static size_t get_request(char *buf, size_t cap, const char *path, const char *host)
{
    int n = snprintf(buf, cap,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sluice-health\r\n"
                     "Connection: close\r\n\r\n",
                     path, host);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

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
        /* What each kind answers: its liveness, its load, its model list. */
        char tf[CONFIG_NAME_MAX * 2 + 16] = "";
        if (c->be->kind == BACKEND_TFSERVING) {
            /* TF Serving's model status; without a model name nothing to ask */
            const char *m = c->be->tf_model[0] ? c->be->tf_model : c->be->models;
            size_t ml = strcspn(m, ", ");
            if (ml && ml < sizeof tf - 12)
                snprintf(tf, sizeof tf, "/v1/models/%.*s", (int)ml, m);
        }
        const char *live = c->be->kind == BACKEND_OLLAMA      ? "/api/tags"
                           : c->be->kind == BACKEND_TFSERVING ? tf
                                                              : "/health";
        const char *load = c->be->kind == BACKEND_OLLAMA ? "/api/ps" : "/metrics";
        const char *list = c->be->kind == BACKEND_OLLAMA ? "/api/tags" : "/v1/models";
        c->req_len = live[0] ? get_request(c->req, sizeof c->req, live, c->be->host) : 0;
        c->mreq_len = get_request(c->mreq, sizeof c->mreq, load, c->be->host);
        c->lreq_len = get_request(c->lreq, sizeof c->lreq, list, c->be->host);
        c->areq_len = get_request(c->areq, sizeof c->areq, "/status", c->be->host);
        memcpy(&c->agent, &c->be->addr.ss, sizeof c->agent);
        if (c->agent.ss_family == AF_INET)
            ((struct sockaddr_in *)&c->agent)->sin_port = htons((uint16_t)c->be->agent_port);
        else
            ((struct sockaddr_in6 *)&c->agent)->sin6_port = htons((uint16_t)c->be->agent_port);
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
    c->mlen = 0;
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

static void connect_to(struct health *h, struct hc_check *c, uint64_t now);

/* The body of a whole answer read into mbuf (the server closed), when its
 * status is 200; NULL otherwise. */
static const char *answer_body(const struct hc_check *c, size_t *len)
{
    if (!c->mbuf || c->mlen < 12 || memcmp(c->mbuf, "HTTP/1.", 7) != 0 ||
        memcmp(c->mbuf + 8, " 200", 4) != 0)
        return NULL;
    const char *h = memmem(c->mbuf, c->mlen, "\r\n\r\n", 4);
    if (!h)
        return NULL;
    *len = c->mlen - (size_t)(h + 4 - c->mbuf);
    return h + 4;
}

/* A whole 200 answer's body as JSON; NULL if there is none or it is not. */
static json_t *answer_json(const struct hc_check *c)
{
    size_t len;
    const char *body = answer_body(c, &len);
    return body ? json_loadb(body, len, 0, NULL) : NULL;
}

/* After a passing check: /metrics, then now and then /v1/models (when the
 * config does not say what it serves), then its host's GPU agent. */
static void next_scrape(struct health *h, struct hc_check *c, enum scrape done)
{
    uint64_t now = clock_mono_ms();
    enum scrape next = SC_NONE;
    if (done < SC_METRICS && c->be->kind != BACKEND_TFSERVING)
        next = SC_METRICS;
    else if (done < SC_MODELS && !c->be->models[0] && now >= c->list_ms) {
        c->list_ms = now + LIST_EVERY_MS;
        next = SC_MODELS;
    } else if (done < SC_AGENT && c->be->agent_port)
        next = SC_AGENT;
    if (next == SC_NONE)
        return;
    c->scrape = (uint8_t)next;
    connect_to(h, c, now);
}

/* The agent's /status (python/gpu_agent.py): the fullest GPU's memory. */
static void agent_read(struct health *h, struct hc_check *c)
{
    struct shm_backend *e = entry(h, c);
    json_t *root = answer_json(c);
    json_t *gpus = json_object_get(root, "gpus");
    if (e && json_is_array(gpus) && json_array_size(gpus)) {
        double worst = 0;
        size_t i;
        json_t *g;
        json_array_foreach (gpus, i, g) {
            double used = json_number_value(json_object_get(g, "memory_used_mib"));
            double total = json_number_value(json_object_get(g, "memory_total_mib"));
            if (total > 0 && used / total > worst)
                worst = used / total;
        }
        atomic_store_explicit(&e->gpu_mem_permille, (uint32_t)(worst < 1 ? worst * 1000 : 1000),
                              memory_order_relaxed);
        atomic_store_explicit(&e->gpu_ms, clock_mono_ms(), memory_order_relaxed);
    }
    json_decref(root);
    end_check(h, c);
}

/* A connection of the check failed: the health check fails; a /metrics
 * read is simply skipped this time. */
static void check_failed(struct health *h, struct hc_check *c, const char *why)
{
    if (c->scrape)
        end_check(h, c);
    else
        verdict(h, c, false, why);
}

/* The names under <key> of a model list (OpenAI's ids, Ollama's names) as
 * a comma-separated list.  Ollama answers "llama3.2" for "llama3.2:latest",
 * so a name with the default tag is listed both ways. */
static void names_of(json_t *arr, const char *key, char *list, size_t cap)
{
    size_t len = 0, i;
    json_t *m;
    json_array_foreach (arr, i, m) {
        const char *id = json_string_value(json_object_get(m, key));
        size_t n = id ? strlen(id) : 0;
        for (int pass = 0; pass < 2 && n; pass++) {
            if (memchr(id, ',', n) || len + n + 2 >= cap)
                break;
            if (len)
                list[len++] = ',';
            memcpy(list + len, id, n);
            len += n;
            list[len] = '\0';
            n = n > 7 && strcmp(id + n - 7, ":latest") == 0 ? n - 7 : 0;
        }
    }
}

/* An Ollama backend's /api/ps: the models it holds in memory, which answer
 * without a load (balance.c prefers them). */
static void ps_read(struct health *h, struct hc_check *c)
{
    struct shm_backend *e = entry(h, c);
    json_t *root = answer_json(c);
    json_t *models = json_object_get(root, "models");
    if (e && json_is_array(models)) {
        char list[sizeof e->loaded] = "", old[sizeof e->loaded];
        names_of(models, "name", list, sizeof list);
        shm_backend_loaded(e, old, sizeof old);
        if (strcmp(old, list) != 0)
            log_info("backend %s has loaded: %s", c->be->name, list[0] ? list : "(none)");
        shm_backend_set_loaded(e, list);
    }
    json_decref(root);
    end_check(h, c);
    next_scrape(h, c, SC_METRICS);
}

/* The /v1/models answer is complete: the ids it lists become what the
 * backend serves (for a backend configured without `models`). */
static void listed(struct health *h, struct hc_check *c)
{
    struct shm_backend *e = entry(h, c);
    json_t *root = answer_json(c);
    bool ollama = c->be->kind == BACKEND_OLLAMA;
    json_t *data = json_object_get(root, ollama ? "models" : "data");
    if (e && json_is_array(data)) {
        char list[sizeof e->models] = "";
        names_of(data, ollama ? "name" : "id", list, sizeof list);
        if (strcmp(list, e->models) != 0) {
            shm_backend_set_models(e, list);
            log_info("backend %s serves: %s", c->be->name, list[0] ? list : "(none listed)");
        }
    }
    json_decref(root);
    end_check(h, c);
    next_scrape(h, c, SC_MODELS);
}

/* The /metrics answer is complete (the server closed): its saturation. */
static void scraped(struct health *h, struct hc_check *c)
{
    struct shm_backend *e = entry(h, c);
    size_t bl;
    const char *body = answer_body(c, &bl);
    double waiting, running, kv;
    if (e && body && prom_sum(body, bl, "vllm:num_requests_waiting", &waiting)) {
        if (!prom_sum(body, bl, "vllm:num_requests_running", &running))
            running = 0;
        /* vLLM v1 names it kv_cache_usage_perc, v0 gpu_cache_usage_perc (0..1) */
        if (!prom_sum(body, bl, "vllm:kv_cache_usage_perc", &kv) &&
            !prom_sum(body, bl, "vllm:gpu_cache_usage_perc", &kv))
            kv = 0;
        atomic_store_explicit(&e->waiting, (uint32_t)(waiting < 1e9 ? waiting : 1e9),
                              memory_order_relaxed);
        atomic_store_explicit(&e->running, (uint32_t)(running < 1e9 ? running : 1e9),
                              memory_order_relaxed);
        atomic_store_explicit(&e->kv_permille, (uint32_t)(kv < 1 ? kv * 1000 : 1000),
                              memory_order_relaxed);
        atomic_store_explicit(&e->load_ms, clock_mono_ms(), memory_order_relaxed);
    }
    end_check(h, c);
    next_scrape(h, c, SC_METRICS);
}

static void start_check(struct health *h, struct hc_check *c, uint64_t now)
{
    c->next_ms = now + h->cfg->health_interval_ms;
    c->scrape = SC_NONE;
    connect_to(h, c, now);
}

static void connect_to(struct health *h, struct hc_check *c, uint64_t now)
{
    c->deadline_ms = now + h->cfg->health_timeout_ms;
    int fd = socket(c->be->addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        check_failed(h, c, strerror(errno));
        return;
    }
    c->fd = fd;
    const struct sockaddr *to =
        (const struct sockaddr *)(c->scrape == SC_AGENT ? &c->agent : &c->be->addr.ss);
    int rc = connect(fd, to, c->be->addr.len);
    if (rc < 0 && errno != EINPROGRESS) {
        check_failed(h, c, strerror(errno));
        return;
    }
    c->state = HC_CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        check_failed(h, c, strerror(errno));
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
            check_failed(h, c, strerror(err));
            return;
        }
        /* The request is tiny: one send takes it, or the check fails. */
        const char *rq = c->scrape == SC_AGENT    ? c->areq
                         : c->scrape == SC_MODELS ? c->lreq
                         : c->scrape              ? c->mreq
                                                  : c->req;
        size_t rl = c->scrape == SC_AGENT    ? c->areq_len
                    : c->scrape == SC_MODELS ? c->lreq_len
                    : c->scrape              ? c->mreq_len
                                             : c->req_len;
        if (send(c->fd, rq, rl, MSG_NOSIGNAL) != (ssize_t)rl) {
            if (c->scrape)
                end_check(h, c);
            else
                verdict(h, c, false, "cannot send the request");
            return;
        }
        c->state = HC_READING;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(h->ep, EPOLL_CTL_MOD, c->fd, &ev);
        return;
    }
    (void)events;
    if (c->scrape) {
        if (c->mcap - c->mlen < 16384) {
            size_t cap = c->mcap ? c->mcap * 2 : 65536;
            char *nb = cap <= METRICS_MAX ? realloc(c->mbuf, cap) : NULL;
            if (!nb) {
                end_check(h, c); /* too large, or no memory: no saturation this time */
                return;
            }
            c->mbuf = nb;
            c->mcap = cap;
        }
        ssize_t k = recv(c->fd, c->mbuf + c->mlen, c->mcap - c->mlen, 0);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (k > 0) {
            c->mlen += (size_t)k;
            return;
        }
        if (k == 0 && c->scrape == SC_AGENT)
            agent_read(h, c);
        else if (k == 0 && c->scrape == SC_MODELS)
            listed(h, c);
        else if (k == 0 && c->be->kind == BACKEND_OLLAMA)
            ps_read(h, c);
        else if (k == 0)
            scraped(h, c);
        else
            end_check(h, c);
        return;
    }
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
    bool ok = status >= 200 && status < 300;
    verdict(h, c, ok, why);
    if (ok)
        next_scrape(h, c, SC_NONE);
}

void health_poll(struct health *h, uint64_t now_ms)
{
    for (unsigned i = 0; i < h->n; i++) {
        struct hc_check *c = &h->checks[i];
        if (c->state != HC_IDLE && now_ms >= c->deadline_ms) {
            if (c->scrape)
                end_check(h, c); /* a slow /metrics is no verdict on health */
            else
                verdict(h, c, false, "timed out");
        }
        if (c->state == HC_IDLE && now_ms >= c->next_ms && c->req_len)
            start_check(h, c, now_ms);
    }
}

void health_close(struct health *h)
{
    for (unsigned i = 0; i < h->n; i++) {
        end_check(h, &h->checks[i]);
        free(h->checks[i].mbuf);
    }
    free(h->checks);
    h->checks = NULL;
    h->n = 0;
}
