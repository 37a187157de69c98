#!/usr/bin/env bash
# perf/compare.sh -- sluice against nginx, HAProxy and nghttpx (and llmsim
# direct), one target after another, on one machine:
#
#   1 paced relay   TTFT 20 ms, a token every 20 ms, 50 tokens, at 32/256/1000
#                   streams: TTFT and inter-token p50/p99 minus direct, proxy CPU
#                   seconds per million tokens (llmload --verify --expect-tokens 50)
#   2 bulk relay    64 streams of 2,000 tokens with no gap: tokens/s, proxy CPU
#                   seconds per million tokens
#   3 capacity      10,000 concurrent slow streams held for 20 s: how many complete,
#                   proxy RSS (all its processes) per stream
#   4 short         h2load -p http/1.1 -c 64 on GET /v1/models: req/s, proxy CPU
#                   seconds per 100k requests
#
# Each proxy runs with one worker under `taskset -c 0`; llmsim, llmload, h2load
# (and this script) run under `taskset -c 1`. Scenarios 1 and 2 start with an
# unmeasured warm-up (one stream per connection; its TTFT is kept as "cold
# TTFT"). A sweep runs every scenario for every target in turn; the sweep is
# repeated (3 times by default) so noise hits all targets alike. Everything
# started is stopped on exit, failure or Ctrl-C. Results:
# perf/results/compare-<YYYYmmdd-HHMMSS>.md (tables) and .json (every run, raw).
#
# usage: perf/compare.sh [--quick] [--only 1,2,3,4] [--targets LIST] [--reps N]
#                        [--s1-conc "32 256 1000"] [--wait-load X] [--quiet-pct P] [--build]
#                        [--build-dir DIR] [--out DIR] [--keep-logs] [--no-results]
#   --quick        1 repetition, 2 s runs, 1,000 streams (8 s) in scenario 3; < 5 min
#   --only LIST    scenarios to run (default 1,2,3,4)
#   --targets LIST comma list of direct,sluice,nginx,haproxy,nghttpx (default all)
#   --reps N       sweeps (default 3; 1 with --quick)
#   --s1-conc L    concurrencies of scenario 1 (default "32 256 1000")
#   --wait-load X  before starting, wait (up to 30 min) until the 1-minute load
#                  average is below X
#   --quiet-pct P  before each run, wait (up to 30 s; 5 min in all, 30 s with
#                  --quick) until CPU 0 and CPU 1 are each below P % busy over
#                  1 s (default 25; 0 = do not wait); the wait is recorded
#   --build        run ninja on the build dir first (meson setup if missing)
#   --build-dir D  sluice/llmsim/llmload build (default build-release)
#   --out DIR      where results go (default perf/results)
#   --keep-logs    keep the per-run directory (configs, logs, raw JSON) in /tmp
#   --no-results   do not write the results files (trial runs)
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE="$ROOT/perf/compare"
PROC="$HERE/proc.py"
# Debian's python3 (standard library only) starts in ~40 ms; a pyenv shim
# first in PATH can take ten times that, on every helper call.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

QUICK=0
ONLY="1,2,3,4"
TARGETS="direct,sluice,nginx,haproxy,nghttpx"
REPS=""
S1_CONC="32 256 1000"
WAIT_LOAD=""
QUIET_PCT=25
DO_BUILD=0
BUILD_DIR="$ROOT/build-release"
OUT_DIR="$ROOT/perf/results"
KEEP_LOGS=0
WRITE_RESULTS=1

usage() { sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --only) ONLY="$2"; shift ;;
    --targets) TARGETS="$2"; shift ;;
    --reps) REPS="$2"; shift ;;
    --s1-conc) S1_CONC="$2"; shift ;;
    --wait-load) WAIT_LOAD="$2"; shift ;;
    --quiet-pct) QUIET_PCT="$2"; shift ;;
    --build) DO_BUILD=1 ;;
    --build-dir) BUILD_DIR=$(cd "$2" 2>/dev/null && pwd || echo "$2"); shift ;;
    --out) OUT_DIR="$2"; shift ;;
    --keep-logs) KEEP_LOGS=1 ;;
    --no-results) WRITE_RESULTS=0 ;;
    -h|--help) usage 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; usage 2 >&2 ;;
    esac
    shift
done

# --- parameters ----------------------------------------------------------
if [ "$QUICK" = 1 ]; then
    : "${REPS:=1}"
    S1_DUR=2; S2_DUR=2; S4_DUR=2
    S3_STREAMS=1000; S3_RAMP=2; S3_TOKENS=9       # 8 s streams
    BUDGET_S=300
    QUIET_BUDGET_S=30
