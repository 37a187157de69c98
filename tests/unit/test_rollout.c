/*
 * Unit tests for shared/rollout (feature names, percentages, buckets) and
 * controlplane/rollout_state (the state file and the audit log).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "controlplane/rollout_state.h"
#include "shared/rollout.h"

Test(rollout, names_round_trip)
{
    static const char *const want[FEAT_COUNT] = {
        "adaptive_governor", "http2_transport", "ttft_pipeline", "qos_monitoring", "stream_resume"};
    for (unsigned i = 0; i < FEAT_COUNT; i++) {
        cr_assert_str_eq(rollout_name((enum rollout_feature)i), want[i]);
        enum rollout_feature f;
        cr_assert_eq(rollout_parse(want[i], &f), 0);
        cr_assert_eq(f, (enum rollout_feature)i);
    }
    enum rollout_feature f = FEAT_STREAM_RESUME;
    cr_assert_eq(rollout_parse("Adaptive_governor", &f), -ENOENT);
    cr_assert_eq(rollout_parse("", &f), -ENOENT);
    cr_assert_eq(f, FEAT_STREAM_RESUME, "untouched on error");
    cr_assert_null(rollout_name(FEAT_COUNT));
}

Test(rollout, percentages)
{
    unsigned v = 77;
    cr_assert_eq(rollout_parse_percent("0", &v), 0);
    cr_assert_eq(v, 0);
    cr_assert_eq(rollout_parse_percent("100", &v), 0);
    cr_assert_eq(v, 100);
    cr_assert_eq(rollout_parse_percent("7", &v), 0);
    cr_assert_eq(v, 7);
    static const char *const bad[] = {"", "-1", "+5", "5.5", "abc", "10%", " 5", "5 "};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(rollout_parse_percent(bad[i], &v), -EINVAL, "%s", bad[i]);
    cr_assert_eq(rollout_parse_percent("101", &v), -ERANGE);
    cr_assert_eq(rollout_parse_percent("1000", &v), -ERANGE);
    cr_assert_eq(rollout_parse_percent("99999999999", &v), -ERANGE);
    cr_assert_eq(v, 7, "untouched on error");
}

Test(rollout, buckets_are_fixed_spread_and_independent)
{
    /* Fixed values: the integration tests (and any other node) compute
     * the same buckets; a change here changes every user's rollout. */
    cr_assert_eq(rollout_bucket(FEAT_ADAPTIVE_GOVERNOR, "user-0", 6), 52);
    cr_assert_eq(rollout_bucket(FEAT_ADAPTIVE_GOVERNOR, "user-1", 6), 3);
    cr_assert_eq(rollout_bucket(FEAT_STREAM_RESUME, "user-0", 6), 93);
    cr_assert_eq(rollout_bucket(FEAT_HTTP2_TRANSPORT, "default:abc", 11), 82);
    cr_assert_eq(rollout_bucket(FEAT_QOS_MONITORING, "", 0), 96);
    unsigned hist[100] = {0};
    unsigned same = 0;
    char key[32];
    for (unsigned i = 0; i < 100000; i++) {
        int n = snprintf(key, sizeof key, "session-%u", i);
        unsigned a = rollout_bucket(FEAT_ADAPTIVE_GOVERNOR, key, (size_t)n);
        unsigned b = rollout_bucket(FEAT_STREAM_RESUME, key, (size_t)n);
        cr_assert_lt(a, 100);
        hist[a]++;
        same += a == b;
    }
    /* Each bucket near 1000 (binomial sd ~31): within 5 sd. */
    for (unsigned i = 0; i < 100; i++)
        cr_assert(hist[i] > 840 && hist[i] < 1160, "bucket %u: %u", i, hist[i]);
    /* Features are independent: about 1 % of keys share a bucket. */
    cr_assert(same > 800 && same < 1200, "%u", same);
}

Test(rollout, raising_a_percentage_only_adds)
{
    char key[32];
    for (unsigned i = 0; i < 5000; i++) {
        int n = snprintf(key, sizeof key, "k%u", i);
        unsigned b = rollout_bucket(FEAT_QOS_MONITORING, key, (size_t)n);
        for (unsigned p = 0; p < 100; p++)
            cr_assert(!rollout_in(p, b) || rollout_in(p + 1, b));
        cr_assert(!rollout_in(0, b));
        cr_assert(rollout_in(100, b));
    }
}

