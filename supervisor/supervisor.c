/* supervisor — see supervisor.h. */
#include "shared/clock.h"
#include "supervisor/supervisor.h"

#include <errno.h>
#include <sys/random.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "controlplane/control.h"
#include "dataplane/tls.h"
#include "dataplane/worker.h"
#include "shared/log.h"
#include "shared/net.h"
#include "shared/shm.h"

#define NSLOTS         (2 * CONFIG_MAX_WORKERS + 8)
#define MAX_CHILDREN   NSLOTS
#define CONTROL_IDX    CONFIG_MAX_WORKERS /* restart bookkeeping index of the control plane */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define STABLE_MS      30000 /* a child that lived this long resets its backoff */
#define WATCHDOG_MS    30000 /* a worker silent this long is killed */
#define LISTEN_BACKLOG 4096

/* One configuration and the sockets it listens on.  A reload makes a new
 * generation; the old one lives until its last child is reaped. */
struct gen {
    uint32_t id;
    struct config cfg;
    unsigned nworkers;
    int *listen_fds; /* one per worker; dup()s of the previous generation's when unchanged */
    int *tls_fds;    /* the same for tls_listen; -1 when TLS is off */
    int admin_fd;
    unsigned alive;
};

struct child {
    pid_t pid;
    int slot;
    unsigned idx; /* worker number, or CONTROL_IDX */
    struct gen *gen;
    uint64_t started_ms;
    bool stopping; /* we asked it to go */
};

struct supervisor {
    struct shm shm;
    struct gen *gens[8];
    unsigned ngens;
    struct gen *cur;
    struct child children[MAX_CHILDREN];
    uint64_t restart_at[CONFIG_MAX_WORKERS + 1];
    uint32_t backoff[CONFIG_MAX_WORKERS + 1];
    cpu_set_t cpus;
    unsigned ncpus;
    int sig_fd;
    bool stopping;
    uint64_t stop_deadline_ms;
    bool control_stopped;
    bool control_pending; /* reload: the new control plane waits for the old to exit */
    const char *config_path;
    uint32_t next_gen;
};

static void raise_nofile(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    /* the fixed-file table of each worker, its backend sockets, and slack */
    rlim_t want = (rlim_t)cfg->max_connections * 2 + 1024;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
        struct rlimit hard = {.rlim_cur = want, .rlim_max = want};
        if (setrlimit(RLIMIT_NOFILE, &hard) == 0)
            return;
        want = rl.rlim_max;
    }
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            log_warn("cannot raise the open-file limit to %llu: %s", (unsigned long long)want,
                     strerror(errno));
    }
}

static void close_gen_fds(struct gen *g)
{
    for (unsigned i = 0; i < g->nworkers; i++) {
        if (g->listen_fds[i] >= 0)
            close(g->listen_fds[i]);
        if (g->tls_fds && g->tls_fds[i] >= 0)
            close(g->tls_fds[i]);
    }
    if (g->admin_fd >= 0)
        close(g->admin_fd);
}

static void gen_free(struct gen *g)
{
    close_gen_fds(g);
    free(g->listen_fds);
    free(g->tls_fds);
    config_free(&g->cfg);
    free(g);
}

/* The TLS listeners of <g>, one per worker like the plain ones (dup()s of
 * <prev>'s when tls_listen is unchanged), after the certificate and key
 * load: a bad or mismatched pair refuses the config, at start and reload. */
static int open_tls_listeners(struct gen *g, const struct gen *prev)
{
    if (!tls_configured(&g->cfg))
        return 0;
    if (prev && tls_configured(&prev->cfg))
        memcpy(g->cfg.tls_ticket_key, prev->cfg.tls_ticket_key, sizeof g->cfg.tls_ticket_key);
    else if (getrandom(g->cfg.tls_ticket_key, sizeof g->cfg.tls_ticket_key, 0) !=
             (ssize_t)sizeof g->cfg.tls_ticket_key)
        return -EIO;
    char why[512];
    if (tls_check(&g->cfg, why, sizeof why) < 0) {
        log_error("tls: %s", why);
        return -EINVAL;
    }
    g->tls_fds = malloc(sizeof *g->tls_fds * g->nworkers);
    if (!g->tls_fds)
        return -ENOMEM;
    for (unsigned i = 0; i < g->nworkers; i++)
        g->tls_fds[i] = -1;
    bool same =
        prev && prev->tls_fds && strcmp(prev->cfg.tls_listen.text, g->cfg.tls_listen.text) == 0;
    for (unsigned i = 0; i < g->nworkers; i++) {
        int fd = same && i < prev->nworkers ? dup(prev->tls_fds[i])
                                            : net_listen(&g->cfg.tls_listen, true, LISTEN_BACKLOG);
        if (fd < 0) {
            fd = fd == -1 ? -errno : fd;
            log_error("cannot listen on %s (TLS): %s", g->cfg.tls_listen.text, strerror(-fd));
            return fd;
        }
        g->tls_fds[i] = fd;
        /* Port 0: every other listener must join the port the first got. */
        if (i == 0 && !same) {
            int port = net_local_port(fd);
            struct config_addr *a = &g->cfg.tls_listen;
            if (port > 0 && a->ss.ss_family == AF_INET)
                ((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)port);
            else if (port > 0)
                ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)port);
        }
    }
    return 0;
}

