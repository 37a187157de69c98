/*
 * sim — batch slots, FIFO wait queue and token timing (see sim.h).
 */
#include "perf/llmsim/sim.h"

#include <string.h>

void sim_init(struct sim *s, const struct sim_params *p)
{
    memset(s, 0, sizeof(*s));
    s->p = *p;
    if (s->p.max_batch == 0)
        s->p.max_batch = 1;
}

static void start_running(struct sim *s, struct sim_seq *q)
{
    q->state = SIM_RUNNING;
    s->running++;
    s->model_running[q->model]++;
}

bool sim_submit(struct sim *s, struct sim_seq *q, uint8_t model)
{
    if (s->running + s->waiting + 1 > s->peak)
        s->peak = s->running + s->waiting + 1;
    q->model = model < SIM_MAX_MODELS ? model : 0;
    q->prev = q->next = NULL;
    if (s->running < s->p.max_batch) {
        start_running(s, q);
        return true;
    }
    q->state = SIM_WAITING;
    q->prev = s->tail;
    if (s->tail)
        s->tail->next = q;
    else
        s->head = q;
    s->tail = q;
    s->waiting++;
    s->model_waiting[q->model]++;
    return false;
}

static void unlink_waiting(struct sim *s, struct sim_seq *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        s->head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        s->tail = q->prev;
    q->prev = q->next = NULL;
    s->waiting--;
    s->model_waiting[q->model]--;
}

struct sim_seq *sim_remove(struct sim *s, struct sim_seq *q)
{
    switch (q->state) {
    case SIM_WAITING:
        unlink_waiting(s, q);
        q->state = SIM_OUT;
        return NULL;
    case SIM_RUNNING:
        q->state = SIM_OUT;
        s->running--;
        s->model_running[q->model]--;
        if (s->head) {
            struct sim_seq *next = s->head;
            unlink_waiting(s, next);
            start_running(s, next);
            return next;
        }
        return NULL;
    default:
        return NULL;
    }
}

uint64_t sim_prefill_ns(const struct sim *s, uint64_t ttft_ns, uint32_t prompt_tokens)
{
    uint64_t t = ttft_ns + (uint64_t)prompt_tokens * s->p.prefill_ns_per_token;
    if (s->p.prefill_slowdown <= 0.0)
        return t;
    /* a prefill shares the GPU with the sequences decoding (the running
     * count as the slot is taken, this one included) */
    double load = (double)s->running / (double)s->p.max_batch;
    return (uint64_t)((double)t * (1.0 + s->p.prefill_slowdown * load));
}

uint64_t sim_gap_ns(const struct sim *s, uint64_t itl_ns)
{
    if (s->p.batch_slowdown <= 0.0 || itl_ns == 0)
        return itl_ns;
    double load = (double)s->running / (double)s->p.max_batch;
    return (uint64_t)((double)itl_ns * (1.0 + s->p.batch_slowdown * load));
}
