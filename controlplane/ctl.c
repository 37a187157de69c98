/* ctl — see ctl.h. */
#include "controlplane/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "controlplane/control.h"
#include "controlplane/rollout_state.h"
#include "shared/clock.h"
#include "shared/events.h"
#include "shared/log.h"
#include "shared/rollout.h"

#define CTL_IDLE_MS 5000 /* a client that sends nothing is dropped */

struct ctl_conn {
    int fd;
    struct ucred cred;
    uint64_t opened_ms;
    char in[CTL_REQ_MAX];
    size_t in_len;
    char *out;
    size_t out_len, out_off;
};

/* ---- the socket ------------------------------------------------------------ */

int ctl_init(struct ctl *c, struct cp *cp, const char *path, const char *group)
{
    memset(c, 0, sizeof *c);
    c->listen_fd = -1;
    c->cp = cp;
    c->ep = epoll_create1(EPOLL_CLOEXEC);
    if (c->ep < 0)
        return -errno;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    snprintf(c->path, sizeof c->path, "%s", path);
    /* The directory (e.g. /run/sluice) may not exist on a fresh machine. */
    char dir[sizeof c->path];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return -errno;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* Only a stale socket is removed: never a file someone put there, nor
     * the socket of another sluice that is running (it would lose its CLI). */
    struct stat st;
    if (lstat(path, &st) == 0) {
        int probe = S_ISSOCK(st.st_mode) ? socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
        bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
        if (probe >= 0)
            close(probe);
        if (!S_ISSOCK(st.st_mode) || live) {
            close(fd);
            return live ? -EADDRINUSE : -EEXIST;
        }
        (void)unlink(path);
    }
    /* Created with no access for others, then opened up as configured. */
    mode_t old = umask(0177);
    int ret = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (ret < 0)
        goto fail;
    if (group && group[0]) {
        struct group *g = getgrnam(group);
        if (!g) {
            errno = ENOENT;
            log_error("control_group %s: no such group", group);
            goto fail;
        }
        if (chown(path, (uid_t)-1, g->gr_gid) < 0 || chmod(path, 0660) < 0)
            goto fail;
    }
    if (listen(fd, 64) < 0)
        goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        goto fail;
    c->listen_fd = fd;
    return 0;
fail:
    ret = -errno;
    close(fd);
    (void)unlink(path);
    return ret;
}

int ctl_fd(const struct ctl *c)
{
    return c->ep;
}

static void conn_close(struct ctl *c, struct ctl_conn *k)
{
    for (unsigned i = 0; i < CTL_MAX_CONNS; i++)
        if (c->conns[i] == k)
            c->conns[i] = NULL;
    epoll_ctl(c->ep, EPOLL_CTL_DEL, k->fd, NULL);
    close(k->fd);
    free(k->out);
    free(k);
}

void ctl_close(struct ctl *c)
{
    for (unsigned i = 0; i < CTL_MAX_CONNS; i++)
        if (c->conns[i])
            conn_close(c, c->conns[i]);
    if (c->listen_fd >= 0) {
        close(c->listen_fd);
        (void)unlink(c->path);
    }
    if (c->ep >= 0)
        close(c->ep);
    c->listen_fd = c->ep = -1;
}

/* ---- answers ---------------------------------------------------------------- */

static json_t *ok(json_t *data)
{
    return json_pack("{s:b, s:o}", "ok", 1, "data", data ? data : json_object());
}

