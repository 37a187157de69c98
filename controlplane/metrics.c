/* metrics — see metrics.h. */
#include "controlplane/metrics.h"

#include <string.h>

#include "shared/config.h"

static uint64_t rd(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void add_counters(struct metrics_snapshot *s, const struct shm_counters *c)
{
    for (unsigned i = 0; i < SHM_N_CODES; i++)
        s->requests[i] += rd(&c->requests[i]);
    s->tokens += rd(&c->tokens);
    s->upstream_cancellations += rd(&c->upstream_cancellations);
    s->slow_consumers += rd(&c->slow_consumers);
    s->accepted += rd(&c->accepted);
    s->upstream_connects += rd(&c->upstream_connects);
    s->upstream_reused += rd(&c->upstream_reused);
    s->upstream_errors += rd(&c->upstream_errors);
    s->upstream_retries += rd(&c->upstream_retries);
    s->sends += rd(&c->sends);
    s->sends_zc += rd(&c->sends_zc);
    s->recv_enobufs += rd(&c->recv_enobufs);
    s->slab_waits += rd(&c->slab_waits);
    s->bytes_out += rd(&c->bytes_out);
    for (unsigned i = 0; i < REJ_COUNT; i++)
        s->rejected[i] += rd(&c->rejected[i]);
    s->admitted += rd(&c->admitted);
    s->queued += rd(&c->queued);
    for (unsigned i = 0; i < FEAT_COUNT; i++) {
        s->rollout_on[i] += rd(&c->rollout_on[i]);
        s->rollout_off[i] += rd(&c->rollout_off[i]);
    }
    s->tokens_charged += rd(&c->tokens_charged);
    s->cancels_by_cmd += rd(&c->cancels_by_cmd);
    s->h2_conns_total += rd(&c->h2_conns);
    s->h2_streams += rd(&c->h2_streams);
    s->h2_refused += rd(&c->h2_refused);
    s->h2_resets += rd(&c->h2_resets);
    s->h2_abuse += rd(&c->h2_abuse);
    s->ws_conns_total += rd(&c->ws_conns);
    s->ws_msgs_in += rd(&c->ws_msgs_in);
    s->ws_msgs_out += rd(&c->ws_msgs_out);
    s->tls_handshakes += rd(&c->tls_handshakes);
    s->tls_failures += rd(&c->tls_failures);
    s->tls_resumed += rd(&c->tls_resumed);
    s->resume_retained += rd(&c->resume_retained);
    for (unsigned i = 0; i < SHM_RESUME_COUNT; i++)
        s->resumes[i] += rd(&c->resumes[i]);
    s->resume_expired += rd(&c->resume_expired);
    s->resume_takeovers += rd(&c->resume_takeovers);
    s->resume_dropped += rd(&c->resume_dropped);
    s->resume_overflows += rd(&c->resume_overflows);
    s->resume_log_full += rd(&c->resume_log_full);
    s->backend_panics += rd(&c->backend_panics);
    s->affinity_picks += rd(&c->affinity_picks);
    hist_snap_add(&s->itl, &c->itl);
}

static void add_labels(struct metrics_snapshot *s, const struct shm_ttft_label *t)
{
    for (unsigned i = 0; i < SHM_TTFT_LABELS; i++) {
        const struct shm_ttft_label *l = &t[i];
        if (!atomic_load_explicit(&l->used, memory_order_acquire))
            break;
        struct metrics_label *m = NULL;
        for (unsigned k = 0; k < s->nlabels; k++) {
            if (!strcmp(s->labels[k].tenant, l->tenant) &&
                !strcmp(s->labels[k].backend, l->backend) &&
                !strcmp(s->labels[k].model, l->model)) {
                m = &s->labels[k];
                break;
            }
        }
        if (!m) {
            if (s->nlabels == METRICS_MAX_LABELS)
                continue;
            m = &s->labels[s->nlabels++];
            memcpy(m->tenant, l->tenant, sizeof m->tenant);
            memcpy(m->backend, l->backend, sizeof m->backend);
            memcpy(m->model, l->model, sizeof m->model);
            m->tenant[sizeof m->tenant - 1] = '\0';
            m->backend[sizeof m->backend - 1] = '\0';
            m->model[sizeof m->model - 1] = '\0';
        }
        hist_snap_add(&m->h, &l->h);
    }
}

static int64_t rdg(const _Atomic int64_t *g)
{
    return atomic_load_explicit(g, memory_order_relaxed);
}

void metrics_collect(const struct shm *shm, struct metrics_snapshot *snap)
{
    const struct shm_segment *seg = shm->seg;
    for (;;) {
        uint32_t tok = shm_read_begin(shm);
        memset(snap, 0, sizeof *snap);
        add_counters(snap, &seg->retired.c);
        add_labels(snap, seg->retired.ttft);
        for (unsigned i = 0; i < seg->nslots; i++) {
            const struct shm_slot_hdr *h = &seg->hdr[i];
            if (atomic_load_explicit(&h->state, memory_order_acquire) != SHM_SLOT_LIVE)
                continue;
            const struct shm_slot *sl = shm_slot(shm, i);
            add_counters(snap, &sl->c);
            add_labels(snap, sl->ttft);
            if (h->role != SHM_ROLE_WORKER)
                continue;
            snap->workers_live++;
            if (atomic_load_explicit(&h->draining, memory_order_relaxed))
                snap->workers_draining++;
            snap->streams_active += rdg(&sl->g.streams_active);
            snap->connections += rdg(&sl->g.connections);
            snap->upstream_conns += rdg(&sl->g.upstream_conns);
            snap->upstream_idle += rdg(&sl->g.upstream_idle);
            snap->slabs_used += rdg(&sl->g.slabs_used);
            snap->admitted_now += rdg(&sl->g.admitted);
            snap->queue_len += rdg(&sl->g.queue_len);
            snap->h2_conns += rdg(&sl->g.h2_conns);
            snap->ws_conns += rdg(&sl->g.ws_conns);
            snap->resume_streams += rdg(&sl->g.resume_streams);
            snap->resume_bytes += rdg(&sl->g.resume_bytes);
            snap->ring_dropped += shm_ring_dropped(shm_ev_ring(shm, i));
        }
        snap->ring_dropped += rd(&seg->retired_ring_dropped);
        snap->admit_limit = atomic_load_explicit(&seg->tables.admit_limit, memory_order_relaxed);
        for (unsigned f = 0; f < FEAT_COUNT; f++)
            snap->rollout_pct[f] =
                atomic_load_explicit(&seg->tables.rollout[f], memory_order_relaxed);
        if (!shm_read_retry(shm, tok))
            return;
    }
}

/* Prometheus label values escape backslash, double quote and newline. */
static void put_label(struct sbuf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            sbuf_printf(b, "\\%c", *v);
        else if (*v == '\n')
            sbuf_puts(b, "\\n");
        else
            sbuf_put(b, v, 1);
    }
}