else
    : "${REPS:=3}"
    S1_DUR=8; S2_DUR=8; S4_DUR=8
    S3_STREAMS=10000; S3_RAMP=5; S3_TOKENS=21     # 20 s streams (1 token/s after a 20 ms TTFT)
    BUDGET_S=1800
    QUIET_BUDGET_S=300
fi
QUIET_WAITED=0
S1_TTFT=20; S1_ITL=20; S1_TOKENS=50; S1_RAMP=1
S2_STREAMS=64; S2_TOKENS=2000
S3_ITL=1000
S3_HOLD=$(( (S3_TOKENS - 1) * S3_ITL / 1000 ))
S3_TIMEOUT=$(( S3_HOLD + 10 ))   # a stream that waited in a queue for a free slot does not count
S4_CONNS=64

SLUICE="$BUILD_DIR/supervisor/sluice"
LLMSIM="$BUILD_DIR/perf/llmsim/llmsim"
LLMLOAD="$BUILD_DIR/perf/loadgen/llmload"

log() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- cleanup: everything started is stopped, even on failure or Ctrl-C ---
RUN_DIR=$(mktemp -d /tmp/sluice-compare.XXXXXX) || die "mktemp failed"
declare -A PGIDS=()   # process-group ids of what this script started (setsid)
SAMPLER_PID=""
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
    [ -n "$SAMPLER_PID" ] && kill -TERM "$SAMPLER_PID" 2>/dev/null
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

# children_cpu FILE: user+sys seconds of this shell's reaped children so far,
# into FILE (`times` must run in this shell, not in a $(...) subshell)
children_cpu() {
    times >"$1.times"
    tail -1 "$1.times" | awk '{ n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] } printf "%.3f\n", n }' >"$1"
}

# --- checks and build -----------------------------------------------------
[ "$(nproc --all)" -ge 2 ] || die "needs at least 2 CPUs (nproc --all = $(nproc --all))"
for t in "$PY" taskset setsid timeout curl; do command -v "$t" >/dev/null || die "missing $t"; done
IFS=, read -r -a TARGET_LIST <<<"$TARGETS"
for t in "${TARGET_LIST[@]}"; do
    case "$t" in
    direct|sluice) ;;
    nginx) command -v nginx >/dev/null || die "nginx not installed (apt-get install nginx-light)" ;;
    haproxy) command -v haproxy >/dev/null || die "haproxy not installed" ;;
    nghttpx) command -v nghttpx >/dev/null || die "nghttpx not installed (nghttp2-proxy)" ;;
    *) die "unknown target $t" ;;
    esac
done
case ",$ONLY," in *,4,*) command -v h2load >/dev/null || die "h2load not installed (nghttp2-client)" ;; esac

if [ "$DO_BUILD" = 1 ]; then
    if [ ! -d "$BUILD_DIR" ]; then
        (cd "$ROOT" && timeout 300 meson setup "$BUILD_DIR" --buildtype=release) || die "meson setup failed"
    fi
    timeout 900 ninja -C "$BUILD_DIR" >&2 || die "ninja failed"
fi
for b in "$SLUICE" "$LLMSIM" "$LLMLOAD"; do
    [ -x "$b" ] || die "$b missing: cd $ROOT && meson setup build-release --buildtype=release && ninja -C build-release (or --build)"
done

for svc in nginx haproxy nghttpx; do
    for p in $(pgrep -x "$svc" 2>/dev/null); do
        log "warning: a $svc (pid $p) not started by this script is running; it shares the CPUs"
    done
done

# This script, and everything it starts without an explicit taskset, runs on CPU 1.
taskset -pc 1 $$ >/dev/null || die "taskset -pc 1 failed"
ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE_HARD=$(ulimit -Hn)
[ "$NOFILE_HARD" = unlimited ] && NOFILE_HARD=1048576
# HAProxy needs about 2 x maxconn + 14 descriptors and refuses to start if it
# cannot get them (strict-limits): the most it can have within the hard limit.
HAPROXY_MAXCONN=$(( (NOFILE_HARD - 20) / 2 ))

if [ -n "$WAIT_LOAD" ]; then
    waited=0
    while :; do
        l1=$(cut -d' ' -f1 /proc/loadavg)
        if awk -v a="$l1" -v b="$WAIT_LOAD" 'BEGIN { exit !(a < b) }'; then break; fi
        [ "$waited" -ge 1800 ] && { log "load average still $l1 after 30 min; going on"; break; }
        [ $((waited % 60)) = 0 ] && log "load average $l1 >= $WAIT_LOAD; waiting"
        sleep 15; waited=$((waited + 15))
    done