static json_t *refuse(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *refuse(int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return json_pack("{s:b, s:s, s:i}", "ok", 0, "error", msg, "status", status);
}

static json_t *rollout_obj(const struct cp *cp)
{
    json_t *o = json_object();
    for (unsigned i = 0; i < FEAT_COUNT; i++)
        json_object_set_new(o, rollout_name((enum rollout_feature)i),
                            json_integer(atomic_load_explicit(&cp->shm->seg->tables.rollout[i],
                                                              memory_order_relaxed)));
    return o;
}

static uint64_t sum_counter(const struct shm *shm, size_t off)
{
    const struct shm_segment *seg = shm->seg;
    for (;;) {
        uint32_t tok = shm_read_begin(shm);
        uint64_t t = atomic_load_explicit(
            (const _Atomic uint64_t *)(const void *)((const char *)&seg->retired.c + off),
            memory_order_relaxed);
        for (unsigned i = 0; i < seg->nslots; i++) {
            if (atomic_load_explicit(&seg->hdr[i].state, memory_order_acquire) != SHM_SLOT_LIVE)
                continue;
            const char *c = (const char *)&shm_slot(shm, i)->c;
            t += atomic_load_explicit((const _Atomic uint64_t *)(const void *)(c + off),
                                      memory_order_relaxed);
        }
        if (!shm_read_retry(shm, tok))
            return t;
    }
}

static json_t *limits_obj(const struct cp *cp)
{
    const struct config *cfg = cp->cfg;
    const struct gov_sample *s = &cp->last_sample;
    /* Why the limit is held where it is: the last limit that found the
     * backend's queue, how long ago, and the hold below it now. */
    const struct governor *g = &cp->gov;
    unsigned iv = cfg->sample_interval_ms ? cfg->sample_interval_ms : 1;
    json_t *probe = g->bad_limit > 0.0
                        ? json_pack("{s:f, s:I, s:f}", "bad_limit", g->bad_limit, "age_ms",
                                    (json_int_t)g->bad_age * iv, "plateau_ms", g->plateau_ms)
                        : json_null();
    return json_pack(
        "{s:i, s:s, s:i, s:i, s:i, s:i, s:I, s:I, s:{s:i, s:f, s:f, s:f, s:i, s:i}, s:I, s:i, "
        "s:o}",
        "limit", (int)atomic_load_explicit(&cp->shm->seg->tables.admit_limit, memory_order_relaxed),
        "algorithm", cfg->gov_algorithm == CONFIG_GOV_PID ? "pid" : "gradient", "target_ttft_ms",
        (int)cfg->target_ttft_ms, "min_concurrent", (int)cfg->min_concurrent, "max_concurrent",
        (int)cfg->max_concurrent, "sample_interval_ms", (int)cfg->sample_interval_ms, "admitted",
        (json_int_t)shm_node_admitted(cp->shm), "queued", (json_int_t)shm_node_queued(cp->shm),
        "last_interval", "first_tokens", (int)s->n, "ttft_p50_ms", s->ttft_p50_ms, "ttft_p90_ms",
        s->ttft_p90_ms, "ttft_p95_ms", s->ttft_p95_ms, "inflight_peak", (int)s->inflight_peak,
        "queued", (int)s->queued, "updates", (json_int_t)cp->gov_updates, "queue_budget_ms",
        (int)atomic_load_explicit(&cp->shm->seg->tables.queue_budget_ms, memory_order_relaxed),
        "probe", probe);
}

static json_t *rejected_obj(const struct cp *cp)
{
    json_t *o = json_object();
    for (unsigned r = 0; r < REJ_COUNT; r++)
        json_object_set_new(
            o, ev_reject_name(r),
            json_integer((json_int_t)sum_counter(cp->shm, offsetof(struct shm_counters, rejected) +
                                                              r * sizeof(_Atomic uint64_t))));
    return o;
}

/* Each configured backend: its settings and what the node knows of it. */
static json_t *backends_arr(const struct cp *cp)
{
    json_t *a = json_array();
    uint64_t now = clock_mono_ms();
    for (unsigned i = 0; i < cp->cfg->n_backends; i++) {
        const struct config_backend *be = &cp->cfg->backends[i];
        static const char *const kinds[] = {"openai", "ollama", "tfserving-rest"};
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i}", "name", be->name, "url",
                              be->url, "kind", kinds[be->kind], "group", be->group, "models",
                              be->models, "weight", (json_int_t)be->weight, "max_inflight",
                              (json_int_t)be->max_inflight, "priority", (json_int_t)be->priority);
        int idx = shm_backend_find(cp->shm, be->name);
        if (idx >= 0) {
            const struct shm_backend *e = &cp->shm->seg->tables.backends[idx];
            uint64_t until = atomic_load_explicit(&e->eject_until_ms, memory_order_relaxed);
            json_object_set_new(o, "up",
                                json_boolean(atomic_load_explicit(&e->up, memory_order_relaxed)));
            json_object_set_new(o, "ejected_ms",
                                json_integer(until > now ? (json_int_t)(until - now) : 0));
            json_object_set_new(o, "inflight",
                                json_integer(shm_node_backend_inflight(cp->shm, (unsigned)idx)));
            json_object_set_new(o, "failures",
                                json_integer((json_int_t)atomic_load_explicit(
                                    &e->failures_total, memory_order_relaxed)));
            json_object_set_new(o, "failovers",
                                json_integer((json_int_t)atomic_load_explicit(
                                    &e->failovers_total, memory_order_relaxed)));
            json_object_set_new(o, "ejections",
                                json_integer((json_int_t)atomic_load_explicit(
                                    &e->ejected_total, memory_order_relaxed)));
            uint64_t at = atomic_load_explicit(&e->load_ms, memory_order_relaxed);
            if (at) {
                /* the backend's own view (vLLM /metrics), and how old it is */
                json_t *load = json_pack(
                    "{s:i, s:i, s:f, s:i}", "waiting",
                    (json_int_t)atomic_load_explicit(&e->waiting, memory_order_relaxed), "running",
                    (json_int_t)atomic_load_explicit(&e->running, memory_order_relaxed), "kv_cache",
                    atomic_load_explicit(&e->kv_permille, memory_order_relaxed) / 1000.0, "age_ms",
                    (json_int_t)(now > at ? now - at : 0));
                json_object_set_new(o, "load", load);
            }
            if (atomic_load_explicit(&e->loaded_ms, memory_order_acquire)) {
                char list[sizeof e->loaded + 1];
                shm_backend_loaded(e, list, sizeof list);
                json_object_set_new(o, "loaded", json_string(list)); /* Ollama's /api/ps */
            }
            if (!be->models[0]) {
                char list[sizeof e->models + 1];
                shm_backend_models(e, list, sizeof list);
                json_object_set_new(o, "models_listed", json_string(list));
            }
        }
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *tenants_arr(const struct cp *cp)
{
    json_t *a = json_array();
    const struct shm_tables *tb = &cp->shm->seg->tables;
    unsigned n = atomic_load_explicit(&tb->ntenants, memory_order_acquire);
    for (unsigned i = 0; i < n && i < SHM_MAX_TENANTS; i++) {
        const struct shm_tenant *t = &tb->tenants[i];
        json_array_append_new(
            a,
            json_pack(
                "{s:s, s:I, s:i, s:i, s:i, s:i, s:I, s:I}", "name", t->name, "streams",
                (json_int_t)shm_node_tenant_streams(cp->shm, i), "stream_limit",
                (int)atomic_load_explicit(&t->conc_limit, memory_order_relaxed), "hard_limit",
                (int)atomic_load_explicit(&t->hard_limit, memory_order_relaxed), "burst_limit",
                (int)atomic_load_explicit(&t->burst_limit, memory_order_relaxed), "decay_ms",
                (int)atomic_load_explicit(&t->decay_ms, memory_order_relaxed), "tokens_per_minute",
                (json_int_t)atomic_load_explicit(&t->tokens_per_minute, memory_order_relaxed),
                "tokens_available",
                (json_int_t)atomic_load_explicit(&t->tokens_avail, memory_order_relaxed)));
    }
    return a;
}

static json_t *workers_arr(const struct cp *cp, uint64_t now_ms)
{
    json_t *a = json_array();
    const struct shm_segment *seg = cp->shm->seg;
    for (unsigned i = 0; i < seg->nslots; i++) {
        const struct shm_slot_hdr *h = &seg->hdr[i];
        if (atomic_load_explicit(&h->state, memory_order_acquire) != SHM_SLOT_LIVE ||
            h->role != SHM_ROLE_WORKER)
            continue;
        const struct shm_slot *sl = shm_slot(cp->shm, i);
        uint64_t pong = i < SHM_MAX_SLOTS ? cp->view.last_pong_ms[i] : 0;
        json_array_append_new(
            a,
            json_pack(
                "{s:i, s:i, s:i, s:b, s:I, s:I, s:I, s:I, s:I}", "worker", (int)h->worker, "pid",
                (int)atomic_load_explicit(&h->pid, memory_order_relaxed), "generation",
                (int)h->generation, "draining",
                (int)atomic_load_explicit(&h->draining, memory_order_relaxed), "streams",
                (json_int_t)atomic_load_explicit(&sl->g.streams_active, memory_order_relaxed),
                "admitted", (json_int_t)atomic_load_explicit(&sl->g.admitted, memory_order_relaxed),
                "queued", (json_int_t)atomic_load_explicit(&sl->g.queue_len, memory_order_relaxed),
                "tokens", (json_int_t)atomic_load_explicit(&sl->c.tokens, memory_order_relaxed),
                "last_pong_ms_ago",
                pong && now_ms >= pong ? (json_int_t)(now_ms - pong) : (json_int_t)-1));
    }
    return a;
}

static json_t *seconds_arr(const struct cp *cp, unsigned n)
{
    json_t *a = json_array();
    for (unsigned i = 0; i < n; i++) {
        const struct view_second *s = view_second_at(&cp->view, i);
        if (!s)
            break;
        json_array_append_new(
            a, json_pack("{s:I, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "tokens",
                         (json_int_t)s->tokens, "first_tokens", (int)s->first_tokens, "ended",
                         (int)s->ended, "rejected", (int)s->rejected, "ttft_p50_ms",
                         (int)s->ttft_p50_ms, "ttft_p95_ms", (int)s->ttft_p95_ms, "admitted",
                         (int)s->admitted, "queued", (int)s->queued, "limit", (int)s->limit));
    }
    return a;
}

static json_t *status_obj(const struct cp *cp, uint64_t now_ms, bool with_seconds)
{
    json_t *o = json_pack(
        "{s:I, s:i, s:o, s:o, s:o, s:o, s:I, s:I}", "uptime_ms",
        (json_int_t)(now_ms - cp->started_ms), "workers_expected", (int)cp->nworkers, "workers",
        workers_arr(cp, now_ms), "limits", limits_obj(cp), "rollout", rollout_obj(cp), "rejected",
        rejected_obj(cp), "ring_dropped",
        (json_int_t)atomic_load_explicit(&cp->shm->seg->retired_ring_dropped, memory_order_relaxed),
        "tokens_total", (json_int_t)view_tokens_total(&cp->view));
    if (with_seconds) {
        json_object_set_new(o, "seconds", seconds_arr(cp, 10));
        json_object_set_new(o, "tenants", tenants_arr(cp));
    }
    if (cp->state_error[0])
        json_object_set_new(o, "state_error", json_string(cp->state_error));
    return o;
}

/* ---- commands --------------------------------------------------------------- */

static json_t *cmd_rollout(struct ctl *c, struct ctl_conn *k, const char **argv, size_t argc)
{
    struct cp *cp = c->cp;
    if (argc == 1 || (argc == 2 && strcmp(argv[1], "show") == 0))
        return ok(json_pack("{s:o}", "features", rollout_obj(cp)));
    if (strcmp(argv[1], "set") != 0 || argc != 4)
        return refuse(2, "usage: rollout show | rollout set FEATURE PERCENT");
    enum rollout_feature f;
    if (rollout_parse(argv[2], &f) < 0) {
        char known[256] = "";
        size_t used = 0;
        for (unsigned i = 0; i < FEAT_COUNT; i++) {
            int n = snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "",
                             rollout_name((enum rollout_feature)i));
            if (n > 0 && (size_t)n < sizeof known - used)
                used += (size_t)n;
        }
        return refuse(1, "unknown feature '%s' (features: %s)", argv[2], known);
    }
    unsigned pct;
    if (rollout_parse_percent(argv[3], &pct) < 0)
        return refuse(1, "bad percentage '%s' (a whole number from 0 to 100)", argv[3]);
    char who[64];
    snprintf(who, sizeof who, "uid=%u pid=%d", (unsigned)k->cred.uid, (int)k->cred.pid);
    unsigned was = atomic_load_explicit(&cp->shm->seg->tables.rollout[f], memory_order_relaxed);
    int ret = cp_rollout_set(cp, f, pct, who);
    json_t *d = json_pack("{s:s, s:i, s:i, s:b}", "feature", rollout_name(f), "percent", (int)pct,
                          "was", (int)was, "saved", ret == 0);
    if (ret < 0)
        json_object_set_new(d, "state_error", json_string(cp->state_error));
    return ok(d);
}

