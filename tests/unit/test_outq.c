/*
 * Unit tests for dataplane/outq over dataplane/bufpool: writes, commits and
 * spans across slab boundaries, contiguous event assembly (mark, extend,
 * advance, truncate), pool exhaustion, slabs going back to the pool as soon
 * as they are sent, zero-copy references, and a randomized model-based test
 * in which every byte that comes out is compared with a reference.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/bufpool.h"
#include "dataplane/outq.h"

/* cr_assert formats eagerly enough to be slow in long loops. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            cr_assert_fail(__VA_ARGS__);                                                           \
    } while (0)

#define SLAB 4096u

static struct bufpool pool;

static void pool_init(uint32_t slab_size, uint32_t nslabs)
{
    cr_assert_eq(bufpool_init(&pool, slab_size, nslabs), 0);
}

static void pool_fini(void)
{
    bufpool_destroy(&pool);
}

TestSuite(outq, .fini = pool_fini);

/* The byte at stream position <pos> (distinct neighbours, long period). */
static uint8_t pat(uint64_t pos)
{
    return (uint8_t)(pos * 131u + (pos >> 8) * 7u + (pos >> 16) + 1u);
}

static void fill_pat(char *dst, uint64_t pos, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)pat(pos + i);
}

/* Writes n pattern bytes continuing from q->written. */
static int write_pat(struct outq *q, size_t n)
{
    char *tmp = malloc(n ? n : 1);
    cr_assert_not_null(tmp);
    fill_pat(tmp, q->written, n);
    int rc = outq_write(q, &pool, tmp, n);
    free(tmp);
    return rc;
}

/* Takes spans and consumes at most <chunk> bytes of each until nothing is
 * committed or <limit> bytes are taken; checks every byte against the
 * pattern from position <from>.  Returns the bytes taken. */
static uint64_t send_check(struct outq *q, uint64_t from, size_t chunk, uint64_t limit)
{
    uint64_t pos = from;
    while (pos - from < limit) {
        const char *ptr = NULL;
        uint32_t slab = SLAB_NONE;
        uint64_t avail = outq_committed(q);
        size_t n = outq_span(q, &pool, &ptr, &slab);
        if (!n) {
            cr_assert_eq(avail, 0, "span empty while %llu bytes committed",
                         (unsigned long long)avail);
            break;
        }
        cr_assert_leq(n, avail, "span past the commit point");
        cr_assert_lt(slab, pool.nslabs);
        cr_assert_geq(ptr, bufpool_ptr(&pool, slab));
        cr_assert_leq(ptr + n, bufpool_ptr(&pool, slab) + pool.slab_size, "span leaves its slab");
        if (n > chunk)
            n = chunk;
        if (n > limit - (pos - from))
            n = (size_t)(limit - (pos - from));
        for (size_t i = 0; i < n; i++)
            CHECK((uint8_t)ptr[i] == pat(pos + i), "byte %llu differs",
                  (unsigned long long)(pos + i));
        outq_consume(q, &pool, n);
        pos += n;
    }
    return pos - from;
}

static uint64_t drain_check(struct outq *q, uint64_t from, size_t chunk)
{
    return send_check(q, from, chunk, UINT64_MAX);
}

Test(outq, empty_queue)
{
    pool_init(SLAB, 4);
    struct outq q;
    outq_init(&q);
    const char *ptr;
    uint32_t slab;
    cr_assert_eq(outq_span(&q, &pool, &ptr, &slab), 0);
    cr_assert_eq(outq_pending(&q), 0);
    cr_assert_eq(outq_committed(&q), 0);
    cr_assert_eq(outq_write(&q, &pool, "", 0), 0);
    cr_assert_eq(bufpool_used(&pool), 0, "an empty write takes no slab");
    outq_commit(&q);
    cr_assert_eq(outq_span(&q, &pool, &ptr, &slab), 0);
    outq_reset(&q, &pool);
}

