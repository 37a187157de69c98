/*
 * llmsim — a backend simulator that imitates vLLM's OpenAI-compatible server
 * (behind uvicorn) byte for byte, for sluice's tests, benchmarks and
 * quickstart.  This file is the program: options, descriptor limit, the
 * listening socket, the port file, and running the server until SIGINT or
 * SIGTERM.  Exit status: 0 clean shutdown, 1 runtime failure, 2 bad usage
 * or a socket that cannot be bound.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "perf/llmsim/opts.h"
#include "perf/llmsim/server.h"

#define WANT_NOFILE 1048576

/* As many descriptors as allowed: as root, first lift the hard limit. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (geteuid() == 0 && rl.rlim_max < WANT_NOFILE) {
        struct rlimit want = {WANT_NOFILE, WANT_NOFILE};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            return;
        /* fs.nr_open may be lower than the wish: take what it allows. */
        FILE *f = fopen("/proc/sys/fs/nr_open", "r");
        unsigned long long nr = 0;
        if (f) {
            if (fscanf(f, "%llu", &nr) != 1)
                nr = 0;
            fclose(f);
        }
        if (nr > rl.rlim_max) {
            want.rlim_cur = want.rlim_max = (rlim_t)nr;
            if (setrlimit(RLIMIT_NOFILE, &want) == 0)
                return;
        }
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Splits ADDR:PORT, [V6]:PORT or :PORT into host (NULL = any) and port. */
static int split_listen(const char *spec, char *host, size_t hostcap, const char **port)
{
    const char *colon;
    if (spec[0] == '[') {
        const char *close_br = strchr(spec, ']');
        if (!close_br || close_br[1] != ':')
            return -EINVAL;
        size_t n = (size_t)(close_br - spec - 1);
        if (n == 0 || n >= hostcap)
            return -EINVAL;
        memcpy(host, spec + 1, n);
        host[n] = '\0';
        colon = close_br + 1;
    } else {
        colon = strrchr(spec, ':');
        if (!colon)
            return -EINVAL;
        size_t n = (size_t)(colon - spec);
        if (n >= hostcap)
            return -EINVAL;
        memcpy(host, spec, n);
        host[n] = '\0';
    }
    *port = colon + 1;
    if (!**port || strspn(*port, "0123456789") != strlen(*port) || strlen(*port) > 5)
        return -EINVAL;
    return 0;
}

/* Returns a listening non-blocking socket, or -1 with err set. */
static int open_listener(const char *spec, unsigned *bound_port, char *err, size_t errlen)
{
    char host[256];
    const char *port = NULL;
    if (split_listen(spec, host, sizeof(host), &port) < 0) {
        snprintf(err, errlen, "--listen wants ADDR:PORT, [V6ADDR]:PORT or :PORT, got '%s'", spec);
        return -1;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve '%s': %s", spec, gai_strerror(gai));
        return -1;
    }
    int fd = -1, last_errno = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 65535) == 0)
            break;
        last_errno = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", spec, strerror(last_errno));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    *bound_port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            *bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            *bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return fd;
}

/* Written to a temporary name and renamed, so a reader never sees half. */
static int write_port_file(const char *path, unsigned port, char *err, size_t errlen)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        snprintf(err, errlen, "--port-file path too long");
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "cannot write the port file next to %.300s: %s", path,
                 strerror(errno));
        return -1;
    }
    int bad = fprintf(f, "%u\n", port) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) < 0) {
        snprintf(err, errlen, "cannot write %.300s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct llmsim_opts o;
    char err[512];
    int rc = opts_parse(argc, argv, &o, err, sizeof(err));
    if (rc == 1)
        return 0;
    if (rc < 0) {
        fprintf(stderr, "llmsim: %s (see llmsim --help)\n", err);
        return 2;
    }
    raise_nofile();
    unsigned port = 0;
    int lfd = open_listener(o.listen, &port, err, sizeof(err));
    if (lfd < 0) {
        fprintf(stderr, "llmsim: %s\n", err);
        return 2;
    }
    static struct server s;
    rc = server_init(&s, &o, lfd);
    if (rc < 0) {
        fprintf(stderr, "llmsim: cannot start: %s\n", strerror(-rc));
        server_fini(&s);
        return 1;
    }
    if (o.port_file && write_port_file(o.port_file, port, err, sizeof(err)) < 0) {
        fprintf(stderr, "llmsim: %s\n", err);
        server_fini(&s);
        return 2;
    }
    if (!o.quiet) {
        struct rlimit rl = {0, 0};
        getrlimit(RLIMIT_NOFILE, &rl);
        fprintf(stderr,
                "llmsim: listening on %s (port %u)%s, model %s%s, tokens %u, ttft %g ms, "
                "itl %g ms, max-batch %u, nofile %llu\n",
                o.listen, port,
                o.api == LLMSIM_API_OLLAMA      ? ", api ollama"
                : o.api == LLMSIM_API_TFSERVING ? ", api tfserving"
                                                : "",
                o.models[0], o.n_models > 1 ? " (+more)" : "", o.tokens, o.ttft_ms, o.itl_ms,
                o.max_batch, (unsigned long long)rl.rlim_cur);
    }
    rc = server_run(&s);
    if (!o.quiet)
        fprintf(stderr,
                "llmsim: %s from pid %d, shutting down: requests %llu, completed %llu, "
                "aborted %llu, tokens %llu\n",
                strsignal(s.stop_signal), s.stop_pid, (unsigned long long)s.cnt.requests,
                (unsigned long long)s.cnt.completed, (unsigned long long)s.cnt.aborted,
                (unsigned long long)s.cnt.tokens);
    if (rc < 0)
        fprintf(stderr, "llmsim: event loop failed: %s\n", strerror(-rc));
    server_fini(&s);
    return rc < 0 ? 1 : 0;
}
