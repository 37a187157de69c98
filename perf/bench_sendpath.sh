#!/usr/bin/env bash
# bench_sendpath.sh — builds perf/bench_sendpath.c (gcc -O2, into a temporary
# directory), runs it on loopback and, when this shell may create network
# namespaces, over a veth pair between two namespaces it creates and removes,
# and writes perf/results/sendpath-<date>.txt (tables) and .json.
#
# The sender is pinned to CPU 0 and the receiver to CPU 1.  Every (path,
# size, connections) cell runs REPS times for SECS seconds each after WARM
# seconds of warm-up, the paths interleaved; see the header of the C file.
#
# usage: perf/bench_sendpath.sh            (whole run, about 4.5 minutes)
# env:   SECS=0.4 WARM=0.05 REPS=5 SIZES=64,...,262144 CONNS=1,64 ENV_BUDGET=140
#        ENVS="loopback veth" OUT=perf/results/sendpath-<date>
#        SENDER_CPU=0 RECEIVER_CPU=1
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${SECS:-0.4}
WARM=${WARM:-0.05}
REPS=${REPS:-5}
SIZES=${SIZES:-64,256,1024,4096,16384,65536,262144}
CONNS=${CONNS:-1,64}
ENVS=${ENVS:-loopback veth}
SENDER_CPU=${SENDER_CPU:-0}
RECEIVER_CPU=${RECEIVER_CPU:-1}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$ROOT/perf/results/sendpath-$STAMP}
# Seconds each environment may spend measuring: the sender stops after the
# last whole repetition that fits (and the medians say how many it did); the
# hard timeout is only a backstop.
ENV_BUDGET=${ENV_BUDGET:-140}
ENV_TIMEOUT=$((ENV_BUDGET + 15))

WORK=$(mktemp -d /tmp/bench_sendpath.XXXXXX)
BIN=$WORK/bench_sendpath
NS_SND=slsp-snd-$$
NS_RCV=slsp-rcv-$$
RPID=
NETNS_MADE=0

cleanup() {
    if [ -n "$RPID" ]; then
        kill "$RPID" 2>/dev/null || true
        wait "$RPID" 2>/dev/null || true
    fi
    if [ "$NETNS_MADE" = 1 ]; then
        # Deleting the namespaces removes the veth pair with them.
        ip netns del "$NS_SND" 2>/dev/null || true
        ip netns del "$NS_RCV" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building into $WORK" >&2
gcc -std=gnu17 -O2 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
    -Wvla -Wformat=2 -o "$BIN" "$ROOT/perf/bench_sendpath.c" -luring

json_str() {
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}

NPROC=$(nproc)
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
KERNEL=$(uname -r)
LIBURING=$(dpkg-query -W -f='${Version}' liburing-dev 2>/dev/null || echo unknown)
THP=$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unknown)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# Runs one environment: $1 label, $2 receiver address, $3 receiver netns or
# "", $4 sender netns or "".  Leaves $WORK/$1.txt and $WORK/$1.json.
run_env() {
    local label=$1 addr=$2 rns=$3 sns=$4
    local rx=() sx=()
    [ -n "$rns" ] && rx=(ip netns exec "$rns")
    [ -n "$sns" ] && sx=(ip netns exec "$sns")
    rm -f "$WORK/port"
    "${rx[@]}" "$BIN" recv --addr "$addr" --cpu "$RECEIVER_CPU" --portfile "$WORK/port" &
    RPID=$!
    for _ in $(seq 100); do
        [ -s "$WORK/port" ] && break
        sleep 0.05
    done
    [ -s "$WORK/port" ] || { echo "receiver for $label did not start" >&2; return 1; }
    timeout "$ENV_TIMEOUT" "${sx[@]}" "$BIN" send --addr "$addr" --port "$(cat "$WORK/port")" \
        --cpu "$SENDER_CPU" --secs "$SECS" --warm "$WARM" --reps "$REPS" --sizes "$SIZES" \
        --conns "$CONNS" --budget "$ENV_BUDGET" --label "$label" --json "$WORK/$label.json" \
        >"$WORK/$label.txt"
    # The receiver exits once the sender's connections are closed.
    wait "$RPID" || true
    RPID=
}

