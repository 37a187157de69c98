/*
 * control — the control-plane process.  It never touches a client byte and
 * the workers never wait for it: it reads their event rings and counters
 * (view), runs the governor that sets the node's admission limit, refills
 * tenant budgets and decays their bursts (budget), owns the rollout
 * percentages (rollout_state, ctl), and serves the admin port (metrics,
 * health, status) and the control socket (sluicectl).  If it dies the
 * workers keep the last limits and flags; the supervisor restarts it and it
 * rebuilds its view from the tables and the rings.
 */
#ifndef SLUICE_CONTROL_H
#define SLUICE_CONTROL_H

#include <stdint.h>

#include "controlplane/budget.h"
#include "controlplane/governor.h"
#include "controlplane/qos.h"
#include "controlplane/view.h"
#include "shared/config.h"
#include "shared/shm.h"

/* The control plane's state, shared by its modules (one per process). */
struct cp {
    const struct config *cfg;
    struct shm *shm;
    const char *config_path; /* NULL: sluice runs without a file */
    unsigned nworkers;
    uint64_t started_ms;
    struct view view;
    struct governor gov;
    struct gov_sample last_sample; /* of the last governor interval */
    uint64_t gov_updates;
    struct budget_state budget;
    char state_error[256]; /* why the rollout state could not be loaded or saved */
    struct qos qos;
};

/* Applies a rollout change: table, state file, audit line.  0, or -errno
 * when the state could not be saved (the table still changed: the
 * workers follow the operator even if the disk does not). */
int cp_rollout_set(struct cp *cp, unsigned feature, unsigned percent, const char *who);

/* <config_path> is the file sluice runs from (NULL: none), which
 * `sluicectl reload` checks before asking the supervisor to load it. */
void control_main(const struct config *cfg, struct shm *shm, int slot_idx, int admin_fd,
                  unsigned nworkers, const char *config_path) __attribute__((noreturn));

#endif