fi

# --- machine and versions -----------------------------------------------
STAMP=$(date +%Y%m%d-%H%M%S)
T_START=$(date +%s)
ver() { "$@" 2>&1 | head -1; }
"$PY" "$PROC" record \
    stamp="$STAMP" \
    date="$(date -Is)" \
    quick="$QUICK" reps="$REPS" \
    nproc="$(nproc --all)" \
    cpu_model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
    kernel="$(uname -srm)" \
    mem_total="$(grep MemTotal /proc/meminfo | awk '{printf "%.1f GiB", $2/1048576}')" \
    os="$(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-?}")" \
    loadavg_start="$(cut -d' ' -f1-3 /proc/loadavg)" \
    nofile_hard="$NOFILE_HARD" \
    sluice="$(git -C "$ROOT" describe --always --dirty --tags 2>/dev/null || echo unknown)" \
    sluice_build="$BUILD_DIR ($(grep -m1 -o "buildtype=[a-z]*" "$BUILD_DIR/meson-logs/meson-log.txt" 2>/dev/null || meson introspect --buildoptions "$BUILD_DIR" 2>/dev/null | "$PY" -c 'import json,sys; print("buildtype=" + [o["value"] for o in json.load(sys.stdin) if o["name"] == "buildtype"][0])' 2>/dev/null || echo buildtype=?))" \
    nginx="$(ver nginx -v)" \
    haproxy="$(ver haproxy -v)" \
    nghttpx="$(ver nghttpx --version)" \
    h2load="$(ver h2load --version)" \
    liburing="$(dpkg-query -W -f '${Version}' liburing2 2>/dev/null || echo '?')" \
    targets="$TARGETS" only="$ONLY" s1_conc="$S1_CONC" \
    haproxy_maxconn="$HAPROXY_MAXCONN" \
    >"$RUN_DIR/machine.json" || die "cannot write machine.json"

# --- targets --------------------------------------------------------------
fill() {   # fill TEMPLATE OUT: substitute the @NAME@ placeholders
    sed -e "s|@LISTEN_PORT@|$PORT|g; s|@BACKEND_PORT@|$SIM_PORT|g; s|@ADMIN_PORT@|$ADMIN_PORT|g" \
        -e "s|@RUN_DIR@|$RD|g; s|@HAPROXY_MAXCONN@|$HAPROXY_MAXCONN|g" "$1" >"$2"
}

# start_llmsim ARGS...: sets SIM_PID SIM_PORT
start_llmsim() {
    rm -f "$RD/sim.port"
    start_bg llmsim "$RD/llmsim.log" taskset -c 1 "$LLMSIM" --listen 127.0.0.1:0 \
        --port-file "$RD/sim.port" --keepalive-timeout 0 --max-batch 20000 "$@"
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

# start_target TARGET: sets TGT_PID PORT (TGT_PID empty for direct)
start_target() {
    local t=$1
    TGT_PID=""
    if [ "$t" = direct ]; then PORT=$SIM_PORT; return 0; fi
    read -r PORT ADMIN_PORT < <("$PY" "$PROC" freeport 2)
    case "$t" in
    sluice)
        mkdir -p "$RD/sluice-state"
        fill "$HERE/sluice.ini.in" "$RD/sluice.ini"
        CONF="$RD/sluice.ini"
        start_bg sluice "$RD/proxy.log" taskset -c 0 "$SLUICE" --config "$CONF" ;;
    nginx)
        mkdir -p "$RD/nginx-body" "$RD/nginx-proxy" "$RD/nginx-fastcgi" "$RD/nginx-uwsgi" "$RD/nginx-scgi"
        fill "$HERE/nginx.conf.in" "$RD/nginx.conf"
        CONF="$RD/nginx.conf"
        start_bg nginx "$RD/proxy.log" taskset -c 0 nginx -p "$RD" -c "$CONF" -e "$RD/nginx-error.log" ;;
    haproxy)
        fill "$HERE/haproxy.cfg.in" "$RD/haproxy.cfg"
        CONF="$RD/haproxy.cfg"
        start_bg haproxy "$RD/proxy.log" taskset -c 0 haproxy -db -f "$CONF" ;;
    nghttpx)
        fill "$HERE/nghttpx.conf.in" "$RD/nghttpx.conf"
        CONF="$RD/nghttpx.conf"
        start_bg nghttpx "$RD/proxy.log" taskset -c 0 nghttpx --conf="$CONF" ;;
    esac
    TGT_PID=$LAST_PID
    [ -f "$RUN_DIR/configs/$t.conf" ] || { mkdir -p "$RUN_DIR/configs"; cp "$CONF" "$RUN_DIR/configs/$t.conf"; }
    local i code
    for ((i = 0; i < 100; i++)); do
        kill -0 "$TGT_PID" 2>/dev/null || break
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$PORT/v1/models" 2>/dev/null)
        [ "$code" = 200 ] && return 0
        sleep 0.1
    done
    RUN_ERR="$t did not become ready on port $PORT (last status ${code:-none}): $(tail -5 "$RD/proxy.log" "$RD"/*error.log 2>/dev/null | tr '\n' ' ')"
    return 1
}

