/*
 * resume — resumable streams: a client that drops comes back with
 * `GET /v1/streams/<stream-id>` and `Last-Event-ID: <stream-id>:<seq>`, and
 * gets every event after <seq>, then the rest live, with no gap and no
 * duplicate, however many times it drops.
 *
 * A stream inside the `stream_resume` rollout keeps its events in an event
 * log (event_log.h) as they are relayed.  While its client is attached and
 * reading live, the log keeps the last resume_buffer_max bytes (the client
 * may not have received what the kernel accepted).  When the client goes,
 * the stream is not cancelled: it stays on the worker, detached, for
 * resume_retention_s, its events going only to the log; when the log is
 * full the backend is paused (nothing is ever dropped from a detached
 * stream's log to make room).  A client that comes back is attached to it:
 * the events after its Last-Event-ID are replayed from the log as fast as
 * it reads, then it follows live.  A second connection resuming a stream
 * that is still attached takes it over (the first, presumably dead, is
 * closed).  Only the tenant that opened a stream may resume it; an unknown,
 * expired or foreign id is 404, a Last-Event-ID older than the log 410.
 *
 * The reconnect may land on any worker (SO_REUSEPORT).  The stream id
 * names the worker instance that holds the stream (worker number and the
 * worker's random salt), and each worker listens on an abstract unix socket
 * named after them; a worker that gets a resume for another's stream
 * relays it to the owner over that socket like a backend request (the
 * owner authenticates it again: the socket offers nothing the public port
 * does not).
 *
 * Memory: each log's buffer counts against the worker's share of
 * resume_memory_max; under pressure, finished streams retained for clients
 * that left are dropped oldest first, then live logs stop growing (they
 * keep what they have, oldest events evicted first).
 *
 * Runs in a worker; all state hangs off the worker and its streams.
 */
#ifndef SLUICE_RESUME_H
#define SLUICE_RESUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/event_log.h"
#include "dataplane/resume_id.h"
#include "shared/list.h"

struct conn;
struct stream;
struct worker;
struct h1_request;

struct stream_retain {
    struct elog log;
    struct stream *owner;
    struct list_node node;      /* worker->resumable: every resumable stream */
    struct list_node done_node; /* worker->resume_done: detached and ended, oldest first */
    uint64_t until_ms;          /* detached: retained until then */
    uint64_t cursor;            /* attached: the next record the client gets */
    uint64_t cursor_pos;        /* its position in the log */
    uint32_t mem;               /* bytes charged to the worker (the log's buffer) */
    bool detached;
    bool replaying;  /* attached, catching up from the log */
    bool log_paused; /* backend paused: the log has no room */
    bool ended;      /* the stream's last event is in the log */
};

/* The worker's internal listener and lists.  0 or -errno. */
int resume_init(struct worker *w);
/* Drain: stop forwarding, close idle connections to other workers. */
void resume_drain(struct worker *w);
/* Drain deadline: every retained stream goes. */
void resume_drop_all(struct worker *w);
void resume_destroy(struct worker *w);
/* Retained streams that keep a draining worker alive. */
bool resume_holding(const struct worker *w);
/* The resumable stream <id> (attached or not) on this worker, or NULL. */
struct stream *resume_find(struct worker *w, const char *id);

/* Makes <st> resumable (it is inside the rollout, streamed, not over
 * WebSocket).  0 or -ENOMEM (then it is simply not resumable). */
int resume_track(struct stream *st);
/* Frees the stream's retention state (from stream_free). */
void resume_untrack(struct stream *st);

/* An event complete at p[0..n) (id line included, no transport framing)
 * took number st->seq.  Live: it is in the client's outq already; on the
 * heap (detached or replaying): this is its only copy. */
void resume_record(struct stream *st, const char *p, size_t n);
/* The client lets go of the stream.  True if it is retained (st->c is
 * NULL then), false if it must end as before. */
bool resume_detach(struct stream *st);
/* The stream's last event is recorded (on the heap path). */
void resume_ended(struct stream *st);
/* Sends the client more of the log, as room allows. */
void resume_pump(struct stream *st);
/* Timer of a detached stream: true when it expired (and is freed). */
bool resume_expired(struct stream *st);

/* GET /v1/streams/<id>: parses the id and Last-Event-ID into the
 * connection (or sets its pending error), and prepares the relay to the
 * owning worker when it is not this one. */
void resume_on_head(struct conn *c, const struct h1_request *req);
/* Answers it (after the head, and its body if any, were read). */
void resume_dispatch(struct conn *c);

#endif
