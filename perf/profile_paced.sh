#!/usr/bin/env bash
# perf/profile_paced.sh -- where a proxy's CPU goes in the paced relay of
# compare.sh (TTFT 20 ms, a token every 20 ms, 50 tokens, C streams):
# samples the proxy's core with `perf record -e cpu-clock -g` while the load
# runs and splits every sample into the kernel's TCP work for the bytes
# relayed (the same for any proxy: send, the peer's receive that loopback
# runs in the sender's softirq, receive, ACKs) and what the proxy's design
# controls (event waits, syscall and io_uring/epoll overhead, its own code).
# See perf/compare/stackcat.py for the categories.
#
# Each proxy: one worker, `taskset -c 0`; llmsim and llmload on CPU 1.
# Targets run in turn, the sweep repeated; medians per target.
#
# usage: perf/profile_paced.sh [--targets sluice,haproxy,nginx,nghttpx] [--conc 1000]
#                              [--reps 3] [--seconds 4] [--build-dir DIR]
#                              [--out DIR] [--no-results]
#   A target "sluice:KEY=VALUE+KEY=VALUE" runs sluice with those [server] keys set
#   (e.g. sluice:batch_wait_us=300), so variants are compared in one run.
# Needs: perf (linux-perf), root or kernel.perf_event_paranoid <= 0 for
# kernel call graphs, kernel.kptr_restrict = 0 for kernel symbols.
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE="$ROOT/perf/compare"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
TARGETS="sluice,haproxy,nginx,nghttpx"
CONC=1000
REPS=3
SECS=4
BUILD_DIR="$ROOT/build-release"
OUT_DIR="$ROOT/perf/results"
WRITE=1
while [ $# -gt 0 ]; do
    case "$1" in
    --targets) TARGETS=$2; shift ;;
    --conc) CONC=$2; shift ;;
    --reps) REPS=$2; shift ;;
    --seconds) SECS=$2; shift ;;
    --build-dir) BUILD_DIR=$(cd "$2" && pwd); shift ;;
    --out) OUT_DIR=$2; shift ;;
    --no-results) WRITE=0 ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "profile_paced.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