stop_run() {
    [ -n "${TGT_PID:-}" ] && stop_group "$TGT_PID" 8
    [ -n "${SIM_PID:-}" ] && stop_group "$SIM_PID" 3
    TGT_PID=""; SIM_PID=""
}

snap() { "$PY" "$PROC" snap "proxy=${TGT_PID:-}" "sim=${SIM_PID:-}" >"$1" 2>/dev/null; }

# warn/error lines of the proxy's own log (sluice: stderr; nginx/nghttpx: error log)
log_tail() {
    cat "$RD/proxy.log" "$RD"/*error.log 2>/dev/null | grep -v '^\s*$' |
        grep -iv 'notice\|^\[NOTICE\]' | tail -20 >"$RD/log_tail.txt"
}

# wait_quiet: the machine is shared; wait (bounded) until no foreign load
# is on either CPU before a run. Sets QUIET_BEFORE ("cpu0=.. cpu1=..") and
# QUIET_WAIT (seconds waited).
wait_quiet() {
    QUIET_WAIT=0
    QUIET_BEFORE=$("$PY" "$PROC" busy 1)
    [ "$QUIET_PCT" = 0 ] && return 0
    local b0 b1
    while :; do
        b0=$(sed 's/.*cpu0=\([0-9]*\).*/\1/' <<<"$QUIET_BEFORE")
        b1=$(sed 's/.*cpu1=\([0-9]*\).*/\1/' <<<"$QUIET_BEFORE")
        [ "${b0:-0}" -lt "$QUIET_PCT" ] && [ "${b1:-0}" -lt "$QUIET_PCT" ] && return 0
        if [ "$QUIET_WAIT" -ge 30 ] || [ "$QUIET_WAITED" -ge "$QUIET_BUDGET_S" ]; then
            log "  CPUs still busy ($QUIET_BEFORE) after ${QUIET_WAIT}s; running anyway"
            return 0
        fi
        [ "$QUIET_WAIT" = 0 ] && log "  CPUs busy ($QUIET_BEFORE); waiting for quiet"
        sleep 1
        QUIET_WAIT=$((QUIET_WAIT + 2)); QUIET_WAITED=$((QUIET_WAITED + 2))
        QUIET_BEFORE=$("$PY" "$PROC" busy 1)
    done
}

RECORDS="$RUN_DIR/runs.jsonl"
: >"$RECORDS"
RUN_N=0
SKIPPED=0