static json_t *cmd_rollback(struct ctl *c, struct ctl_conn *k, const char **argv, size_t argc)
{
    struct cp *cp = c->cp;
    if (argc > 2)
        return refuse(2, "usage: rollback [FEATURE]");
    enum rollout_feature only = FEAT_COUNT;
    if (argc == 2 && rollout_parse(argv[1], &only) < 0)
        return refuse(1, "unknown feature '%s'", argv[1]);
    char who[64];
    snprintf(who, sizeof who, "uid=%u pid=%d", (unsigned)k->cred.uid, (int)k->cred.pid);
    json_t *changed = json_object();
    bool saved = true;
    for (unsigned i = 0; i < FEAT_COUNT; i++) {
        if (only != FEAT_COUNT && i != (unsigned)only)
            continue;
        unsigned was = atomic_load_explicit(&cp->shm->seg->tables.rollout[i], memory_order_relaxed);
        if (was == 0)
            continue;
        if (cp_rollout_set(cp, i, 0, who) < 0)
            saved = false;
        json_object_set_new(changed, rollout_name((enum rollout_feature)i), json_integer(was));
    }
    return ok(
        json_pack("{s:o, s:o, s:b}", "was", changed, "features", rollout_obj(cp), "saved", saved));
}

static json_t *cmd_reload(struct ctl *c)
{
    struct cp *cp = c->cp;
    if (!cp->config_path)
        return refuse(1, "sluice runs without a config file: nothing to reload");
    struct config cfg;
    struct config_errors errs;
    if (config_load(&cfg, cp->config_path, &errs) < 0) {
        json_t *e = json_array();
        for (unsigned i = 0; i < errs.n; i++)
            json_array_append_new(e, json_string(errs.msg[i]));
        json_t *r = refuse(1, "%s has %u error(s); the running configuration stays",
                           cp->config_path, errs.n + errs.dropped);
        json_object_set_new(r, "errors", e);
        return r;
    }
    config_free(&cfg);
    if (kill(getppid(), SIGHUP) < 0)
        return refuse(1, "cannot signal the supervisor: %s", strerror(errno));
    rstate_audit(cp->cfg->state_dir, "reload requested");
    return ok(json_pack("{s:s}", "reloading", cp->config_path));
}

