/*
 * config_keys — the schema of the config file, private to config.c and
 * config_load.c (and what they share of it): the
 * sections, and one X-macro list of every key (its section, type, default,
 * the field it fills, its bounds and its help line).  config.c expands the
 * list twice, into the public schema (config_schema(), the README table)
 * and into the private layout, so the two cannot disagree.  Adding a key is
 * one entry here and one field in struct config.
 */
#ifndef SLUICE_CONFIG_KEYS_H
#define SLUICE_CONFIG_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/config.h"

enum section {
    S_SERVER = 0,
    S_HTTP,
    S_HTTP2,
    S_CORS,
    S_WEBSOCKET,
    S_ROLLOUT,
    S_UPSTREAM,
    S_STREAM,
    S_BUFFERS,
    S_AUTH,
    S_GOVERNOR,
    S_BACKEND,
    S_TENANT,
    S_QOS,
    S_SLO,
    S_COUNT,
    S_NONE, /* before the first section header */
    S_SKIP, /* inside a section that was refused: its keys are ignored */
};

enum key_flags {
    F_POW2 = 1u << 0,     /* must be a power of two */
    F_NONEMPTY = 1u << 1, /* a path that may not be "" */
    F_READABLE = 1u << 2, /* a file that must be readable when set */
};

/* Where a key's value lives and what it may be, beside the public schema. */
struct key_impl {
    enum section sec;
    unsigned flags;
    size_t off;  /* in struct config, config_backend or config_tenant */
    size_t size; /* of that field */
    uint64_t min;
    uint64_t max; /* 0 = whatever the field holds */
};

#define FIELD(base, field) offsetof(struct base, field), sizeof(((struct base *)0)->field)

/* One list makes both the public schema and the private layout, so they
 * cannot disagree.  X(section, "section", "key", type, "default", struct,
 * field, min, max, flags, "help") */
// clang-format off
#define CONFIG_KEYS(X)                                                                             \
X(S_SERVER, "server", "listen", CFG_ADDR, "0.0.0.0:8080", config, listen, 0, 0, 0,                  \
  "address for client connections (HTTP/1.1 and h2c)")                                             \
X(S_SERVER, "server", "tls_listen", CFG_ADDR, "0.0.0.0:8443", config, tls_listen, 0, 0, 0,          \
  "address for TLS client connections, used only when tls_cert and tls_key are set")               \
X(S_SERVER, "server", "tls_cert", CFG_PATH, "", config, tls_cert, 0, 0, F_READABLE,                 \
  "PEM certificate chain file; empty = TLS off")                                                   \
X(S_SERVER, "server", "tls_key", CFG_PATH, "", config, tls_key, 0, 0, F_READABLE,                   \
  "PEM private key file for tls_cert")                                                             \
X(S_SERVER, "server", "tls_min_version", CFG_ENUM, "1.3", config, tls_min_version, 0, 0, 0,      \
  "oldest TLS version accepted: 1.3, or 1.2 for older clients")                                  \
X(S_SERVER, "server", "admin_listen", CFG_ADDR, "127.0.0.1:9090", config, admin_listen, 0, 0, 0,    \
  "address for the admin API (/metrics, /healthz, /readyz)")                                       \
X(S_SERVER, "server", "control_socket", CFG_PATH, "/run/sluice/control.sock", config,              \
  control_socket, 0, 0, F_NONEMPTY, "Unix socket for sluicectl")                                   \
X(S_SERVER, "server", "control_group", CFG_TEXT, "", config, control_group, 0, 0, 0,              \
  "group whose members may use control_socket (mode 0660); empty = owner only (0600)")             \
X(S_SERVER, "server", "state_dir", CFG_PATH, "/var/lib/sluice", config, state_dir, 0, 0,           \
  F_NONEMPTY, "directory for rollout state and the audit log")                                     \
X(S_SERVER, "server", "workers", CFG_WORKERS, "auto", config, workers, 1, CONFIG_MAX_WORKERS, 0,   \
  "worker processes: auto (one per online CPU) or 1..256")                                         \
X(S_SERVER, "server", "drain_timeout", CFG_DURATION, "30s", config, drain_timeout_ms, 1, 0, 0,     \
  "how long draining workers may keep serving on reload or shutdown")                              \
