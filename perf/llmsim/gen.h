/*
 * gen — the life of one generation request on a connection: immediate
 * faults, the response head, the batch slot (sim), the paced token events,
 * the end of the answer, and aborts when the client leaves.
 *
 * Runs inside server.c's loop and uses its connection helpers.  A request
 * holds at most one timer (the connection's) and one sim_seq; nothing here
 * allocates per token.
 */
#ifndef LLMSIM_GEN_H
#define LLMSIM_GEN_H

#include <stdbool.h>

#include "perf/llmsim/fault.h"
#include "perf/llmsim/request.h"
#include "perf/llmsim/server.h"

/* Acts on a fault that answers before the body is looked at (status, close,
 * reset, hang).  Returns true when the request has been dealt with. */
bool gen_immediate_fault(struct server *s, struct conn *c, const struct fault *f);

/* Starts a validated request (may answer 400 for an over-long context). */
void gen_start(struct server *s, struct conn *c, bool chat, const struct req_gen *g,
               const struct req_overrides *ov, const struct fault *f);

/* The connection's timer fired. */
void gen_on_timer(struct server *s, struct conn *c);

/* The output queue drained while generation was paused on it. */
void gen_on_drained(struct server *s, struct conn *c);

/* The client went away: if a request is open, count the abort and free its
 * batch slot (promoting the next waiting request). */
void gen_abort(struct server *s, struct conn *c);

#endif
