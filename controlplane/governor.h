/*
 * governor — the node-wide admission limit (how many streams may be in
 * flight to the GPU backends at once), steered by time-to-first-token.
 *
 * The control-plane process calls gov_update() once per sample interval
 * (default 200 ms) with what the workers reported for that interval: how
 * many streams got their first token, the TTFT percentiles of those, the
 * peak number of streams in flight and the admission queue length.  It
 * returns the new limit, which the control plane publishes to the workers.
 *
 * The signal is TTFT p90 against an absolute setpoint (target_ttft_ms),
 * never whole-stream latency: a stream's duration measures how many tokens
 * it produced, not how congested the backend is.  (p50 and p95 travel in
 * the sample for the caller's logs; the control laws read p90 only.)
 *
 * Both control laws see the p90 through a hold band: a p90 in
 * [(1 - GOV_HOLD_BAND) * target, target] counts as on target.  One stream
 * more or less moves TTFT by a few per cent, so without the band an integer
 * limit hunts between two values forever; the band is continuous at its
 * edges (error measured from the nearer edge), so entering it causes no step.
 * Units: milliseconds for TTFT, streams for limits, one sample interval as
 * the unit of time for gains and the integral.
 *
 * GOV_GRADIENT (default): Netflix Gradient2's shape, steered by the setpoint.
 *     r     = target / p90            when p90 > target           (cut)
 *           = (1 - band) target / p90 when p90 < (1 - band) target (grow)
 *           = 1                       inside the band              (hold)
 *     g     = clamp(r * (1 - 1/sqrt(L)), 0.5, 1.0)
 *     new   = g * L + sqrt(L)
 *     L'    = (1 - s) * L + s * new                       s = smoothing (0.2)
 *   sqrt(L) is the probing headroom; g floors at 0.5 so one update cuts at
 *   most half (before smoothing).  The factor (1 - 1/sqrt(L)) puts the fixed
 *   point (g L + sqrt(L) = L) exactly at r = 1: with plain g = r the limit
 *   settles where p90 = target / (1 - 1/sqrt(L)), 13-33 % over target for
 *   L in 16..80.  Below L = 4 the 0.5 floor outweighs the headroom and the
 *   gradient cannot cut (as in Gradient2); min_limit >= 4 avoids that.
 *   Nothing to tune to the span or the backend: the cut is a fraction of L
 *   and the probe grows with sqrt(L).
 *
 * GOV_PID: positional PID acting on the logarithm of the limit.
 *     e     = (target - p90) / target     when p90 > target, floored at -1
 *           = ((1 - band) target - p90) / target  below the band (<= 0.95)
 *           = 0                           inside the band
 *     m     = min(p90 / target, 2)        the measurement, normalised
 *     D     = D + 0.5 (m - m_prev - D), clamped to +-GOV_PID_DMAX
 *     I     = clamp(I + e, +-integral_saturation)   (e x intervals)
 *     u     = kp e + ki I - kd D
 *     L'    = min_limit * exp(u)
 *   On the log (the output scaled to the current limit) so that the loop
 *   gain is the gains times the plant's elasticity, d ln TTFT / d ln L,
 *   which does not depend on the [min, max] span or the backend's size;
 *   scaled to the span instead, the same gains oscillate on a backend half
 *   as big.  exp(u) is computed locally for |u| <= GOV_PID_UMAX, beyond
 *   which the clamp to [min, max] decides anyway.  The derivative acts on the
 *   measurement, not the error (no kick when the target changes), is
 *   low-passed (software derivatives are noisy) and bounded: it never
 *   scales the limit by more than exp(+-kd * GOV_PID_DMAX).  Anti-windup:
 *   I is clamped to +-integral_saturation, and by conditional integration a
 *   step of I is dropped whenever the limit in force could not follow it
 *   (clamped at min or max, growth gated or slowed, cut bounded: the
 *   shared rules below), so after 500 intervals pinned at min the PID
 *   rises as soon as TTFT falls.  Gains are per sample interval; the
 *   defaults (kp 0.35, ki 0.08, kd 0.15) are the planning documents'.
 *
 * Shared rules, applied to either law's proposal, in this order:
 *   - No samples (n == 0): nothing is learnt about TTFT, so neither law
 *     moves (no growth on no information, no collapse either), but the
 *     not-in-use decay below still applies (a quiet node has no first
 *     tokens, and its limit must still come down); empty_intervals counts
 *     consecutive such intervals.
 *   - Requests queued and p90 under half the target: the proposal is at
 *     least L + sqrt(L) (the smoothing would otherwise make a backend that
 *     can take far more wait many intervals for it).
 *   - Near a limit that broke the target by GOV_CLIFF (p90 past 1.5 x the
 *     target: a queue, not the slope of a busy batch) in the last
 *     GOV_LONG_MEMORY_MS (from GOV_CAREFUL_FRAC of it up to 1/GOV_CAREFUL_FRAC
 *     of it, where it is forgotten: the backend has room again), growth is at most GOV_CAREFUL_STEP
 *     streams a second: a backend queue shows a probe only when the probed
 *     stream's first token is overdue, and probing at full speed there
 *     overshoots by all the growth of that delay (CUBIC's plateau); for
 *     the first GOV_PLATEAU_MS, not past one below that limit at all, so
 *     the backend's queue is probed every 10 s, not every few seconds.
 *     A probe that finds the backend's queue again, at a limit within the
 *     careful region of the one remembered (at most 1/GOV_CAREFUL_FRAC of
 *     it), while it is remembered, doubles that hold, up to
 *     GOV_PLATEAU_MAX_MS: a
 *     backend whose capacity has not moved is probed ever more rarely,
 *     since each probe costs the probing stream a whole queue wait.  A
 *     different limit found too high starts again at GOV_PLATEAU_MS.
 *   - One interval cuts at most half of L.
 *   - In use (inflight_peak >= GOV_USE_FRAC L, or requests queued): growth
 *     is at most max(1, sqrt(L)) per interval, so a backend that just
 *     became fast, or a burst after a quiet spell, is probed, not flooded.
 *   - Not in use (app-limited): no growth, and L decays toward
 *     max(min_limit, 2 inflight_peak) by a fraction
 *     min(1, sample_interval_ms / GOV_IDLE_TAU_MS) per interval (0.2 at
 *     200 ms): 80 -> 24 in 12 intervals when the load falls to 10 streams,
 *     so a later burst meets a limit near what was last used.  2 x peak is
 *     where "in use" starts, so the two rules meet without a gap.
 *   - Clamp to [min_limit, max_limit]; the published limit is L rounded to
 *     the nearest integer (>= 1, since min_limit >= 1).
 *   - p90 <= 0 or NaN reads as "very fast", +inf as "very slow".
 *
 * Starts at min_limit (cold start or control-plane restart: probe up from
 * the safe end rather than trust a guess).
 *
 * Pure, deterministic, single-threaded code owned by the control-plane
 * process: no I/O, no globals, no allocation.  sqrt and exp are computed
 * here (Newton, Taylor) so the core does not need libm.
 */