X(S_SERVER, "server", "max_connections", CFG_UINT, "16384", config, max_connections, 1, 1048576,   \
  0, "client connections per worker (1..1048576)")                                                 \
X(S_SERVER, "server", "batch_wait_us", CFG_UINT, "0", config, batch_wait_us, 0, 10000, 0,        \
  "microseconds a busy worker lets completions gather before it wakes (0..10000; 0 = off)")        \
X(S_SERVER, "server", "log_level", CFG_LOGLEVEL, "info", config, log_level, 0, 0, 0,               \
  "error, warn, info or debug")                                                                    \
X(S_HTTP, "http", "max_request_line", CFG_SIZE, "8k", config, max_request_line, 256, MIB, 0,       \
  "longest request line (256..1MiB)")                                                              \
X(S_HTTP, "http", "max_header_bytes", CFG_SIZE, "32k", config, max_header_bytes, 256, MIB, 0,      \
  "largest request head, request line included (max_request_line..1MiB)")                         \
X(S_HTTP, "http", "max_headers", CFG_UINT, "100", config, max_headers, 1,                           \
  CONFIG_MAX_HEADERS_CAP, 0, "most header fields in one request (1..256)")                         \
X(S_HTTP, "http", "max_body_size", CFG_SIZE, "4m", config, max_body_size, 0, 0, 0,                 \
  "largest request body")                                                                          \
X(S_HTTP, "http", "header_timeout", CFG_DURATION, "10s", config, header_timeout_ms, 1, 0, 0,       \
  "time allowed to receive a whole request head")                                                  \
X(S_HTTP, "http", "body_timeout", CFG_DURATION, "30s", config, body_timeout_ms, 1, 0, 0,           \
  "longest wait between request body bytes")                                                       \
X(S_HTTP, "http", "keepalive_timeout", CFG_DURATION, "75s", config, keepalive_timeout_ms, 1, 0, 0, \
  "idle time allowed between requests on one connection")                                          \
X(S_HTTP, "http", "keepalive_requests", CFG_UINT, "1000", config, keepalive_requests, 1, 0, 0,     \
  "requests served on one connection before it is closed")                                         \
X(S_HTTP2, "http2", "enabled", CFG_BOOL, "true", config, h2_enabled, 0, 0, 0,                    \
  "serve HTTP/2 (h2c by prior knowledge or Upgrade); the http2_transport rollout gates it too")   \
X(S_HTTP2, "http2", "max_concurrent_streams", CFG_UINT, "128", config, h2_max_streams, 1, 65536, 0, \
  "streams one client connection may have open at once (1..65536)")                               \
X(S_HTTP2, "http2", "window_size", CFG_SIZE, "256k", config, h2_window, 16 * KIB, 1 * GIB, 0,     \
  "receive window advertised per stream and for the connection (16KiB..1GiB)")                    \
X(S_HTTP2, "http2", "reset_burst", CFG_UINT, "200", config, h2_reset_burst, 1, 1000000, 0,       \
  "streams a client may reset at once before the rate applies (rapid-reset defence)")             \
X(S_HTTP2, "http2", "reset_rate", CFG_UINT, "50", config, h2_reset_rate, 1, 1000000, 0,          \
  "resets per second a client may keep up; beyond it the connection gets GOAWAY")                 \
X(S_HTTP2, "http2", "max_settings", CFG_UINT, "32", config, h2_max_settings, 1, 1024, 0,         \
  "entries in one SETTINGS frame; more is a protocol error (settings flood)")                     \
X(S_CORS, "cors", "allow_origins", CFG_TEXT, "", config, cors_origins, 0, 0, 0,                 \
  "origins (scheme://host[:port], comma-separated) whose pages may call sluice, or *; empty = off") \
X(S_CORS, "cors", "allow_methods", CFG_TEXT, "GET, POST, OPTIONS", config, cors_methods, 0, 0, 0, \
  "methods a preflight may ask for")                                                               \
X(S_CORS, "cors", "allow_headers", CFG_TEXT,                                                       \
  "Authorization, Content-Type, X-Request-Id, X-Session-Id, Last-Event-ID", config, cors_headers, \
  0, 0, 0, "request headers a preflight may ask for")                                              \
