/*
 * Unit tests for controlplane/governor, both control laws, against a small
 * deterministic plant: a GPU backend whose TTFT grows slowly with admitted
 * streams up to its decode capacity and steeply (queued prefill) beyond it,
 * seen two intervals late (first tokens arrive after the admission that
 * caused them).  Step response, steady state (with and without noise),
 * windup both ways, clamping on absurd inputs, empty intervals, the
 * app-limited decay and the growth gate, parameter checks and the algo names.
 *
 * Run with --verbose to see the measured settling times and spreads.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "controlplane/governor.h"

#define TARGET 550.0

/* ---- the plant ---------------------------------------------------------- */

struct plant {
    double base_ms; /* TTFT of an idle backend (prefill alone) */
    double cap;     /* decode slots; past this, prefill waits for a slot */
    double k;       /* how steeply TTFT climbs past cap */
    unsigned lag;   /* intervals from admission to the first token */
    double noise;   /* p90 multiplied by 1 +- noise (uniform), 0 for none */
    uint64_t rng;
    unsigned hist[16];
    unsigned t;
    /* what the last interval produced */
    unsigned admitted;
    double p90;
};

/* Monotone in <adm>: +50 % over base at cap, then +k * base per cap more. */
static double plant_ttft(const struct plant *pl, unsigned adm)
{
    double a = adm, c = pl->cap;
    double t = pl->base_ms * (1.0 + 0.5 * (a < c ? a : c) / c);
    if (a > c)
        t += pl->base_ms * pl->k * (a - c) / c;
    return t;
}

static void plant_init(struct plant *pl, double base_ms, double cap)
{
    memset(pl, 0, sizeof *pl);
    pl->base_ms = base_ms;
    pl->cap = cap;
    pl->k = 4.0;
    pl->lag = 2;
    pl->rng = 0x9e3779b97f4a7c15ull;
}

static double plant_uniform(struct plant *pl)
{
    pl->rng = pl->rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(pl->rng >> 11) / 9007199254740992.0;
}

/* One interval: <offered> streams want in, the governor's current limit
 * lets some through, and the sample it sees is built from what was
 * admitted <lag> intervals ago. */
static unsigned plant_step(struct plant *pl, struct governor *g, unsigned offered)
{
    unsigned lim = gov_limit(g);
    unsigned adm = offered < lim ? offered : lim;
    unsigned seen = pl->t >= pl->lag ? pl->hist[(pl->t - pl->lag) % 16] : 0;
    pl->hist[pl->t % 16] = adm;
    pl->t++;
    double p90 = plant_ttft(pl, seen);
    if (pl->noise > 0.0)
        p90 *= 1.0 + pl->noise * (2.0 * plant_uniform(pl) - 1.0);
    struct gov_sample s = {
        .n = adm ? (adm / 3 ? adm / 3 : 1) : 0,
        .ttft_p50_ms = 0.8 * p90,
        .ttft_p90_ms = p90,
        .ttft_p95_ms = 1.1 * p90,
        .inflight_peak = adm,
        .queued = offered - adm,
    };
    pl->admitted = adm;
    pl->p90 = p90;
    return gov_update(g, &s);
}

static void gov_setup(struct governor *g, enum gov_algo algo)
{
    struct gov_params p;
    gov_params_default(&p);
    p.algo = algo;
    char why[128];
    cr_assert_eq(gov_params_check(&p, why, sizeof why), 0, "%s", why);
    gov_init(g, &p);
}

static unsigned feed(struct governor *g, unsigned n, double p90, unsigned peak, unsigned queued)
{
    struct gov_sample s = {.n = n,
                           .ttft_p50_ms = p90,
                           .ttft_p90_ms = p90,
                           .ttft_p95_ms = p90,
                           .inflight_peak = peak,
                           .queued = queued};
    return gov_update(g, &s);
}

static void assert_sane(const struct governor *g)
{
    cr_assert(isfinite(g->limit), "limit %f", g->limit);
    cr_assert(isfinite(g->integral), "integral %f", g->integral);
    cr_assert(isfinite(g->dfilt), "dfilt %f", g->dfilt);
    cr_assert_geq(g->limit, (double)g->p.min_limit);
    cr_assert_leq(g->limit, (double)g->p.max_limit);
}