/* Builds a generation for <cfg> (taken over), sharing the previous one's
 * sockets where the addresses did not change. */
/* The tenant table in shared memory: every configured tenant, and the
 * implicit "default" of requests without auth.  Limits follow the new
 * configuration at once (the workers read them on every admission). */
static void publish_tenants(struct supervisor *s, const struct config *cfg)
{
    bool has_default = false;
    for (unsigned i = 0; i < cfg->n_tenants; i++) {
        const struct config_tenant *t = &cfg->tenants[i];
        has_default |= strcmp(t->name, "default") == 0;
        if (shm_tenant_set(&s->shm, t->name, t->hard_limit, t->burst_limit, t->decay_ms,
                           t->tokens_per_minute, t->default_max_tokens) < 0)
            log_warn("tenant table full: [tenant %s] runs without limits", t->name);
    }
    if (!has_default)
        (void)shm_tenant_set(&s->shm, "default", 0, 0, 60000, 0, 1024);
}

/* The backend table: every configured backend by name (a reload keeps the
 * health and ejection state of the ones it keeps). */
static void publish_backends(struct supervisor *s, const struct config *cfg)
{
    for (unsigned i = 0; i < cfg->n_backends; i++)
        if (shm_backend_add(&s->shm, cfg->backends[i].name) < 0)
            log_warn("backend table full: [backend %s] is not shared between workers",
                     cfg->backends[i].name);
}

static struct gen *gen_new(struct supervisor *s, struct config *cfg, const struct gen *prev)
{
    struct gen *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->id = ++s->next_gen;
    g->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    g->admin_fd = -1;
    g->nworkers = g->cfg.workers ? g->cfg.workers : s->ncpus;
    g->listen_fds = malloc(sizeof *g->listen_fds * g->nworkers);
    if (!g->listen_fds)
        goto fail;
    for (unsigned i = 0; i < g->nworkers; i++)
        g->listen_fds[i] = -1;
    bool same_listen = prev && strcmp(prev->cfg.listen.text, g->cfg.listen.text) == 0;
    for (unsigned i = 0; i < g->nworkers; i++) {
        int fd;
        if (same_listen && i < prev->nworkers) {
            fd = dup(prev->listen_fds[i]);
            if (fd < 0)
                fd = -errno;
        } else {
            fd = net_listen(&g->cfg.listen, true, LISTEN_BACKLOG);
        }
        if (fd < 0) {
            log_error("cannot listen on %s: %s", g->cfg.listen.text, strerror(-fd));
            goto fail;
        }
        g->listen_fds[i] = fd;
        /* Port 0: every other listener must join the port the first got. */
        if (i == 0 && !same_listen) {
            int port = net_local_port(fd);
            if (port > 0) {
                struct config_addr *a = &g->cfg.listen;
                if (a->ss.ss_family == AF_INET)
                    ((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)port);
                else
                    ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)port);
            }
        }
    }
    if (open_tls_listeners(g, prev) < 0)
        goto fail;
    if (prev && strcmp(prev->cfg.admin_listen.text, g->cfg.admin_listen.text) == 0)
        g->admin_fd = dup(prev->admin_fd);
    else
        g->admin_fd = net_listen(&g->cfg.admin_listen, false, 128);
    if (g->admin_fd < 0) {
        log_error("cannot listen on %s (admin): %s", g->cfg.admin_listen.text,
                  strerror(-g->admin_fd));
        goto fail;
    }
    publish_tenants(s, &g->cfg);
    publish_backends(s, &g->cfg);
    return g;