X(S_CORS, "cors", "max_age", CFG_DURATION, "10m", config, cors_max_age_ms, 0, 0, 0,                \
  "how long a browser may cache a preflight's answer")                                             \
X(S_CORS, "cors", "allow_credentials", CFG_BOOL, "false", config, cors_credentials, 0, 0, 0,       \
  "let pages send cookies and HTTP auth (answers name the origin, never *)")                       \
X(S_WEBSOCKET, "websocket", "ping_interval", CFG_DURATION, "30s", config, ws_ping_interval_ms, \
  1, 0, 0, "a ping goes out after this long without a byte from the client")                      \
X(S_WEBSOCKET, "websocket", "pong_timeout", CFG_DURATION, "10s", config, ws_pong_timeout_ms, 1, \
  0, 0, "no answer to a ping within this closes the connection (1011)")                           \
X(S_WEBSOCKET, "websocket", "max_message", CFG_SIZE, "1m", config, ws_max_message, 16, 0, 0,    \
  "largest message a client may send; larger closes with 1009")                                  \
X(S_ROLLOUT, "rollout", "adaptive_governor", CFG_UINT, "0", config, rollout_initial[0], 0, 100, 0, \
  "percent in the feature while no state file says otherwise (sluicectl rollout set)")            \
X(S_ROLLOUT, "rollout", "http2_transport", CFG_UINT, "100", config, rollout_initial[1], 0, 100, 0, \
  "percent of clients that may speak h2c, likewise (0 = HTTP/1.1 only)")                         \
X(S_ROLLOUT, "rollout", "ttft_pipeline", CFG_UINT, "0", config, rollout_initial[2], 0, 100, 0,    \
  "percent in the feature, likewise")                                                              \
X(S_ROLLOUT, "rollout", "qos_monitoring", CFG_UINT, "0", config, rollout_initial[3], 0, 100, 0,   \
  "percent in the feature, likewise")                                                              \
X(S_ROLLOUT, "rollout", "stream_resume", CFG_UINT, "0", config, rollout_initial[4], 0, 100, 0,    \
  "percent in the feature, likewise")                                                              \
X(S_UPSTREAM, "upstream", "connect_timeout", CFG_DURATION, "3s", config, connect_timeout_ms, 1, 0, \
  0, "time allowed to connect to a backend")                                                       \
X(S_UPSTREAM, "upstream", "keepalive", CFG_UINT, "1024", config, upstream_keepalive, 0, 0, 0,        \
  "idle connections kept per backend per worker (0 = none)")                                       \
X(S_UPSTREAM, "upstream", "idle_timeout", CFG_DURATION, "60s", config, upstream_idle_timeout_ms,  \
  1, 0, 0, "how long an idle backend connection is kept")                                          \
X(S_UPSTREAM, "upstream", "balance", CFG_ENUM, "least_outstanding", config, balance, 0, 0, 0,       \
  "how a backend is picked: least_outstanding (per weight, node-wide) or round_robin")             \
X(S_UPSTREAM, "upstream", "affinity_prefix", CFG_SIZE, "0", config, affinity_prefix, 0, 1024 * KIB,  \
  0, "prompt bytes (system prompt, start of the conversation) that keep requests on one backend "   \
  "for its KV cache; 0 = off")                                                                     \
X(S_UPSTREAM, "upstream", "affinity_load", CFG_DOUBLE, "1.25", config, affinity_load, 1, 100, 0,    \
  "prefix affinity's bound: a backend takes a request by affinity while its load stays under "     \
  "this times the average")                                                                        \
X(S_UPSTREAM, "upstream", "reserve", CFG_UINT, "0", config, upstream_reserve, 0, 90, 0,          \
  "percent of each backend's max_inflight kept for priority tenants (load shedding hits the "     \
  "others first)")                                                                                 \
X(S_UPSTREAM, "upstream", "gpu_memory_max", CFG_UINT, "95", config, gpu_memory_max, 0, 100, 0,    \
  "percent of GPU memory in use (from a backend's agent) past which it gets no new requests; "    \
  "0 = off")                                                                                       \
X(S_UPSTREAM, "upstream", "retries", CFG_UINT, "2", config, upstream_retries, 0, 16, 0,             \
  "other backends a request may move to before its first byte reaches the client")                \