Test(outq, write_commit_span_across_slabs)
{
    pool_init(SLAB, 8);
    struct outq q;
    outq_init(&q);
    cr_assert_eq(write_pat(&q, 10000), 0);
    cr_assert_eq(bufpool_used(&pool), 3);
    cr_assert_eq(outq_pending(&q), 10000);
    const char *ptr;
    uint32_t slab;
    cr_assert_eq(outq_span(&q, &pool, &ptr, &slab), 0, "nothing committed yet");
    outq_commit(&q);
    cr_assert_eq(outq_committed(&q), 10000);
    size_t n = outq_span(&q, &pool, &ptr, &slab);
    cr_assert_eq(n, SLAB, "first span is the first slab");
    /* consume in odd pieces so spans start mid-slab */
    cr_assert_eq(drain_check(&q, 0, 1000), 10000);
    cr_assert_eq(outq_pending(&q), 0);
    cr_assert_eq(bufpool_used(&pool), 0, "idle queue holds no slab");
}

Test(outq, span_excludes_uncommitted_bytes)
{
    pool_init(SLAB, 8);
    struct outq q;
    outq_init(&q);
    cr_assert_eq(write_pat(&q, 5000), 0);
    outq_commit(&q);
    cr_assert_eq(write_pat(&q, 3000), 0); /* uncommitted, partly in slab 2 */
    cr_assert_eq(outq_committed(&q), 5000);
    cr_assert_eq(outq_pending(&q), 8000);
    cr_assert_eq(drain_check(&q, 0, SIZE_MAX), 5000);
    const char *ptr;
    uint32_t slab;
    cr_assert_eq(outq_span(&q, &pool, &ptr, &slab), 0);
    cr_assert_eq(outq_pending(&q), 3000);
    /* commit point in the middle of a slab, then spans stop exactly there */
    cr_assert_eq(write_pat(&q, 10), 0);
    outq_commit(&q);
    cr_assert_eq(write_pat(&q, 2000), 0);
    cr_assert_eq(drain_check(&q, 5000, 777), 3010);
    cr_assert_eq(outq_pending(&q), 2000);
    outq_commit(&q);
    cr_assert_eq(drain_check(&q, 8010, 4096), 2000);
    cr_assert_eq(bufpool_used(&pool), 0);
}

Test(outq, slabs_return_as_soon_as_sent)
{
    pool_init(SLAB, 8);
    struct outq q;
    outq_init(&q);
    cr_assert_eq(write_pat(&q, 3 * SLAB), 0);
    outq_commit(&q);
    cr_assert_eq(bufpool_used(&pool), 3);
    cr_assert_eq(q.nslabs, 3);
    outq_consume(&q, &pool, SLAB - 1);
    cr_assert_eq(bufpool_used(&pool), 3);
    outq_consume(&q, &pool, 1);
    cr_assert_eq(bufpool_used(&pool), 2, "first slab freed when its last byte is sent");
    outq_consume(&q, &pool, SLAB + 5);
    cr_assert_eq(bufpool_used(&pool), 1);
    outq_consume(&q, &pool, SLAB - 5);
    cr_assert_eq(bufpool_used(&pool), 0, "idle queue holds no slab");
    cr_assert_eq(q.nslabs, 0);
    /* and the queue works after going idle */
    cr_assert_eq(write_pat(&q, 100), 0);
    outq_commit(&q);
    cr_assert_eq(drain_check(&q, 3 * SLAB, 64), 100);
    cr_assert_eq(bufpool_used(&pool), 0);
}

Test(outq, extend_contig_in_place)
{
    pool_init(SLAB, 4);
    struct outq q;
    outq_init(&q);
    cr_assert_eq(write_pat(&q, 100), 0);
    outq_commit(&q);
    struct outq_mark m;
    cr_assert_eq(outq_mark(&q, &pool, &m), 0);
    int err = 0;
    char *dst = outq_extend_contig(&q, &pool, &m, 50, &err);
    cr_assert_not_null(dst);
    cr_assert_eq(dst, outq_mark_ptr(&q, &pool, &m), "first bytes go at the mark");
    fill_pat(dst, 100, 50);
    outq_advance(&q, &pool, 50);
    cr_assert_eq(outq_since(&q, &pool, &m), 50);
    dst = outq_extend_contig(&q, &pool, &m, 30, &err);
    cr_assert_eq(dst, outq_mark_ptr(&q, &pool, &m) + 50, "contiguous with the event");
    fill_pat(dst, 150, 30);
    outq_advance(&q, &pool, 30);
    cr_assert_eq(outq_pending(&q), 180);
    cr_assert_eq(outq_committed(&q), 100);
    cr_assert_eq(bufpool_used(&pool), 1);
    outq_commit(&q);
    cr_assert_eq(drain_check(&q, 0, SIZE_MAX), 180);
    cr_assert_eq(bufpool_used(&pool), 0);
}

