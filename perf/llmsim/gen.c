/*
 * gen — one generation request's life on a connection (see gen.h).
 *
 * Timing: when a request gets a batch slot its first token is due after
 * ttft + prompt * prefill; then every gap (sim_gap_ns, evaluated at each
 * token so the batch slowdown follows the load).  Deadlines advance from the
 * previous deadline, not from "now", so loop jitter does not stretch a
 * stream; a stream that fell behind (a starved process) catches up one
 * token per loop turn, up to CATCHUP_GAPS gaps of debt.
 * With itl 0 a stream sends until the socket is full, at most BURST_MAX
 * events per loop turn.  Like uvicorn, each SSE event is its own write.
 */
#include "perf/llmsim/gen.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf/llmsim/api.h"

#define BURST_MAX      64 /* itl 0: tokens one stream may send in one loop turn */
#define CATCHUP_GAPS   8  /* most gaps a late stream makes up */
#define DRIBBLE_PIECES 10 /* slow_headers: pieces of the head */

static struct conn *seq_conn(struct sim_seq *q)
{
    return (struct conn *)(void *)((char *)q - offsetof(struct conn, seq));
}

static void fill_stream(const struct server *s, const struct conn *c, struct resp_stream *st)
{
    st->model_json = s->models[c->model].json;
    st->model_json_len = s->models[c->model].json_len;
    st->id_hex = c->id;
    st->created = c->created;
    st->chat = (c->flags & CF_CHAT) != 0;
}

static void start_prefill(struct server *s, struct conn *c)
{
    c->slotted = s->now;
    c->due = s->now + sim_prefill_ns(&s->sim, c->ttft_ns, c->prefill_tokens);
    theap_set(&s->timers, &c->timer, c->due);
}

/* Ends the request's claim on the sim and the timer; a waiting request that
 * gets the freed slot starts its prefill. */
static void end_request(struct server *s, struct conn *c)
{
    theap_cancel(&s->timers, &c->timer);
    struct sim_seq *next = sim_remove(&s->sim, &c->seq);
    if (next)
        start_prefill(s, seq_conn(next));
    c->flags &= ~(CF_ACTIVE | CF_BLOCKED);
    free(c->inst_len);
    c->inst_len = NULL;
}

void gen_abort(struct server *s, struct conn *c)
{
    if (!(c->flags & CF_ACTIVE))
        return;
    s->cnt.aborted++;
    end_request(s, c);
}

bool gen_immediate_fault(struct server *s, struct conn *c, const struct fault *f)
{
    switch (f->kind) {
    case FAULT_STATUS: {
        char msg[64];
        int n = snprintf(msg, sizeof(msg), "llmsim injected fault: status %u", f->arg);
        bool retry = f->arg == 429 || f->arg == 503;
        api_reply_error(s, c, (int)f->arg, retry, msg, n > 0 ? (size_t)n : 0);
        return true;
    }
    case FAULT_CLOSE:
        conn_close(s, c, false);
        return true;
    case FAULT_RESET:
        conn_close(s, c, true);
        return true;
    case FAULT_HANG:
        /* Never answers; the request stays open so the client's close is an abort. */
        c->flags |= CF_ACTIVE;
        c->phase = PH_STALL;
        return true;
    default:
        return false;
    }
}

static void submit(struct server *s, struct conn *c)
{
    c->phase = PH_GEN;
    if (sim_submit(&s->sim, &c->seq, c->model))
        start_prefill(s, c);
}

static void dribble_tick(struct server *s, struct conn *c)
{
    uint32_t k = c->dribble_step++;
    uint64_t hl = c->dribble_head;
    if (k + 1 >= DRIBBLE_PIECES)
        c->gate = SIZE_MAX;
    else
        c->gate += (size_t)(hl * (k + 1) / DRIBBLE_PIECES - hl * k / DRIBBLE_PIECES);
    if (conn_flush(s, c) < 0) {
        conn_close(s, c, false);
        return;
    }
    if (k + 1 < DRIBBLE_PIECES) {
        /* Pieces at 0, MS/9, ..., MS: the head is complete after MS. */
        c->due += (uint64_t)c->fault.arg * 1000000u / (DRIBBLE_PIECES - 1);
        theap_set(&s->timers, &c->timer, c->due);
        return;
    }
    if (c->flags & CF_STREAM)
        submit(s, c);
    else
        conn_response_done(s, c);
}

/* Puts the head (and body) in the output queue behind a closed gate and
 * starts letting it out piece by piece. */
static void start_dribble(struct server *s, struct conn *c, const struct bbuf *head,
                          const struct bbuf *body)
{
    c->gate = 0;
    bbuf_put(&c->out, head->p, head->len);
    if (body)
        bbuf_put(&c->out, body->p, body->len);
    if (c->out.failed) {
        conn_close(s, c, false);
        return;
    }
    c->dribble_head = (uint32_t)head->len;
    c->dribble_step = 0;
    c->phase = PH_DRIBBLE;
    c->due = s->now;
    dribble_tick(s, c);
}