X(S_UPSTREAM, "upstream", "continue_streams", CFG_BOOL, "false", config, continue_streams, 0, 0, 0,  \
  "continue a stream on another backend when its backend fails mid-answer (vLLM-style backends)")  \
X(S_UPSTREAM, "upstream", "request_usage", CFG_BOOL, "true", config, request_usage, 0, 0, 0,        \
  "ask for stream_options.include_usage when a streaming client did not, and drop that chunk "    \
  "from its stream: token counts come from the backend")                                          \
X(S_UPSTREAM, "upstream", "eject_after", CFG_UINT, "5", config, eject_after, 0, 1000, 0,           \
  "consecutive failed requests (connect, reset, 5xx, timeout) that eject a backend; 0 = never")   \
X(S_UPSTREAM, "upstream", "eject_time", CFG_DURATION, "5s", config, eject_time_ms, 1, 0, 0,        \
  "how long a first ejection lasts; each ejection in a row doubles it, up to 64 times")           \
X(S_UPSTREAM, "upstream", "health_interval", CFG_DURATION, "2s", config, health_interval_ms, 0, 0, \
  0, "active health checks of every backend by the control plane; 0 = none")                       \
X(S_UPSTREAM, "upstream", "health_timeout", CFG_DURATION, "1s", config, health_timeout_ms, 1, 0, \
  0, "time a health check may take")                                                               \
X(S_UPSTREAM, "upstream", "health_rise", CFG_UINT, "2", config, health_rise, 1, 100, 0,           \
  "passing checks in a row that bring a down backend up")                                          \
X(S_UPSTREAM, "upstream", "health_fall", CFG_UINT, "3", config, health_fall, 1, 100, 0,           \
  "failing checks in a row that take a backend down")                                              \
X(S_STREAM, "stream", "first_token_timeout", CFG_DURATION, "60s", config, first_token_timeout_ms, \
  1, 0, 0, "time from request to the first content event")                                         \
X(S_STREAM, "stream", "token_idle_timeout", CFG_DURATION, "30s", config, token_idle_timeout_ms,   \
  1, 0, 0, "longest wait between events once streaming")                                           \
X(S_STREAM, "stream", "stream_buffer_max", CFG_SIZE, "256k", config, stream_buffer_max, 0, 0, 0,  \
  "unsent bytes buffered per stream (at least slab_size)")                                         \
X(S_STREAM, "stream", "slow_consumer_timeout", CFG_DURATION, "10s", config,                       \
  slow_consumer_timeout_ms, 1, 0, 0, "how long a stream may stay at stream_buffer_max")            \
X(S_STREAM, "stream", "max_event_size", CFG_SIZE, "256k", config, max_event_size, KIB, 64 * MIB, 0,  \
  "largest single SSE event (1KiB..64MiB, at most stream_buffer_max)")                             \
X(S_STREAM, "stream", "resume_retention_s", CFG_UINT, "30", config, resume_retention_s, 0, 86400, \
  0, "seconds a resumable stream is kept for a client that left (0 = resume off)")                \
X(S_STREAM, "stream", "resume_buffer_max", CFG_SIZE, "512k", config, resume_buffer_max, 4 * KIB,  \
  GIB, 0, "events kept per resumable stream for a client that drops (4KiB..1GiB)")                \
X(S_STREAM, "stream", "resume_memory_max", CFG_SIZE, "256m", config, resume_memory_max, 0, 0, 0,  \
  "event logs of all resumable streams on the node, shared by the workers")                       \
X(S_BUFFERS, "buffers", "slab_size", CFG_SIZE, "16k", config, slab_size, 4 * KIB, MIB, F_POW2,     \
  "registered slab size, a power of two (4KiB..1MiB)")                                             \
X(S_BUFFERS, "buffers", "slabs", CFG_UINT, "1024", config, slabs, 16, 1048576, 0,                  \
  "registered slabs per worker (16..1048576)")                                                     \
X(S_BUFFERS, "buffers", "recv_buffer_size", CFG_SIZE, "4k", config, recv_buffer_size, 512,        \
  64 * KIB, F_POW2, "receive buffer size, a power of two (512..64KiB)")                            \