/* Event at the end of a slab that outgrows it: the bytes move, identical,
 * to the start of a fresh slab, and the stream order is unchanged.
 * <sent_before> bytes before the event are sent while it is assembled. */
static void move_case(size_t before, size_t ev1, size_t ev2, size_t sent_before)
{
    pool_init(SLAB, 4);
    struct outq q;
    outq_init(&q);
    cr_assert_eq(write_pat(&q, before), 0);
    outq_commit(&q);
    struct outq_mark m;
    cr_assert_eq(outq_mark(&q, &pool, &m), 0);
    uint32_t first_slab = m.slab;
    int err = 0;
    char *dst = outq_extend_contig(&q, &pool, &m, ev1, &err);
    cr_assert_not_null(dst);
    fill_pat(dst, before, ev1);
    outq_advance(&q, &pool, ev1);
    if (sent_before)
        cr_assert_eq(send_check(&q, 0, 1000, sent_before), sent_before);
    char *saved = malloc(ev1);
    memcpy(saved, outq_mark_ptr(&q, &pool, &m), ev1);
    dst = outq_extend_contig(&q, &pool, &m, ev2, &err);
    cr_assert_not_null(dst, "err %d", err);
    cr_assert_neq(m.slab, first_slab, "case %zu/%zu/%zu: event moved to a new slab", before, ev1,
                  ev2);
    cr_assert_eq(m.off, 0, "to the start of that slab");
    cr_assert_eq(outq_since(&q, &pool, &m), ev1);
    cr_assert_eq(memcmp(outq_mark_ptr(&q, &pool, &m), saved, ev1), 0, "moved bytes identical");
    cr_assert_eq(dst, outq_mark_ptr(&q, &pool, &m) + ev1);
    fill_pat(dst, before + ev1, ev2);
    outq_advance(&q, &pool, ev2);
    cr_assert_eq(outq_since(&q, &pool, &m), ev1 + ev2);
    cr_assert_eq(outq_pending(&q), before + ev1 + ev2 - sent_before);
    cr_assert_eq(outq_committed(&q), before - sent_before);
    /* slabs with unsent bytes before the event, plus the event's own */
    size_t held = before > sent_before ? (before + SLAB - 1) / SLAB - sent_before / SLAB : 0;
    cr_assert_eq(bufpool_used(&pool), held + 1,
                 "the old slab is kept only while it has bytes to send");
    outq_commit(&q);
    cr_assert_eq(drain_check(&q, sent_before, 1500), before + ev1 + ev2 - sent_before);
    cr_assert_eq(bufpool_used(&pool), 0);
    free(saved);
    pool_fini();
}

Test(outq, extend_contig_moves_event)
{
    move_case(4000, 50, 100, 0);
    move_case(4000, 96, 1, 0);      /* exactly full, then one more byte */
    move_case(10, 3000, 1096, 0);   /* moved event fills the new slab exactly */
    move_case(4000, 50, 100, 4000); /* everything before the event already sent */
    move_case(4000, 50, 100, 3999);
    move_case(SLAB + 1000, 2000, 1500, 0);
}