log() { printf '[profile %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
command -v perf >/dev/null || die "perf not installed (apt-get install linux-perf)"
SLUICE="$BUILD_DIR/supervisor/sluice"
LLMSIM="$BUILD_DIR/perf/llmsim/llmsim"
LLMLOAD="$BUILD_DIR/perf/loadgen/llmload"
for b in "$SLUICE" "$LLMSIM" "$LLMLOAD"; do [ -x "$b" ] || die "$b missing (meson setup build-release --buildtype=release && ninja -C build-release)"; done
[ "$(nproc --all)" -ge 2 ] || die "needs 2 CPUs"

RUN_DIR=$(mktemp -d /tmp/sluice-profile.XXXXXX)
PGS=()
cleanup() {
    for pg in "${PGS[@]}"; do kill -TERM -- "-$pg" 2>/dev/null; done
    sleep 0.5
    for pg in "${PGS[@]}"; do kill -KILL -- "-$pg" 2>/dev/null; done
    rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
taskset -pc 1 $$ >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -Hn); [ "$NOFILE" = unlimited ] && NOFILE=1048576
HAPROXY_MAXCONN=$(( (NOFILE - 64) / 2 )); [ "$HAPROXY_MAXCONN" -gt 20000 ] && HAPROXY_MAXCONN=20000

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_one() {   # run_one TARGET REP -> appends a JSON line to $RUN_DIR/rows
    local t=$1 rep=$2
    local RD="$RUN_DIR/$t-$rep" comm
    mkdir -p "$RD"
    setsid taskset -c 1 "$LLMSIM" --listen 127.0.0.1:0 --port-file "$RD/sim.port" \
        --keepalive-timeout 0 --max-batch 20000 --ttft-ms 20 --itl-ms 20 --tokens 50 --quiet \
        >"$RD/sim.log" 2>&1 </dev/null &
    PGS+=($!)
    local i
    for ((i = 0; i < 50; i++)); do [ -s "$RD/sim.port" ] && break; sleep 0.1; done
    local SIM_PORT PORT ADMIN_PORT
    SIM_PORT=$(cat "$RD/sim.port"); PORT=$(free_port); ADMIN_PORT=$(free_port)
    fill() { sed -e "s|@LISTEN_PORT@|$PORT|g; s|@BACKEND_PORT@|$SIM_PORT|g; s|@ADMIN_PORT@|$ADMIN_PORT|g" \
                 -e "s|@RUN_DIR@|$RD|g; s|@HAPROXY_MAXCONN@|$HAPROXY_MAXCONN|g" "$1" >"$2"; }
    case $t in
    sluice*)
        comm=sluice
        mkdir -p "$RD/sluice-state"
        fill "$HERE/sluice.ini.in" "$RD/conf"
        if [[ $t == sluice:* ]]; then
            local kv lines=""
            local keys=${t#sluice:}
            for kv in ${keys//+/ }; do lines+="${kv%%=*} = ${kv#*=}\n"; done
            $PY - "$RD/conf" "$lines" <<'PYEOF'
import sys
p, extra = sys.argv[1], sys.argv[2].replace("\\n", "\n")
s = open(p).read().replace("[server]\n", "[server]\n" + extra, 1)
open(p, "w").write(s)
PYEOF
        fi
        setsid taskset -c 0 "$SLUICE" --config "$RD/conf" >"$RD/proxy.log" 2>&1 </dev/null & ;;
    nginx)
        comm=nginx
        mkdir -p "$RD/nginx-body" "$RD/nginx-proxy" "$RD/nginx-fastcgi" "$RD/nginx-uwsgi" "$RD/nginx-scgi"
        fill "$HERE/nginx.conf.in" "$RD/conf"
        setsid taskset -c 0 nginx -p "$RD" -c "$RD/conf" -e "$RD/nginx-error.log" >"$RD/proxy.log" 2>&1 </dev/null & ;;
    haproxy)
        comm=haproxy
        fill "$HERE/haproxy.cfg.in" "$RD/conf"
        setsid taskset -c 0 haproxy -db -f "$RD/conf" >"$RD/proxy.log" 2>&1 </dev/null & ;;
    nghttpx)
        comm=nghttpx
        fill "$HERE/nghttpx.conf.in" "$RD/conf"
        setsid taskset -c 0 nghttpx --conf="$RD/conf" >"$RD/proxy.log" 2>&1 </dev/null & ;;
    *) die "unknown target $t" ;;
    esac
    local PG=$!
    PGS+=("$PG")
    for ((i = 0; i < 100; i++)); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$PORT/v1/models")" = 200 ] && break
        sleep 0.1
    done
    local url="http://127.0.0.1:$PORT/v1/chat/completions"
    timeout 60 "$LLMLOAD" -c "$CONC" --once --ramp 1 --timeout 30 "$url" >/dev/null 2>&1
    local dur=$((SECS + 4))
    timeout $((dur + 60)) "$LLMLOAD" -c "$CONC" -d "$dur" --ramp 1 --timeout 30 --grace 15 \
        --json "$RD/load.json" "$url" >/dev/null 2>&1 &
    local L=$!
    sleep 2
    perf record -q -e cpu-clock -F 4000 -C 0 -g -o "$RD/perf.data" -- sleep "$SECS" >/dev/null 2>&1
    wait "$L"
    perf script -i "$RD/perf.data" -F comm,ip,sym 2>/dev/null >"$RD/perf.txt"
    local tps
    tps=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["tokens_per_s"])' "$RD/load.json")
    local name=$t
    $PY "$HERE/stackcat.py" "$RD/perf.txt" "$comm" "$($PY -c "print($tps * $SECS)")" |
        $PY -c 'import json,sys; d=json.load(sys.stdin); d.update(target=sys.argv[1], rep=int(sys.argv[2]), tokens_per_s=float(sys.argv[3])); print(json.dumps(d))' \
            "$name" "$rep" "$tps" >>"$RUN_DIR/rows"
    kill -TERM -- "-$PG" 2>/dev/null
    for ((i = 0; i < 50; i++)); do kill -0 -- "-$PG" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$PG" 2>/dev/null
    kill -TERM -- "-${PGS[-2]}" 2>/dev/null
    rm -f "$RD/perf.data" "$RD/perf.txt"
    log "$name rep $rep: $(tail -1 "$RUN_DIR/rows" | $PY -c 'import json,sys; d=json.load(sys.stdin); print("%.2f us/token (tcp %.2f, proxy %.2f), %.0f tokens/s" % (d["us_per_token_total"], d["us_per_token_tcp"], d["us_per_token_proxy"], d["tokens_per_s"]))')"
}

