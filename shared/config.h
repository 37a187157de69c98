/*
 * config — sluice's INI configuration (inih), with a default for every key.
 *
 * The schema is one table (config_schema()): section, key, type, default and
 * a line of help.  The README's key table and `sluice --help-config` are
 * printed from it, so documentation cannot drift from the parser.
 *
 * config_load() starts from the defaults, applies the file, and reports every
 * problem it finds (unknown section or key, bad value, key given twice,
 * missing or contradictory settings) as "FILE:LINE: message" — it does not
 * stop at the first.  A config with any error is refused as a whole.
 *
 * Loading resolves host names (blocking): only the supervisor and tools call
 * it, never a worker.  A loaded struct config is plain memory: after fork
 * every process reads its own copy.  Not thread-safe (nothing in sluice is
 * threaded).
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "shared/slo_spec.h"

#define CONFIG_NAME_MAX        64  /* backend and tenant names, incl. NUL */
#define CONFIG_HOST_MAX        256 /* backend host as written, incl. NUL */
#define CONFIG_MAX_BACKENDS    64
#define CONFIG_MAX_TENANTS     1024
#define CONFIG_MAX_ERRORS      64
#define CONFIG_ERROR_LEN       320
#define CONFIG_MAX_WORKERS     256
#define CONFIG_MAX_HEADERS_CAP 256 /* hard cap for [http] max_headers */
#define CONFIG_MAX_SLOS        32

/* A socket address as written ("0.0.0.0:8080", "[::1]:9090"), resolved. */
struct config_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    char text[80];
};

enum backend_kind {
    BACKEND_OPENAI = 0, /* vLLM and other OpenAI-compatible servers */
    BACKEND_OLLAMA,     /* /api/chat, /api/generate: NDJSON (ollama.c translates) */
    BACKEND_TFSERVING,  /* TensorFlow Serving REST :predict (tfserving.c translates) */
};

struct config_backend {
    char name[CONFIG_NAME_MAX];
    char url[CONFIG_HOST_MAX + 32]; /* as written */
    char host[CONFIG_HOST_MAX];     /* for the Host header */
    uint16_t port;
    struct config_addr addr; /* resolved at load time */
    enum backend_kind kind;
    char models[1024];     /* comma-separated models it serves; "" = any */
    uint32_t weight;       /* share of requests against the others (1..1000) */
    uint32_t max_inflight; /* concurrent requests it may ever have from the node; 0 = no cap */
    uint32_t priority;     /* fallback order: lower first (0..100) */
    uint32_t agent_port;   /* python/gpu_agent.py on its host; 0 = none */
    bool http2;            /* h2c with prior knowledge (upstream_h2.c) */
    char group[CONFIG_NAME_MAX];        /* the GPU it shares; "" = its own */
    char tf_model[CONFIG_NAME_MAX * 2]; /* tfserving-rest: NAME in :predict, "" = requested */
    char tf_signature[CONFIG_NAME_MAX];
    char tf_input[CONFIG_NAME_MAX];  /* "" = instances are the prompts themselves */
    char tf_output[CONFIG_NAME_MAX]; /* "" = predictions are the texts themselves */
    unsigned line;                   /* where its section starts */
};

/* The governor's control law (numbered as controlplane/governor.h's). */
enum config_tls_version {
    CONFIG_TLS_12 = 0,
    CONFIG_TLS_13,
};

/* How a backend is picked among the eligible (balance.c). */
enum config_balance {
    CONFIG_BALANCE_LEAST = 0, /* fewest outstanding per unit of weight, node-wide */
    CONFIG_BALANCE_RR,        /* in turn, whatever their load (a baseline to compare) */
};

enum config_gov_algo {
    CONFIG_GOV_PID = 0,
    CONFIG_GOV_GRADIENT = 1,
};

