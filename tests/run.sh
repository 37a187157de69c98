#!/usr/bin/env bash
# The test command: installs what the build needs (Debian 12), builds
# everything with clang, AddressSanitizer and UndefinedBehaviorSanitizer,
# and runs every test (unit, integration, fuzz, source checks) with
# `meson test`.  Usage: ./tests/run.sh [meson test arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential clang libclang-rt-14-dev meson ninja-build pkg-config
      liburing-dev libnghttp2-dev libwolfssl-dev libinih-dev libcriterion-dev
      libwslay-dev libjansson-dev nghttp2-client curl python3 python3-h2 cppcheck
      clang-format iproute2 procps openssl)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "tests/run.sh: installing ${missing[*]}"
    SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The JS client test (tests/integration/test_js_clients.py) runs the npm
# packages `ollama` and `openai`, pinned in tests/js/package-lock.json, on
# Node.js.  Without node or the npm registry it skips; the rest still runs.
if ! command -v node >/dev/null 2>&1; then
    echo "tests/run.sh: installing nodejs npm"
    SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    { $SUDO apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm; } ||
        echo "tests/run.sh: WARNING: could not install nodejs npm; test_js_clients will be skipped" >&2
fi
if command -v npm >/dev/null 2>&1; then
    (cd tests/js && timeout 300 npm ci --no-audit --no-fund --prefer-offline) ||
        echo "tests/run.sh: WARNING: npm ci in tests/js failed (no npm registry?);" \
             "test_js_clients will be skipped" >&2
else
    echo "tests/run.sh: WARNING: npm not found; test_js_clients will be skipped" >&2
fi

BUILD=${BUILD:-build-test}
if [ ! -f "$BUILD/build.ninja" ]; then
    CC=clang meson setup "$BUILD" -Db_sanitize=address,undefined -Db_lundef=false \
        -Dfuzz=enabled --buildtype=debugoptimized
fi
ninja -C "$BUILD"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec meson test -C "$BUILD" --print-errorlogs --num-processes 2 "$@"