static const enum gov_algo algos[] = {GOV_GRADIENT, GOV_PID};

/* ---- step response ------------------------------------------------------ */

#define STEP_AT  50
#define STEP_END 300

/* Offered load 10 -> 200 against a backend of 40 slots: the limit must
 * climb until p90 sits in [0.9 target, target] (the hold band is 5 % and
 * one stream is 2.7 % of TTFT here) and stay there, never past max or
 * under min, and the transient overshoot of p90 stays under 10 %. */
static void step_response(enum gov_algo algo, unsigned settle_bound)
{
    struct governor g;
    struct plant pl;
    gov_setup(&g, algo);
    plant_init(&pl, 150.0, 40.0);
    double p90s[STEP_END];
    unsigned lims[STEP_END];
    double worst = 0.0;
    for (unsigned i = 0; i < STEP_END; i++) {
        lims[i] = plant_step(&pl, &g, i < STEP_AT ? 10 : 200);
        p90s[i] = pl.p90;
        assert_sane(&g);
        cr_assert(lims[i] >= 16 && lims[i] <= 80, "%s: limit %u at %u", gov_algo_name(algo),
                  lims[i], i);
        if (i >= STEP_AT && pl.p90 > worst)
            worst = pl.p90;
    }
    /* before the step: app-limited at 2 x 10, not grown to max */
    cr_assert_eq(lims[STEP_AT - 1], 20, "%s: limit %u at load 10", gov_algo_name(algo),
                 lims[STEP_AT - 1]);
    unsigned settled = STEP_END;
    for (unsigned i = STEP_END; i-- > STEP_AT;) {
        if (p90s[i] > TARGET || p90s[i] < 0.9 * TARGET)
            break;
        settled = i;
    }
    cr_log_info("step %s: settled %u intervals after the step, limit %u, p90 %.1f, worst p90 %.1f",
                gov_algo_name(algo), settled - STEP_AT, lims[STEP_END - 1], p90s[STEP_END - 1],
                worst);
    cr_assert_leq(settled - STEP_AT, settle_bound, "%s: settled after %u intervals",
                  gov_algo_name(algo), settled - STEP_AT);
    cr_assert_leq(worst, 1.1 * TARGET, "%s: p90 overshot to %.1f", gov_algo_name(algo), worst);
    /* the backend takes 61 streams at <= 550 ms: the limit must be near it */
    cr_assert(lims[STEP_END - 1] >= 58 && lims[STEP_END - 1] <= 61, "%s: settled at %u",
              gov_algo_name(algo), lims[STEP_END - 1]);
}

Test(governor, step_response_gradient)
{
    step_response(GOV_GRADIENT, 45);
}

Test(governor, step_response_pid)
{
    step_response(GOV_PID, 55);
}

/* ---- steady state ------------------------------------------------------- */

/* Peak-to-peak of the limit over the last 50 of 400 intervals at constant
 * load 200: 0 without noise (the hold band absorbs the integer quantum),
 * and bounded with +-10 % noise on every p90, whose mean must stay under
 * target. */
static void steady_state(enum gov_algo algo, double noise, unsigned pp_bound)
{
    struct governor g;
    struct plant pl;
    gov_setup(&g, algo);
    plant_init(&pl, 150.0, 40.0);
    pl.noise = noise;
    unsigned lo = ~0u, hi = 0;
    double sum = 0.0;
    for (unsigned i = 0; i < 400; i++) {
        unsigned l = plant_step(&pl, &g, 200);
        assert_sane(&g);
        if (i >= 350) {
            lo = l < lo ? l : lo;
            hi = l > hi ? l : hi;
            sum += pl.p90;
        }
    }
    cr_log_info("steady %s noise %.2f: limit %u..%u, mean p90 %.1f", gov_algo_name(algo), noise, lo,
                hi, sum / 50);
    cr_assert_leq(hi - lo, pp_bound, "%s noise %.2f: limit moved %u..%u", gov_algo_name(algo),
                  noise, lo, hi);
    cr_assert_leq(sum / 50, TARGET, "%s: mean p90 %.1f", gov_algo_name(algo), sum / 50);
    cr_assert_geq(sum / 50, 0.85 * TARGET, "%s: mean p90 %.1f (limit too low)", gov_algo_name(algo),
                  sum / 50);
}