IFS=' ' read -r -a TL <<<"${TARGETS//,/ }"
for ((r = 1; r <= REPS; r++)); do
    for t in "${TL[@]}"; do run_one "$t" "$r"; done
done

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
REPORT=$($PY - "$RUN_DIR/rows" "$CONC" "$SECS" "$(uname -r)" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
conc, secs, kernel = sys.argv[2], sys.argv[3], sys.argv[4]
cats = ["tcp_send", "tcp_send_peer_rx", "tcp_recv_ack", "tcp_recv", "softirq", "event_wait",
        "syscall_kernel", "user"]
targets = []
for r in rows:
    if r["target"] not in targets:
        targets.append(r["target"])
med = {}
for t in targets:
    rs = [r for r in rows if r["target"] == t]
    m = {c: statistics.median(r["us_per_token"][c] for r in rs) for c in cats}
    m["total"] = statistics.median(r["us_per_token_total"] for r in rs)
    m["tcp"] = statistics.median(r["us_per_token_tcp"] for r in rs)
    m["proxy"] = statistics.median(r["us_per_token_proxy"] for r in rs)
    m["tps"] = statistics.median(r["tokens_per_s"] for r in rs)
    m["n"] = len(rs)
    med[t] = m
peers = [t for t in targets if not t.startswith("sluice")]
print("# Where the CPU goes: paced relay, %s streams\n" % conc)
print("`perf/profile_paced.sh`: `perf record -e cpu-clock -F 4000 -C 0 -g` for %s s while %s "
      "paced streams (TTFT 20 ms, a token every 20 ms, 50 tokens) run through each proxy "
      "(one worker, CPU 0; llmsim and llmload on CPU 1); kernel %s. Microseconds of the "
      "proxy's CPU per token relayed, medians of %d run(s) per target; categories in "
      "`perf/compare/stackcat.py`.\n" % (secs, conc, kernel, min(m["n"] for m in med.values())))
head = ["target", "tokens/s", "total", "tcp send", "peer rx (loopback)", "recv ACK", "tcp recv",
        "= kernel TCP", "softirq", "event wait", "syscall/kernel", "user", "= proxy's own"]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for t in targets:
    m = med[t]
    cells = [t, "%.0f" % m["tps"], "%.2f" % m["total"]] + ["%.2f" % m[c] for c in cats[:4]] + \
        ["**%.2f**" % m["tcp"]] + ["%.2f" % m[c] for c in cats[4:]] + ["**%.2f**" % m["proxy"]]
    print("| " + " | ".join(cells) + " |")
if peers:
    best = min(peers, key=lambda t: med[t]["total"])
    bestown = min(peers, key=lambda t: med[t]["proxy"])
    print()
    for t in targets:
        if t.startswith("sluice"):
            print("- %s: total %.2f us/token = %.2f x %s (best peer by total); own %.2f us/token "
                  "= %.2f x %s (best peer by own); kernel TCP %.2f vs %.2f." % (
                      t, med[t]["total"], med[t]["total"] / med[best]["total"], best,
                      med[t]["proxy"], med[t]["proxy"] / med[bestown]["proxy"], bestown,
                      med[t]["tcp"], med[best]["tcp"]))
print("\nRaw rows (one per run):\n")
print("```")
for r in rows:
    print(json.dumps(r))
print("```")
PYEOF
)
echo "$REPORT"
if [ "$WRITE" = 1 ]; then
    mkdir -p "$OUT_DIR"
    echo "$REPORT" >"$OUT_DIR/profile-paced-$STAMP.md"
    log "wrote $OUT_DIR/profile-paced-$STAMP.md"
fi
