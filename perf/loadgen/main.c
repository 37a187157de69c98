/*
 * llmload — LLM-aware load client of sluice: runs C concurrent streaming
 * chat completions for a bounded time (or count) and reports TTFT and ITL
 * percentiles; --verify checks every llmsim token arrives once and in order.
 *
 * This file: command line, process set-up (file limit, signals, address
 * resolution), the loops' threads, and the final report.  See
 * perf/loadgen/README.md for the options and what is measured.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "perf/loadgen/loop.h"
#include "perf/loadgen/report.h"
#include "perf/loadgen/request.h"
#include "perf/loadgen/stats.h"
#include "perf/loadgen/timeseries.h"

#define MAX_THREADS         256
#define MAX_SOURCES         64
#define MAX_HEADERS         256
#define DEFAULT_CONNECT_CAP 2000
#define DEFAULT_DURATION_S  10.0

static volatile sig_atomic_t interrupted; /* the signal handler's only way out */

static void on_sigint(int sig)
{
    (void)sig;
    if (interrupted < 2)
        interrupted++;
}

static void usage(FILE *f)
{
    fputs("usage: llmload [options] http://host:port[/path]\n"
          "Load: runs C concurrent streaming completions and reports TTFT/ITL percentiles.\n"
          "  -c N                concurrent connections/streams (default 1)\n"
          "  -d SECONDS          run time; no new streams after it (default 10 unless -n/--once)\n"
          "  -n N                total streams to start\n"
          "  --once              every connection makes exactly one request\n"
          "  --ramp SECONDS      spread connection starts evenly over this time\n"
          "  --max-connecting N  connects in flight at most (default 2000)\n"
          "  --timeout SECONDS   per stream (default 120)\n"
          "  --grace SECONDS     after -d, time for running streams to finish (default 30)\n"
          "  -t THREADS          epoll loops, connections split between them (default 1)\n"
          "  --source A,B,...    bind connections round-robin to these local addresses\n"
          "  --schedule T:C,...  from T seconds on, C connections (a step function; -c\n"
          "                      defaults to the largest C; needs -d or a last C of 0)\n"
          "  --retry-after       after an answer with Retry-After (429, 503), wait that\n"
          "                      long (at most 60 s) before the connection's next request\n"
          "Request:\n"
          "  --completions       /v1/completions body (prompt) instead of chat (messages)\n"
          "  --model NAME        (default llmsim-1)\n"
          "  --max-tokens N      max_tokens in the body\n"
          "  --prompt-bytes N    prompt text length\n"
          "  --body FILE         send this body as is\n"
          "  --no-stream         \"stream\": false (TTFT then is the whole answer's latency)\n"
          "  --usage             stream_options.include_usage\n"
          "  -H 'Name: value'    extra request header (repeatable)\n"
          "Output and checks:\n"
          "  --json FILE         results as JSON (- = stdout; the table then goes to stderr)\n"
          "  --verify            check llmsim tokens \" w0\", \" w1\"... in order, [DONE], ids\n"
          "  --expect-tokens N   with --verify: every stream has exactly N tokens\n"
          "  --fail-on-error     exit 1 if any stream failed\n"
          "  --timeseries FILE   per-second JSON: offered, started, ended by reason, tokens,\n"
          "                      TTFT percentiles of the first tokens of each second\n"
          "  --slo-ttft MS       with --timeseries: also count tokens of streams whose TTFT\n"
          "                      was at most MS (goodput)\n"
          "  --timeseries-samples  with --timeseries: every TTFT sample of each second too\n"
          "Exit: 0 ok, 1 verify violations or (--fail-on-error) failed streams, 2 bad usage.\n",
          f);
}

__attribute__((format(printf, 1, 2), noreturn)) static void bad_usage(const char *fmt, ...)
{
    fputs("llmload: ", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(llmload --help for the options)\n", stderr);
    exit(2);
}

static long long parse_int(const char *opt, const char *s, long long min, long long max)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        bad_usage("%s wants an integer from %lld to %lld, not \"%s\"", opt, min, max, s);
    return v;
}

