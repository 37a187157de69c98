/*
 * opts — command-line parsing for llmsim (see opts.h).
 */
#include "perf/llmsim/opts.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_LISTEN = 256,
    OPT_PORT_FILE,
    OPT_MODEL,
    OPT_TOKENS,
    OPT_TTFT,
    OPT_ITL,
    OPT_MAX_BATCH,
    OPT_PREFILL,
    OPT_SLOWDOWN,
    OPT_PREFILL_SLOWDOWN,
    OPT_FAULT,
    OPT_FAULT_RATE,
    OPT_MAX_MODEL_LEN,
    OPT_KEEPALIVE,
    OPT_PREFIX_CACHE,
    OPT_API,
    OPT_QUIET,
    OPT_HELP,
};

static const struct option longopts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"port-file", required_argument, NULL, OPT_PORT_FILE},
    {"model", required_argument, NULL, OPT_MODEL},
    {"tokens", required_argument, NULL, OPT_TOKENS},
    {"ttft-ms", required_argument, NULL, OPT_TTFT},
    {"itl-ms", required_argument, NULL, OPT_ITL},
    {"max-batch", required_argument, NULL, OPT_MAX_BATCH},
    {"prefill-us-per-token", required_argument, NULL, OPT_PREFILL},
    {"batch-slowdown", required_argument, NULL, OPT_SLOWDOWN},
    {"prefill-slowdown", required_argument, NULL, OPT_PREFILL_SLOWDOWN},
    {"fault", required_argument, NULL, OPT_FAULT},
    {"fault-rate", required_argument, NULL, OPT_FAULT_RATE},
    {"max-model-len", required_argument, NULL, OPT_MAX_MODEL_LEN},
    {"keepalive-timeout", required_argument, NULL, OPT_KEEPALIVE},
    {"prefix-cache-blocks", required_argument, NULL, OPT_PREFIX_CACHE},
    {"api", required_argument, NULL, OPT_API},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

void opts_usage(FILE *f)
{
    fputs("usage: llmsim [options]\n"
          "Simulates vLLM's OpenAI-compatible server (behind uvicorn) for sluice tests,\n"
          "or Ollama's or TensorFlow Serving's API (--api).\n"
          "\n"
          "  --api NAME                  openai (default: vLLM), ollama (Ollama 0.5) or\n"
          "                              tfserving (TensorFlow Serving 2.x REST)\n"
          "  --listen ADDR:PORT          listen address (default 127.0.0.1:8000; port 0 = any)\n"
          "  --port-file PATH            write the bound port to PATH once listening\n"
          "  --model NAME                model name served; repeat or comma-separate for\n"
          "                              several (default llmsim-1)\n"
          "  --tokens N                  natural answer length in tokens (default 50)\n"
          "  --ttft-ms MS                time to first token once in the batch (default 50)\n"
          "  --itl-ms MS                 gap between tokens (default 20; 0 = as fast as the\n"
          "                              socket takes them)\n"
          "  --max-batch N               sequences decoding at once; the rest wait FIFO\n"
          "                              (default 256)\n"
          "  --prefill-us-per-token US   TTFT added per prompt token (default 0)\n"
          "  --fault-rate P              inject --fault into this share of requests (0..1, default "
          "1)\n"
          "  --batch-slowdown F          gap *= 1 + F * running / max_batch (default 0)\n"
          "  --prefill-slowdown F        TTFT *= 1 + F * running / max_batch (default 0)\n"
          "  --fault SPEC                inject SPEC into every generation request:\n"
          "                              status:CODE close reset close_after:K reset_after:K\n"
          "                              hang hang_after:K slow_headers:MS\n"
          "  --max-model-len N           context window, prompt + completion (default 131072)\n"
          "  --prefix-cache-blocks N     model vLLM's prefix caching: N blocks of 256 bytes of\n"
          "                              prompt; a cached prefix skips its prefill (default 0)\n"
          "  --keepalive-timeout SEC     close a keep-alive connection idle this long after a\n"
          "                              response, like uvicorn (default 5; 0 = never)\n"
          "  --quiet                     no start-up and shutdown lines on stderr\n"
          "  --help                      this text\n"
          "\n"
          "Per request (query wins over header): X-Sim-Tokens / sim_tokens,\n"
          "X-Sim-TTFT-Ms / sim_ttft_ms, X-Sim-ITL-Ms / sim_itl_ms, X-Sim-Fault / sim_fault.\n"
          "Endpoints (all modes): GET /metrics, GET /stats.\n"
          "  openai:    POST /v1/chat/completions, POST /v1/completions, GET /v1/models,\n"
          "             GET /health\n"
          "  ollama:    POST /api/chat, POST /api/generate, GET /api/tags, GET /api/ps,\n"
          "             GET /api/version, GET /\n"
          "  tfserving: POST /v1/models/NAME[/versions/1]:predict,\n"
          "             GET /v1/models/NAME[/versions/1]\n",
          f);
}

