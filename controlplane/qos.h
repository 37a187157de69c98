/*
 * qos — service levels watched, and kept, by the control plane.
 *
 * Evaluation.  The workers' stream events (first token with the client's
 * TTFT, end with its status and how it ended, refusals) fill one bucket per
 * evaluate_interval for the node, for each tenant and each backend a policy
 * looks at: counts, and a TTFT sketch (shared/sketch.h).  Gaps between
 * tokens are too many to travel as events: each worker records them in its
 * own sketch window in shared memory, collected for each finished interval.
 * Every interval each [slo NAME] is evaluated over the buckets of its
 * window (merged exactly) for its scope: the node, one tenant, each tenant
 * ("*", each its own target), or one backend's requests.
 *
 * Remediation.  A breached target applies its policy's next action once the
 * previous one's cooldown has passed (escalation), and undoes them in
 * reverse, one per hold period, while it is healthy.  Each undo restores
 * what its action found.  A target applied and undone more than loop_max
 * times within loop_window freezes (and alerts) instead of flapping.  With
 * [qos] observe_only, or the qos_monitoring rollout below 100 %, every
 * decision is made, logged and counted, and nothing changes.
 *
 * Rollback.  After an operator raises a feature's rollout, its new path
 * (streams inside the rollout) and old path are compared: the new path's
 * error rate past rollback_error_rate, or its TTFT p95 past the TTFT level
 * (a node ttft_p95 [slo], else [governor] target_ttft_ms), while the old
 * path's is not, puts the feature back where it was, with an alert.
 *
 * Every decision is an audit line (JSON, state_dir/audit.log) kept also in
 * memory for `sluicectl events`; the targets' state is saved to
 * state_dir/qos.json, so a restarted control plane goes on from it (the
 * limits it set live in the shared tables).
 *
 * Single-threaded (the control plane).
 */
#ifndef SLUICE_QOS_H
#define SLUICE_QOS_H

#include <stdbool.h>
#include <stdint.h>

struct cp;
struct ev_rec;
struct sbuf;
struct webhook;
struct qos_state;

struct qos {
    struct qos_state *s;
};

int qos_init(struct qos *q, struct cp *cp, struct webhook *wh);
void qos_free(struct qos *q);

void qos_on_event(struct qos *q, const struct ev_rec *ev);
/* Samples the queue; evaluates when an interval has finished. */
void qos_poll(struct qos *q, uint64_t now_ms);
/* A rollout changed (<who>: "qos ..." for its own changes). */
void qos_rollout_changed(struct qos *q, unsigned feature, unsigned was, unsigned now,
                         const char *who);

/* For /status, `sluicectl qos` and `sluicectl events` (jansson objects). */
void *qos_status_json(const struct qos *q);
void *qos_events_json(const struct qos *q, unsigned max);
/* Prometheus lines: violations, remediations, current values and levels. */
void qos_metrics(const struct qos *q, struct sbuf *b);

#endif