Test(governor, steady_state_no_oscillation)
{
    for (unsigned a = 0; a < 2; a++)
        steady_state(algos[a], 0.0, 0);
}

Test(governor, steady_state_with_noise)
{
    steady_state(GOV_GRADIENT, 0.10, 5);
    steady_state(GOV_PID, 0.10, 8);
}

/* ---- other backends --------------------------------------------------- */

/* The same defaults against a 12-slot backend (one stream is 9 % of TTFT,
 * more than the hold band) and a 150-slot one behind max_limit 400 (one
 * stream is 0.7 %): both settle with p90 in [0.85 target, target] and a
 * limit that moves by at most one stream over the last 50 intervals. */
static void other_backend(enum gov_algo algo, double cap, unsigned max_limit, unsigned offered,
                          unsigned lo_ok, unsigned hi_ok)
{
    struct gov_params p;
    struct governor g;
    struct plant pl;
    gov_params_default(&p);
    p.algo = algo;
    p.max_limit = max_limit;
    gov_init(&g, &p);
    plant_init(&pl, 150.0, cap);
    unsigned lo = ~0u, hi = 0, settled = 0;
    double pmin = 1e18, pmax = 0.0;
    for (unsigned i = 0; i < 600; i++) {
        unsigned l = plant_step(&pl, &g, offered);
        assert_sane(&g);
        if (pl.p90 > TARGET || pl.p90 < 0.85 * TARGET)
            settled = i + 1;
        if (i >= 550) {
            lo = l < lo ? l : lo;
            hi = l > hi ? l : hi;
            pmin = pl.p90 < pmin ? pl.p90 : pmin;
            pmax = pl.p90 > pmax ? pl.p90 : pmax;
        }
    }
    cr_log_info("backend %s cap %.0f max %u: settled after %u, limit %u..%u, p90 %.1f..%.1f",
                gov_algo_name(algo), cap, max_limit, settled, lo, hi, pmin, pmax);
    cr_assert_leq(hi - lo, 1, "%s cap %.0f: limit %u..%u", gov_algo_name(algo), cap, lo, hi);
    cr_assert(lo >= lo_ok && hi <= hi_ok, "%s cap %.0f: limit %u..%u", gov_algo_name(algo), cap, lo,
              hi);
    cr_assert(pmax <= TARGET && pmin >= 0.85 * TARGET, "%s cap %.0f: p90 %.1f..%.1f",
              gov_algo_name(algo), cap, pmin, pmax);
    cr_assert_lt(settled, 550, "%s cap %.0f: not settled", gov_algo_name(algo), cap);
}

Test(governor, other_backends_settle)
{
    for (unsigned a = 0; a < 2; a++) {
        other_backend(algos[a], 12.0, 80, 200, 17, 18);     /* 18 streams: 525 ms */
        other_backend(algos[a], 150.0, 400, 600, 224, 231); /* 231 streams: 549 ms */
    }
}

/* ---- windup ------------------------------------------------------------- */

/* 500 intervals with TTFT far above target even at min (a backend with
 * 10x the prefill time): pinned at min.  Then the backend is fast: the
 * limit rises as soon as the first fast sample arrives (lag 2). */
