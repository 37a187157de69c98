/*
 * Unit tests for shared/sbuf: growth, the maximum, sticky errors, printf
 * with output longer than its internal buffer, and take.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/sbuf.h"

Test(sbuf, grows_and_stays_terminated)
{
    struct sbuf b;
    sbuf_init(&b, 1 << 20);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.err, 0);
    char ref[70000];
    size_t rl = 0;
    for (int i = 0; i < 10000; i++) {
        char piece[8];
        size_t n = (size_t)(i % 7) + 1;
        for (size_t k = 0; k < n; k++)
            piece[k] = (char)('a' + (i + (int)k) % 26);
        cr_assert_eq(sbuf_put(&b, piece, n), 0);
        memcpy(ref + rl, piece, n);
        rl += n;
        if (i % 997 == 0) {
            cr_assert_eq(b.len, rl);
            cr_assert_geq(b.cap, b.len + 1);
            cr_assert_eq(b.p[b.len], '\0');
        }
    }
    cr_assert_eq(b.len, rl);
    cr_assert_eq(memcmp(b.p, ref, rl), 0);
    cr_assert_eq(b.p[rl], '\0');
    cr_assert_eq(strlen(b.p), rl);
    sbuf_free(&b);
    cr_assert_null(b.p);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.max, 1 << 20, "max kept by free");
}

Test(sbuf, puts_and_empty_put)
{
    struct sbuf b;
    sbuf_init(&b, 64);
    cr_assert_eq(sbuf_puts(&b, ""), 0);
    cr_assert_not_null(b.p, "an empty append still gives a terminated string");
    cr_assert_str_eq(b.p, "");
    cr_assert_eq(sbuf_puts(&b, "abc"), 0);
    cr_assert_eq(sbuf_put(&b, "d\0e", 3), 0);
    cr_assert_eq(b.len, 6);
    cr_assert_eq(memcmp(b.p, "abcd\0e", 7), 0, "bytes, NUL included, then the terminator");
    sbuf_free(&b);
}

Test(sbuf, max_bounds_the_buffer)
{
    struct sbuf b;
    sbuf_init(&b, 16);
    cr_assert_eq(sbuf_put(&b, "0123456789", 10), 0);
    cr_assert_eq(sbuf_put(&b, "abcde", 5), 0);
    cr_assert_eq(b.len, 15);
    cr_assert_leq(b.cap, 16, "never more than max bytes, terminator included");
    cr_assert_eq(sbuf_put(&b, "X", 1), -E2BIG, "a 16th byte leaves no room for the NUL");
    cr_assert_eq(b.len, 15, "failed append changes nothing");
    cr_assert_str_eq(b.p, "0123456789abcde");
    sbuf_free(&b);

    sbuf_init(&b, 300);
    char big[400];
    memset(big, 'z', sizeof big);
    cr_assert_eq(sbuf_put(&b, big, 300), -E2BIG);
    cr_assert_null(b.p, "nothing allocated for a refused append");
    sbuf_free(&b);
    sbuf_init(&b, 300);
    cr_assert_eq(sbuf_put(&b, big, 299), 0);
    cr_assert_leq(b.cap, 300);
    cr_assert_eq(b.len, 299);
    sbuf_free(&b);
}

Test(sbuf, errors_are_sticky)
{
    struct sbuf b;
    sbuf_init(&b, 8);
    cr_assert_eq(sbuf_puts(&b, "abc"), 0);
    cr_assert_eq(sbuf_puts(&b, "defghij"), -E2BIG);
    cr_assert_eq(b.err, -E2BIG);
    cr_assert_eq(sbuf_puts(&b, "d"), -E2BIG, "fits, but an earlier append failed");
    cr_assert_eq(sbuf_put(&b, "", 0), -E2BIG);
    cr_assert_eq(sbuf_printf(&b, "%d", 1), -E2BIG);
    cr_assert_eq(b.len, 3);
    cr_assert_str_eq(b.p, "abc");
    sbuf_free(&b);
    cr_assert_eq(b.err, 0, "free starts over");
    cr_assert_eq(sbuf_puts(&b, "ok"), 0);
    cr_assert_str_eq(b.p, "ok");
    sbuf_free(&b);

    /* a printf that does not fit is sticky too */
    sbuf_init(&b, 8);
    cr_assert_eq(sbuf_printf(&b, "%s", "123456789"), -E2BIG);
    cr_assert_eq(sbuf_puts(&b, "a"), -E2BIG);
    cr_assert_eq(b.len, 0);
    sbuf_free(&b);
}

