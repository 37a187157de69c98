/*
 * stream_event — one SSE event of a stream, assembled for the client as its
 * bytes arrive from the backend.
 *
 * Live, an event is assembled in place in the client's outq (no second
 * copy): the chunk-size line and id line are written first, the event bytes
 * are copied in from the receive buffer as they arrive, and the sizes are
 * patched when the event ends.  Only complete events are committed, so a
 * failure can never leave half an event on the wire.  An event larger than
 * a slab, and every event of a resumable stream whose client is away or
 * catching up (resume.c), is assembled on the heap (the stream's <big>)
 * instead; the latter goes to the stream's event log, not the outq.
 *
 * A finished event is counted (token, TTFT, inter-token gap), charged to the
 * tenant's budget before it goes out, and recorded in the event log of a
 * resumable stream.  Part of the stream module; single-threaded.
 */
#ifndef SLUICE_STREAM_EVENT_H
#define SLUICE_STREAM_EVENT_H

#include <stddef.h>

struct stream;

/* Starts, extends, ends an event.  Each returns 0, or -1 when the stream
 * failed (already answered: no buffer, an event over max_event_size, the
 * tenant's budget). */
int sev_begin(struct stream *st);
int sev_append(struct stream *st, const char *p, size_t n);
int sev_finish(struct stream *st);
/* A whole event made by sluice itself (an error), sent like relayed ones. */
int sev_emit(struct stream *st, const char *p, size_t n);
/* One NDJSON line (without its newline) relayed as one chunk, counted like
 * an event: <flags> SSE_EV_CONTENT when it carries a token, SSE_EV_DONE
 * when it is the last. */
int sev_line(struct stream *st, const char *p, size_t n, unsigned flags);
/* Forgets the event being assembled (an event never terminated is none). */
void sev_drop_partial(struct stream *st);
/* From now on, events are assembled on the heap (resume.c: the client is
 * leaving, or catching up from the log); an event half assembled in the
 * client's outq moves there, without its transport framing. */
void sev_to_heap(struct stream *st);

#endif