static void windup_low(enum gov_algo algo)
{
    struct governor g;
    struct plant pl;
    gov_setup(&g, algo);
    plant_init(&pl, 1500.0, 40.0);
    for (unsigned i = 0; i < 500; i++)
        cr_assert_eq(plant_step(&pl, &g, 200), 16);
    if (algo == GOV_PID)
        cr_assert_gt(g.integral, -5.0, "integral wound up to %f", g.integral);
    pl.base_ms = 150.0;
    unsigned first_rise = 0, reach40 = 0;
    for (unsigned i = 1; i <= 100; i++) {
        unsigned l = plant_step(&pl, &g, 200);
        if (!first_rise && l > 16)
            first_rise = i;
        if (!reach40 && l >= 40)
            reach40 = i;
        assert_sane(&g);
    }
    cr_log_info("windup %s low: first rise after %u intervals, >= 40 after %u", gov_algo_name(algo),
                first_rise, reach40);
    cr_assert(first_rise >= 1 && first_rise <= 4, "%s: first rise after %u", gov_algo_name(algo),
              first_rise);
    cr_assert(reach40 >= 1 && reach40 <= 30, "%s: 40 reached after %u", gov_algo_name(algo),
              reach40);
}

/* 500 intervals with a backend that takes everything at max (fully used,
 * queue non-empty): pinned at max.  Then it becomes slow: the limit falls
 * as soon as the slow samples arrive, and TTFT is back under control. */
static void windup_high(enum gov_algo algo)
{
    struct governor g;
    struct plant pl;
    gov_setup(&g, algo);
    plant_init(&pl, 150.0, 400.0);
    unsigned i;
    for (i = 0; i < 500; i++)
        plant_step(&pl, &g, 200);
    cr_assert_eq(gov_limit(&g), 80);
    if (algo == GOV_PID)
        cr_assert_lt(g.integral, 40.0, "integral wound up to %f", g.integral);
    pl.cap = 20.0; /* at 80 streams: TTFT 150 * (1.5 + 4 * 3) = 2025 ms */
    unsigned first_fall = 0, under = 0, lo = ~0u, hi = 0;
    for (i = 1; i <= 200; i++) {
        unsigned l = plant_step(&pl, &g, 200);
        if (!first_fall && l < 80)
            first_fall = i;
        if (!under && pl.p90 <= TARGET)
            under = i;
        assert_sane(&g);
        if (i > 150) {
            lo = l < lo ? l : lo;
            hi = l > hi ? l : hi;
            cr_assert_leq(pl.p90, TARGET, "%s: p90 %.1f at %u", gov_algo_name(algo), pl.p90, i);
        }
    }
    cr_assert_leq(hi - lo, 1, "%s: still moving %u..%u", gov_algo_name(algo), lo, hi);
    cr_log_info("windup %s high: first fall after %u intervals, p90 <= target after %u, "
                "limit %u",
                gov_algo_name(algo), first_fall, under, gov_limit(&g));
    cr_assert(first_fall >= 1 && first_fall <= 4, "%s: first fall after %u", gov_algo_name(algo),
              first_fall);
    cr_assert(under >= 1 && under <= 40, "%s: p90 under target after %u", gov_algo_name(algo),
              under);
    /* 225 ms at 20 streams, +30 ms a stream past that: 525 ms at 30 */
    cr_assert(gov_limit(&g) >= 28 && gov_limit(&g) <= 30, "%s: ended at %u", gov_algo_name(algo),
              gov_limit(&g));
}

Test(governor, windup_pinned_at_min_recovers)
{
    for (unsigned a = 0; a < 2; a++)
        windup_low(algos[a]);
}

Test(governor, windup_pinned_at_max_falls)
{
    for (unsigned a = 0; a < 2; a++)
        windup_high(algos[a]);
}

/* ---- clamping ----------------------------------------------------------- */

Test(governor, clamps_on_extreme_inputs)
{
    for (unsigned a = 0; a < 2; a++) {
        struct governor g;
        gov_setup(&g, algos[a]);
        const char *name = gov_algo_name(algos[a]);
        for (unsigned i = 0; i < 1000; i++) {
            unsigned l = feed(&g, 100, 0.0, ~0u, ~0u);
            assert_sane(&g);
            cr_assert_leq(l, 80);
        }
        cr_assert_eq(gov_limit(&g), 80, "%s: TTFT 0 gave %u", name, gov_limit(&g));
        for (unsigned i = 0; i < 1000; i++) {
            unsigned l = feed(&g, 100, 1e9, ~0u, ~0u);
            assert_sane(&g);
            cr_assert_geq(l, 16);
        }
        cr_assert_eq(gov_limit(&g), 16, "%s: TTFT 1e9 gave %u", name, gov_limit(&g));
        /* negative and NaN read as very fast, infinity as very slow */
        for (unsigned i = 0; i < 300; i++)
            feed(&g, 1, i % 2 ? -5.0 : NAN, 80, 5);
        assert_sane(&g);
        cr_assert_eq(gov_limit(&g), 80, "%s: fast garbage gave %u", name, gov_limit(&g));
        for (unsigned i = 0; i < 300; i++)
            feed(&g, 1, INFINITY, 80, 5);
        assert_sane(&g);
        cr_assert_eq(gov_limit(&g), 16, "%s: infinity gave %u", name, gov_limit(&g));
    }
}