fail:
    if (g->listen_fds)
        gen_free(g);
    else
        free(g);
    return NULL;
}

static struct child *child_slot(struct supervisor *s)
{
    for (unsigned i = 0; i < MAX_CHILDREN; i++)
        if (!s->children[i].pid)
            return &s->children[i];
    return NULL;
}

/* In a new child: drop every socket that belongs to someone else. */
static void close_foreign_fds(struct supervisor *s, int keep, int keep_tls)
{
    close(s->sig_fd);
    for (unsigned i = 0; i < s->ngens; i++) {
        struct gen *g = s->gens[i];
        for (unsigned k = 0; k < g->nworkers; k++) {
            if (g->listen_fds[k] != keep && g->listen_fds[k] >= 0)
                close(g->listen_fds[k]);
            if (g->tls_fds && g->tls_fds[k] != keep_tls && g->tls_fds[k] >= 0)
                close(g->tls_fds[k]);
        }
        if (g->admin_fd != keep && g->admin_fd >= 0)
            close(g->admin_fd);
    }
}

static void spawn(struct supervisor *s, struct gen *g, unsigned idx)
{
    bool control = idx == CONTROL_IDX;
    struct child *ch = child_slot(s);
    int slot = ch ? shm_slot_claim(&s->shm, control ? 0 : idx,
                                   control ? SHM_ROLE_CONTROL : SHM_ROLE_WORKER, g->id)
                  : -ENOSPC;
    if (slot < 0) {
        log_error("no free slot for %s %u", control ? "control plane" : "worker", idx);
        s->restart_at[idx] = clock_mono_ms() + BACKOFF_MAX_MS;
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log_error("fork: %s", strerror(errno));
        shm_slot_release(&s->shm, (unsigned)slot);
        s->restart_at[idx] = clock_mono_ms() + BACKOFF_MAX_MS;
        return;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (control) {
            close_foreign_fds(s, g->admin_fd, -1);
            control_main(&g->cfg, &s->shm, slot, g->admin_fd, g->nworkers, s->config_path);
        }
        int tls_fd = g->tls_fds ? g->tls_fds[idx] : -1;
        close_foreign_fds(s, g->listen_fds[idx], tls_fd);
        if (s->ncpus) {
            /* the idx-th CPU we may run on */
            cpu_set_t one;
            CPU_ZERO(&one);
            unsigned want = idx % s->ncpus;
            for (int c = 0, seen = 0; c < CPU_SETSIZE; c++) {
                if (!CPU_ISSET(c, &s->cpus))
                    continue;
                if ((unsigned)seen++ == want) {
                    CPU_SET(c, &one);
                    break;
                }
            }
            (void)sched_setaffinity(0, sizeof one, &one);
        }
        worker_main(&g->cfg, &s->shm, slot, idx, g->listen_fds[idx], tls_fd);
    }
    atomic_store_explicit(&s->shm.seg->hdr[slot].pid, pid, memory_order_relaxed);
    *ch = (struct child){
        .pid = pid, .slot = slot, .idx = idx, .gen = g, .started_ms = clock_mono_ms()};
    g->alive++;
    s->restart_at[idx] = 0;
    log_debug("started %s %u (pid %d, generation %u)", control ? "control plane" : "worker", idx,
              (int)pid, g->id);
}

static const char *child_name(const struct child *c, char *buf, size_t cap)
{
    if (c->idx == CONTROL_IDX)
        snprintf(buf, cap, "control plane (pid %d)", (int)c->pid);
    else
        snprintf(buf, cap, "worker %u (pid %d)", c->idx, (int)c->pid);
    return buf;
}

