/* control — see control.h. */
#include "shared/clock.h"
#include "controlplane/control.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "controlplane/admin.h"
#include "shared/log.h"

void control_main(const struct config *cfg, struct shm *shm, int slot_idx, int admin_fd,
                  unsigned nworkers, const char *config_path)
{
    (void)config_path;
    static struct admin admin;
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
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &sev);
    int ret = admin_init(&admin, ep, admin_fd, cfg, shm, nworkers);
    if (ret < 0) {
        log_error("admin listener: %s", strerror(-ret));
        _exit(1);
    }
    log_debug("control plane ready: admin on %s", cfg->admin_listen.text);
    uint64_t last_sweep = clock_mono_ms();
    for (;;) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, 1000);
        uint64_t now = clock_mono_ms();
        atomic_store_explicit(&hdr->heartbeat_ms, now, memory_order_relaxed);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                    if (si.ssi_signo != SIGHUP) {
                        admin_close_all(&admin);
                        close(ep);
                        close(sfd);
                        exit(0);
                    }
                }
                continue;
            }
            admin_on_event(&admin, evs[i].data.ptr, evs[i].events);
        }
        if (now - last_sweep >= 1000) {
            admin_sweep(&admin, now);
            last_sweep = now;
        }
    }
}