/* min == max pins the limit whatever happens; min 1 never returns 0. */
Test(governor, degenerate_ranges)
{
    for (unsigned a = 0; a < 2; a++) {
        struct gov_params p;
        struct governor g;
        gov_params_default(&p);
        p.algo = algos[a];
        p.min_limit = p.max_limit = 7;
        cr_assert_eq(gov_params_check(&p, NULL, 0), 0);
        gov_init(&g, &p);
        for (unsigned i = 0; i < 200; i++) {
            cr_assert_eq(feed(&g, 3, i % 3 ? 1e6 : 1.0, i, i % 5), 7);
            assert_sane(&g);
        }
        p.min_limit = 1;
        p.max_limit = 3;
        gov_init(&g, &p);
        cr_assert_eq(gov_limit(&g), 1);
        for (unsigned i = 0; i < 200; i++) {
            unsigned l = feed(&g, 1, 1e6, 3, 9);
            cr_assert(l >= 1 && l <= 3, "limit %u", l);
            assert_sane(&g);
        }
    }
}

/* One update never cuts more than half, however bad the sample. */
Test(governor, cut_per_update_bounded)
{
    for (unsigned a = 0; a < 2; a++) {
        struct governor g;
        gov_setup(&g, algos[a]);
        for (unsigned i = 0; i < 200; i++)
            feed(&g, 50, 100.0, 80, 10);
        cr_assert_eq(gov_limit(&g), 80);
        double before = g.limit;
        feed(&g, 50, 1e9, 80, 10);
        cr_assert_geq(g.limit, 0.5 * before, "%s: %f -> %f", gov_algo_name(algos[a]), before,
                      g.limit);
        cr_assert_lt(g.limit, before, "%s: did not cut", gov_algo_name(algos[a]));
    }
}

/* ---- empty intervals ---------------------------------------------------- */

Test(governor, no_samples_hold_exactly)
{
    for (unsigned a = 0; a < 2; a++) {
        struct governor g;
        struct plant pl;
        gov_setup(&g, algos[a]);
        plant_init(&pl, 150.0, 40.0);
        for (unsigned i = 0; i < 35; i++) /* mid-climb: the state is moving */
            plant_step(&pl, &g, 200);
        unsigned held = gov_limit(&g);
        cr_assert(held > 20 && held < 80, "limit %u", held);
        struct governor before = g;
        for (unsigned i = 1; i <= 5000; i++) {
            /* whatever else the sample says, n == 0 teaches nothing while
             * the limit is in use (queued, or the peak at half of it) */
            unsigned l = feed(&g, 0, i % 2 ? 1e9 : 0.0, i % 3 ? held : 500, i % 7 ? 0 : 1000);
            cr_assert_eq(l, held);
            cr_assert_eq(gov_empty_intervals(&g), i);
        }
        cr_assert_eq(g.limit, before.limit);
        cr_assert_eq(g.integral, before.integral);
        cr_assert_eq(g.dfilt, before.dfilt);
        cr_assert_eq(g.prev_meas, before.prev_meas);
        feed(&g, 3, 300.0, held, 10);
        cr_assert_eq(gov_empty_intervals(&g), 0);
        /* a quiet node has no first tokens either: unused, the limit still
         * comes down to max(min, 2 x peak) */
        unsigned l = 0;
        for (unsigned i = 0; i < 25; i++)
            l = feed(&g, 0, 0.0, 10, 0);
        cr_assert_eq(l, 20, "%s: %u", gov_algo_name(algos[a]), l);
        for (unsigned i = 0; i < 25; i++)
            l = feed(&g, 0, 0.0, 0, 0);
        cr_assert_eq(l, 16);
    }
}