X(S_BUFFERS, "buffers", "recv_buffers", CFG_UINT, "1024", config, recv_buffers, 16, 32768, F_POW2, \
  "receive buffers per worker, a power of two (16..32768)")                                        \
X(S_BUFFERS, "buffers", "send_zc_threshold", CFG_SIZE, "0", config, send_zc_threshold, 0, 0, 0,    \
  "smallest send that uses zero-copy SEND_ZC; 0 = never")                                          \
X(S_BACKEND, "backend *", "url", CFG_STR, "", config_backend, url, 0, 0, 0,                         \
  "required: http://HOST[:PORT] (port 80 by default); HOST is resolved at load")                   \
X(S_BACKEND, "backend *", "kind", CFG_ENUM, "openai", config_backend, kind, 0, 0, 0,               \
  "backend protocol: openai (vLLM and other OpenAI-compatible servers), ollama, or "              \
  "tfserving-rest (TensorFlow Serving's REST :predict)")                                           \
X(S_BACKEND, "backend *", "http2", CFG_BOOL, "false", config_backend, http2, 0, 0, 0,              \
  "speak HTTP/2 to it (h2c, prior knowledge): its requests share a few connections")              \
X(S_BACKEND, "backend *", "group", CFG_TEXT, "", config_backend, group, 0, 0, 0,                    \
  "the GPU it shares with other backends (same name = same GPU): failover and continuation "      \
  "prefer another group; empty = its own")                                                         \
X(S_BACKEND, "backend *", "tf_model", CFG_TEXT, "", config_backend, tf_model, 0, 0, 0,              \
  "tfserving-rest: the model name in /v1/models/NAME:predict; empty = the requested model")       \
X(S_BACKEND, "backend *", "tf_signature", CFG_TEXT, "", config_backend, tf_signature, 0, 0, 0,      \
  "tfserving-rest: signature_name sent with :predict; empty = the model's default")                \
X(S_BACKEND, "backend *", "tf_input", CFG_TEXT, "", config_backend, tf_input, 0, 0, 0,              \
  "tfserving-rest: the string input the prompt goes to ({\"instances\":[{NAME: prompt}]}); "       \
  "empty = the only input ({\"instances\":[prompt]})")                                            \
X(S_BACKEND, "backend *", "tf_output", CFG_TEXT, "", config_backend, tf_output, 0, 0, 0,            \
  "tfserving-rest: the output holding the text (predictions[0][NAME]); empty = the only output")  \
X(S_BACKEND, "backend *", "models", CFG_TEXT, "", config_backend, models, 0, 0, 0,                  \
  "models it serves, comma-separated; empty = any (requests for others never reach it)")         \
X(S_BACKEND, "backend *", "weight", CFG_UINT, "1", config_backend, weight, 1, 1000, 0,              \
  "its share of requests against backends of the same priority (1..1000)")                        \
X(S_BACKEND, "backend *", "max_inflight", CFG_UINT, "0", config_backend, max_inflight, 0, 1000000, \
  0, "concurrent requests it may ever have from this node (GPU arbitration); 0 = no cap")         \
X(S_BACKEND, "backend *", "priority", CFG_UINT, "0", config_backend, priority, 0, 100, 0,         \
  "fallback order: backends of a higher number serve only when no lower one can")                 \
X(S_BACKEND, "backend *", "agent_port", CFG_UINT, "0", config_backend, agent_port, 0, 65535, 0,    \
  "port of python/gpu_agent.py on the backend's host: its GPU memory is read; 0 = none")          \
X(S_AUTH, "auth", "enabled", CFG_BOOL, "false", config, auth_enabled, 0, 0, 0,                      \
  "require an API key; needs a [tenant NAME] with a key_sha256")                                   \
X(S_GOVERNOR, "governor", "algorithm", CFG_ENUM, "gradient", config, gov_algorithm, 0, 0, 0,       \
  "control law for the node's admission limit: gradient or pid")                                   \
X(S_GOVERNOR, "governor", "target_ttft_ms", CFG_UINT, "550", config, target_ttft_ms, 1, 600000, 0, \
  "time to first token the governor steers to, p90 of admitted streams (1..600000)")               \
