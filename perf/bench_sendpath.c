/*
 * bench_sendpath — sender CPU per byte of the send paths sluice could use
 * to push a stream's pending bytes from its (registered) slab pool.
 *
 * Paths, all on a fixed file, MSG_NOSIGNAL, one send in flight per
 * connection and every ready connection's send batched into one
 * io_uring_submit_and_wait per loop turn (as dataplane/client.c does):
 *   send      IORING_OP_SEND from the slab (copies into skbs)
 *   zc+fixed  IORING_OP_SEND_ZC + IORING_RECVSEND_FIXED_BUF, buf_index 0
 *             (the whole pool is one registered iovec, as bufpool.c does)
 *   zc        IORING_OP_SEND_ZC on the same memory, not registered (the
 *             kernel pins the pages on every send)
 *   sendmsg3  IORING_OP_SENDMSG, 3 iovecs: chunk header, data, trailer
 * A message is <size> bytes on the wire for every path.  Zero-copy sends ask
 * for IORING_SEND_ZC_REPORT_USAGE, so the notification CQE says whether the
 * kernel had to copy after all.  As a stream's outq walks through its slabs,
 * a connection's messages walk through its own 1 MiB of the pool (at most
 * 256 messages, 64-byte aligned, then it wraps); the next send starts as
 * soon as the result CQE arrives, but a message's bytes are sent again only
 * after their notification (a wait is counted when that holds a connection
 * back).  Short sends are finished with another SQE of the same kind.
 *
 * Measured per (path, size, connections), each over a fixed wall time after
 * a short warm-up, with in-flight sends and notifications drained before the
 * clock stops: bytes and messages completed, SQEs, CQEs, io_uring_enter
 * calls, and the sender's getrusage(RUSAGE_SELF) utime+stime.  With
 * DEFER_TASKRUN the completion work runs in the sender's own enter, and on
 * loopback or veth the receive-side softirq usually runs in the sender's
 * context too (there is no IRQ time accounting here), so that CPU time
 * includes the kernel's TCP receive processing but not the receiver's recv().
 * Repetitions interleave the paths (all paths at one size, then the next
 * size, then the next repetition), and the report gives medians and each
 * path's CPU per GiB relative to plain send, with how many paired
 * repetitions it beat plain send in.
 *
 * The receiver (another process, pinned elsewhere) reads with an epoll loop
 * and recv(MSG_TRUNC), which discards data without copying it to user space.
 *
 * usage:
 *   bench_sendpath recv --addr A [--cpu C] [--portfile F]
 *   bench_sendpath send --addr A --port P [--cpu C] [--secs S] [--warm S]
 *                  [--reps R] [--sizes 64,256,...] [--conns 1,64]
 *                  [--label L] [--json F] [--budget S] [--only PATH]
 * send prints a table on stdout and writes a JSON object to --json.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

#define MAX_CONNS  64
#define MAX_SIZE   (256u * 1024)
#define CONN_AREA  (1u << 20) /* bytes of pool per connection */
#define MAX_REGION 256
#define MAX_SIZES  16
#define MAX_NCONNS 4
#define MAX_REPS   15
#define RECV_BUF   (4u << 20)

enum path { P_SEND, P_ZC_FIXED, P_ZC, P_SENDMSG3, NPATHS };
static const char *const path_name[NPATHS] = {"send", "zc+fixed", "zc", "sendmsg3"};

struct conn {
    uint32_t off;               /* bytes of the current message already sent */
    uint32_t region;            /* slab region the current message is in */
    int16_t notifs[MAX_REGION]; /* notifications still owed, per region */
    bool busy;                  /* a send SQE is in flight */
    bool queued;                /* on the ready stack */
    struct msghdr msg;
    struct iovec iov[3];
    char hdr[16];
};

struct sample {
    double wall_s, cpu_s;
    uint64_t bytes, sends, sqes, cqes, notifs, copied, enters, nvcsw, nivcsw, region_waits;
};