static json_t *cmd_cancel(struct ctl *c, const char **argv, size_t argc)
{
    if (argc != 2 || strlen(argv[1]) != EV_STREAM_ID_LEN)
        return refuse(2, "usage: cancel STREAM_ID (the %d characters before ':' in an SSE id)",
                      EV_STREAM_ID_LEN);
    struct cmd_rec cmd = {.type = CMD_CANCEL_STREAM};
    memcpy(cmd.stream, argv[1], EV_STREAM_ID_LEN);
    unsigned n = view_broadcast(&c->cp->view, &cmd);
    return ok(json_pack("{s:s, s:i}", "stream", argv[1], "workers_told", (int)n));
}

static json_t *execute(struct ctl *c, struct ctl_conn *k, const char **argv, size_t argc,
                       uint64_t now_ms)
{
    struct cp *cp = c->cp;
    const char *cmd = argv[0];
    if (strcmp(cmd, "status") == 0)
        return ok(status_obj(cp, now_ms, false));
    if (strcmp(cmd, "top") == 0)
        return ok(status_obj(cp, now_ms, true));
    if (strcmp(cmd, "rollout") == 0)
        return cmd_rollout(c, k, argv, argc);
    if (strcmp(cmd, "rollback") == 0)
        return cmd_rollback(c, k, argv, argc);
    if (strcmp(cmd, "limits") == 0)
        return ok(limits_obj(cp));
    if (strcmp(cmd, "tenants") == 0)
        return ok(json_pack("{s:o}", "tenants", tenants_arr(cp)));
    if (strcmp(cmd, "backends") == 0)
        return ok(json_pack("{s:o}", "backends", backends_arr(cp)));
    if (strcmp(cmd, "qos") == 0)
        return ok(qos_status_json(&cp->qos));
    if (strcmp(cmd, "events") == 0) {
        unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 20;
        return ok(json_pack("{s:o}", "events", qos_events_json(&cp->qos, n ? n : 20)));
    }
    if (strcmp(cmd, "drain") == 0) {
        char who[96];
        snprintf(who, sizeof who, "uid=%u pid=%d drain", (unsigned)k->cred.uid, (int)k->cred.pid);
        rstate_audit(cp->cfg->state_dir, who);
        log_info("drain requested over the control socket (%s)", who);
        if (kill(getppid(), SIGTERM) < 0)
            return refuse(1, "cannot signal the supervisor: %s", strerror(errno));
        return ok(json_pack("{s:b}", "draining", 1));
    }
    if (strcmp(cmd, "reload") == 0)
        return cmd_reload(c);
    if (strcmp(cmd, "cancel") == 0)
        return cmd_cancel(c, argv, argc);
    return refuse(2, "unknown command '%s'", cmd);
}

