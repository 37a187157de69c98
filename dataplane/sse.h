/*
 * sse — finds the events in a text/event-stream as its bytes arrive, and
 * looks at a complete event just enough to relay it (WHATWG HTML §9.2.5).
 *
 * The framer never copies and never parses JSON: it classifies the bytes it
 * is fed into spans that belong to the current event, spans that end it (the
 * line terminator of the blank line that dispatches it), and spans between
 * events (extra blank lines, and the LF of a CRLF whose CR already ended an
 * event), which a relay drops.  Lines end with CRLF, LF or CR; a CR at the end
 * of one feed and an LF at the start of the next are one terminator.  Input
 * may be split anywhere: the spans and events are the same.
 *
 * sse_event_scan() looks at one complete event (contiguous bytes) and says
 * whether it has a data field, whether that data carries a token (a non-empty
 * JSON string under a key ending in "content", or under "text" or
 * "arguments": OpenAI chat, reasoning, completions and tool-call deltas), and
 * whether it is the terminating `data: [DONE]`.  It reads only data lines and
 * only searches for those keys; an event that is not JSON is just "data".
 *
 * Pure functions and a small state struct; safe anywhere.
 */
#ifndef SLUICE_SSE_H
#define SLUICE_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sse_span {
    SSE_SPAN_PART = 0, /* bytes of the current event */
    SSE_SPAN_END = 1,  /* the last bytes of the current event: it is complete */
    SSE_SPAN_SKIP = 2, /* bytes between events: not part of any event */
};

struct sse_framer {
    uint64_t event_len; /* bytes of the current event so far (PART spans); kept
                           after its END until the next event's first PART */
    uint8_t state;      /* private */
};

void sse_framer_init(struct sse_framer *f);

/*
 * Looks at p[0..len) (len > 0) and returns the length of the first span at p
 * (> 0), with its kind in *kind.  An END span finishes an event; a SKIP span
 * is never adjacent to a PART span of the same event.  Call again with the
 * rest.  Cheap: memchr-speed over event bytes.
 *
 * An END span is one byte: the CR or LF that ends the blank line.  When that
 * blank line ends with CRLF, the event ends at the CR and the LF is SKIP
 * (even when it is in the same feed: otherwise the event would depend on the
 * split).  A PART span runs to the end of the input or to just before END.
 */
size_t sse_frame_feed(struct sse_framer *f, const char *p, size_t len, enum sse_span *kind);

/* True while an event has started and not ended (some PART bytes seen). */
bool sse_framer_in_event(const struct sse_framer *f);

#define SSE_EV_DATA    0x01 /* at least one data field */
#define SSE_EV_CONTENT 0x02 /* data carries a token (see above) */
#define SSE_EV_DONE    0x04 /* data is exactly "[DONE]" */
#define SSE_EV_COMMENT 0x08 /* only comment lines (": ping") and no fields */

/*
 * Classifies one complete event (its bytes, terminators included).  Lines end
 * with CRLF, LF or CR.  A data line is `data` alone or `data:` then the value
 * (one leading space dropped).  SSE_EV_CONTENT is set when a data value holds
 * a `"` that is preceded by `content` (any key ending so), or by `"text` or
 * `"arguments` whose opening quote does not follow a backslash (else it is an
 * escaped quote inside a string), and is followed by optional JSON
 * whitespace, `:`, optional whitespace, `"` and a byte that is not `"`.  For
 * valid JSON that is exactly "the key has a non-empty string value", except
 * that keys spelled with \u escapes are missed.  Nothing else is parsed.
 */
unsigned sse_event_scan(const char *ev, size_t len);

#endif