struct sender {
    struct io_uring ring;
    char *pool;
    size_t pool_bytes;
    int fds[MAX_CONNS];
    unsigned nfds;
    struct conn c[MAX_CONNS];
    uint16_t ready[MAX_CONNS];
    unsigned nready;
    /* for the current run */
    enum path path;
    uint32_t size;
    size_t stride;     /* bytes between message starts in a connection's area */
    uint32_t nregion;  /* messages in flight-or-owed before the area wraps */
    size_t dlen, hlen; /* sendmsg3: data and header bytes */
    unsigned inflight;
    int64_t notif_out;
    struct sample s;
};

struct opts {
    const char *addr;
    unsigned port;
    int cpu;
    double secs, warm;
    double budget; /* seconds for all repetitions, 0 = no limit */
    unsigned reps;
    uint32_t sizes[MAX_SIZES];
    unsigned nsizes;
    unsigned conns[MAX_NCONNS];
    unsigned nconns;
    const char *label;
    const char *json;
    const char *portfile;
    int only; /* --only: one path, for perf record; -1 = all */
};

static const char trailer[2] = {'\r', '\n'};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

_Noreturn static void die(const char *what, int err)
{
    fprintf(stderr, "bench_sendpath: %s: %s\n", what, strerror(err));
    exit(1);
}

static void pin(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0)
        die("sched_setaffinity", errno);
}

static int parse_u64(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

/* "64,256,1024" into at most <cap> values in [1, max]. */
static int parse_list(const char *s, unsigned long long max, uint32_t *out, unsigned cap,
                      unsigned *n)
{
    char buf[256];
    size_t len = strlen(s);
    if (len >= sizeof buf)
        return -EINVAL;
    memcpy(buf, s, len + 1);
    *n = 0;
    char *p = buf;
    while (*p) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        unsigned long long v;
        if (*n == cap || parse_u64(p, max, &v) < 0 || v == 0)
            return -EINVAL;
        out[(*n)++] = (uint32_t)v;
        if (!comma)
            break;
        p = comma + 1;
    }
    return *n ? 0 : -EINVAL;
}

static int parse_secs(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0.0) || v > 3600.0)
        return -EINVAL;
    *out = v;
    return 0;
}

/* ---- receiver --------------------------------------------------------- */

static int run_recv(const struct opts *o)
{
    pin(o->cpu);
    char *buf = malloc(RECV_BUF);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!buf || lfd < 0)
        die("receiver setup", errno ? errno : ENOMEM);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    if (inet_pton(AF_INET, o->addr, &sa.sin_addr) != 1)
        die("--addr", EINVAL);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 128) < 0)
        die("bind/listen", errno);
    socklen_t slen = sizeof sa;
    if (getsockname(lfd, (struct sockaddr *)&sa, &slen) < 0)
        die("getsockname", errno);
    if (o->portfile) {
        /* Written whole and renamed so the script never reads half a file. */
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s.tmp", o->portfile);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%u\n", ntohs(sa.sin_port)) < 0 || fclose(f) != 0 ||
            rename(tmp, o->portfile) < 0)
            die("--portfile", errno);
    } else {
        printf("%u\n", ntohs(sa.sin_port));
        fflush(stdout);
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        die("epoll", errno);
    unsigned accepted = 0, open = 0;
    struct epoll_event evs[128];
    for (;;) {
        int n = epoll_wait(ep, evs, 128, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait", errno);
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0)
                    continue;
                struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
                if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev) < 0)
                    die("epoll_ctl", errno);
                accepted++;
                open++;
                continue;
            }
            /* MSG_TRUNC on TCP discards the bytes without copying them out. */
            for (int k = 0; k < 4; k++) {
                ssize_t r = recv(fd, buf, RECV_BUF, MSG_TRUNC | MSG_DONTWAIT);
                if (r > 0)
                    continue;
                if (r < 0 && (errno == EAGAIN || errno == EINTR))
                    break;
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
                open--;
                break;
            }
        }
        if (accepted && !open)
            break;
    }
    close(ep);
    close(lfd);
    free(buf);
    return 0;
}

/* ---- sender ----------------------------------------------------------- */

static char *region_ptr(const struct sender *b, unsigned ci, uint32_t r)
{
    return b->pool + (size_t)ci * CONN_AREA + (size_t)r * b->stride;
}

