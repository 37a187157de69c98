#!/usr/bin/env bash
# perf/governor_ramp.sh -- does sluice's adaptive governor work? A load ramp
# through sluice to llmsim's load model (batch slots, FIFO queue), with the
# governor on for every request (rollout adaptive_governor 100 %):
#
#   ramp     10 -> 200 offered streams in steps, a sharp drop to 10, a second
#            surge to 200 and steps back down to 10 (210 s), once per
#            algorithm (gradient, pid)
#   fit75    10 -> 75 streams on a backend that can serve 75 (twice the batch
#            slots), once per algorithm: rejections when capacity is there
#   sweep    200 streams for 30 s with the limit pinned (min_concurrent =
#            max_concurrent = L) for each L, and with the governor off: the
#            best static limit by goodput
#   static   the ramp again with the best static limit, for a like-for-like
#            goodput comparison over the whole ramp
#
# llmload (perf/loadgen) drives closed-loop clients on a --schedule, honours
# Retry-After after a 503 (--retry-after, as OpenAI's clients do) and writes a
# per-second --timeseries (TTFT of admitted streams by first-token second,
# tokens, tokens of streams within the TTFT target, rejections); a sampler
# reads /metrics and `sluicectl limits` every 200 ms. perf/governor/analyze.py
# computes the checks and draws the plots. sluice (one worker, and its
# control plane) runs on CPU 0; llmsim, llmload and the sampler on CPU 1.
# Everything started is stopped on exit, failure or Ctrl-C; only 127.0.0.1.
#
# Results: perf/results/governor-ramp-<UTC stamp>.json (every number),
# .md (checks and tables) and .png (limit, offered load, p95 TTFT, target),
# -sweep.png, -fit75.png.
#
# usage: perf/governor_ramp.sh [--quick] [--algos "gradient pid"]
#            [--sweep "16 24 32 40 48 56 64 72 80"] [--no-sweep] [--no-static-ramp]
#            [--no-fit75] [--no-retry-after] [--workers N] [--target-ms MS]
#            [--sim-args "..."] [--fit-sim-args "..."] [--build] [--build-dir DIR]
#            [--out DIR] [--keep-logs] [--no-results]
#   --quick           half-length ramp, sweep 16 32 48 64 80, no static ramp (~8 min)
#   --algos L         governor algorithms to run the ramp with (default gradient pid)
#   --sweep L         static limits to sweep (default 16 24 32 40 48 56 64 72 80)
#   --no-sweep        skip the sweep (and the static ramp): no goodput check
#   --no-static-ramp  skip the ramp with the best static limit
#   --no-fit75        skip the 75-stream runs on the larger backend
#   --no-retry-after  clients retry a 503 at once instead of after Retry-After
#   --workers N       sluice workers (default 1; all on CPU 0)
#   --target-ms MS    [governor] target_ttft_ms (default 550)
#   --sim-args S      llmsim load model of the ramp and sweep (default
#                     "--max-batch 48 --ttft-ms 150 --itl-ms 20 --tokens 100 --batch-slowdown 0.3")
#   --fit-sim-args S  llmsim load model of fit75 (default: the same with --max-batch 96)
#   --build           run ninja on the build dir first (meson setup --buildtype=release
#                     -Dwerror=false if missing)
#   --build-dir D     build with sluice, sluicectl, llmsim, llmload (default build-release)
#   --out DIR         where results go (default perf/results)
#   --keep-logs       keep the run directory (configs, logs, raw series) in /tmp
#   --no-results      do not write the results files (trial runs)
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE="$ROOT/perf/governor"
# Debian's python3 has matplotlib (python3-matplotlib); a pyenv shim first in
# PATH may not, and starts slower.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

QUICK=0
ALGOS="gradient pid"
SWEEP=""
DO_SWEEP=1
DO_STATIC_RAMP=1
DO_FIT=1
RETRY_AFTER=1
WORKERS=1
TARGET_MS=550
SIM_ARGS="--max-batch 48 --ttft-ms 150 --itl-ms 20 --tokens 100 --batch-slowdown 0.3"
FIT_SIM_ARGS=""
DO_BUILD=0
BUILD_DIR="$ROOT/build-release"
OUT_DIR="$ROOT/perf/results"
KEEP_LOGS=0
WRITE_RESULTS=1

