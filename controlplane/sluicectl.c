/*
 * sluicectl — the operator's command line for a running sluice node.
 *
 * It sends one request over the control socket (see controlplane/ctl.h)
 * and prints the answer for a person, or as JSON with --json.  Exit codes,
 * for scripts: 0 done; 1 refused (unknown feature, bad percentage, a config
 * with errors); 2 usage; 3 the control plane is not running or not
 * reachable; 4 it answered something that is not the protocol.
 */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "shared/config.h"

#define EXIT_REFUSED  1
#define EXIT_USAGE    2
#define EXIT_NO_CP    3
#define EXIT_PROTOCOL 4
#define REPLY_MAX     (1 << 20)
#define TIMEOUT_MS    5000

static const char usage_text[] =
    "usage: sluicectl [--socket PATH | --config FILE] [--json] COMMAND [ARGS]\n"
    "  status                      workers, streams, the admission limit, rollout\n"
    "  top [--interval S] [--count N]\n"
    "                              live view: tokens/s, TTFT p50/p95, limit, rejections\n"
    "  rollout show                every feature's percentage\n"
    "  rollout set FEATURE PERCENT put PERCENT (0..100) of requests in FEATURE\n"
    "  rollback [FEATURE]          FEATURE, or every feature, to 0 %% (safe mode)\n"
    "  limits                      the governor: limit, target, last interval\n"
    "  tenants                     streams, limits and token budgets per tenant\n"
    "  backends                    configured backends\n"
    "  drain                       stop taking streams, finish the open ones, exit\n"
    "  reload                      check the config file, then load it\n"
    "  cancel STREAM_ID            end one stream (its SSE id before ':')\n"
    "  qos                         service levels: each policy's value, state, actions in force\n"
    "  events [N]                  the last N remediation decisions (default 20), why each\n"
    "The socket is --socket, else [server] control_socket of --config, else\n"
    "/run/sluice/control.sock.  Exit: 0 done, 1 refused, 2 usage, 3 no control\n"
    "plane, 4 protocol error.\n";

static int usage(FILE *f, int code)
{
    fputs(usage_text, f);
    return code;
}

/* Sends argv as one request; *reply gets the parsed answer. */
static int call(const char *path, int argc, char **argv, json_t **reply)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "sluicectl: socket path too long: %s\n", path);
        return EXIT_USAGE;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        fprintf(stderr,
                "sluicectl: cannot reach the control plane at %s: %s\n"
                "  (is sluice running? is this its control_socket? see --socket/--config)\n",
                path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return EXIT_NO_CP;
    }
    json_t *req = json_array();
    for (int i = 0; i < argc; i++)
        json_array_append_new(req, json_string(argv[i]));
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    int rc = EXIT_PROTOCOL;
    char *buf = NULL;
    if (!text)
        goto out;
    size_t len = strlen(text);
    if (send(fd, text, len, MSG_NOSIGNAL) != (ssize_t)len || send(fd, "\n", 1, MSG_NOSIGNAL) != 1) {
        fprintf(stderr, "sluicectl: sending to %s: %s\n", path, strerror(errno));
        rc = EXIT_NO_CP;
        goto out;
    }
    buf = malloc(REPLY_MAX);
    size_t got = 0;
    while (buf && got < REPLY_MAX - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, TIMEOUT_MS) <= 0) {
            fprintf(stderr, "sluicectl: no answer from the control plane within %d ms\n",
                    TIMEOUT_MS);
            rc = EXIT_NO_CP;
            goto out;
        }
        ssize_t n = recv(fd, buf + got, REPLY_MAX - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (memchr(buf + got - (size_t)n, '\n', (size_t)n))
            break;
    }
    json_error_t jerr;
    *reply = buf ? json_loadb(buf, got, 0, &jerr) : NULL;
    if (!*reply || !json_is_object(*reply) || !json_is_boolean(json_object_get(*reply, "ok"))) {
        fprintf(stderr, "sluicectl: the control plane's answer is not understood\n");
        json_decref(*reply);
        *reply = NULL;
        goto out;
    }
    rc = 0;
out:
    free(buf);
    free(text);
    close(fd);
    return rc;
}