Test(outq, extend_contig_e2big)
{
    pool_init(SLAB, 4);
    struct outq q;
    outq_init(&q);
    struct outq_mark m;
    cr_assert_eq(outq_mark(&q, &pool, &m), 0);
    int err = 0;
    cr_assert_null(outq_extend_contig(&q, &pool, &m, SLAB + 1, &err));
    cr_assert_eq(err, -E2BIG);
    cr_assert_eq(outq_pending(&q), 0);
    err = 0;
    char *dst = outq_extend_contig(&q, &pool, &m, SLAB, &err);
    cr_assert_not_null(dst, "a whole slab fits");
    fill_pat(dst, 0, SLAB);
    outq_advance(&q, &pool, SLAB);
    cr_assert_null(outq_extend_contig(&q, &pool, &m, 1, &err));
    cr_assert_eq(err, -E2BIG);
    cr_assert_eq(outq_since(&q, &pool, &m), SLAB);
    cr_assert_eq(bufpool_used(&pool), 1, "E2BIG takes no slab");
    outq_commit(&q);
    cr_assert_eq(drain_check(&q, 0, SIZE_MAX), SLAB);

    /* with bytes before the mark: since + n over a slab */
    cr_assert_eq(write_pat(&q, 1000), 0);
    outq_commit(&q);
    cr_assert_eq(outq_mark(&q, &pool, &m), 0);
    dst = outq_extend_contig(&q, &pool, &m, 3000, &err);
    cr_assert_not_null(dst);
    fill_pat(dst, q.written, 3000);
    outq_advance(&q, &pool, 3000);
    err = 0;
    cr_assert_null(outq_extend_contig(&q, &pool, &m, SLAB - 3000 + 1, &err));
    cr_assert_eq(err, -E2BIG);
    cr_assert_eq(outq_since(&q, &pool, &m), 3000, "unchanged by E2BIG");
    cr_assert_eq(bufpool_used(&pool), 1);
    outq_commit(&q);
    cr_assert_eq(drain_check(&q, SLAB, SIZE_MAX), 4000);
    cr_assert_eq(bufpool_used(&pool), 0);
}

Test(outq, enobufs_leaves_queue_unchanged)
{
    pool_init(SLAB, 2);
    struct outq q;
    outq_init(&q);
    cr_assert_eq(write_pat(&q, 2 * SLAB - 10), 0);
    outq_commit(&q);
    cr_assert_eq(write_pat(&q, 11), -ENOBUFS, "needs a third slab");
    cr_assert_eq(write_pat(&q, 5 * SLAB), -ENOBUFS);
    cr_assert_eq(outq_pending(&q), 2 * SLAB - 10);
    cr_assert_eq(bufpool_used(&pool), 2);
    cr_assert_eq(write_pat(&q, 10), 0, "exactly the room left");
    struct outq_mark m;
    cr_assert_eq(outq_mark(&q, &pool, &m), -ENOBUFS, "tail full, pool empty");
    cr_assert_eq(outq_pending(&q), 2 * SLAB);
    outq_commit(&q);
    cr_assert_eq(drain_check(&q, 0, SIZE_MAX), 2 * SLAB);
    cr_assert_eq(bufpool_used(&pool), 0);

    /* a multi-slab write that would need one slab more than is free: no part
     * of it goes in */
    cr_assert_eq(write_pat(&q, 100), 0);
    cr_assert_eq(write_pat(&q, 2 * SLAB), -ENOBUFS);
    cr_assert_eq(outq_pending(&q), 100);
    cr_assert_eq(bufpool_used(&pool), 1);
    outq_commit(&q);
    cr_assert_eq(drain_check(&q, 2 * SLAB, SIZE_MAX), 100);
}

Test(outq, extend_contig_enobufs_unchanged)
{
    pool_init(SLAB, 1);
    struct outq q;
    outq_init(&q);
    cr_assert_eq(write_pat(&q, 4000), 0);
    outq_commit(&q);
    struct outq_mark m;
    cr_assert_eq(outq_mark(&q, &pool, &m), 0);
    int err = 0;
    char *dst = outq_extend_contig(&q, &pool, &m, 60, &err);
    fill_pat(dst, 4000, 60);
    outq_advance(&q, &pool, 60);
    struct outq_mark before = m;
    cr_assert_null(outq_extend_contig(&q, &pool, &m, 100, &err));
    cr_assert_eq(err, -ENOBUFS);
    cr_assert_eq(m.slab, before.slab);
    cr_assert_eq(m.off, before.off);
    cr_assert_eq(outq_since(&q, &pool, &m), 60);
    cr_assert_eq(outq_pending(&q), 4060);
    outq_commit(&q);
    cr_assert_eq(drain_check(&q, 0, SIZE_MAX), 4060);
    cr_assert_eq(bufpool_used(&pool), 0);
}