/* ---- app-limited -------------------------------------------------------- */

/* Pinned at max (a backend that takes everything), then the offered load
 * drops from 200 to 10: within 25 intervals (5 s) the limit must be
 * <= 2 x 10 + sqrt(20) and must not fall under 2 x 10 either.  Then a
 * burst of 200 arrives: the first interval admits at most sqrt(L) + 1 more. */
static void app_limited(enum gov_algo algo)
{
    struct governor g;
    struct plant pl;
    gov_setup(&g, algo);
    plant_init(&pl, 150.0, 400.0);
    for (unsigned i = 0; i < 300; i++)
        plant_step(&pl, &g, 200);
    cr_assert_eq(gov_limit(&g), 80);
    unsigned down = 0;
    for (unsigned i = 1; i <= 100; i++) {
        unsigned l = plant_step(&pl, &g, 10);
        assert_sane(&g);
        cr_assert_geq(l, 20, "%s: fell to %u under load 10", gov_algo_name(algo), l);
        if (!down && l <= 24)
            down = i;
    }
    cr_log_info("app-limited %s: 80 -> <= 24 in %u intervals, then %u", gov_algo_name(algo), down,
                gov_limit(&g));
    cr_assert(down >= 1 && down <= 25, "%s: took %u intervals", gov_algo_name(algo), down);
    cr_assert_eq(gov_limit(&g), 20);
    unsigned before = gov_limit(&g);
    unsigned after = plant_step(&pl, &g, 200);
    cr_assert_leq(after, before + 5, "%s: burst let %u -> %u", gov_algo_name(algo), before, after);
    cr_assert_gt(after, before, "%s: no growth under a full queue", gov_algo_name(algo));
}

Test(governor, app_limited_decay)
{
    for (unsigned a = 0; a < 2; a++)
        app_limited(algos[a]);
}

/* A fast backend but only 5 streams offered: min is the floor, no growth
 * toward max on an unused limit. */
Test(governor, no_growth_when_unused)
{
    for (unsigned a = 0; a < 2; a++) {
        struct governor g;
        gov_setup(&g, algos[a]);
        for (unsigned i = 0; i < 500; i++)
            cr_assert_eq(feed(&g, 2, 10.0, 5, 0), 16);
        /* used (queue) -> grows */
        cr_assert_gt(feed(&g, 2, 10.0, 5, 3), 16);
    }
}

/* ---- params and names --------------------------------------------------- */

Test(governor, defaults)
{
    struct gov_params p;
    gov_params_default(&p);
    cr_assert_eq(p.algo, GOV_GRADIENT);
    cr_assert_eq(p.target_ttft_ms, 550.0);
    cr_assert_eq(p.min_limit, 16);
    cr_assert_eq(p.max_limit, 80);
    cr_assert_eq(p.sample_interval_ms, 200);
    cr_assert_eq(p.kp, 0.35);
    cr_assert_eq(p.ki, 0.08);
    cr_assert_eq(p.kd, 0.15);
    cr_assert_eq(p.integral_saturation, 200.0);
    cr_assert_eq(p.smoothing, 0.2);
    cr_assert_eq(gov_params_check(&p, NULL, 0), 0);
    struct governor g;
    gov_init(&g, &p);
    cr_assert_eq(gov_limit(&g), 16);
    cr_assert_eq(gov_empty_intervals(&g), 0);
}

static void bad_params(const struct gov_params *p, const char *word)
{
    char why[128] = "";
    cr_assert_eq(gov_params_check(p, why, sizeof why), -EINVAL, "accepted (%s)", word);
    cr_assert(strstr(why, word) != NULL, "message \"%s\" lacks \"%s\"", why, word);
    cr_assert_eq(gov_params_check(p, NULL, 0), -EINVAL);
    char tiny[4];
    cr_assert_eq(gov_params_check(p, tiny, sizeof tiny), -EINVAL);
    cr_assert_eq(tiny[3], '\0');
}