/* ---- connections ------------------------------------------------------------- */

static void answer(struct ctl *c, struct ctl_conn *k, json_t *reply)
{
    char *text = json_dumps(reply, JSON_COMPACT);
    json_decref(reply);
    if (!text) {
        conn_close(c, k);
        return;
    }
    size_t n = strlen(text);
    k->out = realloc(text, n + 2);
    if (!k->out) {
        free(text);
        conn_close(c, k);
        return;
    }
    k->out[n] = '\n';
    k->out[n + 1] = '\0';
    k->out_len = n + 1;
    k->out_off = 0;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = k};
    epoll_ctl(c->ep, EPOLL_CTL_MOD, k->fd, &ev);
}

static void on_request(struct ctl *c, struct ctl_conn *k, uint64_t now_ms)
{
    json_error_t jerr;
    json_t *req = json_loadb(k->in, k->in_len, 0, &jerr);
    const char *argv[16] = {0};
    size_t argc = json_is_array(req) ? json_array_size(req) : 0;
    bool good = argc >= 1 && argc <= 16;
    for (size_t i = 0; good && i < argc; i++) {
        json_t *a = json_array_get(req, i);
        good = json_is_string(a);
        if (good)
            argv[i] = json_string_value(a);
    }
    json_t *reply = good ? execute(c, k, argv, argc, now_ms)
                         : refuse(2, "a request is a JSON array of 1..16 strings");
    json_decref(req);
    answer(c, k, reply);
}