static void push_ready(struct sender *b, unsigned ci)
{
    struct conn *c = &b->c[ci];
    if (c->queued || c->busy)
        return;
    /* A fresh message needs its region back from the kernel; the rest of a
     * short-sent one comes from the region already in flight. */
    if (c->off == 0 && c->notifs[c->region] != 0) {
        b->s.region_waits++;
        return;
    }
    c->queued = true;
    b->ready[b->nready++] = (uint16_t)ci;
}

/* The 3 iovecs of the current message, past the <off> bytes already sent. */
static unsigned build_iov(struct sender *b, unsigned ci)
{
    struct conn *c = &b->c[ci];
    struct iovec full[3] = {
        {c->hdr, b->hlen},
        {region_ptr(b, ci, c->region), b->dlen},
        {(void *)trailer, sizeof trailer},
    };
    size_t skip = c->off;
    unsigned n = 0;
    for (unsigned i = 0; i < 3; i++) {
        if (skip >= full[i].iov_len) {
            skip -= full[i].iov_len;
            continue;
        }
        c->iov[n].iov_base = (char *)full[i].iov_base + skip;
        c->iov[n].iov_len = full[i].iov_len - skip;
        skip = 0;
        n++;
    }
    return n;
}

static void issue(struct sender *b, unsigned ci)
{
    struct conn *c = &b->c[ci];
    struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
    if (!sqe)
        die("io_uring_get_sqe", EBUSY);
    char *ptr = region_ptr(b, ci, c->region) + c->off;
    size_t len = b->size - c->off;
    switch (b->path) {
    case P_SEND:
        io_uring_prep_send(sqe, (int)ci, ptr, len, MSG_NOSIGNAL);
        break;
    case P_ZC_FIXED:
        io_uring_prep_send_zc_fixed(sqe, (int)ci, ptr, len, MSG_NOSIGNAL,
                                    IORING_SEND_ZC_REPORT_USAGE, 0);
        break;
    case P_ZC:
        io_uring_prep_send_zc(sqe, (int)ci, ptr, len, MSG_NOSIGNAL, IORING_SEND_ZC_REPORT_USAGE);
        break;
    case P_SENDMSG3:
        c->msg = (struct msghdr){.msg_iov = c->iov, .msg_iovlen = build_iov(b, ci)};
        io_uring_prep_sendmsg(sqe, (int)ci, &c->msg, MSG_NOSIGNAL);
        break;
    case NPATHS:
        break;
    }
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, ((uint64_t)ci << 8) | c->region);
    c->busy = true;
    b->inflight++;
    b->s.sqes++;
}

static void reap(struct sender *b)
{
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe (&b->ring, head, cqe) {
        seen++;
        unsigned ci = (unsigned)(cqe->user_data >> 8);
        uint32_t r = (uint32_t)(cqe->user_data & 0xff);
        struct conn *c = &b->c[ci];
        if (cqe->flags & IORING_CQE_F_NOTIF) {
            b->s.notifs++;
            if ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED)
                b->s.copied++;
            c->notifs[r]--;
            b->notif_out--;
            push_ready(b, ci);
            continue;
        }
        /* The notification may in principle be reaped first: counts are
         * signed, and a region is free when its count is back to zero. */
        if (cqe->flags & IORING_CQE_F_MORE) {
            c->notifs[r]++;
            b->notif_out++;
        }
        c->busy = false;
        b->inflight--;
        if (cqe->res < 0)
            die(path_name[b->path], -cqe->res);
        b->s.bytes += (uint64_t)cqe->res;
        c->off += (uint32_t)cqe->res;
        if (c->off >= b->size) {
            b->s.sends++;
            c->off = 0;
            c->region = (c->region + 1) % b->nregion;
        }
        push_ready(b, ci);
    }
    io_uring_cq_advance(&b->ring, seen);
    b->s.cqes += seen;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