Test(governor, params_check_rejects)
{
    struct gov_params d, p;
    gov_params_default(&d);
    p = d, p.min_limit = 0, bad_params(&p, "min_limit");
    p = d, p.min_limit = 81, bad_params(&p, "min_limit");
    p = d, p.target_ttft_ms = 0, bad_params(&p, "target_ttft_ms");
    p = d, p.target_ttft_ms = -1, bad_params(&p, "target_ttft_ms");
    p = d, p.target_ttft_ms = NAN, bad_params(&p, "target_ttft_ms");
    p = d, p.kp = -0.1, bad_params(&p, "kp");
    p = d, p.ki = -1, bad_params(&p, "ki");
    p = d, p.kd = NAN, bad_params(&p, "kd");
    p = d, p.integral_saturation = -1, bad_params(&p, "integral_saturation");
    p = d, p.smoothing = 0, bad_params(&p, "smoothing");
    p = d, p.smoothing = 1.5, bad_params(&p, "smoothing");
    p = d, p.sample_interval_ms = 0, bad_params(&p, "sample_interval_ms");
    p = d, p.algo = (enum gov_algo)7, bad_params(&p, "algo");
    /* edges that are fine */
    p = d, p.smoothing = 1.0;
    cr_assert_eq(gov_params_check(&p, NULL, 0), 0);
    p = d, p.kp = p.ki = p.kd = 0, p.min_limit = p.max_limit = 1;
    cr_assert_eq(gov_params_check(&p, NULL, 0), 0);
}

Test(governor, algo_names_round_trip)
{
    for (unsigned a = 0; a < 2; a++) {
        enum gov_algo out = (enum gov_algo)99;
        cr_assert_eq(gov_algo_parse(gov_algo_name(algos[a]), &out), 0);
        cr_assert_eq(out, algos[a]);
    }
    cr_assert_str_eq(gov_algo_name(GOV_PID), "pid");
    cr_assert_str_eq(gov_algo_name(GOV_GRADIENT), "gradient");
    cr_assert_str_eq(gov_algo_name((enum gov_algo)5), "?");
    enum gov_algo out = GOV_PID;
    cr_assert_eq(gov_algo_parse("PID", &out), -EINVAL);
    cr_assert_eq(gov_algo_parse("", &out), -EINVAL);
    cr_assert_eq(gov_algo_parse("gradient2", &out), -EINVAL);
    cr_assert_eq(gov_algo_parse(NULL, &out), -EINVAL);
    cr_assert_eq(out, GOV_PID, "out written on failure");
}

/* ---- a backend queue (a cliff) ------------------------------------------ */

/* A limit that overshot into the backend's queue (p90 far past target) is
 * remembered: coming back up, growth near it is one stream a second, not
 * sqrt(L) an interval; far below it, past it by 1/0.9, and after GOV_LONG_MEMORY_MS, full
 * speed. */