struct config_tenant {
    char name[CONFIG_NAME_MAX];
    uint8_t key_sha256[32];
    bool has_key;
    unsigned key_line;           /* line of key_sha256, good or bad; 0 = none */
    uint32_t hard_limit;         /* concurrent streams, 0 = no limit */
    uint32_t burst_limit;        /* allowed briefly above hard_limit; 0 = hard_limit */
    uint32_t decay_ms;           /* time a burst above hard_limit takes to decay */
    uint64_t tokens_per_minute;  /* token budget, 0 = none */
    uint32_t default_max_tokens; /* reserved when a request names no max_tokens */
    bool priority;               /* may use the capacity [upstream] reserve keeps */
    unsigned line;
};

/* A service level and what to do when it is missed ([slo NAME], qos.c). */
struct config_slo {
    char name[CONFIG_NAME_MAX];
    char tenant[CONFIG_NAME_MAX];  /* a tenant, "*" = each tenant, "" = the node */
    char backend[CONFIG_NAME_MAX]; /* a backend's requests only; "" = all */
    int metric;                    /* enum slo_metric */
    double threshold;              /* ms for latencies, a fraction for rates, a count */
    uint32_t window_ms;            /* the sliding window it is evaluated over */
    int severity;                  /* enum slo_severity */
    char actions_text[512];
    struct slo_action actions[SLO_MAX_ACTIONS];
    uint8_t n_actions;
    uint32_t cooldown_ms; /* between actions, unless an action names its own */
    uint32_t hold_ms;     /* healthy this long before one action is undone */
    unsigned line;
};

struct config {
    /* [server] */
    struct config_addr listen;     /* 0.0.0.0:8080 */
    struct config_addr tls_listen; /* 0.0.0.0:8443, used only with cert+key */
    char tls_cert[PATH_MAX];       /* "" = TLS off */
    char tls_key[PATH_MAX];
    struct config_addr admin_listen;     /* 127.0.0.1:9090 */
    char control_socket[108];            /* /run/sluice/control.sock */
    char control_group[CONFIG_NAME_MAX]; /* group allowed on control_socket; "" = owner only */
    char state_dir[PATH_MAX];            /* /var/lib/sluice */
    unsigned workers;                    /* 0 = auto: one per online CPU */
    uint32_t drain_timeout_ms;           /* 30 s */
    uint32_t max_connections;            /* client connections per worker, 16384 */
    uint32_t batch_wait_us;              /* busy worker's wait gathers completions; 0 = off */
    int log_level;                       /* enum log_level, info */

    /* [http] client side limits and timeouts */
    uint32_t max_request_line;     /* 8 KiB */
    uint32_t max_header_bytes;     /* 32 KiB, the whole head */
    uint32_t max_headers;          /* 100 */
    uint64_t max_body_size;        /* 4 MiB */
    uint32_t header_timeout_ms;    /* 10 s to receive a whole head */
    uint32_t body_timeout_ms;      /* 30 s between body bytes */
    uint32_t keepalive_timeout_ms; /* 75 s idle between requests */
    uint32_t keepalive_requests;   /* 1000 requests per connection */
    bool h2_enabled;               /* [http2] enabled, true */
    uint32_t h2_max_streams;       /* 128 concurrent streams per connection */
    uint64_t h2_window;            /* 256 KiB receive window */
    uint32_t h2_reset_burst;       /* 200 resets at once */
    uint32_t h2_reset_rate;        /* 50 resets per second */
    uint32_t h2_max_settings;      /* 32 entries per SETTINGS frame */
    char cors_origins[1024];       /* [cors] allow_origins, "" = CORS off */
    char cors_methods[256];        /* "GET, POST, OPTIONS" */
    char cors_headers[512];        /* "Authorization, Content-Type, ..." */
    uint32_t cors_max_age_ms;      /* 10 minutes */
    bool cors_credentials;         /* false */
    uint32_t ws_ping_interval_ms;  /* [websocket] ping_interval, 30 s */
    uint32_t ws_pong_timeout_ms;   /* 10 s */
    uint64_t ws_max_message;       /* 1 MiB */
    /* [rollout]: each feature's percentage until the control plane's state
     * file holds one (FEAT_* order; http2_transport 100, the rest 0) */
    uint32_t rollout_initial[5];
    /* Not from the file: the session-ticket key (name 16 + ChaCha20 key
     * 32) the supervisor draws for a generation and hands on to the next,
     * so that every worker, and a reload, resumes the others' tickets. */
    uint8_t tls_ticket_key[48];