static int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || !end || *end || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_num(const char *s, double min, double max, double *out)
{
    if (!s || !*s || *s == ' ')
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !end || *end || !isfinite(v) || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_api(const char *s, enum llmsim_api *out)
{
    static const char *const names[] = {"openai", "ollama", "tfserving"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum llmsim_api)i;
            return 0;
        }
    }
    return -EINVAL;
}

static int add_models(struct llmsim_opts *o, char *list, char *err, size_t errlen)
{
    /* The names must stay in argv, so a comma list is split by pointing at
     * pieces and cutting the commas out of the (writable) argv string. */
    char *p = list;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        size_t n = strlen(p);
        if (n == 0 || n > LLMSIM_MODEL_NAME_MAX) {
            snprintf(err, errlen, "--model: names must be 1..%d bytes", LLMSIM_MODEL_NAME_MAX);
            return -EINVAL;
        }
        if (o->n_models == LLMSIM_MAX_MODELS) {
            snprintf(err, errlen, "--model: at most %d models", LLMSIM_MAX_MODELS);
            return -EINVAL;
        }
        o->models[o->n_models++] = p;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

int opts_parse(int argc, char **argv, struct llmsim_opts *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof(*o));
    o->listen = "127.0.0.1:8000";
    o->fault_rate = 1.0;
    o->tokens = 50;
    o->ttft_ms = 50;
    o->itl_ms = 20;
    o->max_batch = 256;
    o->max_model_len = 131072;
    o->keepalive_s = 5;
    err[0] = '\0';

    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        uint64_t u = 0;
        int rc = 0;
        const char *what = NULL;
        switch (c) {
        case OPT_LISTEN:
            o->listen = optarg;
            break;
        case OPT_PORT_FILE:
            o->port_file = optarg;
            break;
        case OPT_MODEL:
            if (add_models(o, optarg, err, errlen) < 0)
                return -EINVAL;
            break;
        case OPT_TOKENS:
            what = "--tokens wants 1..10000000";
            rc = parse_uint(optarg, 1, LLMSIM_MAX_TOKENS, &u);
            o->tokens = (uint32_t)u;
            break;
        case OPT_TTFT:
            what = "--ttft-ms wants 0..3600000";
            rc = parse_num(optarg, 0, LLMSIM_MAX_MS, &o->ttft_ms);
            break;
        case OPT_ITL:
            what = "--itl-ms wants 0..3600000";
            rc = parse_num(optarg, 0, LLMSIM_MAX_MS, &o->itl_ms);
            break;
        case OPT_MAX_BATCH:
            what = "--max-batch wants 1..1000000";
            rc = parse_uint(optarg, 1, 1000000, &u);
            o->max_batch = (uint32_t)u;
            break;
        case OPT_PREFILL:
            what = "--prefill-us-per-token wants 0..1000000";
            rc = parse_num(optarg, 0, 1e6, &o->prefill_us);
            break;
        case OPT_PREFILL_SLOWDOWN:
            what = "--prefill-slowdown wants 0..1000";
            rc = parse_num(optarg, 0, 1000, &o->prefill_slowdown);
            break;
        case OPT_SLOWDOWN:
            what = "--batch-slowdown wants 0..1000";
            rc = parse_num(optarg, 0, 1000, &o->batch_slowdown);
            break;
        case OPT_FAULT_RATE:
            what = "--fault-rate wants 0..1";
            rc = parse_num(optarg, 0, 1, &o->fault_rate);
            break;
        case OPT_FAULT:
            what = "--fault: unknown SPEC (status:CODE close reset close_after:K "
                   "reset_after:K hang hang_after:K slow_headers:MS none)";
            rc = fault_parse(optarg, strlen(optarg), &o->fault);
            break;
        case OPT_MAX_MODEL_LEN:
            what = "--max-model-len wants 2..10000000";
            rc = parse_uint(optarg, 2, LLMSIM_MAX_TOKENS, &u);
            o->max_model_len = (uint32_t)u;
            break;
        case OPT_KEEPALIVE:
            what = "--keepalive-timeout wants 0..86400 seconds";
            rc = parse_num(optarg, 0, 86400, &o->keepalive_s);
            break;
        case OPT_PREFIX_CACHE: {
            double v = 0;
            what = "--prefix-cache-blocks wants 0..10000000";
            rc = parse_num(optarg, 0, 1e7, &v);
            o->prefix_cache_blocks = (uint32_t)v;
            break;
        }
        case OPT_API:
            what = "--api wants openai, ollama or tfserving";
            rc = parse_api(optarg, &o->api);
            break;
        case OPT_QUIET:
            o->quiet = true;
            break;
        case OPT_HELP:
            opts_usage(stdout);
            return 1;
        default:
            if (optopt >= OPT_LISTEN && optopt < OPT_HELP)
                snprintf(err, errlen, "option %s needs a value", argv[optind - 1]);
            else
                snprintf(err, errlen, "unknown option %s", argv[optind - 1]);
            return -EINVAL;
        }
        if (rc < 0) {
            snprintf(err, errlen, "%s, got '%s'", what, optarg);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
        return -EINVAL;
    }
    if (o->n_models == 0)
        o->models[o->n_models++] = "llmsim-1";
    return 0;
}