Test(sbuf, printf_short_and_long)
{
    struct sbuf b;
    sbuf_init(&b, 1 << 16);
    cr_assert_eq(sbuf_printf(&b, "%s=%d;", "x", 42), 0);
    cr_assert_str_eq(b.p, "x=42;");
    /* longer than any small internal buffer, several times over */
    char want[5000];
    size_t wl = 5;
    memcpy(want, "x=42;", 5);
    for (int len = 250; len <= 1200; len += 317) {
        char arg[1300];
        for (int i = 0; i < len; i++)
            arg[i] = (char)('A' + i % 26);
        arg[len] = '\0';
        cr_assert_eq(sbuf_printf(&b, "[%s|%05d]", arg, len), 0, "len %d", len);
        int n = snprintf(want + wl, sizeof want - wl, "[%s|%05d]", arg, len);
        wl += (size_t)n;
        cr_assert_eq(b.len, wl, "len %d", len);
        cr_assert_eq(b.p[b.len], '\0');
        cr_assert_eq(memcmp(b.p, want, wl), 0, "len %d", len);
    }
    /* exactly at the edges of 255/256 characters */
    for (int n = 250; n <= 260; n++) {
        struct sbuf c;
        sbuf_init(&c, 1024);
        cr_assert_eq(sbuf_printf(&c, "%*d", n, 7), 0);
        cr_assert_eq(c.len, (size_t)n);
        cr_assert_eq(strlen(c.p), (size_t)n);
        cr_assert_eq(c.p[n - 1], '7');
        cr_assert_eq(c.p[0], ' ');
        sbuf_free(&c);
    }
    sbuf_free(&b);
}

Test(sbuf, printf_long_output_at_max)
{
    struct sbuf b;
    sbuf_init(&b, 1001);
    cr_assert_eq(sbuf_printf(&b, "%1000d", 5), 0, "1000 bytes + NUL == max");
    cr_assert_eq(b.len, 1000);
    cr_assert_leq(b.cap, 1001);
    sbuf_free(&b);
    sbuf_init(&b, 1000);
    cr_assert_eq(sbuf_printf(&b, "%1000d", 5), -E2BIG);
    cr_assert_eq(b.len, 0);
    sbuf_free(&b);
}

Test(sbuf, take)
{
    struct sbuf b;
    sbuf_init(&b, 4096);
    cr_assert_eq(sbuf_printf(&b, "hello %s", "world"), 0);
    size_t len = 0, cap = 0;
    char *p = sbuf_take(&b, &len, &cap);
    cr_assert_not_null(p);
    cr_assert_str_eq(p, "hello world");
    cr_assert_eq(len, 11);
    cr_assert_geq(cap, 12);
    cr_assert_null(b.p, "the buffer now belongs to the caller");
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, 0);
    cr_assert_eq(b.max, 4096);
    /* b is reusable and independent of what was taken */
    cr_assert_eq(sbuf_puts(&b, "again"), 0);
    cr_assert_str_eq(b.p, "again");
    cr_assert_str_eq(p, "hello world");
    free(p);
    p = sbuf_take(&b, NULL, NULL);
    cr_assert_str_eq(p, "again");
    free(p);
    sbuf_free(&b);
}