static void on_child_exit(struct supervisor *s, struct child *c, int status)
{
    char name[64];
    char how[64];
    child_name(c, name, sizeof name);
    if (WIFSIGNALED(status))
        snprintf(how, sizeof how, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
    shm_slot_release(&s->shm, (unsigned)c->slot);
    c->gen->alive--;
    if (c->idx == CONTROL_IDX) {
        /* Its lease on the event rings ends with it. */
        int32_t pid = c->pid;
        atomic_compare_exchange_strong(&s->shm.seg->tables.consumer_pid, &pid, 0);
        shm_cp_reset(&s->shm);
        /* A reload stops the old control plane before starting the new one
         * (the rings have one consumer at a time): it starts now. */
        if (c->gen != s->cur && !s->stopping) {
            s->restart_at[CONTROL_IDX] = clock_mono_ms();
            s->control_pending = false;
        }
    }
    bool restart = c->gen == s->cur && !s->stopping && !c->stopping;
    if (restart) {
        uint64_t now = clock_mono_ms();
        uint32_t *b = &s->backoff[c->idx];
        if (now - c->started_ms > STABLE_MS || *b == 0)
            *b = BACKOFF_MIN_MS;
        else if (*b < BACKOFF_MAX_MS)
            *b = *b * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *b * 2;
        s->restart_at[c->idx] = now + *b;
        log_warn("%s %s; restarting in %u ms", name, how, *b);
    } else {
        log_info("%s %s", name, how);
    }
    memset(c, 0, sizeof *c);
}

static void reap(struct supervisor *s)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        for (unsigned i = 0; i < MAX_CHILDREN; i++)
            if (s->children[i].pid == pid)
                on_child_exit(s, &s->children[i], status);
    }
}

static void signal_children(struct supervisor *s, const struct gen *g, bool workers, bool control,
                            int sig)
{
    for (unsigned i = 0; i < MAX_CHILDREN; i++) {
        struct child *c = &s->children[i];
        if (!c->pid || (g && c->gen != g))
            continue;
        bool is_control = c->idx == CONTROL_IDX;
        if ((is_control && !control) || (!is_control && !workers))
            continue;
        c->stopping = true;
        kill(c->pid, sig);
    }
}

static unsigned count_children(const struct supervisor *s, bool workers)
{
    unsigned n = 0;
    for (unsigned i = 0; i < MAX_CHILDREN; i++)
        if (s->children[i].pid && (s->children[i].idx != CONTROL_IDX) == workers)
            n++;
    return n;
}

static void reload(struct supervisor *s)
{
    if (!s->config_path) {
        log_warn("SIGHUP: sluice runs without a config file; nothing to reload");
        return;
    }
    struct config cfg;
    struct config_errors errs;
    memset(&errs, 0, sizeof errs);
    if (config_load(&cfg, s->config_path, &errs) < 0) {
        log_error("reload refused, keeping the running configuration: %u error(s) in %s",
                  errs.n + errs.dropped, s->config_path);
        for (unsigned i = 0; i < errs.n; i++)
            log_error("%s", errs.msg[i]);
        return;
    }
    if (s->ngens == sizeof s->gens / sizeof s->gens[0]) {
        log_error("reload refused: too many generations still draining");
        config_free(&cfg);
        return;
    }
    struct gen *old = s->cur;
    struct gen *g = gen_new(s, &cfg, old);
    if (!g) {
        config_free(&cfg);
        log_error("reload refused, keeping the running configuration");
        return;
    }
    s->gens[s->ngens++] = g;
    s->cur = g;
    memset(s->restart_at, 0, sizeof s->restart_at);
    log_set_level((enum log_level)g->cfg.log_level);
    /* New workers first, then drain the old ones: someone always accepts.
     * The new control plane starts once the old one has exited (see
     * on_child_exit), so the event rings never have two consumers. */
    for (unsigned i = 0; i < g->nworkers; i++)
        spawn(s, g, i);
    bool old_control = false;
    for (unsigned i = 0; i < MAX_CHILDREN; i++)
        old_control |= s->children[i].pid && s->children[i].idx == CONTROL_IDX;
    if (old_control)
        s->control_pending = true;
    else
        spawn(s, g, CONTROL_IDX);
    signal_children(s, old, true, true, SIGTERM);
    log_info("reloaded %s: generation %u, %u workers", s->config_path, g->id, g->nworkers);
}

static void begin_stop(struct supervisor *s, int sig)
{
    if (s->stopping)
        return;
    s->stopping = true;
    uint32_t drain = s->cur->cfg.drain_timeout_ms;
    s->stop_deadline_ms = clock_mono_ms() + drain + 5000;
    log_info("%s: draining %u workers (up to %u ms)", strsignal(sig), count_children(s, true),
             drain);
    signal_children(s, NULL, true, false, SIGTERM);
    /* Close our copies of the client listeners: once the workers close
     * theirs, new connections are refused rather than left queueing. */
    for (unsigned i = 0; i < s->ngens; i++) {
        struct gen *g = s->gens[i];
        for (unsigned k = 0; k < g->nworkers; k++) {
            if (g->listen_fds[k] >= 0)
                close(g->listen_fds[k]);
            g->listen_fds[k] = -1;
            if (g->tls_fds && g->tls_fds[k] >= 0)
                close(g->tls_fds[k]);
            if (g->tls_fds)
                g->tls_fds[k] = -1;
        }
    }
}