usage() { sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --algos) ALGOS="$2"; shift ;;
    --sweep) SWEEP="$2"; shift ;;
    --no-sweep) DO_SWEEP=0; DO_STATIC_RAMP=0 ;;
    --no-static-ramp) DO_STATIC_RAMP=0 ;;
    --no-fit75) DO_FIT=0 ;;
    --no-retry-after) RETRY_AFTER=0 ;;
    --workers) WORKERS="$2"; shift ;;
    --target-ms) TARGET_MS="$2"; shift ;;
    --sim-args) SIM_ARGS="$2"; shift ;;
    --fit-sim-args) FIT_SIM_ARGS="$2"; shift ;;
    --build) DO_BUILD=1 ;;
    --build-dir) BUILD_DIR=$(cd "$2" 2>/dev/null && pwd || echo "$2"); shift ;;
    --out) OUT_DIR="$2"; shift ;;
    --keep-logs) KEEP_LOGS=1 ;;
    --no-results) WRITE_RESULTS=0 ;;
    -h|--help) usage 0 ;;
    *) echo "governor_ramp.sh: unknown option $1" >&2; usage 2 >&2 ;;
    esac
    shift
done

# --- parameters ----------------------------------------------------------
# The ramp: "SECONDS:STREAMS" steps. Steady phases of 20 s or more are where
# the checks look (their first SETTLE_S seconds are the transition).
if [ "$QUICK" = 1 ]; then
    RAMP="0:10,5:25,10:50,15:75,25:100,30:150,35:200,50:10,60:200,70:150,75:100,80:75,90:50,95:25,100:10,105:0"
    : "${SWEEP:=16 32 48 64 80}"
    DO_STATIC_RAMP=0
    SWEEP_S=20
    FIT="0:10,5:75,25:0"
    SETTLE_S=5
    BUDGET_S=900
else
    RAMP="0:10,10:25,20:50,30:75,50:100,60:150,70:200,100:10,120:200,140:150,150:100,160:75,180:50,190:25,200:10,210:0"
    : "${SWEEP:=16 24 32 40 48 56 64 72 80}"
    SWEEP_S=30
    FIT="0:10,10:75,50:0"
    SETTLE_S=10
    BUDGET_S=1500
fi
SWEEP_CONC=200
[ -n "$FIT_SIM_ARGS" ] || FIT_SIM_ARGS=$(sed -E 's/--max-batch +([0-9]+)/--max-batch 96/' <<<"$SIM_ARGS")
SAMPLE_S=0.2
LOAD_OPTS=(--timeout 30 --grace 10 --slo-ttft "$TARGET_MS" --timeseries-samples)
[ "$RETRY_AFTER" = 1 ] && LOAD_OPTS+=(--retry-after)

SLUICE="$BUILD_DIR/supervisor/sluice"
SLUICECTL="$BUILD_DIR/supervisor/sluicectl"
LLMSIM="$BUILD_DIR/perf/llmsim/llmsim"
LLMLOAD="$BUILD_DIR/perf/loadgen/llmload"

log() { printf '[governor %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- cleanup: everything started is stopped, even on failure or Ctrl-C ---
RUN_DIR=$(mktemp -d /tmp/sluice-governor.XXXXXX) || die "mktemp failed"
declare -A PGIDS=()   # process-group ids of what this script started (setsid)
LOAD_PID=""

stop_group() {   # stop_group PGID [grace_s]: TERM the group, then KILL after grace
    local pg=$1 grace=${2:-5} i
    kill -TERM -- "-$pg" 2>/dev/null || { unset "PGIDS[$pg]"; return 0; }
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 -- "-$pg" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 -- "-$pg" 2>/dev/null; then
        log "process group $pg did not stop in ${grace}s: SIGKILL"
        kill -KILL -- "-$pg" 2>/dev/null
        sleep 0.2
    fi
    unset "PGIDS[$pg]"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # timeout(1) runs in a process group of its own: the load client with it
    [ -n "$LOAD_PID" ] && kill -TERM -- "-$LOAD_PID" 2>/dev/null && sleep 0.5 && kill -KILL -- "-$LOAD_PID" 2>/dev/null
    for pg in "${!PGIDS[@]}"; do stop_group "$pg" 3; done
    if [ "$KEEP_LOGS" = 1 ]; then log "run directory kept: $RUN_DIR"; else rm -rf "$RUN_DIR"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# start_bg NAME LOGFILE CMD...: run CMD in a new session (own process group);
# sets LAST_PID (= its process group id).
start_bg() {
    local name=$1 logf=$2; shift 2
    setsid "$@" >"$logf" 2>&1 </dev/null &
    LAST_PID=$!
    PGIDS[$LAST_PID]=$name
}

# run_bounded LIMIT_S CMD...: CMD under timeout(1), waited for in the
# background so that Ctrl-C reaches the traps at once.
run_bounded() {
    local lim=$1; shift
    timeout -k 5 "$lim" "$@" &
    LOAD_PID=$!
    wait "$LOAD_PID"
    local rc=$?
    LOAD_PID=""
    return "$rc"
}

# --- checks and build -----------------------------------------------------
[ "$(nproc --all)" -ge 2 ] || die "needs at least 2 CPUs (nproc --all = $(nproc --all))"
for t in "$PY" taskset setsid timeout curl; do command -v "$t" >/dev/null || die "missing $t"; done
"$PY" -c 'import matplotlib' 2>/dev/null ||
    die "$PY has no matplotlib: apt-get install -y python3-matplotlib"
for a in $ALGOS; do case "$a" in gradient|pid) ;; *) die "unknown algorithm $a" ;; esac; done
case "$WORKERS" in [1-9]|[1-9][0-9]) ;; *) die "--workers wants 1..99" ;; esac

