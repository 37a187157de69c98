/*
 * health — active health checks of the backends, from the control plane.
 *
 * Every health_interval each backend gets one check on a fresh connection,
 * driven by the control plane's epoll loop (non-blocking connect, one
 * request, the status line read, then closed), by kind: vLLM and other
 * OpenAI-style servers `GET /health`, Ollama `GET /api/tags`, TensorFlow
 * Serving `GET /v1/models/NAME` (its tf_model, else the first of its
 * models; none named: no active check).  A check passes on a 2xx status
 * within health_timeout.  health_fall failures in a row take an up backend
 * down, health_rise passes bring a down one up; the verdict goes to the
 * shared backend table, where every worker reads it when it picks a
 * backend.  After a passing check: an OpenAI backend's Prometheus metrics
 * (`GET /metrics`) for its saturation (vLLM's num_requests_waiting and
 * _running summed over models, and KV-cache use), which the workers add to
 * a backend's load; an Ollama backend's `GET /api/ps` for the models it
 * holds in memory (the workers prefer a backend that will not have to load
 * the model); now and then the model list of a backend configured without
 * `models` (`/v1/models`, Ollama's `/api/tags`); the GPU agent's /status.
 *
 * Single-threaded (the control plane's loop); owns its sockets.
 */
#ifndef SLUICE_HEALTH_H
#define SLUICE_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

struct config;
struct shm;
struct hc_check;

struct health {
    int ep;
    const struct config *cfg;
    struct shm *shm;
    struct hc_check *checks; /* one per configured backend */
    unsigned n;
};

/* Prepares a check per backend (none when health_interval is 0).  0 or
 * -ENOMEM. */
int health_init(struct health *h, int ep, const struct config *cfg, struct shm *shm);
/* Whether an epoll tag is one of its checks. */
bool health_owns(const struct health *h, const void *tag);
void health_on_event(struct health *h, void *tag, uint32_t events);
/* Starts the checks that are due and fails those past their timeout. */
void health_poll(struct health *h, uint64_t now_ms);
void health_close(struct health *h);

#endif