static long long geti(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static double getf(const json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

static void print_rollout(const json_t *feats)
{
    const char *name;
    json_t *v;
    json_object_foreach ((json_t *)feats, name, v) {
        printf("  %-20s %3lld %%\n", name, (long long)json_integer_value(v));
    }
}

static void print_limits(const json_t *d)
{
    const json_t *li = json_object_get(d, "last_interval");
    printf("limit %lld concurrent streams (%s, target TTFT p90 %lld ms, %lld..%lld, every %lld "
           "ms)\n",
           geti(d, "limit"), json_string_value(json_object_get(d, "algorithm")),
           geti(d, "target_ttft_ms"), geti(d, "min_concurrent"), geti(d, "max_concurrent"),
           geti(d, "sample_interval_ms"));
    printf("admitted %lld, queued %lld; last interval: %lld first tokens, TTFT p50 %.0f / p90 "
           "%.0f / p95 %.0f ms, in flight at most %lld\n",
           geti(d, "admitted"), geti(d, "queued"), geti(li, "first_tokens"),
           getf(li, "ttft_p50_ms"), getf(li, "ttft_p90_ms"), getf(li, "ttft_p95_ms"),
           geti(li, "inflight_peak"));
}

static void print_tenants(const json_t *arr)
{
    printf("  %-24s %8s %8s %12s %14s\n", "tenant", "streams", "limit", "tokens/min",
           "tokens left");
    size_t i;
    json_t *t;
    json_array_foreach ((json_t *)arr, i, t) {
        char lim[16], tpm[24], left[24];
        long long l = geti(t, "stream_limit"), b = geti(t, "tokens_per_minute");
        snprintf(lim, sizeof lim, l ? "%lld" : "-", l);
        snprintf(tpm, sizeof tpm, b ? "%lld" : "-", b);
        snprintf(left, sizeof left, b ? "%lld" : "-", geti(t, "tokens_available"));
        printf("  %-24s %8lld %8s %12s %14s\n", json_string_value(json_object_get(t, "name")),
               geti(t, "streams"), lim, tpm, left);
    }
}

static void print_status(const json_t *d)
{
    const json_t *ws = json_object_get(d, "workers");
    long long streams = 0, adm = 0, q = 0;
    size_t i;
    json_t *w;
    json_array_foreach ((json_t *)ws, i, w) {
        streams += geti(w, "streams");
        adm += geti(w, "admitted");
        q += geti(w, "queued");
    }
    printf("workers %zu up (%lld expected), up %lld s\n", json_array_size(ws),
           geti(d, "workers_expected"), geti(d, "uptime_ms") / 1000);
    printf("streams %lld (admitted %lld, queued %lld), tokens relayed %lld\n", streams, adm, q,
           geti(d, "tokens_total"));
    print_limits(json_object_get(d, "limits"));
    printf("rejected:");
    const char *name;
    json_t *v;
    json_object_foreach (json_object_get(d, "rejected"), name, v) {
        printf(" %s %lld", name, (long long)json_integer_value(v));
    }
    printf("\nrollout:\n");
    print_rollout(json_object_get(d, "rollout"));
    const json_t *se = json_object_get(d, "state_error");
    if (se)
        printf("warning: %s\n", json_string_value(se));
}

static void print_top(const json_t *d, bool tty)
{
    if (tty)
        fputs("\033[H\033[2J", stdout);
    time_t now = time(NULL);
    char when[32];
    strftime(when, sizeof when, "%H:%M:%S", localtime(&now));
    const json_t *li = json_object_get(d, "limits");
    printf("sluice top  %s  limit %lld  admitted %lld  queued %lld\n\n", when, geti(li, "limit"),
           geti(li, "admitted"), geti(li, "queued"));
    printf("  %8s %8s %8s %8s %10s %10s %8s %7s\n", "tokens/s", "started", "ended", "rejected",
           "TTFT p50", "TTFT p95", "admitted", "limit");
    size_t i;
    json_t *s;
    json_array_foreach (json_object_get(d, "seconds"), i, s) {
        printf("  %8lld %8lld %8lld %8lld %8lldms %8lldms %8lld %7lld\n", geti(s, "tokens"),
               geti(s, "first_tokens"), geti(s, "ended"), geti(s, "rejected"),
               geti(s, "ttft_p50_ms"), geti(s, "ttft_p95_ms"), geti(s, "admitted"),
               geti(s, "limit"));
    }
    printf("\n");
    print_tenants(json_object_get(d, "tenants"));
    fflush(stdout);
}

static const char *socket_from_config(const char *file, char *buf, size_t cap)
{
    struct config cfg;
    struct config_errors errs;
    if (config_load(&cfg, file, &errs) < 0) {
        config_errors_print(&errs, stderr);
        return NULL;
    }
    snprintf(buf, cap, "%s", cfg.control_socket);
    config_free(&cfg);
    return buf;
}

static int top_loop(const char *path, int argc, char **argv, bool json)
{
    double interval = 1.0;
    long count = -1;
    for (int i = 1; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
            interval = strtod(argv[++i], &end);
            if (*end || !(interval >= 0.1 && interval <= 3600))
                return usage(stderr, EXIT_USAGE);
        } else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            count = strtol(argv[++i], &end, 10);
            if (*end || count < 1)
                return usage(stderr, EXIT_USAGE);
        } else {
            return usage(stderr, EXIT_USAGE);
        }
    }
    char *req[] = {"top"};
    bool tty = !json && isatty(STDOUT_FILENO);
    for (long n = 0; count < 0 || n < count; n++) {
        if (n) {
            struct timespec ts = {(time_t)interval,
                                  (long)((interval - (double)(time_t)interval) * 1e9)};
            nanosleep(&ts, NULL);
        }
        json_t *reply = NULL;
        int rc = call(path, 1, req, &reply);
        if (rc)
            return rc;
        if (json)
            json_dumpf(json_object_get(reply, "data"), stdout, JSON_COMPACT), putchar('\n');
        else
            print_top(json_object_get(reply, "data"), tty);
        fflush(stdout);
        json_decref(reply);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    char pbuf[PATH_MAX];
    bool json = false;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            path = socket_from_config(argv[++i], pbuf, sizeof pbuf);
            if (!path)
                return EXIT_USAGE;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return usage(stdout, 0);
        } else {
            fprintf(stderr, "sluicectl: unknown option %s\n", argv[i]);
            return usage(stderr, EXIT_USAGE);
        }
    }
    if (i >= argc)
        return usage(stderr, EXIT_USAGE);
    if (!path)
        path = "/run/sluice/control.sock";
    if (strcmp(argv[i], "top") == 0)
        return top_loop(path, argc - i, argv + i, json);

    json_t *reply = NULL;
    int rc = call(path, argc - i, argv + i, &reply);
    if (rc)
        return rc;
    if (!json_is_true(json_object_get(reply, "ok"))) {
        const json_t *st = json_object_get(reply, "status");
        rc = json_is_integer(st) ? (int)json_integer_value(st) : EXIT_REFUSED;
        if (rc != EXIT_USAGE)
            rc = EXIT_REFUSED;
        if (json) {
            json_dumpf(reply, stdout, JSON_COMPACT);
            putchar('\n');
        } else {
            fprintf(stderr, "sluicectl: %s\n", json_string_value(json_object_get(reply, "error")));
            size_t k;
            json_t *e;
            json_array_foreach (json_object_get(reply, "errors"), k, e) {
                fprintf(stderr, "  %s\n", json_string_value(e));
            }
        }
        json_decref(reply);
        return rc;
    }
    const json_t *d = json_object_get(reply, "data");
    const char *cmd = argv[i];
    if (json) {
        json_dumpf(d, stdout, JSON_COMPACT);
        putchar('\n');
    } else if (strcmp(cmd, "status") == 0) {
        print_status(d);
    } else if (strcmp(cmd, "rollout") == 0 && json_object_get(d, "features")) {
        print_rollout(json_object_get(d, "features"));
    } else if (strcmp(cmd, "rollout") == 0) {
        printf("%s: %lld %% -> %lld %%%s\n", json_string_value(json_object_get(d, "feature")),
               geti(d, "was"), geti(d, "percent"),
               json_is_true(json_object_get(d, "saved")) ? "" : " (NOT saved: see status)");
    } else if (strcmp(cmd, "rollback") == 0) {
        const json_t *was = json_object_get(d, "was");
        if (!json_object_size(was))
            printf("nothing to roll back: every feature named is at 0 %%\n");
        const char *name;
        json_t *v;
        json_object_foreach ((json_t *)was, name, v) {
            printf("%s: %lld %% -> 0 %%\n", name, (long long)json_integer_value(v));
        }
    } else if (strcmp(cmd, "limits") == 0) {
        print_limits(d);
    } else if (strcmp(cmd, "tenants") == 0) {
        print_tenants(json_object_get(d, "tenants"));
    } else if (strcmp(cmd, "backends") == 0) {
        size_t k;
        json_t *b;
        printf("  %-16s %-28s %-14s %-8s %-8s %8s %6s %4s %8s %9s  %s\n", "NAME", "URL", "KIND",
               "GROUP", "STATE", "INFLIGHT", "WEIGHT", "PRIO", "FAILURES", "FAILOVERS", "MODELS");
        json_array_foreach (json_object_get(d, "backends"), k, b) {
            char infl[32];
            long long cap = geti(b, "max_inflight");
            if (cap)
                snprintf(infl, sizeof infl, "%lld/%lld", geti(b, "inflight"), cap);
            else
                snprintf(infl, sizeof infl, "%lld", geti(b, "inflight"));
            const char *state = !json_is_true(json_object_get(b, "up")) ? "down"
                                : geti(b, "ejected_ms")                 ? "ejected"
                                                                        : "up";
            const char *models = json_string_value(json_object_get(b, "models"));
            const char *listed = json_string_value(json_object_get(b, "models_listed"));
            const char *group = json_string_value(json_object_get(b, "group"));
            const char *kind = json_string_value(json_object_get(b, "kind"));
            printf("  %-16s %-28s %-14s %-8s %-8s %8s %6lld %4lld %8lld %9lld  %s\n",
                   json_string_value(json_object_get(b, "name")),
                   json_string_value(json_object_get(b, "url")), kind ? kind : "openai",
                   group && *group ? group : "-", state, infl, geti(b, "weight"),
                   geti(b, "priority"), geti(b, "failures"), geti(b, "failovers"),
                   models && *models   ? models
                   : listed && *listed ? listed
                                       : "(any)");
        }
    } else if (strcmp(cmd, "qos") == 0) {
        size_t k;
        json_t *p;
        printf("%s, evaluated every %lld ms; node limit %s, shedding %lld %%\n",
               json_is_true(json_object_get(d, "observe_only")) ? "observe only" : "acting",
               geti(d, "interval_ms"), geti(d, "qos_limit") ? "set" : "not set",
               geti(d, "shed_pct"));
        printf("  %-20s %-22s %-18s %12s %12s %-9s %6s %10s\n", "POLICY", "SCOPE", "METRIC",
               "VALUE", "THRESHOLD", "STATE", "STEP", "VIOLATIONS");
        json_array_foreach (json_object_get(d, "policies"), k, p) {
            json_t *v = json_object_get(p, "value");
            char val[32] = "-";
            if (json_is_number(v))
                snprintf(val, sizeof val, "%.4g", json_number_value(v));
            printf("  %-20s %-22s %-18s %12s %12.4g %-9s %3lld/%-2lld %10lld\n",
                   json_string_value(json_object_get(p, "policy")),
                   json_string_value(json_object_get(p, "scope")),
                   json_string_value(json_object_get(p, "metric")), val,
                   json_number_value(json_object_get(p, "threshold")),
                   json_string_value(json_object_get(p, "state")), geti(p, "level"),
                   geti(p, "actions"), geti(p, "violations"));
        }
        json_array_foreach (json_object_get(d, "rollback_watch"), k, p) {
            printf(
                "  watching rollout %s %lld -> %lld %%: new path %lld/%lld failed, old %lld/%lld\n",
                json_string_value(json_object_get(p, "feature")), geti(p, "was"), geti(p, "now"),
                geti(p, "new_failed"), geti(p, "new_requests"), geti(p, "old_failed"),
                geti(p, "old_requests"));
        }
    } else if (strcmp(cmd, "events") == 0) {
        size_t k;
        json_t *e;
        json_array_foreach (json_object_get(d, "events"), k, e) {
            char *line = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (line)
                puts(line);
            free(line);
        }
    } else if (strcmp(cmd, "drain") == 0) {
        printf("draining: open streams finish, new ones are refused, then sluice exits\n");
    } else if (strcmp(cmd, "reload") == 0) {
        printf("reloading %s\n", json_string_value(json_object_get(d, "reloading")));
    } else if (strcmp(cmd, "cancel") == 0) {
        printf("cancel sent to %lld worker(s)\n", geti(d, "workers_told"));
    } else {
        json_dumpf(d, stdout, JSON_INDENT(2));
        putchar('\n');
    }
    json_decref(reply);
    return 0;
}