Test(outq, truncate)
{
    pool_init(SLAB, 8);
    struct outq q;
    outq_init(&q);
    cr_assert_eq(write_pat(&q, 4000), 0);
    outq_commit(&q);
    struct outq_mark m;
    cr_assert_eq(outq_mark(&q, &pool, &m), 0);
    cr_assert_eq(outq_write(&q, &pool, "dropped!", 8), 0);
    cr_assert_eq(outq_since(&q, &pool, &m), 8);
    outq_truncate(&q, &pool, &m);
    cr_assert_eq(outq_pending(&q), 4000);
    cr_assert_eq(outq_committed(&q), 4000);
    outq_consume(&q, &pool, 1000);
    /* across slabs */
    cr_assert_eq(outq_mark(&q, &pool, &m), 0);
    char junk[3 * SLAB];
    memset(junk, 'x', sizeof junk);
    cr_assert_eq(outq_write(&q, &pool, junk, sizeof junk), 0);
    cr_assert_eq(outq_since(&q, &pool, &m), sizeof junk);
    cr_assert_eq(bufpool_used(&pool), 4);
    outq_truncate(&q, &pool, &m);
    cr_assert_eq(bufpool_used(&pool), 1, "slabs after the mark go back");
    cr_assert_eq(q.nslabs, 1);
    cr_assert_eq(outq_pending(&q), 3000);
    cr_assert_eq(write_pat(&q, 5000), 0);
    outq_commit(&q);
    cr_assert_eq(drain_check(&q, 1000, 3333), 8000);
    cr_assert_eq(bufpool_used(&pool), 0);

    /* a mark at the start of a fresh slab, everything before it sent */
    cr_assert_eq(outq_mark(&q, &pool, &m), 0);
    cr_assert_eq(outq_write(&q, &pool, junk, 2 * SLAB + 1), 0);
    outq_truncate(&q, &pool, &m);
    cr_assert_eq(outq_pending(&q), 0);
    cr_assert_eq(bufpool_used(&pool), 0, "idle queue holds no slab");

    /* a mark at the start of a fresh slab behind a full unsent one */
    cr_assert_eq(write_pat(&q, SLAB), 0);
    outq_commit(&q);
    cr_assert_eq(outq_mark(&q, &pool, &m), 0);
    cr_assert_eq(m.off, 0);
    cr_assert_eq(outq_write(&q, &pool, junk, 10), 0);
    outq_truncate(&q, &pool, &m);
    cr_assert_eq(outq_pending(&q), SLAB);
    cr_assert_eq(drain_check(&q, 9000, 1000), SLAB);
    cr_assert_eq(bufpool_used(&pool), 0, "idle queue holds no slab");
}

Test(outq, truncate_after_move)
{
    pool_init(SLAB, 4);
    struct outq q;
    outq_init(&q);
    cr_assert_eq(write_pat(&q, 4000), 0);
    outq_commit(&q);
    struct outq_mark m;
    cr_assert_eq(outq_mark(&q, &pool, &m), 0);
    int err;
    char *dst = outq_extend_contig(&q, &pool, &m, 90, &err);
    memset(dst, 'e', 90);
    outq_advance(&q, &pool, 90);
    dst = outq_extend_contig(&q, &pool, &m, 200, &err);
    cr_assert_not_null(dst);
    memset(dst, 'f', 200);
    outq_advance(&q, &pool, 200);
    cr_assert_eq(bufpool_used(&pool), 2);
    outq_truncate(&q, &pool, &m);
    cr_assert_eq(outq_pending(&q), 4000);
    cr_assert_eq(drain_check(&q, 0, SIZE_MAX), 4000);
    cr_assert_eq(bufpool_used(&pool), 0, "moved-to slab released too");
}

Test(outq, reset_releases_everything)
{
    pool_init(SLAB, 8);
    struct outq q;
    outq_init(&q);
    cr_assert_eq(write_pat(&q, 3 * SLAB + 5), 0);
    outq_commit(&q);
    outq_consume(&q, &pool, 10);
    cr_assert_eq(write_pat(&q, 100), 0);
    outq_reset(&q, &pool);
    cr_assert_eq(bufpool_used(&pool), 0);
    cr_assert_eq(outq_pending(&q), 0);
    cr_assert_eq(q.head, SLAB_NONE);
}

/* The mark's lifetime is not documented as ending at a consume: the event
 * that follows it should still land in the stream. */