Test(governor, careful_near_a_limit_that_broke_the_target)
{
    for (unsigned a = 0; a < 2; a++) {
        struct governor g;
        gov_setup(&g, algos[a]);
        gov_set_limit(&g, 50);
        feed(&g, 5, 2.0 * TARGET, 50, 20); /* a cliff at 50 */
        double cut = g.limit;
        cr_assert_lt(cut, 50.0, "%s", gov_algo_name(algos[a]));
        /* fast backend again, requests waiting: grow back */
        double prev = g.limit;
        unsigned slow = 0;
        for (unsigned i = 0; i < 40; i++) {
            feed(&g, 5, 150.0, (unsigned)g.limit, 20);
            double step = g.limit - prev;
            if (prev >= 0.9 * 50.0) {
                cr_assert_leq(step, 0.2 + 1e-9, "%s: step %f at %f", gov_algo_name(algos[a]), step,
                              prev);
                slow++;
            }
            prev = g.limit;
        }
        cr_assert_gt(slow, 10, "%s: the careful region was reached", gov_algo_name(algos[a]));
        /* and for 10 s not past one below the limit that broke */
        cr_assert_leq(g.limit, 49.0 + 1e-9, "%s: %f", gov_algo_name(algos[a]), g.limit);
        /* 40 s later growth near it is still careful ... */
        for (unsigned i = 0; i < 200; i++)
            feed(&g, 5, 540.0, (unsigned)g.limit, 0); /* in the band: hold */
        gov_set_limit(&g, 48);
        double before = g.limit;
        feed(&g, 5, 150.0, (unsigned)g.limit, 20);
        cr_assert_leq(g.limit - before, 0.2 + 1e-9, "%s: %f -> %f", gov_algo_name(algos[a]), before,
                      g.limit);
        /* ... until the limit has grown past 50 / 0.9 without a queue: the
         * backend has room again, and sqrt(L) probing is back */
        for (unsigned i = 0; i < 200 && g.limit <= 50.0 / 0.9 + 0.2; i++)
            feed(&g, 5, 150.0, (unsigned)g.limit, 20);
        before = g.limit;
        feed(&g, 5, 150.0, (unsigned)g.limit, 20);
        cr_assert_gt(g.limit - before, 1.0, "%s: %f -> %f", gov_algo_name(algos[a]), before,
                     g.limit);
        /* and after GOV_LONG_MEMORY_MS a remembered limit is gone too */
        gov_set_limit(&g, 50);
        feed(&g, 5, 2.0 * TARGET, 50, 20);
        gov_set_limit(&g, 48);
        for (unsigned i = 0; i < 1600; i++)
            feed(&g, 5, 540.0, 48, 0);
        before = g.limit;
        feed(&g, 5, 150.0, (unsigned)g.limit, 20);
        cr_assert_gt(g.limit - before, 1.0, "%s: %f -> %f", gov_algo_name(algos[a]), before,
                     g.limit);
    }
}

/* Probes that keep finding the same limit too high are spaced out: the hold
 * below it doubles (10, 20, 40 s ...) instead of costing a stream its TTFT
 * every 10 s; a cliff at another limit starts again at 10 s. */
static double hold_after_cliff(struct governor *g, unsigned at)
{
    gov_set_limit(g, at);
    feed(g, 5, 2.0 * TARGET, at, 20); /* one probe's cliff, one interval */
    gov_set_limit(g, at - 1);
    /* fast backend, requests waiting: count the intervals held below `at` */
    unsigned held = 0;
    while (held < 2000) {
        feed(g, 5, 150.0, (unsigned)g->limit, 20);
        if (g->limit > (double)at - 1.0 + 1e-9)
            break;
        held++;
    }
    return held * 0.2; /* seconds at 200 ms */
}

Test(governor, repeated_probes_into_the_same_queue_back_off)
{
    for (unsigned a = 0; a < 2; a++) {
        struct governor g;
        gov_setup(&g, algos[a]);
        double h1 = hold_after_cliff(&g, 49);
        double h2 = hold_after_cliff(&g, 49);
        double h3 = hold_after_cliff(&g, 49);
        cr_assert(h1 >= 9.8 && h1 <= 10.4, "%s: first hold %f s", gov_algo_name(algos[a]), h1);
        cr_assert(h2 >= 19.8 && h2 <= 20.4, "%s: second hold %f s", gov_algo_name(algos[a]), h2);
        cr_assert(h3 >= 39.8 && h3 <= 40.4, "%s: third hold %f s", gov_algo_name(algos[a]), h3);
        for (unsigned i = 0; i < 3; i++)
            hold_after_cliff(&g, 49);
        double hmax = hold_after_cliff(&g, 49);
        cr_assert(hmax >= 79.8 && hmax <= 80.4, "%s: capped hold %f s", gov_algo_name(algos[a]),
                  hmax);
        /* the queue moved: a cliff 10 streams higher is a new finding */
        double hnew = hold_after_cliff(&g, 59);
        cr_assert(hnew >= 9.8 && hnew <= 10.4, "%s: new cliff hold %f s", gov_algo_name(algos[a]),
                  hnew);
    }
}
