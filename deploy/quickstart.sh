#!/usr/bin/env bash
# quickstart: on a fresh Debian 12 machine, install what sluice needs, build
# it, start the bundled backend simulator (llmsim, imitating vLLM on :8000)
# and sluice in front of it (clients on :8080, admin on 127.0.0.1:9090), and
# stream one chat completion through sluice to this terminal.
#
#   ./deploy/quickstart.sh          start everything and stream a completion
#   ./deploy/quickstart.sh stop     stop what the quickstart started
#
# Ports can be moved with SLUICE_PORT, SLUICE_ADMIN_PORT and LLMSIM_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUN=${SLUICE_QUICKSTART_DIR:-/tmp/sluice-quickstart}
PORT=${SLUICE_PORT:-8080}
ADMIN_PORT=${SLUICE_ADMIN_PORT:-9090}
SIM_PORT=${LLMSIM_PORT:-8000}

stop() {
    for name in sluice llmsim; do
        if [ -f "$RUN/$name.pid" ]; then
            pid=$(cat "$RUN/$name.pid")
            if kill -0 "$pid" 2>/dev/null; then
                kill -TERM "$pid"
                for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
                echo "stopped $name (pid $pid)"
            fi
            rm -f "$RUN/$name.pid"
        fi
    done
}

if [ "${1:-}" = "stop" ]; then
    stop
    exit 0
fi

PKGS=(build-essential meson ninja-build pkg-config liburing-dev libnghttp2-dev
      libwolfssl-dev libinih-dev libcriterion-dev libwslay-dev libjansson-dev
      curl python3)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

echo "== building (build-release/)"
[ -f build-release/build.ninja ] || meson setup build-release --buildtype=release >/dev/null
ninja -C build-release >/dev/null

stop >/dev/null 2>&1 || true
mkdir -p "$RUN"
for p in "$PORT" "$ADMIN_PORT" "$SIM_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        echo "quickstart: port $p is already in use; set SLUICE_PORT / SLUICE_ADMIN_PORT / LLMSIM_PORT" >&2
        exit 1
    fi
done

cat > "$RUN/sluice.ini" <<INI
; written by deploy/quickstart.sh
[server]
listen = 0.0.0.0:$PORT
admin_listen = 127.0.0.1:$ADMIN_PORT
control_socket = $RUN/control.sock
state_dir = $RUN/state
workers = auto

[backend llmsim]
url = http://127.0.0.1:$SIM_PORT
kind = openai
INI

echo "== starting llmsim on 127.0.0.1:$SIM_PORT (a vLLM imitation: 40 ms per token)"
build-release/perf/llmsim/llmsim --listen "127.0.0.1:$SIM_PORT" --itl-ms 40 --ttft-ms 150 \
    --tokens 60 --quiet >"$RUN/llmsim.log" 2>&1 &
echo $! >"$RUN/llmsim.pid"
echo "== starting sluice on :$PORT (config $RUN/sluice.ini, log $RUN/sluice.log)"
build-release/supervisor/sluice --config "$RUN/sluice.ini" >"$RUN/sluice.log" 2>&1 &
echo $! >"$RUN/sluice.pid"

for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
if ! curl -fs "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null; then
    echo "quickstart: sluice did not become ready; see $RUN/sluice.log" >&2
    tail -20 "$RUN/sluice.log" >&2
    exit 1
fi

echo "== streaming a chat completion through sluice (raw server-sent events):"
echo
curl -sN "http://127.0.0.1:$PORT/v1/chat/completions" \
    -H 'Content-Type: application/json' \
    -d '{"model":"llmsim-1","stream":true,"max_tokens":40,
         "messages":[{"role":"user","content":"Say something, one token at a time."}]}'
echo
cat <<TXT
== sluice is running
   clients:  http://127.0.0.1:$PORT/v1/chat/completions  (OpenAI API)
   metrics:  curl -s http://127.0.0.1:$ADMIN_PORT/metrics
   status:   curl -s http://127.0.0.1:$ADMIN_PORT/status
   CLI:      build-release/supervisor/sluicectl --socket $RUN/control.sock status
             (top, rollout show, rollout set adaptive_governor 100, rollback, limits, tenants)
   logs:     $RUN/sluice.log, $RUN/llmsim.log
   stop:     ./deploy/quickstart.sh stop
TXT
