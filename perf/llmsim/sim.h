/*
 * sim — llmsim's load model of a GPU inference server: a batch of at most
 * max_batch sequences decoding at once, a FIFO of sequences waiting for a
 * slot, and the timing of a sequence's tokens.
 *
 *   TTFT = queue wait + (ttft + prompt_tokens * prefill_per_token)
 *                       * (1 + prefill_slowdown * running / max_batch)
 *   gap  = itl * (1 + batch_slowdown * running / max_batch)
 *
 * A sequence (struct sim_seq) is embedded in its owner (a connection) and
 * linked into the wait queue intrusively, so submitting, aborting and
 * promoting never allocate and an abort from the middle of the queue is O(1).
 * Invariant: the queue is non-empty only while every slot is taken.
 * sim does not own the sequences and keeps no clock; callers pass times in.
 */
#ifndef LLMSIM_SIM_H
#define LLMSIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_MAX_MODELS 16

enum sim_state {
    SIM_OUT = 0, /* not in the model (not yet submitted, or done) */
    SIM_WAITING, /* queued for a batch slot */
    SIM_RUNNING, /* holds a batch slot */
};

struct sim_seq {
    struct sim_seq *prev;
    struct sim_seq *next;
    uint8_t state; /* enum sim_state */
    uint8_t model; /* index of the served model, for per-model gauges */
};

struct sim_params {
    uint32_t max_batch;            /* >= 1 */
    double batch_slowdown;         /* F >= 0 */
    double prefill_slowdown;       /* F >= 0: prefill shares the GPU with the batch */
    uint64_t prefill_ns_per_token; /* added to TTFT per prompt token */
};

struct sim {
    struct sim_params p;
    uint32_t running;
    uint32_t peak; /* most sequences in the sim at once (running + waiting) */
    uint32_t waiting;
    struct sim_seq *head; /* oldest waiting */
    struct sim_seq *tail;
    uint32_t model_running[SIM_MAX_MODELS];
    uint32_t model_waiting[SIM_MAX_MODELS];
};

void sim_init(struct sim *s, const struct sim_params *p);

static inline void sim_seq_init(struct sim_seq *q)
{
    q->prev = q->next = NULL;
    q->state = SIM_OUT;
    q->model = 0;
}

/* Submits <q> for <model>.  Returns true when it got a slot at once
 * (SIM_RUNNING), false when it was queued (SIM_WAITING). */
bool sim_submit(struct sim *s, struct sim_seq *q, uint8_t model);

/* Takes <q> out of the model, from its slot or from the queue.  When that
 * frees a slot and a sequence was waiting, the oldest one is moved into the
 * slot and returned (the caller starts its prefill); otherwise NULL. */
struct sim_seq *sim_remove(struct sim *s, struct sim_seq *q);

/* Delay from getting a slot to the first token. */
uint64_t sim_prefill_ns(const struct sim *s, uint64_t ttft_ns, uint32_t prompt_tokens);

/* Gap before the next token of a running sequence, at the current load. */
uint64_t sim_gap_ns(const struct sim *s, uint64_t itl_ns);

#endif
