/*
 * admission — who may start a completion stream on this node, decided in
 * the worker without waiting for anyone.
 *
 * Every completion request passes, in order:
 *  1. its rollout decisions: for each feature, in or out by its bucket
 *     (shared/rollout.h) against the percentage in the shared table;
 *  2. its tenant's concurrent-stream limit (the control plane's effective
 *     limit, burst decaying to hard_limit), summed over the live workers:
 *     over it is 429 at once;
 *  3. its tenant's token budget: the request's max_tokens (or the tenant's
 *     default_max_tokens) must be available in the node-wide bucket, else
 *     429 with a Retry-After of when it will be;
 *  4. if it is in the adaptive_governor rollout: the node-wide admission
 *     limit set by the governor.  Over it, the request waits in this
 *     worker's admission queue (shortest prompt first, with aging), and is
 *     refused with 503 when the queue is full, when it has waited
 *     queue_ttl_ms, or when CoDel sheds it.
 * An admitted stream holds a node slot, its tenant's stream count and a
 * token reservation; tokens are charged against the reservation as they
 * are relayed, then against the bucket, and a stream the bucket cannot
 * cover is ended (429 `event: error`, upstream cancelled) before the token
 * that would overspend goes out.  The unused reservation goes back at the
 * end.
 *
 * All counts live in this worker's shared-memory slot (single writer), and
 * node-wide numbers are sums over the live workers' slots: when a worker
 * dies its slot leaves the sums and its reservations go back to the
 * budgets, so no stream can be counted after it is gone.  The cost of
 * summing instead of one shared counter: two workers admitting in the same
 * instant may both take the last slot (overshoot by at most workers - 1,
 * for that instant).
 *
 * Also the worker's side of the rings: events up (admitted, first token,
 * token batches, end, backend errors, rejections) and commands down.
 * Owned by one worker; nothing here blocks or allocates per token.
 */
#ifndef SLUICE_ADMISSION_H
#define SLUICE_ADMISSION_H

#include <stdbool.h>
#include <stdint.h>

#include "shared/events.h"

struct worker;
struct stream;
struct conn;

/* Sets up the queue and the tenant map.  0 or -errno. */
int adm_init(struct worker *w);
void adm_destroy(struct worker *w);

/* The shared-table index of the connection's tenant. */
unsigned adm_tenant_index(const struct worker *w, const char *tenant);

enum adm_result {
    ADM_GO = 0, /* admitted: start the upstream request */
    ADM_QUEUED, /* waiting in the admission queue; adm_pump starts it later */
};

/* A completion stream asks to start.  Returns enum adm_result, or a
 * negative api_error (-API_ERR_...) to answer with; for a 429 the stream's
 * retry_after_s says when to come back. */
int adm_begin(struct stream *st, uint32_t max_tokens, uint32_t cost);

/* The stream no longer needs its slot (upstream finished, failed, or the
 * client went away): releases what it holds, takes it out of the queue.
 * Idempotent. */
void adm_end(struct stream *st);

/* Charges one content event before it goes out.  false: the tenant's
 * budget cannot cover it (the caller ends the stream). */
bool adm_charge(struct stream *st);

/* Charges a whole response at once: a completion the client did not ask
 * to stream, whose tokens are known only when it has ended (its usage, or
 * its whole reservation when it has none).  The response is already made,
 * so what the reservation does not cover is taken from the bucket even if
 * that leaves it in debt: the tenant's next requests wait for the refill. */
void adm_charge_all(struct stream *st, uint32_t tokens);

/* First token seen (TTFT in us). */
void adm_first_token(struct stream *st, uint64_t ttft_us);

/* An upstream failure, for the control plane's view. */
void adm_backend_error(struct stream *st, int api_err);

/* Admits queued streams while the node is under its limit, and answers
 * those that expired.  Called when slots free up and on the worker's
 * admission timer. */
void adm_pump(struct worker *w);

/* Worker loop, once per turn: commands from the control plane. */
void adm_poll_commands(struct worker *w);

/* The admission timer fired. */
void adm_on_timer(struct worker *w);
/* Streams admitted target_ttft_ms ago without a first token are reported
 * to the governor now (EV_TTFT_OVERDUE), not when their first token comes:
 * a backend queue can hold one for a whole stream, and the governor must
 * not keep raising the limit for that long. */
void adm_on_overdue_timer(struct worker *w);

/* Pushes one event (dropped and counted when the ring is full). */
void adm_event(struct worker *w, const struct ev_rec *ev);

#endif
