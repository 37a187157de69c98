/* governor — see governor.h for the control laws and the shared rules. */
#include "controlplane/governor.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void gov_params_default(struct gov_params *p)
{
    memset(p, 0, sizeof *p);
    p->algo = GOV_GRADIENT;
    p->target_ttft_ms = 550.0;
    p->min_limit = 16;
    p->max_limit = 80;
    p->sample_interval_ms = 200;
    p->kp = 0.35;
    p->ki = 0.08;
    p->kd = 0.15;
    p->integral_saturation = 200.0;
    p->smoothing = 0.2;
}

/* Rejects NaN and infinities as well as negatives: a NaN gain would poison
 * the state for good. */
static bool finite_nonneg(double x)
{
    return isfinite(x) && x >= 0.0;
}

int gov_params_check(const struct gov_params *p, char *why, size_t why_len)
{
    const char *msg = NULL;

    if (p->algo != GOV_PID && p->algo != GOV_GRADIENT)
        msg = "algo must be pid or gradient";
    else if (!(isfinite(p->target_ttft_ms) && p->target_ttft_ms > 0.0))
        msg = "target_ttft_ms must be a number > 0";
    else if (p->min_limit < 1)
        msg = "min_limit must be >= 1";
    else if (p->min_limit > p->max_limit)
        msg = "min_limit must be <= max_limit";
    else if (p->sample_interval_ms < 1)
        msg = "sample_interval_ms must be >= 1";
    else if (!finite_nonneg(p->kp) || !finite_nonneg(p->ki) || !finite_nonneg(p->kd))
        msg = "kp, ki and kd must be numbers >= 0";
    else if (!finite_nonneg(p->integral_saturation))
        msg = "integral_saturation must be a number >= 0";
    else if (!(p->smoothing > 0.0 && p->smoothing <= 1.0))
        msg = "smoothing must be in (0, 1]";
    if (!msg)
        return 0;
    if (why && why_len > 0)
        snprintf(why, why_len, "governor: %s", msg);
    return -EINVAL;
}

void gov_init(struct governor *g, const struct gov_params *p)
{
    memset(g, 0, sizeof *g);
    g->p = *p;
    g->limit = p->min_limit;
    g->plateau_ms = GOV_PLATEAU_MS;
}

