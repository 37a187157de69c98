/* json_scan: members found by raw key, values skipped with full syntax
 * checks, and every malformed object refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "dataplane/json_scan.h"

static struct js_span S(const char *s) {
    return (struct js_span){s, s + strlen(s)};
}

static bool
span_is(struct js_span v, const char *want)
{
    return (size_t)(v.end - v.p) == strlen(want) && memcmp(v.p, want, strlen(want)) == 0;
}

Test(json_scan, finds_members_at_the_top_level_only)
{
    const char *o = "{\"a\":{\"b\":1,\"done\":false}, \"done\" : true ,\"s\":\"x\\\"y\"}";
    struct js_span v;
    cr_assert_eq(js_get(S(o), "done", &v), 0);
    cr_assert(span_is(v, "true"));
    cr_assert(js_is_true(v));
    cr_assert_eq(js_get(S(o), "a", &v), 0);
    cr_assert(span_is(v, "{\"b\":1,\"done\":false}"));
    struct js_span in;
    cr_assert_eq(js_get(S(o), "s", &v), 0);
    cr_assert(js_str(v, &in));
    cr_assert(span_is(in, "x\\\"y")); /* escapes kept */
    cr_assert_eq(js_get(S(o), "b", &v), -ENOENT);
    cr_assert_eq(js_get(S("{}"), "a", &v), -ENOENT);
}

Test(json_scan, numbers_and_literals)
{
    struct js_span v;
    uint64_t u;
    cr_assert_eq(js_get(S("{\"n\":12345}"), "n", &v), 0);
    cr_assert(js_u64(v, &u));
    cr_assert_eq(u, 12345);
    cr_assert_eq(js_get(S("{\"n\":99999999999999999999999}"), "n", &v), 0);
    cr_assert(js_u64(v, &u));
    cr_assert_eq(u, UINT64_MAX);
    cr_assert_eq(js_get(S("{\"n\":-1.5e3}"), "n", &v), 0);
    cr_assert_not(js_u64(v, &u));
    cr_assert(js_valid(S("[1, -0, 0.5, 1E+2, true, false, null, \"\\u00e9\"]").p,
                       S("[1, -0, 0.5, 1E+2, true, false, null, \"\\u00e9\"]").end));
    cr_assert(js_empty(S("[ ]")));
    cr_assert(js_empty(S("{}")));
    cr_assert_not(js_empty(S("[0]")));
}

Test(json_scan, refuses_malformed_input)
{
    static const char *const bad[] = {
        "{",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":tru}",
        "{\"a\":\"\x01\"}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12\"}",
        "{a:1}",
        "{\"a\":[1,]}",
        "{\"a\":[1 2]}",
        "{\"a\":-}",
        "[1",
        "{\"a\":1 \"b\":2}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct js_span v;
        cr_assert_not(js_valid(bad[i], bad[i] + strlen(bad[i])), "%s", bad[i]);
        cr_assert_eq(js_get(S(bad[i]), "zz", &v), bad[i][0] == '[' ? -EINVAL : -EINVAL, "%s",
                     bad[i]);
    }
}

Test(json_scan, depth_is_bounded)
{
    char deep[2 * JS_MAX_DEPTH + 8] = {0};
    size_t n = 0;
    for (int i = 0; i < JS_MAX_DEPTH + 2; i++)
        deep[n++] = '[';
    for (int i = 0; i < JS_MAX_DEPTH + 2; i++)
        deep[n++] = ']';
    cr_assert_not(js_valid(deep, deep + n));
    cr_assert(js_valid(deep + 4, deep + n - 4));
}