static void on_readable(struct ctl *c, struct ctl_conn *k, uint64_t now_ms)
{
    for (;;) {
        if (k->in_len == sizeof k->in) {
            answer(c, k, refuse(2, "request too large"));
            return;
        }
        ssize_t n = recv(k->fd, k->in + k->in_len, sizeof k->in - k->in_len, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close(c, k);
            return;
        }
        if (n < 0)
            return;
        char *nl = memchr(k->in + k->in_len, '\n', (size_t)n);
        k->in_len += (size_t)n;
        if (nl) {
            k->in_len = (size_t)(nl - k->in);
            on_request(c, k, now_ms);
            return;
        }
    }
}

static void on_writable(struct ctl *c, struct ctl_conn *k)
{
    while (k->out_off < k->out_len) {
        ssize_t n = send(k->fd, k->out + k->out_off, k->out_len - k->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                conn_close(c, k);
            return;
        }
        k->out_off += (size_t)n;
    }
    conn_close(c, k);
}

static void on_accept(struct ctl *c, uint64_t now_ms)
{
    for (;;) {
        int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        unsigned slot = CTL_MAX_CONNS;
        for (unsigned i = 0; i < CTL_MAX_CONNS; i++)
            if (!c->conns[i]) {
                slot = i;
                break;
            }
        struct ctl_conn *k = slot < CTL_MAX_CONNS ? calloc(1, sizeof *k) : NULL;
        if (!k) {
            close(fd);
            continue;
        }
        k->fd = fd;
        k->opened_ms = now_ms;
        socklen_t len = sizeof k->cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &k->cred, &len) < 0)
            k->cred.pid = -1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = k};
        if (epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(k);
            continue;
        }
        c->conns[slot] = k;
    }
}

void ctl_poll(struct ctl *c, uint64_t now_ms)
{
    if (c->ep < 0)
        return;
    struct epoll_event evs[16];
    int n = epoll_wait(c->ep, evs, 16, 0);
    for (int i = 0; i < n; i++) {
        struct ctl_conn *k = evs[i].data.ptr;
        if (!k) {
            on_accept(c, now_ms);
            continue;
        }
        if (evs[i].events & EPOLLOUT)
            on_writable(c, k);
        else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            on_readable(c, k, now_ms);
    }
    for (unsigned i = 0; i < CTL_MAX_CONNS; i++)
        if (c->conns[i] && now_ms - c->conns[i]->opened_ms > CTL_IDLE_MS)
            conn_close(c, c->conns[i]);
}
