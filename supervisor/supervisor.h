/*
 * supervisor — the `sluice` parent process.
 *
 * It owns the configuration, the shared-memory segment and every listening
 * socket, forks the control plane and one worker per core (each pinned to
 * its CPU), and never touches a client byte.  It restarts a child that dies
 * (with backoff, logged), kills a worker whose heartbeat stops, reloads on
 * SIGHUP (a bad file is refused and the running configuration kept; a good
 * one starts a new generation of children on the same listening sockets and
 * drains the old one, so no connection is refused during a reload), and on
 * SIGTERM/SIGINT drains: workers stop accepting, open streams finish up to
 * drain_timeout, then everything exits.
 *
 * Listening sockets are created here, before any fork: a port that cannot
 * be bound is a clean start-up error, and a restarted worker inherits the
 * same socket, so connections queued on it while it was down are not lost.
 */
#ifndef SLUICE_SUPERVISOR_H
#define SLUICE_SUPERVISOR_H

#include "shared/config.h"

/* Runs until shutdown.  <cfg> is taken over (freed by the supervisor).
 * Returns the process exit status. */
int supervisor_run(struct config *cfg, const char *config_path);

#endif