if [ "$DO_BUILD" = 1 ]; then
    if [ ! -d "$BUILD_DIR" ]; then
        # a benchmark build: a new compiler warning must not stop it
        (cd "$ROOT" && timeout 300 meson setup "$BUILD_DIR" --buildtype=release -Dwerror=false) ||
            die "meson setup failed"
    fi
    timeout 900 ninja -C "$BUILD_DIR" >&2 || die "ninja failed"
fi
for b in "$SLUICE" "$SLUICECTL" "$LLMSIM" "$LLMLOAD"; do
    [ -x "$b" ] || die "$b missing: cd $ROOT && meson setup build-release --buildtype=release && ninja -C build-release (or --build)"
done
"$LLMLOAD" --help | grep -q -- --schedule || die "$LLMLOAD has no --schedule: rebuild it (--build)"

# This script, and everything it starts without an explicit taskset, runs on CPU 1.
taskset -pc 1 $$ >/dev/null || die "taskset -pc 1 failed"
ulimit -n "$(ulimit -Hn)" 2>/dev/null

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
T_START=$(date +%s)
M_STAMP=$STAMP M_QUICK=$QUICK M_ALGOS=$ALGOS M_SWEEP=$SWEEP M_SWEEP_CONC=$SWEEP_CONC \
M_SWEEP_S=$SWEEP_S M_RAMP=$RAMP M_FIT=$FIT M_SETTLE_S=$SETTLE_S M_SAMPLE_S=$SAMPLE_S \
M_TARGET_MS=$TARGET_MS M_WORKERS=$WORKERS M_RETRY_AFTER=$RETRY_AFTER M_SIM_ARGS=$SIM_ARGS \
M_FIT_SIM_ARGS=$FIT_SIM_ARGS M_LOAD_OPTS="${LOAD_OPTS[*]}" M_ROOT=$ROOT M_BUILD_DIR=$BUILD_DIR \
"$PY" - "$RUN_DIR/manifest.json" <<'EOF' || die "cannot write the manifest"
import json, os, subprocess, sys
E = os.environ
def sh(c):
    try:
        return subprocess.run(c, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return "?"
json.dump({
    "stamp": E["M_STAMP"],
    "date": sh("date -Is"),
    "quick": E["M_QUICK"] == "1",
    "algos": E["M_ALGOS"].split(),
    "sweep": [int(x) for x in E["M_SWEEP"].split()],
    "sweep_conc": int(E["M_SWEEP_CONC"]),
    "sweep_s": float(E["M_SWEEP_S"]),
    "ramp": E["M_RAMP"],
    "fit": E["M_FIT"],
    "settle_s": float(E["M_SETTLE_S"]),
    "sample_s": float(E["M_SAMPLE_S"]),
    "target_ms": float(E["M_TARGET_MS"]),
    "workers": int(E["M_WORKERS"]),
    "retry_after": E["M_RETRY_AFTER"] == "1",
    "sim_args": E["M_SIM_ARGS"],
    "fit_sim_args": E["M_FIT_SIM_ARGS"],
    "load_opts": E["M_LOAD_OPTS"],
    "nproc": sh("nproc --all"),
    "cpu_model": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'"),
    "kernel": sh("uname -srm"),
    "loadavg_start": sh("cut -d' ' -f1-3 /proc/loadavg"),
    "sluice": sh("git -C '%s' describe --always --dirty --tags" % E["M_ROOT"]),
    "build_dir": E["M_BUILD_DIR"],
}, open(sys.argv[1], "w"), indent=1)
EOF

fill() {   # fill OUT ALGORITHM MIN MAX
    sed -e "s|@LISTEN_PORT@|$PORT|g; s|@ADMIN_PORT@|$ADMIN_PORT|g; s|@BACKEND_PORT@|$SIM_PORT|g" \
        -e "s|@RUN_DIR@|$RD|g; s|@WORKERS@|$WORKERS|g; s|@TARGET_MS@|$TARGET_MS|g" \
        -e "s|@ALGORITHM@|$2|g; s|@MIN_CONC@|$3|g; s|@MAX_CONC@|$4|g" \
        "$HERE/sluice.ini.in" >"$1"
}

# freeports: two free TCP ports on 127.0.0.1, below the ephemeral range: a
# port from bind(0) can be taken by a client connection (llmload opens 200)
# before sluice listens on it.
freeports() {
    "$PY" -c '
import random, socket
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
got = []
while len(got) < 2:
    p = random.randrange(10000, max(10001, min(lo, 32768)))
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        if p not in got:
            got.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(*got)'
}

# start_llmsim ARGS...: sets SIM_PID SIM_PORT
start_llmsim() {
    rm -f "$RD/sim.port"
    # shellcheck disable=SC2086
    start_bg llmsim "$RD/llmsim.log" taskset -c 1 "$LLMSIM" --listen 127.0.0.1:0 \
        --port-file "$RD/sim.port" --keepalive-timeout 0 "$@"
    SIM_PID=$LAST_PID
    local i
    for ((i = 0; i < 50; i++)); do
        [ -s "$RD/sim.port" ] && break
        kill -0 "$SIM_PID" 2>/dev/null || break
        sleep 0.1
    done
    SIM_PORT=$(cat "$RD/sim.port" 2>/dev/null)
    [ -n "$SIM_PORT" ] || { RUN_ERR="llmsim did not start: $(tail -3 "$RD/llmsim.log" | tr '\n' ' ')"; return 1; }
}

# start_sluice ALGORITHM MIN MAX ROLLOUT: sets SLUICE_PID PORT ADMIN_PORT;
# tries other ports if one was taken in the meantime
start_sluice() {
    for _ in 1 2 3; do
        start_sluice_once "$@" && { RUN_ERR=""; return 0; }
        grep -q 'Address already in use' "$RD/sluice.log" 2>/dev/null || return 1
        log "  a port was taken: trying others"
        stop_group "$SLUICE_PID" 3
    done
    return 1
}

start_sluice_once() {
    read -r PORT ADMIN_PORT < <(freeports)
    mkdir -p "$RD/state"
    fill "$RD/sluice.ini" "$1" "$2" "$3"
    start_bg sluice "$RD/sluice.log" taskset -c 0 "$SLUICE" --config "$RD/sluice.ini"
    SLUICE_PID=$LAST_PID
    local i code=""
    for ((i = 0; i < 100; i++)); do
        kill -0 "$SLUICE_PID" 2>/dev/null || break
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$ADMIN_PORT/readyz" 2>/dev/null)
        [ "$code" = 200 ] && break
        sleep 0.1
    done
    [ "$code" = 200 ] || { RUN_ERR="sluice did not become ready (readyz ${code:-none}): $(tail -5 "$RD/sluice.log" | tr '\n' ' ')"; return 1; }
    for ((i = 0; i < 30; i++)); do
        "$SLUICECTL" --socket "$RD/control.sock" rollout set adaptive_governor "$4" >>"$RD/sluicectl.log" 2>&1 && return 0
        sleep 0.2
    done
    RUN_ERR="sluicectl rollout set adaptive_governor $4 failed: $(tail -3 "$RD/sluicectl.log" | tr '\n' ' ')"
    return 1
}

# cpustat: "busy total" jiffies of cpu0 and cpu1, one line
cpustat() { awk '/^cpu[01] / { b = $2 + $3 + $4 + $7 + $8 + $9; printf "%d %d ", b, b + $5 + $6 } END { print "" }' /proc/stat; }
# busy_pct BEFORE AFTER: "cpu0 cpu1" busy % between two cpustat lines
busy_pct() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        for (i = 0; i < 2; i++) {
            db = y[2 * i + 1] - x[2 * i + 1]; dt = y[2 * i + 2] - x[2 * i + 2]
            p[i] = dt > 0 ? int(100 * db / dt) : 0
        }
        print p[0], p[1]
    }'
}