static int64_t parse_seconds(const char *opt, const char *s, bool zero_ok)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0) || v > 1e6 || (!zero_ok && v == 0))
        bad_usage("%s wants seconds (%s), not \"%s\"", opt, zero_ok ? ">= 0" : "> 0", s);
    return (int64_t)(v * 1e9);
}

static size_t parse_sources(const char *list, struct sockaddr_storage *out)
{
    size_t n = 0;
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char a[INET6_ADDRSTRLEN + 1];
        if (len == 0 || len >= sizeof(a) || n == MAX_SOURCES)
            bad_usage("--source wants up to %d comma-separated IP addresses", MAX_SOURCES);
        memcpy(a, p, len);
        a[len] = '\0';
        memset(&out[n], 0, sizeof(out[n]));
        struct sockaddr_in *v4 = (struct sockaddr_in *)&out[n];
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out[n];
        if (inet_pton(AF_INET, a, &v4->sin_addr) == 1)
            v4->sin_family = AF_INET;
        else if (inet_pton(AF_INET6, a, &v6->sin6_addr) == 1)
            v6->sin6_family = AF_INET6;
        else
            bad_usage("--source: \"%s\" is not an IP address", a);
        n++;
        p += len + (comma ? 1 : 0);
    }
    if (n == 0)
        bad_usage("--source wants at least one address");
    return n;
}

