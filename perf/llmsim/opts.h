/*
 * opts — llmsim's command line: defaults, parsing, validation and --help.
 *
 * Strings in struct llmsim_opts point into argv (or are literals); nothing is
 * allocated.  Parsing has no side effects besides filling the struct and the
 * caller's error text.
 */
#ifndef LLMSIM_OPTS_H
#define LLMSIM_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "perf/llmsim/fault.h"
#include "perf/llmsim/sim.h"

#define LLMSIM_MAX_MODELS     SIM_MAX_MODELS
#define LLMSIM_MODEL_NAME_MAX 256
#define LLMSIM_MAX_TOKENS     10000000u /* per request, any source */
#define LLMSIM_MAX_MS         3600000.0 /* one hour, for every *-ms value */

/* Which server llmsim imitates (--api). */
enum llmsim_api {
    LLMSIM_API_OPENAI = 0, /* vLLM's OpenAI server behind uvicorn */
    LLMSIM_API_OLLAMA,     /* Ollama 0.5 (Go net/http, gin) */
    LLMSIM_API_TFSERVING,  /* TensorFlow Serving 2.x REST (libevent) */
};

struct llmsim_opts {
    enum llmsim_api api;
    const char *listen;    /* ADDR:PORT, [V6]:PORT or :PORT */
    const char *port_file; /* NULL: none */
    const char *models[LLMSIM_MAX_MODELS];
    uint32_t n_models;
    uint32_t tokens;              /* natural length of an answer */
    double ttft_ms;               /* TTFT floor once a batch slot is held */
    double itl_ms;                /* gap between tokens; 0 = as fast as the socket */
    uint32_t max_batch;           /* sequences decoding at once */
    double prefill_us;            /* TTFT added per prompt token */
    double batch_slowdown;        /* gap *= 1 + F * running / max_batch */
    double prefill_slowdown;      /* TTFT *= 1 + F * running / max_batch */
    struct fault fault;           /* applied to generation requests ... */
    double fault_rate;            /* ... to this share of them (0..1), drawn at random */
    uint32_t max_model_len;       /* context window: prompt + completion */
    double keepalive_s;           /* idle keep-alive connections close after this; 0 never */
    uint32_t prefix_cache_blocks; /* prefix cache size in blocks of prompt; 0 = none */
    bool quiet;
};

/* Parses argv into <o> (defaults first).  Returns 0, 1 when --help was asked
 * (usage already printed to stdout), or -EINVAL with a message in err. */
int opts_parse(int argc, char **argv, struct llmsim_opts *o, char *err, size_t errlen);

void opts_usage(FILE *f);

#endif