Test(outq, mark_survives_consume_of_earlier_bytes)
{
    pool_init(SLAB, 4);
    struct outq q;
    outq_init(&q);
    cr_assert_eq(write_pat(&q, 100), 0);
    outq_commit(&q);
    struct outq_mark m;
    cr_assert_eq(outq_mark(&q, &pool, &m), 0);
    outq_consume(&q, &pool, 100); /* the send of earlier bytes completes */
    int err = 0;
    char *dst = outq_extend_contig(&q, &pool, &m, 10, &err);
    cr_assert_not_null(dst);
    fill_pat(dst, 100, 10);
    outq_advance(&q, &pool, 10);
    cr_assert_eq(outq_pending(&q), 10);
    outq_commit(&q);
    cr_assert_eq(drain_check(&q, 100, SIZE_MAX), 10);
    cr_assert_eq(bufpool_used(&pool), 0);
}

Test(outq, zero_copy_reference_outlives_queue)
{
    pool_init(SLAB, 4);
    struct outq q;
    outq_init(&q);
    cr_assert_eq(write_pat(&q, SLAB + 100), 0);
    outq_commit(&q);
    const char *ptr;
    uint32_t slab;
    size_t n = outq_span(&q, &pool, &ptr, &slab);
    cr_assert_eq(n, SLAB);
    pool.meta[slab].refs++; /* SEND_ZC submitted */
    outq_consume(&q, &pool, n);
    cr_assert_eq(q.nslabs, 1, "the queue let go of the sent slab");
    cr_assert_eq(bufpool_used(&pool), 2, "but it stays out of the pool");
    /* the freed-up slab is not handed to new writes while referenced */
    cr_assert_eq(write_pat(&q, 2 * SLAB), 0);
    cr_assert_eq(bufpool_used(&pool), 4);
    for (uint64_t i = 0; i < SLAB; i++)
        CHECK((uint8_t)ptr[i] == pat(i), "in-flight byte %llu overwritten", (unsigned long long)i);
    bufpool_unref(&pool, slab); /* notification */
    cr_assert_eq(bufpool_used(&pool), 3);
    outq_commit(&q);
    cr_assert_eq(drain_check(&q, SLAB, SIZE_MAX), 2 * SLAB + 100);
    cr_assert_eq(bufpool_used(&pool), 0);

    /* the notification comes while the queue still holds the slab */
    outq_init(&q); /* idle: holds nothing */
    cr_assert_eq(write_pat(&q, 1000), 0);
    outq_commit(&q);
    n = outq_span(&q, &pool, &ptr, &slab);
    cr_assert_eq(n, 1000);
    pool.meta[slab].refs++;
    outq_consume(&q, &pool, 400); /* partial send */
    bufpool_unref(&pool, slab);
    cr_assert_eq(bufpool_used(&pool), 1, "still the queue's");
    cr_assert_eq(drain_check(&q, 400, SIZE_MAX), 600);
    cr_assert_eq(bufpool_used(&pool), 0);
}

/* ---- randomized model-based test ---------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static size_t rnd_below(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

/* What must come out: model[0..mlen), of which [0, msent) already has. */
struct model {
    uint8_t *b;
    size_t len, cap;
    size_t committed, sent;
    uint8_t next; /* byte generator */
};

static void model_fill(struct model *md, char *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)(md->next = (uint8_t)(md->next * 167u + 13u + (uint8_t)rnd_below(3)));
}

static void model_add(struct model *md, const char *src, size_t n)
{
    if (md->len + n > md->cap) {
        while (md->len + n > md->cap)
            md->cap = md->cap ? md->cap * 2 : 65536;
        md->b = realloc(md->b, md->cap);
        cr_assert_not_null(md->b);
    }
    memcpy(md->b + md->len, src, n);
    md->len += n;
}

struct zc_ref {
    uint32_t slab;
    const char *ptr;
    size_t len;
    uint8_t copy[SLAB];
};

static void model_check(const struct outq *q, const struct model *md)
{
    CHECK(outq_pending(q) == md->len - md->sent, "pending %llu, model %zu",
          (unsigned long long)outq_pending(q), md->len - md->sent);
    CHECK(outq_committed(q) == md->committed - md->sent, "committed %llu, model %zu",
          (unsigned long long)outq_committed(q), md->committed - md->sent);
}