#ifndef SLUICE_GOVERNOR_H
#define SLUICE_GOVERNOR_H

#include <stdbool.h>
#include <stddef.h>

#define GOV_HOLD_BAND      0.05     /* p90 in [(1 - band) target, target] is on target */
#define GOV_USE_FRAC       0.5      /* in use when inflight_peak >= this fraction of L */
#define GOV_IDLE_TAU_MS    1000.0   /* app-limited decay time constant */
#define GOV_PID_DMAX       0.5      /* bound on the filtered derivative (normalised) */
#define GOV_PID_UMAX       50.0     /* |u| bound: exp(50) covers any unsigned range */
#define GOV_LONG_MEMORY_MS 300000.0 /* how long growth stays careful near that limit */
#define GOV_CAREFUL_FRAC   0.9      /* near it means from this fraction of it up */
#define GOV_CAREFUL_STEP   1.0      /* streams per second of growth near it */
#define GOV_PLATEAU_MS     10000.0  /* for this long, no growth past one below it at all */
#define GOV_PLATEAU_MAX_MS 80000.0  /* the plateau doubles up to this when probes keep failing */
#define GOV_EPISODE_MS     3000.0   /* cliff intervals closer than this are one probe, not two */
#define GOV_CLIFF          1.5      /* p90 over this times the target marks a limit as too high */

enum gov_algo { GOV_PID = 0, GOV_GRADIENT = 1 };

struct gov_params {
    enum gov_algo algo;
    double target_ttft_ms;       /* TTFT p90 setpoint, > 0 */
    unsigned min_limit;          /* >= 1 */
    unsigned max_limit;          /* >= min_limit */
    unsigned sample_interval_ms; /* how often gov_update is called, >= 1 */
    double kp, ki, kd;           /* PID gains, >= 0, per interval, on ln L */
    double integral_saturation;  /* PID: |I| bound, e x intervals, >= 0 */
    double smoothing;            /* gradient: s in (0, 1] */
    bool steer_p95; /* steer the sample's p95 instead of its p90 (the laws are the same) */
};

struct gov_sample {
    unsigned n;                                   /* first tokens seen in the interval */
    double ttft_p50_ms, ttft_p90_ms, ttft_p95_ms; /* of those (0 when n == 0) */
    unsigned inflight_peak;                       /* most streams admitted at once */
    unsigned queued;       /* waiting for admission at the end of the interval */
    unsigned overdue_rank; /* fewest streams on the node among those admitted with a stream whose
                              first token is overdue (0 = none): that many was too many */
};

struct governor {
    struct gov_params p;
    double limit;             /* continuous state; the published limit is it rounded */
    double integral;          /* PID: I */
    double prev_meas;         /* PID: m of the last interval with samples */
    bool have_prev;           /* prev_meas is valid */
    double dfilt;             /* PID: D */
    unsigned empty_intervals; /* consecutive intervals with n == 0 */
    double bad_limit;         /* the last limit at which TTFT went over target, 0 = none */
    unsigned bad_age;         /* intervals since then */
    double plateau_ms;        /* the hold below bad_limit now (GOV_PLATEAU_MS, doubling) */
};

/* The defaults: gradient, target 550 ms, limits 16..80, 200 ms, kp 0.35,
 * ki 0.08, kd 0.15, integral_saturation 200, smoothing 0.2. */
void gov_params_default(struct gov_params *p);

/* 0, or -EINVAL with a one-line reason in <why> (when why_len > 0). */
int gov_params_check(const struct gov_params *p, char *why, size_t why_len);

/* <p> must pass gov_params_check; it is copied. */
void gov_init(struct governor *g, const struct gov_params *p);

/* One sample interval; returns the new limit. */
unsigned gov_update(struct governor *g, const struct gov_sample *s);

unsigned gov_limit(const struct governor *g);
/* Seeds the limit (clamped to [min, max]): a restarted control plane
 * resumes from the limit the workers still apply instead of from min. */
void gov_set_limit(struct governor *g, unsigned limit);
unsigned gov_empty_intervals(const struct governor *g);

/* "pid" / "gradient"; "?" for anything else. */
const char *gov_algo_name(enum gov_algo a);

/* Exact, case-sensitive names as gov_algo_name gives them; 0 or -EINVAL. */
int gov_algo_parse(const char *s, enum gov_algo *out);

#endif
