/*
 * ctl — the control socket that sluicectl talks to.
 *
 * A unix stream socket at [server] control_socket, mode 0600 (0660 and the
 * group of [server] control_group when one is set).  One request per
 * connection: a JSON array of strings and a newline, e.g.
 *   ["rollout","set","adaptive_governor","50"]
 * answered with one JSON object and a newline, then the connection closes:
 *   {"ok":true,"data":{...}}   or   {"ok":false,"error":"...","status":1}
 * where status is the exit code sluicectl should use (1 refused, 2 usage).
 * Every change is applied to the shared tables (the workers read them on
 * every admission, so it is in force on every worker at once), written to
 * the state file, and logged to the audit log with the caller's uid and
 * pid (SO_PEERCRED).
 *
 * Non-blocking, on its own epoll set whose fd the control plane's loop
 * watches.  Owned by the control-plane process.
 */
#ifndef SLUICE_CTL_H
#define SLUICE_CTL_H

#include <stdint.h>

#define CTL_MAX_CONNS 32
#define CTL_REQ_MAX   4096

struct cp;
struct ctl_conn;

struct ctl {
    int ep;        /* its own epoll set */
    int listen_fd; /* -1 when the socket could not be made */
    char path[108];
    struct cp *cp;
    struct ctl_conn *conns[CTL_MAX_CONNS];
};

/* Creates the socket (replacing a stale one) and the epoll set.  0 or
 * -errno; on failure the control plane runs without a CLI (logged). */
int ctl_init(struct ctl *c, struct cp *cp, const char *path, const char *group);
/* The fd to watch for readability. */
int ctl_fd(const struct ctl *c);
/* Serves whatever is ready. */
void ctl_poll(struct ctl *c, uint64_t now_ms);
/* Closes everything and removes the socket. */
void ctl_close(struct ctl *c);

#endif