# wait_quiet: the machine is shared; before a run, wait (at most 30 s, 3 min in
# all) until CPU 0 and CPU 1 are each below QUIET_PCT % busy over 1 s. Sets
# QUIET (busy % when the run starts) and QUIET_WAIT (seconds waited).
QUIET_PCT=30
QUIET_WAITED=0
wait_quiet() {
    QUIET_WAIT=0
    local a b c0 c1
    while :; do
        a=$(cpustat); sleep 1; b=$(cpustat)
        QUIET=$(busy_pct "$a" "$b")
        read -r c0 c1 <<<"$QUIET"
        [ "$c0" -lt "$QUIET_PCT" ] && [ "$c1" -lt "$QUIET_PCT" ] && return 0
        if [ "$QUIET_WAIT" -ge 30 ] || [ "$QUIET_WAITED" -ge 180 ]; then
            log "  CPUs still busy (cpu0 $c0 %, cpu1 $c1 %) after ${QUIET_WAIT}s; running anyway"
            return 0
        fi
        [ "$QUIET_WAIT" = 0 ] && log "  CPUs busy (cpu0 $c0 %, cpu1 $c1 %): waiting for quiet"
        QUIET_WAIT=$((QUIET_WAIT + 1)); QUIET_WAITED=$((QUIET_WAITED + 1))
    done
}