static void run_model(uint64_t seed, int ops)
{
    pool_init(SLAB, 8);
    rng_state = seed;
    struct outq q;
    outq_init(&q);
    struct model md = {0};
    struct zc_ref *refs = calloc(8, sizeof *refs);
    size_t nrefs = 0;
    enum { EV_NONE, EV_CONTIG, EV_WRITE } ev = EV_NONE;
    struct outq_mark m = {0};
    size_t ev_start = 0;
    char tmp[3 * SLAB + 100];
    size_t events = 0, moves = 0, e2big = 0, enobufs = 0;

    for (int op = 0; op < ops; op++) {
        unsigned r = (unsigned)rnd_below(100);
        if (r < 22 && ev == EV_NONE) { /* plain write */
            size_t n = rnd_below(4) ? rnd_below(600) : rnd_below(sizeof tmp);
            model_fill(&md, tmp, n);
            uint32_t nfree = pool.nfree;
            int rc = outq_write(&q, &pool, tmp, n);
            if (rc) {
                CHECK(rc == -ENOBUFS, "write rc %d", rc);
                CHECK(n > (size_t)nfree * SLAB, "ENOBUFS with %u free slabs for %zu bytes", nfree,
                      n);
                CHECK(pool.nfree == nfree, "a failed write took slabs");
                enobufs++;
            } else {
                model_add(&md, tmp, n);
            }
            if (rnd_below(2))
                md.committed = md.len, outq_commit(&q);
        } else if (r < 32 && ev == EV_NONE) { /* start an event */
            size_t n = 1 + rnd_below(80);
            model_fill(&md, tmp, n);
            int rc = outq_mark(&q, &pool, &m);
            if (rc) {
                CHECK(rc == -ENOBUFS && pool.nfree == 0, "mark rc %d", rc);
                enobufs++;
                continue;
            }
            ev_start = md.len;
            int err = 0;
            char *dst = outq_extend_contig(&q, &pool, &m, n, &err);
            if (!dst) {
                CHECK(err == -ENOBUFS && pool.nfree == 0, "first extend err %d", err);
                outq_truncate(&q, &pool, &m);
                enobufs++;
                continue;
            }
            memcpy(dst, tmp, n);
            outq_advance(&q, &pool, n);
            model_add(&md, tmp, n);
            ev = rnd_below(3) ? EV_CONTIG : EV_WRITE;
            events++;
        } else if (r < 55 && ev == EV_CONTIG) { /* grow a contiguous event */
            size_t since = md.len - ev_start;
            size_t n = rnd_below(10) ? rnd_below(400) : rnd_below(2 * SLAB);
            model_fill(&md, tmp, n);
            CHECK(outq_since(&q, &pool, &m) == since, "since %u, model %zu",
                  outq_since(&q, &pool, &m), since);
            int err = 0;
            uint32_t old_slab = m.slab;
            char *dst = outq_extend_contig(&q, &pool, &m, n, &err);
            if (since + n > SLAB) {
                CHECK(!dst && err == -E2BIG, "%zu+%zu bytes: err %d", since, n, err);
                /* what the relay does: copy out, truncate, write elsewhere */
                char *big = malloc(since + n);
                memcpy(big, outq_mark_ptr(&q, &pool, &m), since);
                CHECK(memcmp(big, md.b + ev_start, since) == 0, "event not contiguous");
                memcpy(big + since, tmp, n);
                outq_truncate(&q, &pool, &m);
                md.len = ev_start;
                model_check(&q, &md);
                int rc = outq_write(&q, &pool, big, since + n);
                if (rc == 0)
                    model_add(&md, big, since + n);
                free(big);
                md.committed = md.len;
                outq_commit(&q);
                ev = EV_NONE;
                e2big++;
            } else if (!dst) {
                CHECK(err == -ENOBUFS && pool.nfree == 0, "extend err %d", err);
                enobufs++;
            } else {
                memcpy(dst, tmp, n);
                outq_advance(&q, &pool, n);
                model_add(&md, tmp, n);
                CHECK(memcmp(outq_mark_ptr(&q, &pool, &m), md.b + ev_start, since + n) == 0,
                      "event bytes differ after extend");
                moves += m.slab != old_slab;
            }
        } else if (r < 62 && ev == EV_WRITE) { /* grow an event with plain writes */
            size_t n = rnd_below(2 * SLAB);
            model_fill(&md, tmp, n);
            int rc = outq_write(&q, &pool, tmp, n);
            if (rc == 0)
                model_add(&md, tmp, n);
            else
                CHECK(rc == -ENOBUFS, "write rc %d", rc);
            CHECK(outq_since(&q, &pool, &m) == md.len - ev_start, "since %u, model %zu",
                  outq_since(&q, &pool, &m), md.len - ev_start);
        } else if (r < 70 && ev != EV_NONE) { /* end the event */
            if (rnd_below(4)) {
                md.committed = md.len;
                outq_commit(&q);
            } else {
                outq_truncate(&q, &pool, &m);
                md.len = ev_start;
            }
            ev = EV_NONE;
        } else if (r < 93) { /* the sender */
            const char *ptr = NULL;
            uint32_t slab = SLAB_NONE;
            size_t n = outq_span(&q, &pool, &ptr, &slab);
            size_t avail = md.committed - md.sent;
            if (!n) {
                CHECK(avail == 0, "empty span with %zu committed", avail);
                continue;
            }
            CHECK(n <= avail, "span %zu past commit %zu", n, avail);
            CHECK(ptr >= bufpool_ptr(&pool, slab) && ptr + n <= bufpool_ptr(&pool, slab) + SLAB,
                  "span outside its slab");
            CHECK(memcmp(ptr, md.b + md.sent, n) == 0, "sent bytes differ at %zu", md.sent);
            size_t k = rnd_below(3) ? n : 1 + rnd_below(n);
            if (nrefs < 8 && rnd_below(4) == 0) { /* SEND_ZC */
                struct zc_ref *z = &refs[nrefs++];
                z->slab = slab;
                z->ptr = ptr;
                z->len = k;
                memcpy(z->copy, ptr, k);
                pool.meta[slab].refs++;
            }
            outq_consume(&q, &pool, k);
            md.sent += k;
        } else if (nrefs) { /* a zero-copy notification */
            size_t i = rnd_below(nrefs);
            struct zc_ref *z = &refs[i];
            CHECK(memcmp(z->ptr, z->copy, z->len) == 0, "bytes of an in-flight send changed");
            bufpool_unref(&pool, z->slab);
            memmove(z, z + 1, (nrefs - i - 1) * sizeof *z);
            nrefs--;
        }
        model_check(&q, &md);
        if (md.len == md.sent && ev == EV_NONE)
            CHECK(q.nslabs == 0, "idle queue holds %u slabs", q.nslabs);
        CHECK(bufpool_used(&pool) >= q.nslabs, "used %u < queue %u", bufpool_used(&pool), q.nslabs);
    }
    md.committed = md.len;
    outq_commit(&q);
    for (size_t i = 0; i < nrefs; i++) {
        CHECK(memcmp(refs[i].ptr, refs[i].copy, refs[i].len) == 0, "in-flight bytes changed");
        bufpool_unref(&pool, refs[i].slab);
    }
    for (;;) {
        const char *ptr;
        uint32_t slab;
        size_t n = outq_span(&q, &pool, &ptr, &slab);
        if (!n)
            break;
        CHECK(memcmp(ptr, md.b + md.sent, n) == 0, "sent bytes differ at %zu", md.sent);
        outq_consume(&q, &pool, n);
        md.sent += n;
    }
    cr_assert_eq(md.sent, md.len, "every byte came out");
    cr_assert_eq(outq_pending(&q), 0);
    cr_assert_eq(bufpool_used(&pool), 0, "no slab leaked");
    cr_assert_gt(events, 100);
    cr_assert_gt(moves, 20, "events moved to a new slab: %zu", moves);
    cr_assert_gt(e2big, 0);
    cr_assert_gt(enobufs, 0, "exhaustion paths ran");
    free(md.b);
    free(refs);
    pool_fini();
}

Test(outq, randomized_against_model)
{
    static const uint64_t seeds[] = {1, 0x1234567887654321ull, 42, 0xdeadbeefcafef00dull};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        run_model(seeds[i], 20000);
}
