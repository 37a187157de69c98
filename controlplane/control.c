/* control — see control.h. */
#include "shared/clock.h"
#include "controlplane/control.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "controlplane/admin.h"
#include "controlplane/ctl.h"
#include "controlplane/health.h"
#include "controlplane/rollout_state.h"
#include "controlplane/webhook.h"
#include "shared/log.h"

#define POLL_MS             20   /* rings drained, node gauges sampled */
#define SECOND_MS           1000 /* history row, pings to the workers */
#define LEASE_WAIT_MS       5000 /* how long a new control plane waits for the old one's rings */
#define QUEUE_BUDGET_MIN_MS 25   /* a queue budget below this would refuse every wait */
#define TAG_SIGNAL          ((void *)1)
#define TAG_CTL             ((void *)2)

static struct cp cp_state; /* one per process */

int cp_rollout_set(struct cp *cp, unsigned feature, unsigned percent, const char *who)
{
    struct shm_tables *tb = &cp->shm->seg->tables;
    unsigned was = atomic_load_explicit(&tb->rollout[feature], memory_order_relaxed);
    /* The table first: the operator's change is in force on every worker
     * at its next admission, whatever the disk does. */
    atomic_store_explicit(&tb->rollout[feature], percent, memory_order_relaxed);
    unsigned pct[FEAT_COUNT];
    for (unsigned i = 0; i < FEAT_COUNT; i++)
        pct[i] = atomic_load_explicit(&tb->rollout[i], memory_order_relaxed);
    int ret = rstate_save(cp->cfg->state_dir, pct);
    if (ret < 0)
        snprintf(cp->state_error, sizeof cp->state_error, "cannot save %.160s/rollout.json: %s",
                 cp->cfg->state_dir, strerror(-ret));
    else
        cp->state_error[0] = '\0';
    qos_rollout_changed(&cp->qos, feature, was, percent, who);
    char line[256];
    snprintf(line, sizeof line, "%s rollout set %s %u -> %u%s", who,
             rollout_name((enum rollout_feature)feature), was, percent,
             ret < 0 ? " (state not saved)" : "");
    if (rstate_audit(cp->cfg->state_dir, line) < 0 && ret == 0)
        log_warn("cannot append to %s/audit.log", cp->cfg->state_dir);
    log_info("%s", line);
    return ret;
}

/* The event rings have one consumer: wait for a previous control plane to
 * let go (a reload starts us only after it exited; a crash leaves a pid
 * that no longer exists). */
