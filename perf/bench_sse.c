/*
 * bench_sse — micro-benchmark of dataplane/sse on a vLLM-like stream.
 *
 * Builds N events (default 1,000,000) of OpenAI chat.completion.chunk JSON as
 * vLLM sends them: per request a role chunk, content chunks, a finish chunk,
 * a usage chunk and [DONE], 100 events per request, LF line ends.  Then
 * measures, best of several passes, feeding it in 16 KiB receives:
 *   frame       sse_frame_feed over every byte
 *   scan        sse_event_scan over every event
 *   frame+scan  both, as the relay does per event
 * and prints ns/event and MB/s (10^6 bytes/s of stream).
 *
 * usage: bench_sse [events] [recv-size] [crlf]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataplane/sse.h"

#define PASSES 5

static volatile unsigned sink;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *const words[] = {
    " the", " model", " returns", " tokens", " one",   " at", " a",  " time",           ",",
    " and", " each",  " is",      " an",     " event", ".",   "\\n", " \\\"quoted\\\"", " 42"};

/* Appends one event; returns the new length. */
static size_t put_event(char *out, size_t at, size_t cap, size_t req, size_t i, const char *nl)
{
    char ev[512];
    int n;
    if (i == 0)
        n = snprintf(
            ev, sizeof(ev),
            "data: {\"id\":\"chatcmpl-%zu\",\"object\":\"chat.completion.chunk\","
            "\"created\":1732380001,\"model\":\"meta-llama/Llama-3.1-8B-Instruct\","
            "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
            "\"logprobs\":null,\"finish_reason\":null}]}",
            req);
    else if (i < 97)
        n = snprintf(ev, sizeof(ev),
                     "data: {\"id\":\"chatcmpl-%zu\",\"object\":\"chat.completion.chunk\","
                     "\"created\":1732380001,\"model\":\"meta-llama/Llama-3.1-8B-Instruct\","
                     "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},\"logprobs\":null,"
                     "\"finish_reason\":null}]}",
                     req, words[(req * 7 + i) % (sizeof(words) / sizeof(words[0]))]);
    else if (i == 97)
        n = snprintf(ev, sizeof(ev),
                     "data: {\"id\":\"chatcmpl-%zu\",\"object\":\"chat.completion.chunk\","
                     "\"created\":1732380001,\"model\":\"meta-llama/Llama-3.1-8B-Instruct\","
                     "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
                     "\"finish_reason\":\"stop\",\"stop_reason\":null}]}",
                     req);
    else if (i == 98)
        n = snprintf(ev, sizeof(ev),
                     "data: {\"id\":\"chatcmpl-%zu\",\"object\":\"chat.completion.chunk\","
                     "\"created\":1732380001,\"model\":\"meta-llama/Llama-3.1-8B-Instruct\","
                     "\"choices\":[],\"usage\":{\"prompt_tokens\":23,\"total_tokens\":119,"
                     "\"completion_tokens\":96}}",
                     req);
    else
        n = snprintf(ev, sizeof(ev), "data: [DONE]");
    size_t nll = strlen(nl);
    if (n < 0 || at + (size_t)n + 2 * nll > cap) {
        fprintf(stderr, "bench_sse: buffer too small\n");
        exit(1);
    }
    memcpy(out + at, ev, (size_t)n);
    at += (size_t)n;
    memcpy(out + at, nl, nll);
    memcpy(out + at + nll, nl, nll);
    return at + 2 * nll;
}

struct result {
    size_t events;
    unsigned flags_or;
    size_t content;
};

/* mode bit 1: frame, bit 2: scan (over events located by a framing pass). */
static struct result run(const char *in, size_t n, size_t recv, int mode, const size_t *starts,
                         size_t nstarts)
{
    struct result r = {0, 0, 0};
    if (mode == 2) {
        for (size_t i = 0; i + 1 < nstarts; i++) {
            unsigned fl = sse_event_scan(in + starts[i], starts[i + 1] - starts[i]);
            r.flags_or |= fl;
            r.content += (fl & SSE_EV_CONTENT) != 0;
        }
        r.events = nstarts - 1;
        return r;
    }
    struct sse_framer f;
    sse_framer_init(&f);
    size_t ev_start = 0;
    for (size_t at = 0; at < n;) {
        size_t len = n - at < recv ? n - at : recv;
        const char *p = in + at;
        size_t left = len;
        while (left > 0) {
            enum sse_span kind;
            size_t s = sse_frame_feed(&f, p, left, &kind);
            if (kind == SSE_SPAN_END) {
                size_t end = (size_t)(p + s - in);
                if (mode & 2) {
                    unsigned fl = sse_event_scan(in + ev_start, end - ev_start);
                    r.flags_or |= fl;
                    r.content += (fl & SSE_EV_CONTENT) != 0;
                }
                r.events++;
            } else if (kind == SSE_SPAN_PART && f.event_len == s) {
                ev_start = (size_t)(p - in); /* first PART of an event */
            }
            p += s;
            left -= s;
        }
        at += len;
    }
    return r;
}

int main(int argc, char **argv)
{
    size_t nev = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    size_t recv = argc > 2 ? strtoull(argv[2], NULL, 10) : 16384;
    const char *nl = argc > 3 && strcmp(argv[3], "crlf") == 0 ? "\r\n" : "\n";
    if (nev < 100 || recv == 0) {
        fprintf(stderr, "usage: bench_sse [events>=100] [recv-size>0] [crlf]\n");
        return 2;
    }
    size_t cap = nev * 420;
    char *in = malloc(cap);
    size_t *starts = malloc((nev + 1) * sizeof(*starts));
    if (in == NULL || starts == NULL) {
        fprintf(stderr, "bench_sse: out of memory\n");
        return 1;
    }
    size_t n = 0;
    for (size_t i = 0; i < nev; i++) {
        starts[i] = n;
        n = put_event(in, n, cap, i / 100, i % 100, nl);
    }
    starts[nev] = n;
    /* With CRLF the LF after each event's END is SKIP, so event bytes stop
     * one short of the next start: scanning it too is harmless. */

    printf("bench_sse: %zu events, %.1f MB, %.1f bytes/event, %zu-byte receives, %s\n", nev,
           (double)n / 1e6, (double)n / (double)nev, recv, nl[0] == '\r' ? "CRLF" : "LF");
    static const char *const names[] = {"", "frame", "scan", "frame+scan"};
    for (int mode = 1; mode <= 3; mode++) {
        double best = 1e30;
        struct result r = {0, 0, 0};
        for (int pass = 0; pass < PASSES; pass++) {
            double t0 = now_s();
            r = run(in, n, recv, mode, starts, nev + 1);
            double t = now_s() - t0;
            if (t < best)
                best = t;
            sink += r.flags_or;
        }
        if (r.events != nev) {
            fprintf(stderr, "bench_sse: %s saw %zu events, want %zu\n", names[mode], r.events, nev);
            return 1;
        }
        printf("%-11s %7.2f ns/event %9.1f MB/s", names[mode], best * 1e9 / (double)nev,
               (double)n / best / 1e6);
        if (mode & 2)
            printf("   (%zu events with content)", r.content);
        printf("\n");
    }
    free(starts);
    free(in);
    return 0;
}