static void watchdog(struct supervisor *s, uint64_t now)
{
    for (unsigned i = 0; i < MAX_CHILDREN; i++) {
        struct child *c = &s->children[i];
        if (!c->pid || c->idx == CONTROL_IDX)
            continue;
        uint64_t hb =
            atomic_load_explicit(&s->shm.seg->hdr[c->slot].heartbeat_ms, memory_order_relaxed);
        uint64_t since = hb ? hb : c->started_ms;
        if (now > since + WATCHDOG_MS) {
            char name[64];
            log_error("%s made no progress for %llu ms: killing it",
                      child_name(c, name, sizeof name), (unsigned long long)(now - since));
            kill(c->pid, SIGKILL);
        }
    }
}

static void collect_old_gens(struct supervisor *s)
{
    for (unsigned i = 0; i < s->ngens;) {
        struct gen *g = s->gens[i];
        if (g != s->cur && g->alive == 0) {
            gen_free(g);
            s->gens[i] = s->gens[--s->ngens];
            continue;
        }
        i++;
    }
}

int supervisor_run(struct config *cfg, const char *config_path)
{
    static struct supervisor s; /* large: keep it off the stack */
    memset(&s, 0, sizeof s);
    s.config_path = config_path;
    log_init("supervisor", -1, (enum log_level)cfg->log_level);
    raise_nofile(cfg);
    if (sched_getaffinity(0, sizeof s.cpus, &s.cpus) == 0)
        s.ncpus = (unsigned)CPU_COUNT(&s.cpus);
    if (!s.ncpus)
        s.ncpus = config_worker_count(cfg);

    int ret = shm_create(&s.shm, NSLOTS);
    if (ret < 0) {
        log_error("shared memory: %s", strerror(-ret));
        config_free(cfg);
        return 1;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    s.sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);

    struct gen *g = gen_new(&s, cfg, NULL);
    if (!g || s.sig_fd < 0) {
        config_free(cfg);
        shm_destroy(&s.shm);
        return 1;
    }
    s.gens[s.ngens++] = g;
    s.cur = g;
    log_info("sluice %s: %u workers on %s, admin on %s, %u backend(s) (first: %s %s)%s%s",
             SLUICE_VERSION, g->nworkers, g->cfg.listen.text, g->cfg.admin_listen.text,
             g->cfg.n_backends, g->cfg.backends[0].name, g->cfg.backends[0].url,
             config_path ? ", config " : "", config_path ? config_path : "");
    spawn(&s, g, CONTROL_IDX);
    for (unsigned i = 0; i < g->nworkers; i++)
        spawn(&s, g, i);

    uint64_t last_watchdog = clock_mono_ms();
    for (;;) {
        struct pollfd pfd = {.fd = s.sig_fd, .events = POLLIN};
        (void)poll(&pfd, 1, 100);
        struct signalfd_siginfo si;
        while (read(s.sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
            int sig = (int)si.ssi_signo;
            if (sig == SIGHUP && !s.stopping)
                reload(&s);
            else if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT)
                begin_stop(&s, sig);
        }
        reap(&s);
        uint64_t now = clock_mono_ms();
        if (!s.stopping) {
            for (unsigned i = 0; i <= CONFIG_MAX_WORKERS; i++) {
                if (s.restart_at[i] && now >= s.restart_at[i] &&
                    (i == CONTROL_IDX || i < s.cur->nworkers))
                    spawn(&s, s.cur, i);
            }
            if (now - last_watchdog >= 1000) {
                watchdog(&s, now);
                last_watchdog = now;
            }
        } else {
            if (count_children(&s, true) == 0 && !s.control_stopped) {
                signal_children(&s, NULL, false, true, SIGTERM);
                s.control_stopped = true;
            }
            if (count_children(&s, true) + count_children(&s, false) == 0)
                break;
            if (now >= s.stop_deadline_ms) {
                log_warn("drain deadline passed: killing what is left");
                signal_children(&s, NULL, true, true, SIGKILL);
                s.stop_deadline_ms = now + 5000;
            }
        }
        collect_old_gens(&s);
    }
    log_info("stopped");
    for (unsigned i = 0; i < s.ngens; i++)
        gen_free(s.gens[i]);
    close(s.sig_fd);
    shm_destroy(&s.shm);
    return 0;
}