/* One timed run of <path> at <size> over the first <n> connections. */
static void run_once(struct sender *b, enum path path, uint32_t size, unsigned n, double secs,
                     struct sample *out)
{
    b->path = path;
    b->size = size;
    b->stride = ((size_t)size + 63) & ~(size_t)63;
    b->nregion = (uint32_t)(CONN_AREA / b->stride);
    if (b->nregion > MAX_REGION)
        b->nregion = MAX_REGION;
    if (path == P_SENDMSG3) {
        /* Fixed-width hex chunk size so the 3 parts add up to <size>. */
        int digits = snprintf(NULL, 0, "%x", size);
        b->hlen = (size_t)digits + 2;
        b->dlen = size > b->hlen + sizeof trailer ? size - b->hlen - sizeof trailer : 1;
    }
    memset(&b->s, 0, sizeof b->s);
    b->nready = 0;
    b->inflight = 0;
    b->notif_out = 0;
    for (unsigned i = 0; i < n; i++) {
        struct conn *c = &b->c[i];
        *c = (struct conn){0};
        if (path == P_SENDMSG3)
            snprintf(c->hdr, sizeof c->hdr, "%0*zx\r\n", (int)(b->hlen - 2), b->dlen);
        push_ready(b, i);
    }
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    double t0 = now_s(), tend = t0 + secs;
    bool stopping = false;
    for (;;) {
        if (!stopping && now_s() >= tend)
            stopping = true;
        if (!stopping) {
            while (b->nready) {
                unsigned ci = b->ready[--b->nready];
                b->c[ci].queued = false;
                issue(b, ci);
            }
        }
        if (!b->inflight && !b->notif_out)
            break;
        int ret = io_uring_submit_and_wait(&b->ring, 1);
        if (ret < 0 && ret != -EINTR)
            die("io_uring_submit_and_wait", -ret);
        b->s.enters++;
        reap(b);
    }
    double t1 = now_s();
    getrusage(RUSAGE_SELF, &ru1);
    b->s.wall_s = t1 - t0;
    b->s.cpu_s = tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime) + tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime);
    b->s.nvcsw = (uint64_t)(ru1.ru_nvcsw - ru0.ru_nvcsw);
    b->s.nivcsw = (uint64_t)(ru1.ru_nivcsw - ru0.ru_nivcsw);
    if (out)
        *out = b->s;
}

static void sender_setup(struct sender *b, const struct opts *o, unsigned nmax)
{
    memset(b, 0, sizeof *b);
    struct io_uring_params p = {0};
    /* As dataplane/uring.c sets its rings up. */
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL |
              IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    p.cq_entries = 4096;
    int ret = io_uring_queue_init_params(256, &b->ring, &p);
    if (ret < 0)
        die("io_uring_queue_init_params (SINGLE_ISSUER|DEFER_TASKRUN)", -ret);
    (void)io_uring_register_ring_fd(&b->ring);
    unsigned maxw[2] = {2, 4};
    (void)io_uring_register_iowq_max_workers(&b->ring, maxw);

    b->pool_bytes = (size_t)MAX_CONNS * CONN_AREA;
    b->pool = mmap(NULL, b->pool_bytes, PROT_READ | PROT_WRITE,
                   MAP_ANONYMOUS | MAP_PRIVATE | MAP_POPULATE, -1, 0);
    if (b->pool == MAP_FAILED)
        die("mmap pool", errno);
    static const char ev[] =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" token\"}}]}\n\n";
    for (size_t i = 0; i < b->pool_bytes; i++)
        b->pool[i] = ev[i % (sizeof ev - 1)];
    struct iovec iov = {.iov_base = b->pool, .iov_len = b->pool_bytes};
    ret = io_uring_register_buffers(&b->ring, &iov, 1);
    if (ret < 0)
        die("io_uring_register_buffers (RLIMIT_MEMLOCK?)", -ret);

    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    if (inet_pton(AF_INET, o->addr, &sa.sin_addr) != 1)
        die("--addr", EINVAL);
    for (unsigned i = 0; i < nmax; i++) {
        int fd = -1;
        for (int tries = 0; tries < 100; tries++) {
            fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd < 0)
                die("socket", errno);
            if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
                break;
            close(fd);
            fd = -1;
            usleep(50 * 1000);
        }
        if (fd < 0)
            die("connect", ECONNREFUSED);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        b->fds[b->nfds++] = fd;
    }
    ret = io_uring_register_files(&b->ring, b->fds, b->nfds);
    if (ret < 0)
        die("io_uring_register_files", -ret);
}