stop_run() {
    [ -n "${SAMPLER_PID:-}" ] && stop_group "$SAMPLER_PID" 2
    [ -n "${SLUICE_PID:-}" ] && stop_group "$SLUICE_PID" 8
    [ -n "${SIM_PID:-}" ] && stop_group "$SIM_PID" 3
    SAMPLER_PID=""; SLUICE_PID=""; SIM_PID=""
}

# run_one NAME KIND SCHEDULE DURATION_S ALGORITHM MIN MAX ROLLOUT SIM_ARGS
# KIND: ramp, fit75, sweep, static (the analysis groups runs by it)
run_one() {
    local name=$1 kind=$2 sched=$3 dur=$4 algo=$5 lo=$6 hi=$7 rollout=$8 simargs=$9
    RD="$RUN_DIR/runs/$name"
    mkdir -p "$RD"
    local elapsed=$(( $(date +%s) - T_START ))
    if [ "$elapsed" -ge "$BUDGET_S" ]; then
        log "skipping $name: time budget of ${BUDGET_S}s spent"
        printf '{"name":"%s","kind":"%s","error":"skipped: time budget spent"}\n' "$name" "$kind" >"$RD/meta.json"
        return 0
    fi
    log "run $name ($kind): algorithm $algo, limit $lo..$hi, rollout $rollout %, schedule $sched"
    RUN_ERR=""; SAMPLER_PID=""; SLUICE_PID=""; SIM_PID=""
    local loadrc=0 cs0="" cs1="" busy="" load0 load1
    wait_quiet
    load0=$(cut -d' ' -f1 /proc/loadavg)
    # shellcheck disable=SC2086
    if start_llmsim $simargs && start_sluice "$algo" "$lo" "$hi" "$rollout"; then
        start_bg sampler "$RD/sampler.log" taskset -c 1 "$PY" "$HERE/sample.py" "$ADMIN_PORT" \
            "$RD/control.sock" "$RD/samples.jsonl" "$SAMPLE_S" "$((dur + 60))"
        SAMPLER_PID=$LAST_PID
        sleep 0.5   # a few samples before the load starts
        cs0=$(cpustat)
        run_bounded $((dur + 60)) taskset -c 1 "$LLMLOAD" --schedule "$sched" -d "$dur" \
            "${LOAD_OPTS[@]}" --timeseries "$RD/ts.json" --json "$RD/load.json" \
            "http://127.0.0.1:$PORT" >"$RD/load.out" 2>&1
        loadrc=$?
        cs1=$(cpustat)
        busy=$(busy_pct "$cs0" "$cs1")
        sleep 1     # the governor sees the tail
        [ "$loadrc" = 0 ] || RUN_ERR="llmload exited with $loadrc: $(tail -3 "$RD/load.out" | tr '\n' ' ')"
        kill -0 "$SLUICE_PID" 2>/dev/null || RUN_ERR="${RUN_ERR:+$RUN_ERR; }sluice died during the run"
    fi
    stop_run
    load1=$(cut -d' ' -f1 /proc/loadavg)
    grep -iE 'warn|error' "$RD/sluice.log" 2>/dev/null | tail -20 >"$RD/sluice_warnings.txt"
    M_NAME=$name M_KIND=$kind M_SCHED=$sched M_DUR=$dur M_ALGO=$algo M_LO=$lo M_HI=$hi \
    M_ROLLOUT=$rollout M_SIM=$simargs M_ERR=$RUN_ERR M_QUIET=$QUIET M_QWAIT=$QUIET_WAIT \
    M_BUSY=$busy M_LOAD0=$load0 M_LOAD1=$load1 "$PY" - "$RD/meta.json" <<'EOF'
import json, os, sys
E = os.environ
def pair(s):
    v = s.split()
    return {"cpu0": int(v[0]), "cpu1": int(v[1])} if len(v) == 2 else None
json.dump({"name": E["M_NAME"], "kind": E["M_KIND"], "schedule": E["M_SCHED"],
           "duration_s": float(E["M_DUR"]), "algorithm": E["M_ALGO"], "min": int(E["M_LO"]),
           "max": int(E["M_HI"]), "rollout": int(E["M_ROLLOUT"]), "sim_args": E["M_SIM"],
           "busy_before_pct": pair(E["M_QUIET"]), "quiet_wait_s": int(E["M_QWAIT"]),
           "busy_during_pct": pair(E["M_BUSY"]), "loadavg_before": E["M_LOAD0"],
           "loadavg_after": E["M_LOAD1"], "error": E["M_ERR"] or None}, open(sys.argv[1], "w"))
EOF
    [ -n "$RUN_ERR" ] && log "  $name: $RUN_ERR"
    return 0
}