# run_one TARGET SCENARIO SUB REP
run_one() {
    local t=$1 sc=$2 sub=$3 rep=$4
    RUN_N=$((RUN_N + 1))
    local elapsed=$(( $(date +%s) - T_START ))
    RD="$RUN_DIR/runs/s$sc-$sub-$t-r$rep"
    mkdir -p "$RD"
    if [ "$elapsed" -ge "$BUDGET_S" ]; then
        SKIPPED=$((SKIPPED + 1))
        "$PY" "$PROC" record target="$t" scenario="$sc" sub="$sub" rep="$rep" \
            error="skipped: time budget of ${BUDGET_S}s spent" >>"$RECORDS"
        return
    fi
    RUN_ERR=""; TGT_PID=""; SIM_PID=""; PORT=""; CONF=""
    local simargs=() loadrc=0 t0 t1 cmd=""
    case "$sc" in
    1) simargs=(--ttft-ms "$S1_TTFT" --itl-ms "$S1_ITL" --tokens "$S1_TOKENS") ;;
    2) simargs=(--ttft-ms 20 --itl-ms 0 --tokens "$S2_TOKENS") ;;
    3) simargs=(--ttft-ms 20 --itl-ms "$S3_ITL" --tokens "$S3_TOKENS") ;;
    4) simargs=() ;;
    esac
    log "run $RUN_N: scenario $sc ($sub) target $t rep $rep"
    wait_quiet
    if start_llmsim "${simargs[@]}" && start_target "$t"; then
        local url="http://127.0.0.1:$PORT"
        # Warm-up for the relay scenarios: one stream per connection of the
        # coming run, so that backend pools are filled and the measured run
        # shows steady state (the cold first wave is kept as "warm.json").
        case "$sc" in
        1) run_bounded 60 taskset -c 1 "$LLMLOAD" -c "$sub" --once --ramp "$S1_RAMP" --timeout 30 \
               --json "$RD/warm.json" "$url" >"$RD/warm.out" 2>&1 ;;
        2) run_bounded 60 taskset -c 1 "$LLMLOAD" -c "$S2_STREAMS" --once --timeout 30 \
               --json "$RD/warm.json" "$url" >"$RD/warm.out" 2>&1 ;;
        esac
        sleep 0.3
        snap "$RD/pre.json"
        t0=$(date +%s.%N)
        case "$sc" in
        1)
            cmd="llmload -c $sub -d $S1_DUR --ramp $S1_RAMP --verify --expect-tokens $S1_TOKENS --timeout 30 --grace 15"
            run_bounded $((S1_DUR + 60)) taskset -c 1 "$LLMLOAD" -c "$sub" -d "$S1_DUR" --ramp "$S1_RAMP" \
                --verify --expect-tokens "$S1_TOKENS" --timeout 30 --grace 15 \
                --json "$RD/load.json" "$url" >"$RD/load.out" 2>&1
            loadrc=$? ;;
        2)
            cmd="llmload -c $S2_STREAMS -d $S2_DUR --timeout 60 --grace 30"
            run_bounded $((S2_DUR + 60)) taskset -c 1 "$LLMLOAD" -c "$S2_STREAMS" -d "$S2_DUR" \
                --timeout 60 --grace 30 --json "$RD/load.json" "$url" >"$RD/load.out" 2>&1
            loadrc=$? ;;
        3)
            cmd="llmload -c $sub --once --ramp $S3_RAMP --timeout $S3_TIMEOUT --max-connecting 2000"
            "$PY" "$PROC" sample "$RD/peak.json" 0.5 "http://127.0.0.1:$SIM_PORT/stats" \
                ${TGT_PID:-$SIM_PID} >/dev/null 2>&1 &
            SAMPLER_PID=$!
            run_bounded $((S3_RAMP + S3_TIMEOUT + 30)) taskset -c 1 "$LLMLOAD" -c "$sub" --once \
                --ramp "$S3_RAMP" --timeout "$S3_TIMEOUT" --max-connecting 2000 \
                --json "$RD/load.json" "$url" >"$RD/load.out" 2>&1
            loadrc=$?
            kill -TERM "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null; SAMPLER_PID="" ;;
        4)
            cmd="h2load -p http/1.1 -c $S4_CONNS -t 1 -D $S4_DUR $url/v1/models"
            children_cpu "$RD/h2load.cpu0"
            run_bounded $((S4_DUR + 30)) taskset -c 1 h2load -p http/1.1 \
                -c "$S4_CONNS" -t 1 -D "$S4_DUR" "$url/v1/models" >"$RD/h2load.out" 2>&1
            loadrc=$?
            children_cpu "$RD/h2load.cpu1"
            "$PY" "$PROC" h2load "$RD/h2load.out" >"$RD/h2load.json"
            awk -v a="$(cat "$RD/h2load.cpu0")" -v b="$(cat "$RD/h2load.cpu1")" \
                'BEGIN { printf "{\"cpu_s\": %.3f}\n", b - a }' >"$RD/h2load_cpu.json" ;;
        esac
        t1=$(date +%s.%N)
        snap "$RD/post.json"
        [ "$loadrc" -ge 124 ] && RUN_ERR="load timed out (rc $loadrc)"
        if [ "$t" = sluice ]; then
            "$PY" "$PROC" metrics "http://127.0.0.1:$ADMIN_PORT/metrics" sluice_requests_total \
                sluice_tokens_total sluice_upstream_connects_total sluice_upstream_reused_total \
                sluice_upstream_errors_total sluice_upstream_retries_total sluice_upstream_cancellations_total \
                sluice_slow_consumers_total sluice_recv_buffer_exhausted_total sluice_slab_waits_total \
                sluice_connections_total sluice_workers >"$RD/metrics.json" 2>/dev/null
        fi
        kill -0 "${TGT_PID:-$SIM_PID}" 2>/dev/null || RUN_ERR="${RUN_ERR:+$RUN_ERR; }$t exited during the run"
    fi
    log_tail
    stop_run
    "$PY" "$PROC" record target="$t" scenario="$sc" sub="$sub" rep="$rep" \
        wall_s="$(awk -v a="${t0:-0}" -v b="${t1:-0}" 'BEGIN { printf "%.3f", b - a }')" \
        load_rc="$loadrc" cmd="$cmd" error="$RUN_ERR" \
        quiet_before="$QUIET_BEFORE" quiet_wait_s="$QUIET_WAIT" %log_tail="$RD/log_tail.txt" \
        @load="$RD/load.json" @warm="$RD/warm.json" @pre="$RD/pre.json" @post="$RD/post.json" @peak="$RD/peak.json" \
        @h2load="$RD/h2load.json" @h2load_cpu="$RD/h2load_cpu.json" @metrics="$RD/metrics.json" \
        >>"$RECORDS" || log "could not write the record of $RD"
    [ -n "$RUN_ERR" ] && log "  $t: $RUN_ERR"
    if [ -f "$RD/load.out" ] && grep -q "violation" "$RD/load.out"; then
        grep -m3 "violation\|verify" "$RD/load.out" | sed 's/^/  /' >&2
    fi
}

