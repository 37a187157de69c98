/*
 * fault — the failure modes llmsim can inject into a generation request,
 * and their text form (`--fault SPEC`, `X-Sim-Fault: SPEC`, `sim_fault=SPEC`).
 *
 *   status:CODE      answer CODE (200..599) with an OpenAI error JSON
 *   close            read the request, close without answering
 *   reset            read the request, then RST
 *   close_after:K    stream K tokens, then close mid-body (FIN)
 *   reset_after:K    stream K tokens, then RST
 *   hang             never answer
 *   hang_after:K     stream K tokens, then stall
 *   slow_headers:MS  dribble the response head in 10 pieces over MS ms
 *   none             no fault (overrides a --fault for one request)
 *
 * Pure parsing; no state.
 */
#ifndef LLMSIM_FAULT_H
#define LLMSIM_FAULT_H

#include <stddef.h>
#include <stdint.h>

enum fault_kind {
    FAULT_NONE = 0,
    FAULT_STATUS,
    FAULT_CLOSE,
    FAULT_RESET,
    FAULT_CLOSE_AFTER,
    FAULT_RESET_AFTER,
    FAULT_HANG,
    FAULT_HANG_AFTER,
    FAULT_SLOW_HEADERS,
};

struct fault {
    enum fault_kind kind;
    uint32_t arg; /* CODE, K or MS */
};

/* Parses s[0..len).  0, or -EINVAL (out untouched). */
int fault_parse(const char *s, size_t len, struct fault *out);

/* Does the fault act after K tokens (close_after, reset_after, hang_after)? */
static inline int fault_is_after(enum fault_kind k)
{
    return k == FAULT_CLOSE_AFTER || k == FAULT_RESET_AFTER || k == FAULT_HANG_AFTER;
}

#endif
