/* cors: origin, method and header matching, and the header lines. */
#include <criterion/criterion.h>
#include <string.h>

#include "dataplane/cors.h"

static struct config cfg;

static void setup(const char *origins, bool creds)
{
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.cors_origins, sizeof cfg.cors_origins, "%s", origins);
    snprintf(cfg.cors_methods, sizeof cfg.cors_methods, "GET, POST, OPTIONS");
    snprintf(cfg.cors_headers, sizeof cfg.cors_headers,
             "Authorization, Content-Type, X-Request-Id, X-Session-Id, Last-Event-ID");
    cfg.cors_max_age_ms = 600000;
    cfg.cors_credentials = creds;
}

static bool origin_ok(const char *o)
{
    return cors_origin_allowed(&cfg, o, strlen(o));
}

Test(cors, off_without_origins)
{
    setup("", false);
    cr_assert_not(cors_enabled(&cfg));
    cr_assert_not(origin_ok("https://app.example.com"));
}

Test(cors, exact_origins_from_a_list)
{
    setup(" https://app.example.com ,http://localhost:3000,, ", false);
    cr_assert(cors_enabled(&cfg));
    cr_assert(origin_ok("https://app.example.com"));
    cr_assert(origin_ok("http://localhost:3000"));
    cr_assert_not(origin_ok("https://app.example.com.evil"));
    cr_assert_not(origin_ok("https://APP.example.com")); /* byte for byte */
    cr_assert_not(origin_ok("http://localhost:3001"));
    cr_assert_not(origin_ok(""));
    /* never more than one origin, never something unsafe to echo */
    cr_assert_not(origin_ok("https://app.example.com, http://localhost:3000"));
    cr_assert_not(origin_ok("https://app.example.com\r\nX: y"));
    cr_assert_not(origin_ok("https://app.example.com "));
}

Test(cors, star_allows_any_single_origin)
{
    setup("*", false);
    cr_assert(origin_ok("https://anything.example"));
    cr_assert_not(origin_ok("a b"));
}

Test(cors, methods_and_headers)
{
    setup("*", false);
    cr_assert(cors_method_allowed(&cfg, "POST", 4));
    cr_assert(cors_method_allowed(&cfg, "post", 4));
    cr_assert_not(cors_method_allowed(&cfg, "DELETE", 6));
    const char *ok = "authorization, content-type,X-SESSION-ID";
    cr_assert(cors_headers_allowed(&cfg, ok, strlen(ok)));
    const char *safe = "accept, accept-language";
    cr_assert(cors_headers_allowed(&cfg, safe, strlen(safe)));
    const char *bad = "authorization, x-secret";
    cr_assert_not(cors_headers_allowed(&cfg, bad, strlen(bad)));
    cr_assert(cors_headers_allowed(&cfg, "", 0));
}

Test(cors, header_lines)
{
    char out[1024];
    setup("*", false);
    size_t n = cors_header_lines(&cfg, "https://a.example", 17, false, out, sizeof out);
    cr_assert_gt(n, 0);
    cr_assert(strstr(out, "Access-Control-Allow-Origin: *\r\n"));
    cr_assert(strstr(out, "Vary: Origin\r\n"));
    cr_assert(strstr(out, "Access-Control-Expose-Headers: X-Request-Id, Retry-After\r\n"));
    cr_assert_null(strstr(out, "Credentials"));
    /* with credentials the origin itself, never * */
    setup("*", true);
    n = cors_header_lines(&cfg, "https://a.example", 17, true, out, sizeof out);
    cr_assert(strstr(out, "Access-Control-Allow-Origin: https://a.example\r\n"));
    cr_assert(strstr(out, "Access-Control-Allow-Credentials: true\r\n"));
    cr_assert(strstr(out, "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"));
    cr_assert(strstr(out, "Access-Control-Max-Age: 600\r\n"));
    cr_assert_eq(n, strlen(out));
    /* too small a buffer: 0, never a cut line */
    cr_assert_eq(cors_header_lines(&cfg, "https://a.example", 17, true, out, 40), 0);
}