static void put_seconds(struct sbuf *b, uint64_t us)
{
    sbuf_printf(b, "%llu.%06llu", (unsigned long long)(us / 1000000),
                (unsigned long long)(us % 1000000));
}

static void put_hist(struct sbuf *b, const char *name, const char *labels,
                     const struct hist_bounds *bounds, const struct hist_snap *h)
{
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (unsigned i = 0; i < bounds->n; i++) {
        cum += h->bucket[i];
        sbuf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
                    (double)bounds->le_us[i] / 1e6, (unsigned long long)cum);
    }
    cum += h->bucket[bounds->n];
    sbuf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cum);
    sbuf_printf(b, "%s_sum%s%s%s ", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "");
    put_seconds(b, h->sum_us);
    sbuf_printf(b, "\n%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
                labels[0] ? "}" : "", (unsigned long long)h->count);
}

static void counter(struct sbuf *b, const char *name, const char *help, uint64_t v)
{
    sbuf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
                (unsigned long long)v);
}

static void gauge(struct sbuf *b, const char *name, const char *help, int64_t v)
{
    sbuf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name,
                (long long)v);
}

int metrics_render(const struct metrics_snapshot *s, struct sbuf *b)
{
    sbuf_puts(b, "# HELP sluice_requests_total Requests answered, by HTTP status "
                 "(499: the client left before any response).\n"
                 "# TYPE sluice_requests_total counter\n");
    for (unsigned i = 0; i < SHM_N_CODES; i++) {
        int code = shm_code_status((enum shm_code)i);
        if (code)
            sbuf_printf(b, "sluice_requests_total{code=\"%d\"} %llu\n", code,
                        (unsigned long long)s->requests[i]);
        else
            sbuf_printf(b, "sluice_requests_total{code=\"other\"} %llu\n",
                        (unsigned long long)s->requests[i]);
    }
    counter(b, "sluice_tokens_total", "Token events relayed to clients.", s->tokens);
    gauge(b, "sluice_streams_active", "Completion requests in progress.", s->streams_active);
    counter(b, "sluice_upstream_cancellations_total",
            "Backend requests cut before their end (client gone, timeout, slow consumer).",
            s->upstream_cancellations);
    counter(b, "sluice_slow_consumers_total",
            "Clients cut for not reading their stream within slow_consumer_timeout.",
            s->slow_consumers);

    sbuf_puts(b, "# HELP sluice_ttft_seconds Time from a complete request to its first token "
                 "event.\n# TYPE sluice_ttft_seconds histogram\n");
    for (unsigned i = 0; i < s->nlabels; i++) {
        struct sbuf l;
        sbuf_init(&l, 1024);
        sbuf_puts(&l, "tenant=\"");
        put_label(&l, s->labels[i].tenant);
        sbuf_puts(&l, "\",backend=\"");
        put_label(&l, s->labels[i].backend);
        sbuf_puts(&l, "\",model=\"");
        put_label(&l, s->labels[i].model);
        sbuf_puts(&l, "\"");
        if (!l.err)
            put_hist(b, "sluice_ttft_seconds", l.p, &hist_ttft_bounds, &s->labels[i].h);
        sbuf_free(&l);
    }
    sbuf_puts(b, "# HELP sluice_inter_token_seconds Gap between consecutive token events of a "
                 "stream.\n# TYPE sluice_inter_token_seconds histogram\n");
    put_hist(b, "sluice_inter_token_seconds", "", &hist_itl_bounds, &s->itl);

    gauge(b, "sluice_connections_active", "Client connections open.", s->connections);
    gauge(b, "sluice_http2_connections", "Client connections speaking HTTP/2 now.", s->h2_conns);
    counter(b, "sluice_http2_connections_total", "Client connections that spoke HTTP/2.",
            s->h2_conns_total);
    counter(b, "sluice_http2_streams_total",
            "HTTP/2 requests; over sluice_http2_connections_total, streams per connection.",
            s->h2_streams);
    counter(b, "sluice_http2_refused_total",
            "HTTP/2 attempts refused (disabled, or outside the http2_transport rollout).",
            s->h2_refused);
    counter(b, "sluice_http2_client_resets_total",
            "HTTP/2 streams the client reset before their end.", s->h2_resets);
    counter(b, "sluice_http2_abuse_total",
            "HTTP/2 connections ended for abuse (rapid reset, floods, bad frames).", s->h2_abuse);
    gauge(b, "sluice_websocket_connections", "Client connections speaking WebSocket now.",
          s->ws_conns);
    counter(b, "sluice_websocket_connections_total", "Client connections upgraded to WebSocket.",
            s->ws_conns_total);
    sbuf_puts(b, "# HELP sluice_websocket_messages_total WebSocket messages: requests in, "
                 "answers out.\n# TYPE sluice_websocket_messages_total counter\n");
    sbuf_printf(b, "sluice_websocket_messages_total{dir=\"in\"} %llu\n",
                (unsigned long long)s->ws_msgs_in);
    sbuf_printf(b, "sluice_websocket_messages_total{dir=\"out\"} %llu\n",
                (unsigned long long)s->ws_msgs_out);
    counter(b, "sluice_tls_handshakes_total", "TLS handshakes completed.", s->tls_handshakes);
    counter(b, "sluice_tls_resumed_total", "TLS handshakes that resumed a session from a ticket.",
            s->tls_resumed);
    counter(b, "sluice_tls_failures_total", "TLS handshakes or records that failed.",
            s->tls_failures);
    counter(b, "sluice_connections_total", "Client connections accepted.", s->accepted);
    gauge(b, "sluice_resume_streams", "Resumable streams retained for a client that left.",
          s->resume_streams);
    gauge(b, "sluice_resume_buffer_bytes", "Memory of the event logs of resumable streams.",
          s->resume_bytes);
    counter(b, "sluice_resume_retained_total",
            "Resumable streams kept (not cancelled) after their client left.", s->resume_retained);
    static const char *const res[SHM_RESUME_COUNT] = {"ok",  "relayed", "not_found",
                                                      "gap", "invalid", "cancelled"};
    sbuf_puts(b, "# HELP sluice_resume_requests_total Resume requests (GET /v1/streams/ID), by "
                 "result.\n# TYPE sluice_resume_requests_total counter\n");
    for (unsigned i = 0; i < SHM_RESUME_COUNT; i++)
        sbuf_printf(b, "sluice_resume_requests_total{result=\"%s\"} %llu\n", res[i],
                    (unsigned long long)s->resumes[i]);
    counter(b, "sluice_resume_expired_total",
            "Retained streams nobody resumed within resume_retention_s.", s->resume_expired);
    counter(b, "sluice_resume_takeovers_total",
            "Resumes that took a stream over from an older connection.", s->resume_takeovers);
    sbuf_puts(b, "# HELP sluice_resume_dropped_total Retained events dropped: finished streams "
                 "for memory, logs with no room at all.\n"
                 "# TYPE sluice_resume_dropped_total counter\n");
    sbuf_printf(b, "sluice_resume_dropped_total{reason=\"memory\"} %llu\n",
                (unsigned long long)s->resume_dropped);
    sbuf_printf(b, "sluice_resume_dropped_total{reason=\"overflow\"} %llu\n",
                (unsigned long long)s->resume_overflows);
    counter(b, "sluice_affinity_picks_total",
            "Requests whose backend prefix affinity chose (rendezvous hashing, bounded load).",
            s->affinity_picks);
    counter(b, "sluice_backend_panics_total",
            "Requests sent to a backend that was down or ejected: none for the model was up.",
            s->backend_panics);
    counter(b, "sluice_resume_log_full_total",
            "Times a backend was paused because a resumable stream's event log was full.",
            s->resume_log_full);
    sbuf_puts(b, "# HELP sluice_upstream_connections Backend connections, by state.\n"
                 "# TYPE sluice_upstream_connections gauge\n");
    sbuf_printf(b, "sluice_upstream_connections{state=\"busy\"} %lld\n",
                (long long)(s->upstream_conns - s->upstream_idle));
    sbuf_printf(b, "sluice_upstream_connections{state=\"idle\"} %lld\n",
                (long long)s->upstream_idle);
    counter(b, "sluice_upstream_connects_total", "Backend connections opened.",
            s->upstream_connects);
    counter(b, "sluice_upstream_reused_total", "Backend requests sent on a pooled connection.",
            s->upstream_reused);
    counter(b, "sluice_upstream_errors_total",
            "Backend failures: refused, reset, timed out or invalid.", s->upstream_errors);
    counter(b, "sluice_upstream_retries_total",
            "Requests sent again after a pooled connection turned out closed.",
            s->upstream_retries);
    sbuf_puts(b, "# HELP sluice_sends_total Client sends, by path.\n"
                 "# TYPE sluice_sends_total counter\n");
    sbuf_printf(b, "sluice_sends_total{path=\"plain\"} %llu\n", (unsigned long long)s->sends);
    sbuf_printf(b, "sluice_sends_total{path=\"zerocopy\"} %llu\n", (unsigned long long)s->sends_zc);
    counter(b, "sluice_sent_bytes_total", "Bytes sent to clients.", s->bytes_out);
    counter(b, "sluice_recv_buffer_exhausted_total",
            "Receives that found the provided-buffer ring empty.", s->recv_enobufs);
    counter(b, "sluice_slab_waits_total", "Streams paused because the slab pool ran low.",
            s->slab_waits);
    gauge(b, "sluice_slabs_used", "Output slabs in use.", s->slabs_used);
    sbuf_puts(b, "# HELP sluice_rejected_total Requests refused at admission, by reason.\n"
                 "# TYPE sluice_rejected_total counter\n");
    for (unsigned r = 0; r < REJ_COUNT; r++)
        sbuf_printf(b, "sluice_rejected_total{reason=\"%s\"} %llu\n", ev_reject_name(r),
                    (unsigned long long)s->rejected[r]);
    gauge(b, "sluice_governor_limit",
          "Concurrent completion streams the governor admits on this node.", s->admit_limit);
    gauge(b, "sluice_admitted_streams", "Completion streams holding an admission now.",
          s->admitted_now);
    gauge(b, "sluice_admission_queue", "Requests waiting for admission now.", s->queue_len);
    counter(b, "sluice_admitted_total", "Completion streams admitted.", s->admitted);
    counter(b, "sluice_admission_queued_total",
            "Completion streams that waited in an admission queue.", s->queued);
    counter(b, "sluice_ring_dropped_total",
            "Events a worker could not hand to the control plane (ring full).", s->ring_dropped);
    counter(b, "sluice_tenant_tokens_charged_total", "Tokens charged to tenant budgets.",
            s->tokens_charged);
    counter(b, "sluice_operator_cancels_total", "Streams ended by sluicectl cancel.",
            s->cancels_by_cmd);
    sbuf_puts(b, "# HELP sluice_rollout_percent Share of requests inside each feature.\n"
                 "# TYPE sluice_rollout_percent gauge\n");
    for (unsigned f = 0; f < FEAT_COUNT; f++)
        sbuf_printf(b, "sluice_rollout_percent{feature=\"%s\"} %u\n",
                    rollout_name((enum rollout_feature)f), s->rollout_pct[f]);
    sbuf_puts(b, "# HELP sluice_rollout_requests_total Completion requests by feature and "
                 "whether they were inside its rollout.\n"
                 "# TYPE sluice_rollout_requests_total counter\n");
    for (unsigned f = 0; f < FEAT_COUNT; f++) {
        const char *name = rollout_name((enum rollout_feature)f);
        sbuf_printf(b, "sluice_rollout_requests_total{feature=\"%s\",in=\"true\"} %llu\n", name,
                    (unsigned long long)s->rollout_on[f]);
        sbuf_printf(b, "sluice_rollout_requests_total{feature=\"%s\",in=\"false\"} %llu\n", name,
                    (unsigned long long)s->rollout_off[f]);
    }
    gauge(b, "sluice_workers", "Worker processes alive.", s->workers_live);
    gauge(b, "sluice_workers_draining", "Worker processes draining.", s->workers_draining);
    return b->err;
}