    /* [upstream] backend connections */
    uint32_t connect_timeout_ms;       /* 3 s */
    uint32_t upstream_keepalive;       /* idle connections kept per backend per worker, 1024 */
    uint32_t upstream_idle_timeout_ms; /* 60 s */
    uint32_t upstream_retries; /* other backends a request may move to before its first byte */
    enum config_balance balance;
    uint32_t affinity_prefix;  /* prompt bytes hashed for prefix affinity; 0 = off */
    double affinity_load;      /* bounded load factor of prefix affinity */
    uint32_t upstream_reserve; /* percent of max_inflight kept for priority tenants */
    bool request_usage;        /* inject stream_options.include_usage, strip the chunk */
    uint32_t gpu_memory_max;   /* percent of GPU memory past which a backend gets no new request */
    bool continue_streams;  /* continuation.c: a stream goes on elsewhere after a mid-answer failure
                             */
    uint32_t eject_after;   /* consecutive failures that eject a backend; 0 = never */
    uint32_t eject_time_ms; /* first ejection; doubles each time, up to 64x */
    uint32_t health_interval_ms; /* active checks from the control plane; 0 = none */
    uint32_t health_timeout_ms;
    uint32_t health_rise; /* passing checks that bring a down backend up */
    uint32_t health_fall; /* failing checks that take an up backend down */

    /* [stream] token relay */
    uint32_t first_token_timeout_ms;   /* 60 s from request to first content event */
    uint32_t token_idle_timeout_ms;    /* 30 s between events once streaming */
    uint64_t stream_buffer_max;        /* 256 KiB of unsent bytes per stream */
    uint32_t slow_consumer_timeout_ms; /* 10 s stuck at stream_buffer_max */
    uint32_t max_event_size;           /* 256 KiB, one SSE event; <= stream_buffer_max */
    uint32_t resume_retention_s;       /* 30 s a detached resumable stream is kept; 0 = off */
    uint32_t resume_buffer_max;        /* 512 KiB of events kept per resumable stream */
    uint64_t resume_memory_max;        /* 256 MiB of event logs per node */

    /* [buffers] per worker */
    uint32_t slab_size;         /* 16 KiB, power of two */
    uint32_t slabs;             /* 1024 registered slabs */
    uint32_t recv_buffer_size;  /* 4 KiB, power of two */
    uint32_t recv_buffers;      /* 1024, power of two */
    uint32_t send_zc_threshold; /* 0 = never use SEND_ZC */

    /* [governor] adaptive admission (feature adaptive_governor) */
    int gov_algorithm;              /* enum config_gov_algo, gradient */
    int tls_min_version;            /* enum config_tls_version, 1.3 */
    uint32_t target_ttft_ms;        /* 550 */
    uint32_t min_concurrent;        /* 16 */
    uint32_t max_concurrent;        /* 80 */
    uint32_t sample_interval_ms;    /* 200 */
    double gov_kp, gov_ki, gov_kd;  /* PID gains 0.35, 0.08, 0.15 */
    double gov_integral_saturation; /* 200 */
    uint32_t queue_ttl_ms;          /* 800: longest wait for admission */
    uint32_t queue_max;             /* 1024 waiting requests per worker */

    /* [backend NAME] */
    struct config_backend *backends; /* when the file has none: one default */
    unsigned n_backends;

    /* [auth] and [tenant NAME] */
    bool auth_enabled;
    struct config_tenant *tenants;
    unsigned n_tenants;

