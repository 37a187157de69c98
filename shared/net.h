/*
 * net — listening sockets, made by the supervisor before it forks.
 *
 * Listeners for the client port carry SO_REUSEPORT (one per worker, the
 * kernel spreads new connections across them) and TCP_NODELAY (inherited
 * by every accepted socket, so token events are never held back by Nagle).
 * All are non-blocking and close-on-exec.
 */
#ifndef SLUICE_NET_H
#define SLUICE_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "shared/config.h"

/* Returns a listening fd or -errno. */
int net_listen(const struct config_addr *addr, bool reuseport, int backlog);

/* The port a socket is bound to (after binding to port 0). */
int net_local_port(int fd);

#endif
