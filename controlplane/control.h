/*
 * control — the control-plane process.  For now it serves the admin port
 * (metrics and health, aggregated from shared memory); it never touches a
 * client byte and the workers never wait for it.  If it dies the supervisor
 * restarts it and the workers are not affected.
 */
#ifndef SLUICE_CONTROL_H
#define SLUICE_CONTROL_H

#include "shared/config.h"
#include "shared/shm.h"

/* <config_path> is the file sluice runs from (NULL: none), which
 * `sluicectl reload` checks before asking the supervisor to load it. */
void control_main(const struct config *cfg, struct shm *shm, int slot_idx, int admin_fd,
                  unsigned nworkers, const char *config_path) __attribute__((noreturn));

#endif