X(S_GOVERNOR, "governor", "min_concurrent", CFG_UINT, "16", config, min_concurrent, 1, 1000000, 0, \
  "lowest admission limit: concurrent streams on the node (1..1000000)")                           \
X(S_GOVERNOR, "governor", "max_concurrent", CFG_UINT, "80", config, max_concurrent, 1, 1000000, 0, \
  "highest admission limit (min_concurrent..1000000)")                                             \
X(S_GOVERNOR, "governor", "sample_interval_ms", CFG_UINT, "200", config, sample_interval_ms, 10,   \
  60000, 0, "how often the limit is recomputed (10..60000)")                                       \
X(S_GOVERNOR, "governor", "kp", CFG_DOUBLE, "0.35", config, gov_kp, 0, 1000, 0,                    \
  "pid: proportional gain (0..1000)")                                                              \
X(S_GOVERNOR, "governor", "ki", CFG_DOUBLE, "0.08", config, gov_ki, 0, 1000, 0,                    \
  "pid: integral gain (0..1000)")                                                                  \
X(S_GOVERNOR, "governor", "kd", CFG_DOUBLE, "0.15", config, gov_kd, 0, 1000, 0,                    \
  "pid: derivative gain (0..1000)")                                                                \
X(S_GOVERNOR, "governor", "integral_saturation", CFG_DOUBLE, "200", config,                        \
  gov_integral_saturation, 0, 1000000, 0, "pid: bound on the integral term (anti-windup)")         \
X(S_GOVERNOR, "governor", "queue_ttl_ms", CFG_UINT, "800", config, queue_ttl_ms, 1, 600000, 0,     \
  "longest a request waits for admission before it is refused with 503 (1..600000)")              \
X(S_GOVERNOR, "governor", "queue_max", CFG_UINT, "1024", config, queue_max, 0, 1000000, 0,         \
  "requests waiting for admission per worker; 0 = refuse at once when full (0..1000000)")          \
X(S_TENANT, "tenant *", "key_sha256", CFG_HEX256, "", config_tenant, key_sha256, 0, 0, 0,           \
  "SHA-256 of the tenant's API key, 64 hex digits; required when [auth] enabled")                   \
X(S_TENANT, "tenant *", "hard_limit", CFG_UINT, "0", config_tenant, hard_limit, 0, 1000000, 0,      \
  "concurrent streams of the tenant on the node; 0 = no limit")                                    \
X(S_TENANT, "tenant *", "burst_limit", CFG_UINT, "0", config_tenant, burst_limit, 0, 1000000, 0,    \
  "concurrent streams allowed for a while above hard_limit; 0 = hard_limit")                       \
X(S_TENANT, "tenant *", "decay_ms", CFG_UINT, "60000", config_tenant, decay_ms, 1, 86400000, 0,     \
  "how long a burst above hard_limit takes to decay back to it")                                   \
X(S_TENANT, "tenant *", "tokens_per_minute", CFG_UINT, "0", config_tenant, tokens_per_minute, 0,    \
  0, 0, "token budget across the node, charged as tokens are relayed; 0 = none")                   \
X(S_TENANT, "tenant *", "default_max_tokens", CFG_UINT, "1024", config_tenant, default_max_tokens,  \
  1, 10000000, 0, "tokens reserved at admission for a request without max_tokens")                \
X(S_TENANT, "tenant *", "priority", CFG_BOOL, "false", config_tenant, priority, 0, 0, 0,           \
  "may use the share of each backend's max_inflight kept by [upstream] reserve")                  \
X(S_QOS, "qos", "evaluate_interval", CFG_DURATION, "10s", config, qos_interval_ms, 100, 3600000, 0, \
  "how often every [slo] is evaluated over its window")                                            \
X(S_QOS, "qos", "observe_only", CFG_BOOL, "false", config, qos_observe_only, 0, 0, 0,               \
  "log and count every remediation decision, change nothing (also: qos_monitoring below 100 %)")  \
X(S_QOS, "qos", "webhook", CFG_STR, "", config, qos_webhook, 0, 0, 0,                               \
  "http://HOST[:PORT]/PATH that alerts are POSTed to as JSON; empty = log lines only")            \
X(S_QOS, "qos", "webhook_timeout", CFG_DURATION, "2s", config, qos_webhook_timeout_ms, 1, 60000, 0, \
  "how long one webhook attempt may take")                                                         \