/* Enough descriptors for <need>: soft limit to the hard one, and as root the hard one up. */
static void raise_nofile(rlim_t need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (geteuid() == 0 && rl.rlim_max < 1048576) {
        struct rlimit up = {1048576, 1048576};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl = up;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < need)
        fprintf(stderr,
                "llmload: warning: open-file limit %llu is below the %llu needed and its "
                "hard limit cannot be raised here; connects past it will fail\n",
                (unsigned long long)rl.rlim_cur, (unsigned long long)need);
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

struct thread {
    pthread_t tid;
    struct loop *loop;
    int rc;
};

static void *thread_main(void *arg)
{
    struct thread *t = arg;
    t->rc = loop_run(t->loop);
    return NULL;
}

enum {
    OPT_ONCE = 256,
    OPT_RAMP,
    OPT_MAX_CONNECTING,
    OPT_TIMEOUT,
    OPT_GRACE,
    OPT_SOURCE,
    OPT_COMPLETIONS,
    OPT_MODEL,
    OPT_MAX_TOKENS,
    OPT_PROMPT_BYTES,
    OPT_BODY,
    OPT_NO_STREAM,
    OPT_USAGE,
    OPT_JSON,
    OPT_VERIFY,
    OPT_EXPECT_TOKENS,
    OPT_FAIL_ON_ERROR,
    OPT_SCHEDULE,
    OPT_RETRY_AFTER,
    OPT_TIMESERIES,
    OPT_SLO_TTFT,
    OPT_TS_SAMPLES,
};

static const struct option long_opts[] = {
    {"once", no_argument, NULL, OPT_ONCE},
    {"ramp", required_argument, NULL, OPT_RAMP},
    {"max-connecting", required_argument, NULL, OPT_MAX_CONNECTING},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"grace", required_argument, NULL, OPT_GRACE},
    {"source", required_argument, NULL, OPT_SOURCE},
    {"completions", no_argument, NULL, OPT_COMPLETIONS},
    {"model", required_argument, NULL, OPT_MODEL},
    {"max-tokens", required_argument, NULL, OPT_MAX_TOKENS},
    {"prompt-bytes", required_argument, NULL, OPT_PROMPT_BYTES},
    {"body", required_argument, NULL, OPT_BODY},
    {"no-stream", no_argument, NULL, OPT_NO_STREAM},
    {"usage", no_argument, NULL, OPT_USAGE},
    {"json", required_argument, NULL, OPT_JSON},
    {"verify", no_argument, NULL, OPT_VERIFY},
    {"expect-tokens", required_argument, NULL, OPT_EXPECT_TOKENS},
    {"fail-on-error", no_argument, NULL, OPT_FAIL_ON_ERROR},
    {"schedule", required_argument, NULL, OPT_SCHEDULE},
    {"retry-after", no_argument, NULL, OPT_RETRY_AFTER},
    {"timeseries", required_argument, NULL, OPT_TIMESERIES},
    {"slo-ttft", required_argument, NULL, OPT_SLO_TTFT},
    {"timeseries-samples", no_argument, NULL, OPT_TS_SAMPLES},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int main(int argc, char **argv)
{
    static struct loop_config cfg;
    static struct loop_shared sh;
    static struct sockaddr_storage sources[MAX_SOURCES];
    static struct ts_schedule schedule;
    long long conc = 1, total = -1, threads = 1;
    bool conc_set = false;
    const char *ts_path = NULL;
    const char *schedule_arg = NULL;
    bool ts_samples = false;
    int64_t duration = -1;
    const char *json_path = NULL;
    bool fail_on_error = false;
    static const char *headers[MAX_HEADERS];
    size_t n_headers = 0;
    struct request_opts ro = {
        .stream = true,
        .model = "llmsim-1",
        .max_tokens = -1,
        .prompt_bytes = -1,
    };
    cfg.timeout_ns = 120 * 1000000000LL;
    cfg.grace_ns = 30 * 1000000000LL;
    cfg.connect_cap = DEFAULT_CONNECT_CAP;
    cfg.expect_tokens = -1;
    cfg.stream = true;
    cfg.slo_ttft_ns = -1;

    int ch;
    while ((ch = getopt_long(argc, argv, "c:d:n:t:H:h", long_opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            conc = parse_int("-c", optarg, 1, 10000000);
            conc_set = true;
            break;
        case 'd':
            duration = parse_seconds("-d", optarg, false);
            break;
        case 'n':
            total = parse_int("-n", optarg, 1, INT64_MAX / 2);
            break;
        case 't':
            threads = parse_int("-t", optarg, 1, MAX_THREADS);
            break;
        case 'H':
            if (n_headers == MAX_HEADERS)
                bad_usage("at most %d -H options", MAX_HEADERS);
            headers[n_headers++] = optarg;
            break;
        case OPT_ONCE:
            cfg.once = true;
            break;
        case OPT_RAMP:
            cfg.ramp_ns = parse_seconds("--ramp", optarg, true);
            break;
        case OPT_MAX_CONNECTING:
            cfg.connect_cap = (uint32_t)parse_int("--max-connecting", optarg, 1, 1000000);
            break;
        case OPT_TIMEOUT:
            cfg.timeout_ns = parse_seconds("--timeout", optarg, false);
            break;
        case OPT_GRACE:
            cfg.grace_ns = parse_seconds("--grace", optarg, true);
            break;
        case OPT_SOURCE:
            cfg.n_sources = parse_sources(optarg, sources);
            cfg.sources = sources;
            break;
        case OPT_COMPLETIONS:
            ro.completions = true;
            break;
        case OPT_MODEL:
            ro.model = optarg;
            break;
        case OPT_MAX_TOKENS:
            ro.max_tokens = parse_int("--max-tokens", optarg, 0, INT32_MAX);
            break;
        case OPT_PROMPT_BYTES:
            ro.prompt_bytes = parse_int("--prompt-bytes", optarg, 0, 16LL * 1024 * 1024);
            break;
        case OPT_BODY:
            ro.body_file = optarg;
            break;
        case OPT_NO_STREAM:
            ro.stream = false;
            cfg.stream = false;
            break;
        case OPT_USAGE:
            ro.usage = true;
            break;
        case OPT_JSON:
            json_path = optarg;
            break;
        case OPT_VERIFY:
            cfg.verify = true;
            break;
        case OPT_EXPECT_TOKENS:
            cfg.expect_tokens = parse_int("--expect-tokens", optarg, 0, INT32_MAX);
            cfg.verify = true;
            break;
        case OPT_FAIL_ON_ERROR:
            fail_on_error = true;
            break;
        case OPT_SCHEDULE:
            schedule_arg = optarg;
            break;
        case OPT_RETRY_AFTER:
            cfg.retry_after = true;
            break;
        case OPT_TIMESERIES:
            ts_path = optarg;
            cfg.timeseries = true;
            break;
        case OPT_TS_SAMPLES:
            ts_samples = true;
            break;
        case OPT_SLO_TTFT: {
            int64_t ns = parse_seconds("--slo-ttft", optarg, true);
            cfg.slo_ttft_ns = ns / 1000; /* given in ms, parsed as seconds */
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    char err0[256];
    if (optind != argc - 1)
        bad_usage("want exactly one URL");
    if (cfg.once && total >= 0)
        bad_usage("--once and -n are two different stop rules: pick one");
    if (cfg.verify && !cfg.stream)
        bad_usage("--verify checks token streams; it cannot go with --no-stream");
    if ((cfg.slo_ttft_ns >= 0 || ts_samples) && !cfg.timeseries)
        bad_usage("--slo-ttft and --timeseries-samples go into the --timeseries: give it too");
    if (schedule_arg) {
        if (ts_schedule_parse(schedule_arg, &schedule, err0, sizeof(err0)) < 0)
            bad_usage("%s", err0);
        if (cfg.once || cfg.ramp_ns > 0)
            bad_usage("--schedule decides when connections start: it cannot go with %s",
                      cfg.once ? "--once" : "--ramp");
        if (schedule.max_conc == 0)
            bad_usage("--schedule never wants a connection");
        if (!conc_set)
            conc = schedule.max_conc;
        else if (conc < schedule.max_conc)
            bad_usage("-c %lld is below the schedule's %u connections", conc, schedule.max_conc);
        if (duration < 0) {
            if (schedule.v[schedule.n - 1].conc != 0)
                bad_usage("--schedule: give -d, or end the schedule with 0 connections");
            duration = schedule.v[schedule.n - 1].t_ns;
            if (duration == 0)
                bad_usage("--schedule ends at 0 s");
        }
        cfg.schedule = &schedule;
    }
    if (duration < 0 && total < 0 && !cfg.once)
        duration = (int64_t)(DEFAULT_DURATION_S * 1e9);
    if (threads > conc)
        threads = conc;

    const char *url = argv[optind];
    struct request_url u;
    char err[512];
    if (request_parse_url(url, &u, err, sizeof(err)) < 0)
        bad_usage("%s: %s", url, err);
    ro.url = &u;
    ro.path = ro.completions ? "/v1/completions" : "/v1/chat/completions";
    ro.headers = headers;
    ro.n_headers = n_headers;
    char *req;
    size_t req_len;
    int rc = request_build(&ro, &req, &req_len, err, sizeof(err));
    if (rc < 0)
        bad_usage("%s", err);

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai;
    int gai = getaddrinfo(u.host, u.port, &hints, &ai);
    if (gai != 0)
        bad_usage("%s: %s", u.host, gai_strerror(gai));
    memcpy(&cfg.addr, ai->ai_addr, ai->ai_addrlen);
    cfg.addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    for (size_t i = 0; i < cfg.n_sources; i++)
        if (sources[i].ss_family != cfg.addr.ss_family)
            bad_usage("--source addresses must be of the server's address family");

    cfg.req = req;
    cfg.req_len = req_len;
    cfg.concurrency = (uint32_t)conc;
    cfg.duration_ns = duration;
    cfg.connect_cap = cfg.connect_cap / (uint32_t)threads ? cfg.connect_cap / (uint32_t)threads : 1;

    raise_nofile((rlim_t)conc + 64);
    struct sigaction sa = {.sa_handler = on_sigint};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct loop *loops[MAX_THREADS] = {0};
    for (long long t = 0; t < threads; t++) {
        loops[t] = loop_new(&cfg, &sh, (uint32_t)t, (uint32_t)threads);
        if (!loops[t]) {
            fprintf(stderr, "llmload: cannot set up: %s\n", strerror(errno));
            return 1;
        }
    }
    sh.limited = total >= 0;
    atomic_store(&sh.remaining, total >= 0 ? total : 0);
    atomic_store(&sh.verify_printed, 0);
    sh.interrupted = &interrupted;

    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    sh.t0 = stats_now_ns();
    static struct thread th[MAX_THREADS];
    for (long long t = 1; t < threads; t++) {
        th[t].loop = loops[t];
        if (pthread_create(&th[t].tid, NULL, thread_main, &th[t]) != 0) {
            fprintf(stderr, "llmload: cannot start thread %lld\n", t);
            return 1;
        }
    }
    int run_err = loop_run(loops[0]);
    for (long long t = 1; t < threads; t++) {
        pthread_join(th[t].tid, NULL);
        if (th[t].rc < 0 && !run_err)
            run_err = th[t].rc;
    }
    getrusage(RUSAGE_SELF, &ru1);

    struct stats all;
    stats_init(&all);
    int64_t t_end = sh.t0;
    uint64_t verify_errors = 0, verify_streams = 0;
    int connect_errno = 0;
    struct ts_series series;
    ts_init(&series, sh.t0);
    for (long long t = 0; t < threads; t++) {
        if (stats_merge(&all, loop_stats(loops[t])) < 0)
            fputs("llmload: warning: out of memory merging samples\n", stderr);
        if (cfg.timeseries && ts_merge(&series, loop_timeseries(loops[t])) < 0)
            fputs("llmload: warning: out of memory merging the time series\n", stderr);
        if (loop_end_time(loops[t]) > t_end)
            t_end = loop_end_time(loops[t]);
        const struct verify_ctx *v = loop_verify(loops[t]);
        if (v) {
            verify_errors += v->errors;
            verify_streams += v->streams;
        }
        if (!connect_errno)
            connect_errno = loop_connect_errno(loops[t]);
        loop_free(loops[t]);
    }
    free(req);
    if (run_err)
        fprintf(stderr, "llmload: event loop failed: %s\n", strerror(-run_err));
    if (all.by_outcome[STATS_CONNECT])
        fprintf(stderr, "llmload: %llu stream(s) could not connect (first error: %s)\n",
                (unsigned long long)all.by_outcome[STATS_CONNECT], strerror(connect_errno));
    if (verify_errors > 10)
        fprintf(stderr, "llmload: verify: ... %llu violations in all\n",
                (unsigned long long)verify_errors);

    struct report r = {
        .url = url,
        .concurrency = (uint32_t)conc,
        .threads = (uint32_t)threads,
        .peak_streams = (uint64_t)atomic_load(&sh.peak_inflight),
        .duration_s = (double)(t_end - sh.t0) / 1e9,
        .st = &all,
        .cpu_user_s = tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime),
        .cpu_sys_s = tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime),
        .verify = cfg.verify,
        .verify_errors = verify_errors,
        .verify_streams = verify_streams,
    };
    stats_summarize(&all.ttft, &r.ttft);
    stats_summarize(&all.itl, &r.itl);
    bool json_stdout =
        (json_path && strcmp(json_path, "-") == 0) || (ts_path && strcmp(ts_path, "-") == 0);
    report_table(json_stdout ? stderr : stdout, &r);
    int exit_code = 0;
    if (json_path) {
        rc = report_json(json_path, &r);
        if (rc < 0) {
            fprintf(stderr, "llmload: %s: %s\n", json_path, strerror(-rc));
            exit_code = 1;
        }
    }
    if (ts_path) {
        struct ts_report tr = {
            .schedule = cfg.schedule,
            .concurrency = (uint32_t)conc,
            .slo_ttft_ns = cfg.slo_ttft_ns,
            .samples = ts_samples,
        };
        if (series.dropped)
            fprintf(stderr, "llmload: warning: %llu time-series events dropped (out of memory)\n",
                    (unsigned long long)series.dropped);
        rc = ts_write_json(ts_path, &series, &tr);
        if (rc < 0) {
            fprintf(stderr, "llmload: %s: %s\n", ts_path, strerror(-rc));
            exit_code = 1;
        }
    }
    ts_free(&series);
    ts_schedule_free(&schedule);
    uint64_t failed = stats_failed(&all);
    stats_free(&all);
    if (run_err || (cfg.verify && verify_errors) || (fail_on_error && failed))
        exit_code = 1;
    return exit_code;
}
