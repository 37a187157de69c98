/* event_log: records in a byte ring (wrapping, growing, evicting), found by
 * their number; and resume_id, the grammar of a resume request. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dataplane/event_log.h"
#include "dataplane/resume_id.h"

/* The record at <seq>, joined from its spans. */
static size_t rec(const struct elog *l, uint64_t seq, char *out, size_t cap)
{
    uint64_t pos;
    cr_assert_eq(elog_find(l, seq, &pos), 0, "record %llu", (unsigned long long)seq);
    const char *p1, *p2;
    size_t n1, n2;
    elog_read(l, pos, &p1, &n1, &p2, &n2);
    cr_assert_leq(n1 + n2, cap);
    memcpy(out, p1, n1);
    memcpy(out + n1, p2, n2);
    return n1 + n2;
}

static void push_str(struct elog *l, const char *s)
{
    cr_assert(elog_fits(l, strlen(s)));
    elog_push(l, s, strlen(s));
}

Test(event_log, numbers_records_from_the_first_seq)
{
    struct elog l;
    elog_init(&l, 1);
    cr_assert_not(elog_fits(&l, 1)); /* no memory until it grows */
    cr_assert_eq(elog_grow(&l, 64), 0);
    push_str(&l, "id: x:1\ndata: a\n\n");
    push_str(&l, "id: x:2\ndata: bb\n\n");
    cr_assert_eq(l.first_seq, 1);
    cr_assert_eq(l.next_seq, 3);
    char b[64];
    size_t n = rec(&l, 2, b, sizeof b);
    cr_assert_eq(n, 18);
    cr_assert_arr_eq(b, "id: x:2\ndata: bb\n\n", n);
    uint64_t pos;
    cr_assert_eq(elog_find(&l, 3, &pos), 0); /* "after the last": the tail */
    cr_assert_eq(pos, l.tail);
    cr_assert_eq(elog_find(&l, 4, &pos), -ENOENT);
    cr_assert_eq(elog_find(&l, 0, &pos), -ENOENT);
    elog_free(&l);
}

Test(event_log, wraps_evicts_and_grows_keeping_positions)
{
    struct elog l;
    elog_init(&l, 1);
    cr_assert_eq(elog_grow(&l, 40), 0);
    char s[32];
    uint64_t seq = 1;
    /* 13-byte records (4 + 9) in a 40-byte ring: evict to make room, so
     * records straddle the end of the buffer. */
    for (int i = 0; i < 20; i++) {
        snprintf(s, sizeof s, "event-%03d", i);
        while (!elog_fits(&l, 9))
            cr_assert(elog_evict(&l));
        elog_push(&l, s, 9);
        seq++;
        char b[32];
        size_t n = rec(&l, seq - 1, b, sizeof b);
        cr_assert_eq(n, 9);
        cr_assert_arr_eq(b, s, 9);
    }
    cr_assert_eq(l.next_seq, 21);
    cr_assert_eq(l.first_seq, 20 - 3 + 1); /* three records fit */
    uint64_t pos_before;
    cr_assert_eq(elog_find(&l, 19, &pos_before), 0);
    cr_assert_eq(elog_grow(&l, 1000), 0); /* moves the wrapped bytes */
    uint64_t pos_after;
    cr_assert_eq(elog_find(&l, 19, &pos_after), 0);
    cr_assert_eq(pos_before, pos_after);
    for (uint64_t k = l.first_seq; k < l.next_seq; k++) {
        char b[32];
        snprintf(s, sizeof s, "event-%03d", (int)k - 1);
        size_t n = rec(&l, k, b, sizeof b);
        cr_assert_arr_eq(b, s, n);
    }
    elog_free(&l);
}

Test(event_log, reset_skips_numbers)
{
    struct elog l;
    elog_init(&l, 1);
    cr_assert_eq(elog_grow(&l, 64), 0);
    push_str(&l, "a");
    push_str(&l, "b");
    elog_reset(&l, l.next_seq + 1); /* and one more lost */
    cr_assert_eq(elog_used(&l), 0);
    cr_assert_eq(l.first_seq, 4);
    uint64_t pos;
    cr_assert_eq(elog_find(&l, 2, &pos), -ENOENT);
    push_str(&l, "d");
    char b[8];
    cr_assert_eq(rec(&l, 4, b, sizeof b), 1);
    cr_assert_eq(b[0], 'd');
    cr_assert_not(elog_evict(&(struct elog){0}));
    elog_free(&l);
}

static int path(const char *p, char id[17])
{
    return resume_id_from_path(p, strlen(p), id);
}

Test(resume_id, stream_id_from_the_path)
{
    char id[17];
    cr_assert_eq(path("/v1/streams/00a1b2c30000002a", id), 0);
    cr_assert_str_eq(id, "00a1b2c30000002a");
    cr_assert_eq(path("/v1/streams/00a1b2c30000002a/", id), 0);
    cr_assert_eq(path("/v1/streams/00a1b2c30000002a?t=1", id), 0);
    const char *bad[] = {
        "/v1/streams/",
        "/v1/streams/00a1b2c30000002",   /* 15 */
        "/v1/streams/00a1b2c30000002a0", /* 17 */
        "/v1/streams/00A1B2C30000002A",  /* upper case is not what sluice writes */
        "/v1/streams/00a1b2c30000002g",
        "/v1/streams/00a1b2c30000002a//",
        "/v1/streams/00a1b2c30000002a/x",
        "/v1/stream/00a1b2c30000002a",
        "/v1/streams/00a1b2c3%30000002a",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(path(bad[i], id), -EINVAL, "%s", bad[i]);
}

static int lei(const char *v, uint64_t *seq)
{
    return resume_id_last_event(v, strlen(v), "00a1b2c30000002a", seq);
}

Test(resume_id, last_event_id_of_this_stream_only)
{
    uint64_t seq = 7;
    cr_assert_eq(lei("00a1b2c30000002a:0", &seq), 0);
    cr_assert_eq(seq, 0);
    cr_assert_eq(lei(" 00a1b2c30000002a:42\t", &seq), 0);
    cr_assert_eq(seq, 42);
    cr_assert_eq(lei("00a1b2c30000002a:18446744073709551614", &seq), 0);
    cr_assert_eq(seq, UINT64_MAX - 1);
    const char *bad[] = {
        "00a1b2c30000002b:1",
        "00a1b2c30000002a:",
        "00a1b2c30000002a",
        "00a1b2c30000002a-1",
        "00a1b2c30000002a:1a",
        "00a1b2c30000002a:-1",
        "00a1b2c30000002a: 1",
        "00a1b2c30000002a:18446744073709551615",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(lei(bad[i], &seq), -EINVAL, "'%s'", bad[i]);
}