void metrics_render_backends(const struct shm *shm, const struct config *cfg, uint64_t now_ms,
                             struct sbuf *b)
{
    static const struct {
        const char *name, *type, *help;
    } m[] = {
        {"sluice_backend_up", "gauge", "1 when the backend is up (checks pass) and not ejected."},
        {"sluice_backend_inflight", "gauge", "Requests outstanding on the backend, node-wide."},
        {"sluice_backend_ejections_total", "counter",
         "Times the backend was ejected after failures in a row."},
        {"sluice_backend_failures_total", "counter",
         "Requests that failed on the backend (connect, reset, 5xx, 429, first-token timeout)."},
        {"sluice_backend_failovers_total", "counter",
         "Requests moved from the backend to another before their first byte."},
        {"sluice_backend_checks_failed_total", "counter", "Active health checks that failed."},
        {"sluice_backend_queue", "gauge",
         "Requests waiting in the backend's own queue (vLLM num_requests_waiting), last read."},
        {"sluice_backend_gpu_memory_ratio", "gauge",
         "GPU memory in use on the backend's host (its agent; the fullest GPU), last read."},
    };
    const struct shm_tables *t = &shm->seg->tables;
    for (size_t k = 0; k < sizeof m / sizeof m[0]; k++) {
        sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", m[k].name, m[k].help, m[k].name, m[k].type);
        for (unsigned i = 0; i < cfg->n_backends; i++) {
            int idx = shm_backend_find(shm, cfg->backends[i].name);
            if (idx < 0)
                continue;
            const struct shm_backend *e = &t->backends[idx];
            uint64_t v;
            switch (k) {
            case 0:
                v = atomic_load_explicit(&e->up, memory_order_relaxed) &&
                    atomic_load_explicit(&e->eject_until_ms, memory_order_relaxed) <= now_ms;
                break;
            case 1: {
                int64_t n = shm_node_backend_inflight(shm, (unsigned)idx);
                v = n > 0 ? (uint64_t)n : 0;
                break;
            }
            case 2:
                v = rd(&e->ejected_total);
                break;
            case 3:
                v = rd(&e->failures_total);
                break;
            case 4:
                v = rd(&e->failovers_total);
                break;
            case 6:
                v = atomic_load_explicit(&e->waiting, memory_order_relaxed);
                break;
            case 7: {
                /* a ratio: printed with its fraction */
                uint32_t pm = atomic_load_explicit(&e->gpu_mem_permille, memory_order_relaxed);
                sbuf_printf(b, "%s{backend=\"", m[k].name);
                put_label(b, cfg->backends[i].name);
                sbuf_printf(b, "\"} %u.%03u\n", pm / 1000, pm % 1000);
                continue;
            }
            default:
                v = rd(&e->checks_failed);
                break;
            }
            sbuf_printf(b, "%s{backend=\"", m[k].name);
            put_label(b, cfg->backends[i].name);
            sbuf_printf(b, "\"} %llu\n", (unsigned long long)v);
        }
    }
}