static void take_lease(struct shm *shm)
{
    _Atomic int32_t *owner = &shm->seg->tables.consumer_pid;
    int32_t me = (int32_t)getpid();
    for (unsigned waited = 0;; waited += 50) {
        int32_t cur = 0;
        if (atomic_compare_exchange_strong(owner, &cur, me))
            return;
        if (cur == me || kill(cur, 0) < 0 || waited >= LEASE_WAIT_MS) {
            if (waited >= LEASE_WAIT_MS)
                log_warn("control plane %d still holds the event rings: taking them", (int)cur);
            atomic_store(owner, me);
            return;
        }
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
}

static void load_rollout(struct cp *cp)
{
    struct shm_tables *tb = &cp->shm->seg->tables;
    if (atomic_load_explicit(&tb->rollout_loaded, memory_order_acquire))
        return; /* a restarted control plane: the tables are the truth */
    /* No state yet: the config's [rollout] percentages. */
    _Static_assert(FEAT_COUNT ==
                       sizeof cp->cfg->rollout_initial / sizeof cp->cfg->rollout_initial[0],
                   "one [rollout] key per feature");
    unsigned pct[FEAT_COUNT];
    for (unsigned i = 0; i < FEAT_COUNT; i++)
        pct[i] = cp->cfg->rollout_initial[i];
    char why[256] = "";
    int ret = rstate_load(cp->cfg->state_dir, pct, why, sizeof why);
    if (ret == 0 || ret == -ENOENT) {
        for (unsigned i = 0; i < FEAT_COUNT; i++)
            atomic_store_explicit(&tb->rollout[i], pct[i], memory_order_relaxed);
        if (ret == 0)
            log_info("rollout state loaded from %s/rollout.json", cp->cfg->state_dir);
    } else {
        /* Safe mode: every feature off until the operator says otherwise. */
        snprintf(cp->state_error, sizeof cp->state_error, "%s",
                 ret == -EINVAL ? why : strerror(-ret));
        log_error("rollout state unreadable (%s): every feature stays at 0 %%", cp->state_error);
    }
    atomic_store_explicit(&tb->rollout_loaded, 1, memory_order_release);
}

static void gov_setup(struct cp *cp)
{
    const struct config *cfg = cp->cfg;
    struct gov_params p;
    gov_params_default(&p);
    p.algo = cfg->gov_algorithm == CONFIG_GOV_PID ? GOV_PID : GOV_GRADIENT;
    p.target_ttft_ms = cfg->target_ttft_ms;
    p.min_limit = cfg->min_concurrent;
    p.max_limit = cfg->max_concurrent;
    p.sample_interval_ms = cfg->sample_interval_ms;
    p.kp = cfg->gov_kp;
    p.ki = cfg->gov_ki;
    p.kd = cfg->gov_kd;
    p.integral_saturation = cfg->gov_integral_saturation;
    /* p90, not p95: steering p95 measured no better on the ramp (a p95 of
     * a 200 ms interval is nearly its maximum) and gave up goodput
     * (perf/results/governor-ramp-20261207T144602Z.md). */
    p.steer_p95 = false;
    char why[256];
    if (gov_params_check(&p, why, sizeof why) < 0) {
        /* config_load checked the same ranges; this is a bug guard. */
        log_error("governor: %s; using the defaults", why);
        gov_params_default(&p);
    }
    gov_init(&cp->gov, &p);
    _Atomic uint32_t *lim = &cp->shm->seg->tables.admit_limit;
    uint32_t seen = atomic_load_explicit(lim, memory_order_relaxed);
    if (seen)
        gov_set_limit(&cp->gov, seen);
    atomic_store_explicit(lim, gov_limit(&cp->gov), memory_order_relaxed);
}

static void gov_tick(struct cp *cp)
{
    struct gov_sample s = {0};
    view_take_interval(&cp->view, &s.n, &s.ttft_p50_ms, &s.ttft_p90_ms, &s.ttft_p95_ms,
                       &s.inflight_peak, &s.overdue_rank);
    int64_t q = shm_node_queued(cp->shm);
    s.queued = q > 0 ? (unsigned)q : 0;
    unsigned lim = gov_update(&cp->gov, &s);
    atomic_store_explicit(&cp->shm->seg->tables.admit_limit, lim, memory_order_relaxed);
    /* A request may wait for admission as long as the TTFT budget leaves
     * after the backend's own TTFT of late (its p95: the wait adds to it
     * for every admitted stream), at least QUEUE_BUDGET_MIN_MS, at most
     * queue_ttl_ms: waiting longer would only make it miss its TTFT. */
    if (s.n) {
        const struct config *cfg = cp->cfg;
        double left = (double)cfg->target_ttft_ms - s.ttft_p95_ms;
        uint32_t b = left < QUEUE_BUDGET_MIN_MS ? QUEUE_BUDGET_MIN_MS : (uint32_t)left;
        if (b > cfg->queue_ttl_ms)
            b = cfg->queue_ttl_ms;
        atomic_store_explicit(&cp->shm->seg->tables.queue_budget_ms, b, memory_order_relaxed);
    }
    cp->last_sample = s;
    cp->gov_updates++;
}

static void qos_sink(void *ctx, const struct ev_rec *ev)
{
    qos_on_event(ctx, ev);
}

void control_main(const struct config *cfg, struct shm *shm, int slot_idx, int admin_fd,
                  unsigned nworkers, const char *config_path)
{
    static struct admin admin;
    static struct ctl ctl;
    static struct health health;
    static struct webhook webhook;
    struct cp *cp = &cp_state;
    log_init("control", -1, (enum log_level)cfg->log_level);
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
    struct shm_slot_hdr *hdr = &shm->seg->hdr[slot_idx];
    atomic_store_explicit(&hdr->pid, (int32_t)getpid(), memory_order_relaxed);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (sfd < 0 || ep < 0) {
        log_error("control plane: %s", strerror(errno));
        _exit(1);
    }
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = TAG_SIGNAL};
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &sev);
    int ret = admin_init(&admin, ep, admin_fd, cfg, shm, nworkers);
    if (ret < 0) {
        log_error("admin listener: %s", strerror(-ret));
        _exit(1);
    }

    memset(cp, 0, sizeof *cp);
    cp->cfg = cfg;
    cp->shm = shm;
    cp->config_path = config_path;
    cp->nworkers = nworkers;
    cp->started_ms = clock_mono_ms();
    if (view_init(&cp->view, shm, cfg->target_ttft_ms) < 0) {
        log_error("control plane: out of memory");
        _exit(1);
    }
    if (health_init(&health, ep, cfg, shm) < 0) {
        log_error("control plane: out of memory");
        _exit(1);
    }
    take_lease(shm);
    load_rollout(cp);
    webhook_init(&webhook, ep, cfg);
    if (qos_init(&cp->qos, cp, &webhook) < 0) {
        log_error("control plane: out of memory");
        _exit(1);
    }
    cp->view.sink = qos_sink;
    cp->view.sink_ctx = &cp->qos;
    admin.qos = &cp->qos;
    gov_setup(cp);
    budget_init(&cp->budget, cp->started_ms);

    ret = ctl_init(&ctl, cp, cfg->control_socket, cfg->control_group);
    if (ret < 0) {
        log_error("control socket %s: %s (sluicectl cannot reach this node)", cfg->control_socket,
                  strerror(-ret));
    } else {
        struct epoll_event cev = {.events = EPOLLIN, .data.ptr = TAG_CTL};
        epoll_ctl(ep, EPOLL_CTL_ADD, ctl_fd(&ctl), &cev);
    }
    log_debug("control plane ready: admin on %s, control socket %s, limit %u",
              cfg->admin_listen.text, cfg->control_socket, gov_limit(&cp->gov));

    uint64_t now = clock_mono_ms();
    uint64_t next_gov = now + cfg->sample_interval_ms;
    uint64_t next_sec = now + SECOND_MS;
    uint64_t last_sweep = now;
    for (;;) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, POLL_MS);
        now = clock_mono_ms();
        atomic_store_explicit(&hdr->heartbeat_ms, now, memory_order_relaxed);
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == TAG_SIGNAL) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                    if (si.ssi_signo != SIGHUP) {
                        admin_close_all(&admin);
                        ctl_close(&ctl);
                        health_close(&health);
                        webhook_close(&webhook);
                        qos_free(&cp->qos);
                        view_free(&cp->view);
                        close(ep);
                        close(sfd);
                        exit(0);
                    }
                }
            } else if (tag == TAG_CTL) {
                ctl_poll(&ctl, now);
            } else if (webhook_owns(&webhook, tag)) {
                webhook_on_event(&webhook);
            } else if (health_owns(&health, tag)) {
                health_on_event(&health, tag, evs[i].events);
            } else {
                admin_on_event(&admin, tag, evs[i].events);
            }
        }
        view_poll(&cp->view, now);
        health_poll(&health, now);
        qos_poll(&cp->qos, now);
        webhook_poll(&webhook, now);
        if (now >= next_gov) {
            gov_tick(cp);
            budget_tick(&cp->budget, shm, now);
            next_gov += cfg->sample_interval_ms;
            if (next_gov <= now) /* we were stopped: no burst of catch-up ticks */
                next_gov = now + cfg->sample_interval_ms;
        }
        if (now >= next_sec) {
            view_tick_second(&cp->view, now, gov_limit(&cp->gov));
            view_ping(&cp->view, now);
            ctl_poll(&ctl, now); /* drops idle clients */
            next_sec += SECOND_MS;
            if (next_sec <= now)
                next_sec = now + SECOND_MS;
        }
        if (now - last_sweep >= 1000) {
            admin_sweep(&admin, now);
            last_sweep = now;
        }
    }
}