    /* [qos] and [slo NAME] */
    uint32_t qos_interval_ms;          /* evaluate_interval: 10 s */
    bool qos_observe_only;             /* decisions logged and counted, nothing changed */
    struct config_backend qos_webhook; /* url "" = none */
    char qos_webhook_path[256];
    uint32_t qos_webhook_timeout_ms;
    uint32_t qos_webhook_retries;
    uint32_t qos_loop_max;          /* apply+undo cycles of one policy ... */
    uint32_t qos_loop_window_ms;    /* ... within this window freeze it */
    double qos_rollback_error_rate; /* a rollout's new path past this: rolled back */
    uint32_t qos_rollback_min_requests;
    struct config_slo slos[CONFIG_MAX_SLOS];
    unsigned n_slos;

    char path[PATH_MAX]; /* file it came from, "" for defaults */
};

struct config_errors {
    unsigned n;       /* errors recorded */
    unsigned dropped; /* beyond CONFIG_MAX_ERRORS */
    char msg[CONFIG_MAX_ERRORS][CONFIG_ERROR_LEN];
};

enum config_type {
    CFG_ADDR = 0,
    CFG_STR,
    CFG_PATH,
    CFG_UINT,
    CFG_SIZE,     /* bytes: 4096, 16k, 16KiB, 4m, 4MiB, 1g */
    CFG_DURATION, /* 250ms, 10s, 5m, 1h; a bare number is seconds */
    CFG_BOOL,     /* true/false, yes/no, on/off, 1/0 */
    CFG_WORKERS,  /* auto or 1..CONFIG_MAX_WORKERS */
    CFG_LOGLEVEL,
    CFG_ENUM,    /* one of enum_values */
    CFG_HEX256,  /* 64 hex digits */
    CFG_DOUBLE,  /* a non-negative decimal number: 0.35, 200 */
    CFG_TEXT,    /* a plain string */
    CFG_ACTIONS, /* a QoS policy's action list (slo_spec.h) */
};

struct config_key {
    const char *section; /* "server", or "backend NAME" written as "backend *" */
    const char *name;
    enum config_type type;
    const char *def;  /* default as a user would write it; "" = empty */
    const char *help; /* one line for README and --help-config */
};

/* The schema, terminated by an entry with section == NULL. */
const struct config_key *config_schema(void);

/* Fills every field with its default (and the single default backend
 * "default" at http://127.0.0.1:8000).  Returns 0 or -ENOMEM. */
int config_defaults(struct config *cfg);

/* Defaults, then <path>.  Returns 0; -EINVAL with errs filled; or -errno if
 * the file cannot be opened (also recorded in errs).  On failure <cfg> is
 * released and must not be used. */
int config_load(struct config *cfg, const char *path, struct config_errors *errs);

void config_free(struct config *cfg);

/* Deep copy (backends and tenants arrays).  Returns 0 or -ENOMEM. */
int config_copy(struct config *dst, const struct config *src);

/* Prints errs, one per line, plus "N more errors" when some were dropped. */
void config_errors_print(const struct config_errors *errs, FILE *out);

/* The schema as a Markdown table (README) or plain text (--help-config). */
void config_schema_print(FILE *out, bool markdown);

/* Value parsers, exposed for tests and for other modules' own options.
 * Each returns 0, -EINVAL (not that syntax) or -ERANGE (a number too large
 * for the type, or a port above 65535); config_parse_addr also -ENOENT for a
 * host name that does not resolve.  *out is written only on success. */
int config_parse_size(const char *s, uint64_t *out);
int config_parse_duration_ms(const char *s, uint32_t *out);
int config_parse_bool(const char *s, bool *out);
int config_parse_addr(const char *s, struct config_addr *out);

/* Number of workers to fork: cfg->workers, or the online CPUs when 0 (at
 * least 1, at most CONFIG_MAX_WORKERS). */
unsigned config_worker_count(const struct config *cfg);

const struct config_backend *config_backend_find(const struct config *cfg, const char *name);

#endif