make_veth() {
    [ "$(id -u)" = 0 ] || { echo "not root" >&2; return 1; }
    ip netns add "$NS_SND" || return 1
    NETNS_MADE=1
    ip netns add "$NS_RCV" || return 1
    ip link add vsnd netns "$NS_SND" type veth peer name vrcv netns "$NS_RCV" || return 1
    ip -n "$NS_SND" addr add 10.213.0.1/30 dev vsnd
    ip -n "$NS_RCV" addr add 10.213.0.2/30 dev vrcv
    ip -n "$NS_SND" link set lo up
    ip -n "$NS_RCV" link set lo up
    ip -n "$NS_SND" link set vsnd up
    ip -n "$NS_RCV" link set vrcv up
}

DONE=()
NOTES=()
for env in $ENVS; do
    case $env in
    loopback)
        run_env loopback 127.0.0.1 "" ""
        DONE+=(loopback)
        ;;
    veth)
        if make_veth; then
            VETH_INFO="veth pair vsnd (netns $NS_SND, 10.213.0.1/30) <-> vrcv (netns $NS_RCV, 10.213.0.2/30), mtu $(ip -n "$NS_SND" -o link show vsnd | sed -n 's/.* mtu \([0-9]*\).*/\1/p')"
            NOTES+=("$VETH_INFO")
            run_env veth 10.213.0.2 "$NS_RCV" "$NS_SND"
            DONE+=(veth)
        else
            NOTES+=("veth: could not create network namespaces or the veth pair; skipped")
            echo "veth skipped" >&2
        fi
        ;;
    *)
        echo "unknown environment $env" >&2
        exit 2
        ;;
    esac
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p "$(dirname "$OUT")"
{
    echo "# bench_sendpath $STAMP"
    echo "machine: nproc $NPROC; cpu $CPU_MODEL; kernel $KERNEL; liburing-dev $LIBURING; THP $THP"
    echo "load average at start: $LOAD_START; at end: $LOAD_END (shared machine)"
    echo "sender pinned to CPU $SENDER_CPU, receiver to CPU $RECEIVER_CPU; $REPS reps x ${SECS}s" \
        "(+${WARM}s warm-up) per cell, paths interleaved"
    for n in "${NOTES[@]}"; do echo "$n"; done
    echo "reproduce: SECS=$SECS WARM=$WARM REPS=$REPS SIZES=$SIZES CONNS=$CONNS ENVS=\"$ENVS\"" \
        "perf/bench_sendpath.sh"
    for env in "${DONE[@]}"; do
        echo
        cat "$WORK/$env.txt"
    done
} >"$OUT.txt"
{
    printf '{"benchmark": "bench_sendpath", "date": %s,\n' "$(json_str "$STAMP")"
    printf ' "machine": {"nproc": %s, "cpu_model": %s, "kernel": %s, "liburing": %s, "thp": %s},\n' \
        "$NPROC" "$(json_str "$CPU_MODEL")" "$(json_str "$KERNEL")" "$(json_str "$LIBURING")" \
        "$(json_str "$THP")"
    printf ' "load_average": {"start": %s, "end": %s},\n' "$(json_str "$LOAD_START")" \
        "$(json_str "$LOAD_END")"
    printf ' "config": {"secs": %s, "warm_secs": %s, "reps": %s, "sizes": [%s], "conns": [%s],' \
        "$SECS" "$WARM" "$REPS" "$SIZES" "$CONNS"
    printf ' "sender_cpu": %s, "receiver_cpu": %s},\n' "$SENDER_CPU" "$RECEIVER_CPU"
    printf ' "notes": ['
    sep=
    for n in "${NOTES[@]}"; do
        printf '%s%s' "$sep" "$(json_str "$n")"
        sep=", "
    done
    printf '],\n "environments": ['
    sep=
    for env in "${DONE[@]}"; do
        printf '%s\n' "$sep"
        cat "$WORK/$env.json"
        sep=","
    done
    printf ']}\n'
} >"$OUT.json"
echo "wrote $OUT.txt and $OUT.json" >&2
