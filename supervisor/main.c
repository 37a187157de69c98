/* sluice — command line of the supervisor binary. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/config.h"
#include "supervisor/supervisor.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: sluice [--config FILE]\n"
                 "       sluice --check-config FILE\n"
                 "       sluice --help-config [--markdown]\n"
                 "       sluice --version | --help\n"
                 "\n"
                 "An edge proxy for LLM token streams.  Without --config every key has its\n"
                 "default (see --help-config): clients on 0.0.0.0:8080, admin on\n"
                 "127.0.0.1:9090, one backend at http://127.0.0.1:8000.\n"
                 "Signals: SIGHUP reloads the config file, SIGTERM/SIGINT drain and stop.\n");
}

static int check_config(const char *path)
{
    struct config cfg;
    struct config_errors errs;
    memset(&errs, 0, sizeof errs);
    if (config_load(&cfg, path, &errs) < 0) {
        config_errors_print(&errs, stderr);
        fprintf(stderr, "%s: %u error(s)\n", path, errs.n + errs.dropped);
        return 1;
    }
    printf("%s: configuration OK (%u workers, %u backend(s))\n", path, config_worker_count(&cfg),
           cfg.n_backends);
    config_free(&cfg);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", required_argument, NULL, 't'},
        {"help-config", no_argument, NULL, 'K'},
        {"markdown", no_argument, NULL, 'm'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL;
    const char *check_path = NULL;
    bool help_config = false;
    bool markdown = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:t:vh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 't':
            check_path = optarg;
            break;
        case 'K':
            help_config = true;
            break;
        case 'm':
            markdown = true;
            break;
        case 'v':
            printf("sluice %s\n", SLUICE_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sluice: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (help_config) {
        config_schema_print(stdout, markdown);
        return 0;
    }
    if (check_path)
        return check_config(check_path);

    struct config cfg;
    struct config_errors errs;
    memset(&errs, 0, sizeof errs);
    int ret = config_path ? config_load(&cfg, config_path, &errs) : config_defaults(&cfg);
    if (ret < 0) {
        config_errors_print(&errs, stderr);
        fprintf(stderr, "sluice: not starting: %u configuration error(s)\n", errs.n + errs.dropped);
        return 1;
    }
    return supervisor_run(&cfg, config_path);
}