# --- the sweeps -------------------------------------------------------------
IFS=, read -r -a SCEN_LIST <<<"$ONLY"
log "targets: ${TARGET_LIST[*]}; scenarios: ${SCEN_LIST[*]}; $REPS sweep(s); run dir $RUN_DIR"
for ((rep = 1; rep <= REPS; rep++)); do
    for sc in "${SCEN_LIST[@]}"; do
        case "$sc" in
        1) subs=$S1_CONC ;;
        2) subs=$S2_STREAMS ;;
        3) subs=$S3_STREAMS ;;
        4) subs=$S4_CONNS ;;
        *) die "unknown scenario $sc" ;;
        esac
        for sub in $subs; do
            for t in "${TARGET_LIST[@]}"; do
                run_one "$t" "$sc" "$sub" "$rep"
            done
        done
    done
done

# --- results ----------------------------------------------------------------
T_END=$(date +%s)
log "sweeps done in $((T_END - T_START)) s ($SKIPPED run(s) skipped)"
"$PY" "$PROC" record loadavg_end="$(cut -d' ' -f1-3 /proc/loadavg)" duration_s="$((T_END - T_START))" \
    skipped="$SKIPPED" quiet_waited_s="$QUIET_WAITED" quiet_pct="$QUIET_PCT" >"$RUN_DIR/end.json"
cat >"$RUN_DIR/params.json" <<EOF
{"s1": {"ttft_ms": $S1_TTFT, "itl_ms": $S1_ITL, "tokens": $S1_TOKENS, "duration_s": $S1_DUR, "ramp_s": $S1_RAMP, "conc": "$S1_CONC"},
 "s2": {"streams": $S2_STREAMS, "tokens": $S2_TOKENS, "itl_ms": 0, "duration_s": $S2_DUR},
 "s3": {"streams": $S3_STREAMS, "ramp_s": $S3_RAMP, "tokens": $S3_TOKENS, "itl_ms": $S3_ITL, "hold_s": $S3_HOLD, "timeout_s": $S3_TIMEOUT},
 "s4": {"connections": $S4_CONNS, "duration_s": $S4_DUR},
 "llmsim": "llmsim --listen 127.0.0.1:0 --keepalive-timeout 0 --max-batch 20000 (+ per scenario --ttft-ms/--itl-ms/--tokens)",
 "pinning": "proxy: taskset -c 0 (one worker/thread); llmsim, llmload, h2load, this script: taskset -c 1"}
EOF
if [ "$WRITE_RESULTS" = 1 ]; then
    mkdir -p "$OUT_DIR"
    "$PY" "$HERE/summarize.py" --run-dir "$RUN_DIR" --out "$OUT_DIR/compare-$STAMP" || die "summarize failed"
    log "results: $OUT_DIR/compare-$STAMP.md and .json"
else
    "$PY" "$HERE/summarize.py" --run-dir "$RUN_DIR" --out "$RUN_DIR/compare-$STAMP" && cat "$RUN_DIR/compare-$STAMP.md"
fi