static char *tmpdir(void)
{
    char *d = strdup("/tmp/sluice-rstate-XXXXXX");
    cr_assert_not_null(mkdtemp(d));
    return d;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_file(const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "r");
    cr_assert_not_null(f, "%s", p);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

Test(rollout_state, save_load_round_trip)
{
    char *d = tmpdir();
    char sub[512];
    snprintf(sub, sizeof sub, "%s/state", d);
    unsigned pct[FEAT_COUNT] = {50, 0, 100, 7, 33};
    cr_assert_eq(rstate_save(sub, pct), 0, "creates the directory");
    unsigned got[FEAT_COUNT] = {1, 1, 1, 1, 1};
    char why[256];
    cr_assert_eq(rstate_load(sub, got, why, sizeof why), 0);
    cr_assert_arr_eq(got, pct, sizeof pct);
    cr_assert_not_null(strstr(read_file(sub, "rollout.json"), "\"adaptive_governor\": 50"));
    struct stat st;
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s/rollout.json.tmp", sub);
    cr_assert_neq(stat(tmp, &st), 0, "no temporary file left");
    free(d);
}

Test(rollout_state, missing_and_damaged)
{
    char *d = tmpdir();
    unsigned pct[FEAT_COUNT] = {9, 9, 9, 9, 9};
    char why[256] = "";
    cr_assert_eq(rstate_load(d, pct, why, sizeof why), -ENOENT);
    static const char *const bad[] = {
        "{not json",
        "[]",
        "{\"version\":2,\"features\":{}}",
        "{\"version\":1}",
        "{\"version\":1,\"features\":{\"adaptive_governor\":101}}",
        "{\"version\":1,\"features\":{\"adaptive_governor\":\"50\"}}",
        "{\"version\":1,\"features\":{\"stream_resume\":-1}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_file(d, "rollout.json", bad[i]);
        why[0] = '\0';
        cr_assert_eq(rstate_load(d, pct, why, sizeof why), -EINVAL, "%s", bad[i]);
        cr_assert_neq(why[0], '\0');
        for (unsigned k = 0; k < FEAT_COUNT; k++)
            cr_assert_eq(pct[k], 9, "nothing applied from a damaged file");
    }
    /* unknown features (from a newer sluice) are ignored, known ones kept */
    write_file(d, "rollout.json",
               "{\"version\":1,\"features\":{\"warp_drive\":80,\"stream_resume\":12}}");
    cr_assert_eq(rstate_load(d, pct, why, sizeof why), 0);
    cr_assert_eq(pct[FEAT_STREAM_RESUME], 12);
    cr_assert_eq(pct[FEAT_ADAPTIVE_GOVERNOR], 9);
    free(d);
}

Test(rollout_state, audit_lines_append)
{
    char *d = tmpdir();
    cr_assert_eq(rstate_audit(d, "uid=0 pid=1 rollout set a 0 -> 5"), 0);
    cr_assert_eq(rstate_audit(d, "uid=0 pid=2 rollout set a 5 -> 0"), 0);
    const char *t = read_file(d, "audit.log");
    /* "YYYY-MM-DDTHH:MM:SSZ " then the text */
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ ";
    for (size_t i = 0; i < sizeof shape - 1; i++) {
        if (shape[i] == 'd')
            cr_assert(t[i] >= '0' && t[i] <= '9', "%s", t);
        else
            cr_assert_eq(t[i], shape[i], "%s", t);
    }
    size_t n = sizeof shape - 1;
    cr_assert(strncmp(t + n, "uid=0 pid=1 rollout set a 0 -> 5\n", 33) == 0, "%s", t);
    cr_assert_not_null(strstr(t, "Z uid=0 pid=2 rollout set a 5 -> 0\n"));
    const char *nl = strchr(t, '\n');
    cr_assert_not_null(strchr(nl + 1, '\n'));
    cr_assert_eq(strchr(strchr(nl + 1, '\n') + 1, '\n'), NULL, "exactly two lines");
    free(d);
}
