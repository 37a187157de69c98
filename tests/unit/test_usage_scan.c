/* usage_scan: the token count of a non-streamed completion, found in its
 * body however the body is cut. */
#include <criterion/criterion.h>
#include <string.h>

#include "dataplane/usage_scan.h"

static bool scan_cut(const char *body, size_t piece, uint32_t *n)
{
    struct usage_scan u;
    usage_scan_init(&u);
    size_t len = strlen(body);
    for (size_t at = 0; at < len; at += piece)
        usage_scan_feed(&u, body + at, len - at < piece ? len - at : piece);
    return usage_scan_result(&u, n);
}

/* Every way of cutting the body gives the same answer. */
static void expect(const char *body, bool found, uint32_t want)
{
    for (size_t piece = 1; piece <= strlen(body) + 1; piece++) {
        uint32_t n = 0;
        bool f = scan_cut(body, piece, &n);
        cr_assert_eq(f, found, "%s (pieces of %zu)", body, piece);
        if (found)
            cr_assert_eq(n, want, "%s (pieces of %zu): %u", body, piece, n);
    }
}

Test(usage_scan, openai_body)
{
    expect("{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":\"hi\"}}],"
           "\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":12,\"total_tokens\":19}}",
           true, 12);
    expect("{\"usage\": {\"completion_tokens\" :\r\n 305 }}", true, 305);
}

Test(usage_scan, nothing_to_find)
{
    expect("", false, 0);
    expect("{\"usage\":null}", false, 0);
    expect("{\"completion_tokens\":null}", false, 0);
    expect("{\"completion_tokens\":\"12\"}", false, 0);
    expect("{\"completion_tokens\":-3}", false, 0);
    expect("{\"completion_tokens\":1.5}", false, 0);
    expect("{\"completion_tokens\":2e3}", false, 0);
    expect("{\"completion_tokenz\":5}", false, 0);
    expect("{\"xcompletion_tokens\":5}", false, 0);
}

/* The key's text inside a string value (escaped quotes) is not the key. */
Test(usage_scan, inside_a_string_is_not_the_key)
{
    expect("{\"content\":\"say \\\"completion_tokens\\\": 99\"}", false, 0);
    expect("{\"content\":\"\\\"completion_tokens\\\":99\",\"usage\":{\"completion_tokens\":4}}",
           true, 4);
    /* an escaped backslash does not escape the quote after it */
    expect("{\"a\":\"\\\\\",\"completion_tokens\":8}", true, 8);
}

Test(usage_scan, last_one_wins_and_restarts)
{
    expect("{\"completion_tokens\":1,\"usage\":{\"completion_tokens\":2}}", true, 2);
    expect("{\"completion_tokens\":\"completion_tokens\":7}", true, 7);
    expect("\"\"completion_tokens\":3}", true, 3);
}

Test(usage_scan, saturates)
{
    expect("{\"completion_tokens\":99999999999999999999}", true, UINT32_MAX);
    expect("{\"completion_tokens\":4294967295}", true, 4294967295u);
}