sched_end() { sed 's/.*,//; s/:.*//' <<<"$1"; }   # time of the last point
RAMP_S=$(sched_end "$RAMP")
FIT_S=$(sched_end "$FIT")

# --- the runs -------------------------------------------------------------
for a in $ALGOS; do
    run_one "ramp-$a" ramp "$RAMP" "$RAMP_S" "$a" 16 80 100 "$SIM_ARGS"
done
if [ "$DO_FIT" = 1 ]; then
    for a in $ALGOS; do
        run_one "fit75-$a" fit75 "$FIT" "$FIT_S" "$a" 16 80 100 "$FIT_SIM_ARGS"
    done
fi
if [ "$DO_SWEEP" = 1 ]; then
    for L in $SWEEP; do
        run_one "sweep-L$L" sweep "0:$SWEEP_CONC" "$SWEEP_S" gradient "$L" "$L" 100 "$SIM_ARGS"
    done
    # the governor off: every request admitted at once, llmsim queues them
    run_one "sweep-off" sweep "0:$SWEEP_CONC" "$SWEEP_S" gradient 16 80 0 "$SIM_ARGS"
    if [ "$DO_STATIC_RAMP" = 1 ]; then
        BEST=$("$PY" "$HERE/analyze.py" best-static "$RUN_DIR") || BEST=""
        if [ -n "$BEST" ]; then
            run_one "static-L$BEST" static "$RAMP" "$RAMP_S" gradient "$BEST" "$BEST" 100 "$SIM_ARGS"
        else
            log "no best static limit found: skipping the static ramp"
        fi
    fi
fi

# --- results --------------------------------------------------------------
log "analysing ($(( $(date +%s) - T_START )) s so far)"
if [ "$WRITE_RESULTS" = 1 ]; then
    mkdir -p "$OUT_DIR" || die "cannot create $OUT_DIR"
    BASE="$OUT_DIR/governor-ramp-$STAMP"
else
    BASE="$RUN_DIR/governor-ramp-$STAMP"
fi
"$PY" "$HERE/analyze.py" report "$RUN_DIR" "$BASE" || die "analysis failed (run directory: $RUN_DIR; --keep-logs keeps it)"
log "done in $(( $(date +%s) - T_START )) s: $BASE.md"
[ "$WRITE_RESULTS" = 1 ] || KEEP_LOGS=1
cat "$BASE.md" | sed -n '/^## Checks/,/^## /p' | sed '$d' >&2