X(S_QOS, "qos", "webhook_retries", CFG_UINT, "3", config, qos_webhook_retries, 0, 10, 0,            \
  "further attempts of a failed webhook POST (1 s, 2 s, 4 s ... apart)")                           \
X(S_QOS, "qos", "loop_max", CFG_UINT, "3", config, qos_loop_max, 1, 1000, 0,                        \
  "a policy whose action is applied and undone more times than this within loop_window freezes")  \
X(S_QOS, "qos", "loop_window", CFG_DURATION, "10m", config, qos_loop_window_ms, 1000, 86400000, 0,  \
  "the window of loop detection")                                                                  \
X(S_QOS, "qos", "rollback_error_rate", CFG_DOUBLE, "0.001", config, qos_rollback_error_rate, 0, 1, \
  0, "error rate of a rollout's new path past which the rollout is undone (0.001 = 0.1 %)")       \
X(S_QOS, "qos", "rollback_min_requests", CFG_UINT, "100", config, qos_rollback_min_requests, 1,    \
  10000000, 0, "requests on the new path before its error rate is judged")                        \
X(S_SLO, "slo *", "tenant", CFG_TEXT, "", config_slo, tenant, 0, 0, 0,                              \
  "the tenant it holds for, * = each tenant on its own; empty = the whole node")                  \
X(S_SLO, "slo *", "backend", CFG_TEXT, "", config_slo, backend, 0, 0, 0,                            \
  "only requests served by this backend; empty = all")                                             \
X(S_SLO, "slo *", "metric", CFG_ENUM, "", config_slo, metric, 0, 0, 0,                              \
  "required: ttft_p50, ttft_p95, ttft_p99, itl_p99 (ms), error_rate, reject_rate, "                \
  "disconnect_rate, slow_consumer_rate (fractions), queue_depth (requests)")                       \
X(S_SLO, "slo *", "threshold", CFG_DOUBLE, "", config_slo, threshold, 0, 0, 0,                      \
  "required: breached above this (ms for latencies, 0.01 = 1 % for rates)")                        \
X(S_SLO, "slo *", "window", CFG_DURATION, "60s", config_slo, window_ms, 1000, 3600000, 0,          \
  "the sliding window the metric is computed over")                                                \
X(S_SLO, "slo *", "severity", CFG_ENUM, "warning", config_slo, severity, 0, 0, 0,                   \
  "info, warning or critical (in alerts and audit lines)")                                         \
X(S_SLO, "slo *", "actions", CFG_ACTIONS, "alert", config_slo, actions_text, 0, 0, 0,               \
  "what to do while it is breached, in order, one step per cooldown: lower_limit PCT, "           \
  "throttle_tenant, disable_feature FEATURE, protocol_fallback, shed_load PCT, alert, safe_mode; " \
  "each may add 'cooldown DURATION'")                                                              \
X(S_SLO, "slo *", "cooldown", CFG_DURATION, "30s", config_slo, cooldown_ms, 100, 3600000, 0,       \
  "wait after an action before the next one (unless the action names its own)")                    \
X(S_SLO, "slo *", "hold", CFG_DURATION, "60s", config_slo, hold_ms, 100, 3600000, 0,               \
  "healthy this long before the last action is undone (then again for the one before)")
// clang-format on

#define CONFIG_KEY_ONE(...) +1
enum { CONFIG_KEY_COUNT = 0 CONFIG_KEYS(CONFIG_KEY_ONE) };

/* The two expansions of the list (the schema ends with a NULL entry). */
extern const struct config_key config_key_schema[];
extern const struct key_impl config_key_impl[];
extern const char *const config_section_names[S_COUNT];

/* Backend and tenant sections repeat, one per name. */
bool config_section_repeats(enum section s);
/* The index of key <name> in <sec>, or -1. */
int config_key_index(enum section sec, const char *name);
/* Parses <val> for key <k> into the struct at <base>; 0, or <0 with why. */
int config_apply_value(int k, void *base, const char *val, char *why, size_t why_len);
/* Applies the non-empty defaults of every key of <sec> to <base>. */
int config_apply_defaults(enum section sec, void *base);

#endif