/* Plain SEND with IORING_RECVSEND_FIXED_BUF: does this kernel honour it? */
static int probe_plain_send_fixed(struct sender *b)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
    io_uring_prep_send(sqe, 0, b->pool, 1, MSG_NOSIGNAL);
    sqe->ioprio |= IORING_RECVSEND_FIXED_BUF;
    sqe->buf_index = 0;
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, 0);
    struct io_uring_cqe *cqe;
    int ret = io_uring_submit_and_wait(&b->ring, 1);
    if (ret < 0)
        return ret;
    ret = io_uring_peek_cqe(&b->ring, &cqe);
    if (ret < 0)
        return ret;
    ret = cqe->res;
    io_uring_cqe_seen(&b->ring, cqe);
    return ret;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, unsigned n)
{
    double t[MAX_REPS];
    memcpy(t, v, n * sizeof *t);
    qsort(t, n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

enum metric {
    M_GIBPS,    /* GiB/s */
    M_KSENDPS,  /* thousands of messages/s */
    M_CPU_GIB,  /* CPU seconds per GiB */
    M_CPU_1K,   /* CPU milliseconds per 1,000 messages */
    M_CPU_UTIL, /* CPU seconds / wall seconds */
    M_CQE_SEND, /* CQEs per message */
    M_SQE_SEND, /* SQEs per message (>1: short sends) */
    M_SEND_ENT, /* messages per io_uring_enter */
    M_COPIED,   /* fraction of ZC notifications that report a copy */
    M_CSW_1K,   /* voluntary context switches per 1,000 messages */
    M_WAIT_1K,  /* waits for a notification per 1,000 messages */
    NMETRICS
};
static const char *const metric_name[NMETRICS] = {"gib_per_s",
                                                  "ksends_per_s",
                                                  "cpu_s_per_gib",
                                                  "cpu_ms_per_1k_sends",
                                                  "cpu_utilisation",
                                                  "cqes_per_send",
                                                  "sqes_per_send",
                                                  "sends_per_enter",
                                                  "zc_copied_fraction",
                                                  "vol_ctx_switches_per_1k_sends",
                                                  "notif_waits_per_1k_sends"};

static void derive(const struct sample *s, double *m)
{
    double sends = s->sends ? (double)s->sends : 1.0;
    double gib = (double)s->bytes / (double)(1u << 30);
    m[M_GIBPS] = gib / s->wall_s;
    m[M_KSENDPS] = (double)s->sends / s->wall_s / 1e3;
    m[M_CPU_GIB] = gib > 0 ? s->cpu_s / gib : 0;
    m[M_CPU_1K] = s->cpu_s * 1e3 / (sends / 1e3);
    m[M_CPU_UTIL] = s->cpu_s / s->wall_s;
    m[M_CQE_SEND] = (double)s->cqes / sends;
    m[M_SQE_SEND] = (double)s->sqes / sends;
    m[M_SEND_ENT] = s->enters ? (double)s->sends / (double)s->enters : 0;
    m[M_COPIED] = s->notifs ? (double)s->copied / (double)s->notifs : 0;
    m[M_CSW_1K] = (double)s->nvcsw / (sends / 1e3);
    m[M_WAIT_1K] = (double)s->region_waits / (sends / 1e3);
}

/* [conns][size][path][rep][metric] */
static double res[MAX_NCONNS][MAX_SIZES][NPATHS][MAX_REPS][NMETRICS];

static void path_medians(const struct opts *o, unsigned ni, unsigned si, unsigned pi, double *med)
{
    for (unsigned m = 0; m < NMETRICS; m++) {
        double v[MAX_REPS] = {0};
        for (unsigned r = 0; r < o->reps; r++)
            v[r] = res[ni][si][pi][r][m];
        med[m] = median(v, o->reps);
    }
}

/* Paired repetitions in which <pi> used less CPU per GiB than plain send. */
static unsigned wins(const struct opts *o, unsigned ni, unsigned si, unsigned pi)
{
    unsigned w = 0;
    for (unsigned r = 0; r < o->reps; r++)
        w += res[ni][si][pi][r][M_CPU_GIB] < res[ni][si][P_SEND][r][M_CPU_GIB];
    return w;
}

/* Smallest size from which <pi> beats plain send's median CPU/GiB at every
 * larger size too; 0 if none. */
static uint32_t crossover(const struct opts *o, unsigned ni, unsigned pi)
{
    uint32_t from = 0;
    for (unsigned si = 0; si < o->nsizes; si++) {
        double mp[NMETRICS], ms[NMETRICS];
        path_medians(o, ni, si, pi, mp);
        path_medians(o, ni, si, P_SEND, ms);
        if (mp[M_CPU_GIB] < ms[M_CPU_GIB]) {
            if (!from)
                from = o->sizes[si];
        } else {
            from = 0;
        }
    }
    return from;
}

static void print_table(const struct opts *o, int probe)
{
    printf("## %s: sender CPU (getrusage utime+stime), medians of %u x %.2f s\n", o->label, o->reps,
           o->secs);
    printf("probe: plain IORING_OP_SEND + IORING_RECVSEND_FIXED_BUF -> %d (%s)\n", probe,
           probe < 0 ? strerror(-probe) : "accepted");
    for (unsigned ni = 0; ni < o->nconns; ni++) {
        printf("\n%s, N=%u connection%s\n", o->label, o->conns[ni], o->conns[ni] > 1 ? "s" : "");
        printf("%7s %-9s %8s %9s %9s %8s %6s %4s %5s %5s %5s %6s %7s %7s\n", "size", "path",
               "GiB/s", "ksends/s", "cpuS/GiB", "ms/1kSnd", "ratio", "wins", "cpu%", "cqe/m",
               "sqe/m", "msg/en", "copied%", "wait/1k");
        for (unsigned si = 0; si < o->nsizes; si++) {
            double base[NMETRICS];
            path_medians(o, ni, si, P_SEND, base);
            for (unsigned pi = 0; pi < NPATHS; pi++) {
                double m[NMETRICS];
                path_medians(o, ni, si, pi, m);
                char w[8] = "-";
                if (pi != P_SEND)
                    snprintf(w, sizeof w, "%u/%u", wins(o, ni, si, pi), o->reps);
                printf("%7u %-9s %8.3f %9.1f %9.3f %8.3f %6.2f %4s %5.0f %5.2f %5.2f %6.1f %7.1f "
                       "%7.1f\n",
                       o->sizes[si], path_name[pi], m[M_GIBPS], m[M_KSENDPS], m[M_CPU_GIB],
                       m[M_CPU_1K], m[M_CPU_GIB] / base[M_CPU_GIB], w, m[M_CPU_UTIL] * 100,
                       m[M_CQE_SEND], m[M_SQE_SEND], m[M_SEND_ENT], m[M_COPIED] * 100,
                       m[M_WAIT_1K]);
            }
        }
        char xf[16] = "none", xz[16] = "none";
        uint32_t x = crossover(o, ni, P_ZC_FIXED);
        if (x)
            snprintf(xf, sizeof xf, ">= %u", x);
        x = crossover(o, ni, P_ZC);
        if (x)
            snprintf(xz, sizeof xz, ">= %u", x);
        printf(
            "crossover (median CPU/GiB below plain send from this size up): zc+fixed %s, zc %s\n",
            xf, xz);
    }
    printf("\ncolumns: ratio = CPU/GiB / plain send's; wins = paired reps with less CPU/GiB "
           "than plain send;\ncpu%% = sender CPU / wall; cqe/m, sqe/m = per message; msg/en = "
           "messages per io_uring_enter;\ncopied%% = ZC notifications flagged "
           "IORING_NOTIF_USAGE_ZC_COPIED;\n"
           "wait/1k = times per 1,000 messages a connection waited for a notification to reuse "
           "bytes\n");
}

static void write_json(const struct opts *o, int probe)
{
    FILE *f = fopen(o->json, "w");
    if (!f)
        die(o->json, errno);
    fprintf(f, "{\"label\": \"%s\", \"addr\": \"%s\", \"secs\": %.3f, \"warm_secs\": %.3f, ",
            o->label, o->addr, o->secs, o->warm);
    fprintf(f, "\"reps\": %u, \"plain_send_fixed_buf_probe\": %d,\n \"results\": [", o->reps,
            probe);
    bool first = true;
    for (unsigned ni = 0; ni < o->nconns; ni++) {
        for (unsigned si = 0; si < o->nsizes; si++) {
            double base[NMETRICS];
            path_medians(o, ni, si, P_SEND, base);
            for (unsigned pi = 0; pi < NPATHS; pi++) {
                double m[NMETRICS];
                path_medians(o, ni, si, pi, m);
                fprintf(f, "%s\n  {\"conns\": %u, \"size\": %u, \"path\": \"%s\", ",
                        first ? "" : ",", o->conns[ni], o->sizes[si], path_name[pi]);
                first = false;
                fprintf(f,
                        "\"cpu_per_gib_ratio_to_send\": %.4f, \"wins_vs_send\": %u,\n   "
                        "\"median\": {",
                        m[M_CPU_GIB] / base[M_CPU_GIB], pi == P_SEND ? 0 : wins(o, ni, si, pi));
                for (unsigned k = 0; k < NMETRICS; k++)
                    fprintf(f, "%s\"%s\": %.6g", k ? ", " : "", metric_name[k], m[k]);
                fprintf(f, "},\n   \"samples_cpu_s_per_gib\": [");
                for (unsigned r = 0; r < o->reps; r++)
                    fprintf(f, "%s%.6g", r ? ", " : "", res[ni][si][pi][r][M_CPU_GIB]);
                fprintf(f, "], \"samples_gib_per_s\": [");
                for (unsigned r = 0; r < o->reps; r++)
                    fprintf(f, "%s%.6g", r ? ", " : "", res[ni][si][pi][r][M_GIBPS]);
                fprintf(f, "]}");
            }
        }
    }
    fprintf(f, "\n ],\n \"crossover\": {");
    /* null: no size from which the path stays below plain send */
    for (unsigned ni = 0; ni < o->nconns; ni++) {
        char xf[16] = "null", xz[16] = "null";
        uint32_t x = crossover(o, ni, P_ZC_FIXED);
        if (x)
            snprintf(xf, sizeof xf, "%u", x);
        x = crossover(o, ni, P_ZC);
        if (x)
            snprintf(xz, sizeof xz, "%u", x);
        fprintf(f, "%s\"%u\": {\"zc+fixed\": %s, \"zc\": %s}", ni ? ", " : "", o->conns[ni], xf,
                xz);
    }
    fprintf(f, "}}\n");
    if (fclose(f) != 0)
        die(o->json, errno);
}

/* --only: one path at the first size and connection count, one line per
 * repetition, nothing else in the profile. */
static int run_only(struct sender *b, const struct opts *o)
{
    for (unsigned r = 0; r < o->reps; r++) {
        struct sample s;
        double m[NMETRICS];
        run_once(b, (enum path)o->only, o->sizes[0], o->conns[0], o->secs, &s);
        derive(&s, m);
        printf("%s size %u N %u: %.3f GiB/s, %.1f ksends/s, %.3f cpu s/GiB, %.3f ms/1k sends, "
               "cpu %.0f%%, copied %.0f%%\n",
               path_name[o->only], o->sizes[0], o->conns[0], m[M_GIBPS], m[M_KSENDPS], m[M_CPU_GIB],
               m[M_CPU_1K], m[M_CPU_UTIL] * 100, m[M_COPIED] * 100);
    }
    return 0;
}

static int run_send(struct opts *o)
{
    pin(o->cpu);
    unsigned nmax = 0;
    for (unsigned i = 0; i < o->nconns; i++)
        nmax = o->conns[i] > nmax ? o->conns[i] : nmax;
    static struct sender b;
    sender_setup(&b, o, nmax);
    int probe = probe_plain_send_fixed(&b);
    if (o->only >= 0)
        return run_only(&b, o);

    /* Whole repetitions only, so every path has the same number of samples;
     * stop early rather than overrun --budget. */
    double t0 = now_s(), rep_s = 0;
    unsigned done = 0;
    while (done < o->reps) {
        if (o->budget > 0 && done > 0 && now_s() - t0 + rep_s * 1.1 > o->budget) {
            fprintf(stderr, "%s: stopping after %u repetitions (--budget %.0f s)\n", o->label, done,
                    o->budget);
            break;
        }
        double tr = now_s();
        for (unsigned ni = 0; ni < o->nconns; ni++) {
            for (unsigned si = 0; si < o->nsizes; si++) {
                for (unsigned pi = 0; pi < NPATHS; pi++) {
                    struct sample s;
                    if (o->warm > 0)
                        run_once(&b, pi, o->sizes[si], o->conns[ni], o->warm, NULL);
                    run_once(&b, pi, o->sizes[si], o->conns[ni], o->secs, &s);
                    derive(&s, res[ni][si][pi][done]);
                }
            }
        }
        done++;
        rep_s = now_s() - tr;
        fprintf(stderr, "%s: repetition %u/%u done (%.0f s)\n", o->label, done, o->reps,
                now_s() - t0);
    }
    o->reps = done;
    for (unsigned i = 0; i < b.nfds; i++)
        close(b.fds[i]);
    io_uring_queue_exit(&b.ring);
    munmap(b.pool, b.pool_bytes);

    print_table(o, probe);
    if (o->json)
        write_json(o, probe);
    return 0;
}

_Noreturn static void usage(void)
{
    fprintf(stderr, "usage: bench_sendpath recv --addr A [--port P] [--cpu C] [--portfile F]\n"
                    "       bench_sendpath send --addr A --port P [--cpu C] [--secs S] [--warm S]"
                    " [--reps R]\n"
                    "                      [--sizes 64,256,...] [--conns 1,64] [--label L]"
                    " [--json F] [--budget S]\n"
                    "                      [--only send|zc+fixed|zc|sendmsg3]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    struct opts o = {.cpu = -1, .secs = 2.0, .warm = 0.05, .reps = 5, .label = "run", .only = -1};
    if (parse_list("64,256,1024,4096,16384,65536,262144", MAX_SIZE, o.sizes, MAX_SIZES, &o.nsizes) <
            0 ||
        parse_list("1,64", MAX_CONNS, o.conns, MAX_NCONNS, &o.nconns) < 0)
        usage();
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i];
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        unsigned long long u = 0;
        int bad = 0;
        if (!strcmp(k, "--addr")) {
            o.addr = v;
        } else if (!strcmp(k, "--port")) {
            bad = parse_u64(v, 65535, &u);
            o.port = (unsigned)u;
        } else if (!strcmp(k, "--cpu")) {
            bad = parse_u64(v, CPU_SETSIZE - 1, &u);
            o.cpu = (int)u;
        } else if (!strcmp(k, "--secs")) {
            bad = parse_secs(v, &o.secs);
        } else if (!strcmp(k, "--only")) {
            bad = 1;
            for (int pi = 0; pi < NPATHS; pi++)
                if (!strcmp(v, path_name[pi])) {
                    o.only = pi;
                    bad = 0;
                }
        } else if (!strcmp(k, "--budget")) {
            bad = parse_secs(v, &o.budget);
        } else if (!strcmp(k, "--warm")) {
            bad = parse_secs(v, &o.warm);
        } else if (!strcmp(k, "--reps")) {
            bad = parse_u64(v, MAX_REPS, &u);
            o.reps = (unsigned)u;
            bad |= o.reps == 0;
        } else if (!strcmp(k, "--sizes")) {
            bad = parse_list(v, MAX_SIZE, o.sizes, MAX_SIZES, &o.nsizes);
        } else if (!strcmp(k, "--conns")) {
            uint32_t c[MAX_NCONNS];
            bad = parse_list(v, MAX_CONNS, c, MAX_NCONNS, &o.nconns);
            for (unsigned j = 0; !bad && j < o.nconns; j++)
                o.conns[j] = c[j];
        } else if (!strcmp(k, "--label")) {
            o.label = v;
        } else if (!strcmp(k, "--json")) {
            o.json = v;
        } else if (!strcmp(k, "--portfile")) {
            o.portfile = v;
        } else {
            bad = 1;
        }
        if (bad) {
            fprintf(stderr, "bench_sendpath: bad %s '%s'\n", k, v);
            usage();
        }
    }
    if (!o.addr)
        usage();
    if (!strcmp(argv[1], "recv"))
        return run_recv(&o);
    if (!strcmp(argv[1], "send")) {
        if (!o.port)
            usage();
        return run_send(&o);
    }
    usage();
}
