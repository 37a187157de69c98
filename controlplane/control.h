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

void control_main(const struct config *cfg, struct shm *shm, int slot_idx, int admin_fd,
                  unsigned nworkers) __attribute__((noreturn));

#endif