static void reply_context_error(struct server *s, struct conn *c, bool chat,
                                const struct req_gen *g)
{
    char msg[400];
    uint64_t asked = (uint64_t)g->prompt_tokens + g->max_tokens;
    int n = snprintf(msg, sizeof(msg),
                     "This model's maximum context length is %u tokens. However, you "
                     "requested %llu tokens (%u in the %s, %u in the completion). Please "
                     "reduce the length of the %s or completion.",
                     s->o->max_model_len, (unsigned long long)asked, g->prompt_tokens,
                     chat ? "messages" : "prompt", g->max_tokens, chat ? "messages" : "prompt");
    api_reply_error(s, c, 400, false, msg, n > 0 ? (size_t)n : 0);
}

void gen_start(struct server *s, struct conn *c, bool chat, const struct req_gen *g,
               const struct req_overrides *ov, const struct fault *f)
{
    uint32_t mml = s->o->max_model_len;
    if (g->prompt_tokens >= mml || (uint64_t)g->prompt_tokens + g->max_tokens > mml) {
        free(g->inst_len);
        reply_context_error(s, c, chat, g);
        return;
    }
    uint32_t limit = g->max_tokens ? g->max_tokens : mml - g->prompt_tokens;
    uint32_t natural = ov->has_tokens ? ov->tokens : s->o->tokens;
    /* A continuation ends where the whole answer would have. */
    c->tok_base = g->first_word < natural ? g->first_word : natural - 1;
    natural -= c->tok_base;
    c->n_tokens = natural < limit ? natural : limit;
    c->finish = natural < limit ? RESP_FIN_STOP : RESP_FIN_LENGTH;
    c->next_tok = 0;
    c->shape = g->shape;
    /* A predict's instances: each as long as its max_tokens allows. */
    c->n_inst = g->n_inst ? g->n_inst : 1;
    c->inst_len = g->inst_len;
    for (uint32_t i = 0; c->inst_len && i < c->n_inst; i++)
        if (!c->inst_len[i] || c->inst_len[i] > c->n_tokens)
            c->inst_len[i] = c->n_tokens;
    c->prompt_tokens = g->prompt_tokens;
    uint32_t hit = pcache_use(&s->pcache, g->blocks, g->nblocks);
    uint32_t cached = hit * (PCACHE_BLOCK / 4); /* tokens, at 4 bytes each */
    c->prefill_tokens = g->prompt_tokens > cached ? g->prompt_tokens - cached : 0;
    if (hit) {
        s->cnt.prefix_hits++;
        s->cnt.cached_tokens += cached;
    }
    c->model = (uint8_t)g->model;
    c->ttft_ns = ov->has_ttft ? ov->ttft_ns : s->ttft_ns;
    c->itl_ns = ov->has_itl ? ov->itl_ns : s->itl_ns;
    c->fault = *f;
    c->created = (uint64_t)s->date.sec;
    c->arrived = s->now;
    resp_uuid_hex(&s->rng, c->id);
    c->flags &= ~(CF_CHAT | CF_STREAM | CF_USAGE | CF_BLOCKED | CF_HEADED);
    c->flags |= CF_ACTIVE;
    if (chat)
        c->flags |= CF_CHAT;
    if (g->stream)
        c->flags |= CF_STREAM;
    if (g->stream && g->include_usage)
        c->flags |= CF_USAGE;

    bool openai = c->shape == API_SHAPE_OPENAI;
    if (g->stream && (openai || f->kind == FAULT_SLOW_HEADERS)) {
        /* Like vLLM, the head goes out as soon as the request is scheduled,
         * before it even gets a batch slot.  (Ollama's goes with its first
         * line, unless slow_headers dribbles it first.) */
        bbuf_reset(&s->hdr);
        if (openai)
            resp_stream_head(&s->hdr, &s->date, (c->flags & CF_KEEP_ALIVE) != 0);
        else
            api_gen_stream_head(s, c, &s->hdr);
        if (f->kind == FAULT_SLOW_HEADERS) {
            c->flags |= CF_HEADED;
            start_dribble(s, c, &s->hdr, NULL);
            return;
        }
        if (conn_send(s, c, s->hdr.p, s->hdr.len) < 0) {
            conn_close(s, c, false);
            return;
        }
    }
    submit(s, c);
}

static int emit_token(struct server *s, struct conn *c, bool last)
{
    if (!(c->flags & CF_STREAM))
        return 0;
    if (c->shape != API_SHAPE_OPENAI)
        return api_gen_token(s, c);
    struct resp_stream st;
    fill_stream(s, c, &st);
    if ((c->flags & CF_CHAT) && c->next_tok == 0) {
        size_t n = resp_role_event(s->ev, &st);
        if (conn_send(s, c, s->ev, n) < 0)
            return -1;
    }
    size_t n = resp_token_event(s->ev, &st, c->tok_base + c->next_tok,
                                last ? (enum resp_finish)c->finish : RESP_FIN_NONE);
    return conn_send(s, c, s->ev, n);
}