static double clampd(double x, double lo, double hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* Newton's method from above: the iterates fall monotonically onto
 * sqrt(x), so stopping at the first one that does not fall is exact to the
 * last bit and takes the same steps on every machine.  Local so the core
 * needs no libm. */
static double gov_sqrt(double x)
{
    if (!(x > 0.0))
        return 0.0;
    double r = x > 1.0 ? x : 1.0;
    for (int i = 0; i < 128; i++) {
        double next = 0.5 * (r + x / r);
        if (!(next < r))
            break;
        r = next;
    }
    return r;
}

/* p90 as the laws read it: "very fast" for <= 0 or NaN. */
static double sane_p90(double p90)
{
    return p90 > 0.0 ? p90 : 0.0;
}

static double gradient_step(const struct governor *g, double p90)
{
    double target = g->p.target_ttft_ms;
    double low = (1.0 - GOV_HOLD_BAND) * target;
    double limit = g->limit;
    double r;

    if (p90 > target)
        r = target / p90; /* 0 for +inf: the 0.5 floor applies */
    else if (p90 < low)
        r = p90 > low / 1e9 ? low / p90 : 1e9; /* far past g = 1; never inf */
    else
        return limit; /* hold exactly, no rounding drift */

    double sq = gov_sqrt(limit);
    double grad = clampd(r * (1.0 - 1.0 / sq), 0.5, 1.0);
    double next = grad * limit + sq;
    double s = g->p.smoothing;
    return (1.0 - s) * limit + s * next;
}

static double pid_error(const struct governor *g, double p90)
{
    double target = g->p.target_ttft_ms;
    double low = (1.0 - GOV_HOLD_BAND) * target;

    if (p90 > target)
        return p90 >= 2.0 * target ? -1.0 : (target - p90) / target;
    if (p90 < low)
        return (low - p90) / target;
    return 0.0;
}

/* exp(x), x clamped to +-GOV_PID_UMAX (NaN to the low end: the safe
 * limit): x = k ln2 + r with |r| <= ln2 / 2, a Taylor series in r (terms
 * under 2^-53 from the 14th) and k doublings or halvings.  Local so the
 * core needs no libm; the same steps on every machine. */
static double gov_exp(double x)
{
    static const double ln2 = 0.69314718055994530942;
    x = x > GOV_PID_UMAX ? GOV_PID_UMAX : x > -GOV_PID_UMAX ? x : -GOV_PID_UMAX;
    int k = (int)(x / ln2 + (x < 0.0 ? -0.5 : 0.5));
    double r = x - k * ln2;
    double sum = 1.0, term = 1.0;
    for (int i = 1; i <= 20; i++) {
        term *= r / i;
        sum += term;
    }
    for (; k > 0; k--)
        sum *= 2.0;
    for (; k < 0; k++)
        sum *= 0.5;
    return sum;
}

/* This interval's e, D and candidate I; returns the PID's limit.  The
 * integral is only committed by gov_update once it knows whether the
 * shared rules let the limit move the way e pushes it. */
static double pid_step(struct governor *g, double p90, double *err, double *integral)
{
    const struct gov_params *p = &g->p;
    double m = p90 < 2.0 * p->target_ttft_ms ? p90 / p->target_ttft_ms : 2.0;
    double e = pid_error(g, p90);

    if (g->have_prev) {
        g->dfilt += 0.5 * ((m - g->prev_meas) - g->dfilt);
        g->dfilt = clampd(g->dfilt, -GOV_PID_DMAX, GOV_PID_DMAX);
    }
    g->prev_meas = m;
    g->have_prev = true;

    double i = clampd(g->integral + e, -p->integral_saturation, p->integral_saturation);
    double u = p->kp * e + p->ki * i - p->kd * g->dfilt;
    *err = e;
    *integral = i;
    return (double)p->min_limit * gov_exp(u);
}

/* Not in use means 2 * peak < L, so the goal is <= L: a limit left high by
 * a past peak comes down. */
static double idle_decay(const struct governor *g, const struct gov_sample *s)
{
    const struct gov_params *p = &g->p;
    double twice = 2.0 * (double)s->inflight_peak;
    double lo = p->min_limit;
    double goal = twice > lo ? twice : lo;
    double a = (double)p->sample_interval_ms / GOV_IDLE_TAU_MS;
    return g->limit - (a < 1.0 ? a : 1.0) * (g->limit - goal);
}

static unsigned memory_intervals(const struct gov_params *p, double ms)
{
    return (unsigned)(ms / (p->sample_interval_ms ? p->sample_interval_ms : 1)) + 1;
}

unsigned gov_update(struct governor *g, const struct gov_sample *s)
{
    const struct gov_params *p = &g->p;
    double lo = p->min_limit, hi = p->max_limit;
    double limit = g->limit;
    bool in_use = s->queued > 0 || (double)s->inflight_peak >= GOV_USE_FRAC * limit;
    if (g->bad_age < ~0u)
        g->bad_age++;

    if (s->n == 0) {
        /* Nothing learnt about TTFT: no law moves.  But a limit nobody
         * uses still comes down (a quiet node has no first tokens). */
        if (g->empty_intervals < ~0u)
            g->empty_intervals++;
        if (!in_use)
            g->limit = clampd(idle_decay(g, s), lo, hi);
        return gov_limit(g);
    }
    g->empty_intervals = 0;

    double p90 = sane_p90(p->steer_p95 ? s->ttft_p95_ms : s->ttft_p90_ms);
    double e = 0.0, integral = g->integral;
    double proposal = p->algo == GOV_PID ? pid_step(g, p90, &e, &integral) : gradient_step(g, p90);
    double sq = gov_sqrt(limit);
    /* Requests are waiting and the backend answers in under half the
     * target: probe at the full headroom instead of the smoothed step. */
    if (s->queued > 0 && p90 < 0.5 * p->target_ttft_ms && proposal < limit + sq)
        proposal = limit + sq;
    /* Far over target (a backend queue, not a slope): remember the limit
     * that was too high.  Pinned at min, the limit is not what is wrong. */
    if (p90 > GOV_CLIFF * p->target_ttft_ms && limit > 1.1 * lo + 1.0) {
        /* The limit now is the one a delay later; the stream that found the
         * backend's queue says exactly how many were on the node. */
        double bad = s->overdue_rank && s->overdue_rank < limit ? s->overdue_rank : limit;
        /* A new probe (not the next interval of the same one) that found
         * the backend's queue again within the careful region of the limit
         * remembered (the queue shows only a few seconds after the probe,
         * so the limit has crept a little past it): back off. */
        if (g->bad_age > memory_intervals(p, GOV_EPISODE_MS)) {
            bool again = g->bad_limit > 0.0 && bad * GOV_CAREFUL_FRAC <= g->bad_limit &&
                         g->bad_age < memory_intervals(p, GOV_LONG_MEMORY_MS);
            g->plateau_ms = !again                                     ? GOV_PLATEAU_MS
                            : g->plateau_ms * 2.0 < GOV_PLATEAU_MAX_MS ? g->plateau_ms * 2.0
                                                                       : GOV_PLATEAU_MAX_MS;
        }
        g->bad_limit = bad;
        g->bad_age = 0;
    }

    double next = proposal;
    if (next < 0.5 * limit)
        next = 0.5 * limit;
    if (in_use) {
        double cap = limit + (sq > 1.0 ? sq : 1.0);
        /* Near a limit that recently broke the target, grow by one stream
         * a second at most: the backend's queue answers a probe only when
         * the probed stream's first token is overdue, so a fast probe there
         * overshoots by the growth of that whole delay (CUBIC's plateau). */
        if (g->bad_limit > 0.0 && g->bad_age < memory_intervals(p, GOV_LONG_MEMORY_MS) &&
            next > limit && limit + GOV_CAREFUL_STEP >= GOV_CAREFUL_FRAC * g->bad_limit) {
            double careful = limit + GOV_CAREFUL_STEP * (double)p->sample_interval_ms / 1000.0;
            /* For a while, not even that past one below it: each probe into
             * the backend's queue costs a stream its TTFT. */
            if (g->bad_age < memory_intervals(p, g->plateau_ms) && careful > g->bad_limit - 1.0)
                careful = g->bad_limit - 1.0 > limit ? g->bad_limit - 1.0 : limit;
            if (cap > careful)
                cap = careful;
        }
        if (next > cap)
            next = cap;
    } else {
        double decayed = idle_decay(g, s);
        if (decayed < next)
            next = decayed;
    }
    next = clampd(next, lo, hi);
    /* Grown well past the limit remembered without finding the queue
     * again: the backend has more room now; forget it. */
    if (g->bad_limit > 0.0 && next * GOV_CAREFUL_FRAC > g->bad_limit) {
        g->bad_limit = 0.0;
        g->plateau_ms = GOV_PLATEAU_MS;
    }

    /* Conditional integration: a step of the integral that the limit
     * could not follow (clamped at min or max, growth gated or slowed, the
     * cut bounded) is dropped, so I never holds more than the limit
     * actually in force can answer for. */
    bool held_back = (e > 0.0 && next < proposal) || (e < 0.0 && next > proposal);
    if (p->algo == GOV_PID && !held_back)
        g->integral = integral;

    g->limit = next;
    return gov_limit(g);
}

void gov_set_limit(struct governor *g, unsigned limit)
{
    g->limit = clampd((double)limit, g->p.min_limit, g->p.max_limit);
}

unsigned gov_limit(const struct governor *g)
{
    double l = clampd(g->limit, g->p.min_limit, g->p.max_limit);
    unsigned v = (unsigned)(l + 0.5);
    if (v < g->p.min_limit)
        v = g->p.min_limit;
    if (v > g->p.max_limit)
        v = g->p.max_limit;
    return v;
}

unsigned gov_empty_intervals(const struct governor *g)
{
    return g->empty_intervals;
}

const char *gov_algo_name(enum gov_algo a)
{
    switch (a) {
    case GOV_PID:
        return "pid";
    case GOV_GRADIENT:
        return "gradient";
    }
    return "?";
}

int gov_algo_parse(const char *s, enum gov_algo *out)
{
    if (!s)
        return -EINVAL;
    if (strcmp(s, "pid") == 0)
        *out = GOV_PID;
    else if (strcmp(s, "gradient") == 0)
        *out = GOV_GRADIENT;
    else
        return -EINVAL;
    return 0;
}