/* The end of an OpenAI stream: usage, [DONE], the terminating chunk. */
static int openai_stream_end(struct server *s, struct conn *c, const struct resp_stream *st)
{
    size_t n;
    if (c->flags & CF_USAGE) {
        n = resp_usage_event(s->ev, st, c->prompt_tokens, c->n_tokens);
        if (conn_send(s, c, s->ev, n) < 0)
            return -EPIPE;
    }
    n = resp_done_event(s->ev);
    if (conn_send(s, c, s->ev, n) < 0)
        return -EPIPE;
    n = resp_last_chunk(s->ev);
    return conn_send(s, c, s->ev, n);
}

static void finish(struct server *s, struct conn *c)
{
    struct resp_stream st;
    fill_stream(s, c, &st);
    s->cnt.completed++;
    bool openai = c->shape == API_SHAPE_OPENAI;
    /* Built before end_request(), which frees a predict's instance lengths. */
    if (!openai && !(c->flags & CF_STREAM))
        api_gen_answer(s, c);
    end_request(s, c);
    if (c->flags & CF_STREAM) {
        if ((openai ? openai_stream_end(s, c, &st) : api_gen_stream_end(s, c)) < 0) {
            conn_close(s, c, false);
            return;
        }
        conn_response_done(s, c);
        return;
    }
    if (!openai) {
        if (c->fault.kind == FAULT_SLOW_HEADERS)
            start_dribble(s, c, &s->hdr, &s->tmp);
        else
            api_send(s, c);
        return;
    }
    bbuf_reset(&s->tmp);
    resp_completion_body(&s->tmp, &st, c->n_tokens, (enum resp_finish)c->finish, c->prompt_tokens);
    if (c->fault.kind == FAULT_SLOW_HEADERS) {
        bbuf_reset(&s->hdr);
        resp_head(&s->hdr, &s->date, 200, NULL, "application/json", s->tmp.len,
                  (c->flags & CF_KEEP_ALIVE) != 0);
        start_dribble(s, c, &s->hdr, &s->tmp);
        return;
    }
    conn_reply(s, c, 200, NULL, "application/json", false);
}

static void after_fault(struct server *s, struct conn *c)
{
    switch (c->fault.kind) {
    case FAULT_HANG_AFTER:
        /* Keeps its batch slot, like a sequence stuck in the engine. */
        c->phase = PH_STALL;
        break;
    case FAULT_CLOSE_AFTER:
        end_request(s, c);
        conn_close(s, c, false);
        break;
    case FAULT_RESET_AFTER:
        end_request(s, c);
        conn_close(s, c, true);
        break;
    default:
        break;
    }
}

static void token_tick(struct server *s, struct conn *c)
{
    for (int burst = 1;; burst++) {
        if (fault_is_after(c->fault.kind) && c->next_tok == c->fault.arg) {
            after_fault(s, c);
            return;
        }
        bool last = c->next_tok + 1 >= c->n_tokens;
        if (emit_token(s, c, last) < 0) {
            conn_close(s, c, false);
            return;
        }
        s->cnt.tokens += api_step_tokens(c);
        c->next_tok++;
        if (last) {
            finish(s, c);
            return;
        }
        if (bbuf_pending(&c->out) > 0) {
            /* The client is not keeping up: stop generating until it drains. */
            c->flags |= CF_BLOCKED;
            return;
        }
        uint64_t gap = sim_gap_ns(&s->sim, c->itl_ns);
        c->due += gap;
        if (c->due > s->now) {
            theap_set(&s->timers, &c->timer, c->due);
            return;
        }
        if (gap > 0) {
            /* Behind (a late loop turn): catch up one token per stream per
             * turn, so late streams share the turns instead of bursting;
             * a debt over CATCHUP_GAPS gaps is dropped, as an engine that
             * cannot keep up would simply be slower. */
            if (s->now - c->due > CATCHUP_GAPS * gap)
                c->due = s->now - CATCHUP_GAPS * gap;
            theap_set(&s->timers, &c->timer, s->now + 1);
            return;
        }
        if (burst >= BURST_MAX) {
            /* itl 0: yield to the other connections, go on next turn. */
            theap_set(&s->timers, &c->timer, s->now + 1);
            return;
        }
    }
}

void gen_on_timer(struct server *s, struct conn *c)
{
    switch (c->phase) {
    case PH_DRIBBLE:
        dribble_tick(s, c);
        break;
    case PH_GEN:
        if (c->seq.state == SIM_RUNNING && !(c->flags & CF_BLOCKED))
            token_tick(s, c);
        break;
    default:
        break;
    }
}

void gen_on_drained(struct server *s, struct conn *c)
{
    if (c->phase != PH_GEN || !(c->flags & CF_BLOCKED))
        return;
    c->flags &= ~CF_BLOCKED;
    uint64_t due = c->due + sim_gap_ns(&s->sim, c->itl_ns);
    c->due = due > s->now ? due : s->now;
    theap_set(&s->timers, &c->timer, c->due);
}
