#!/usr/bin/env bash
# Runs one libFuzzer target inside `meson test`: first every saved
# regression input once, then a short fuzzing session from the seed corpus.
# usage: run_fuzz.sh BINARY SEED_DIR REGRESS_DIR WORK_DIR SECONDS
set -euo pipefail
bin=$1 seeds=$2 regress=$3 work=$4 secs=$5
mkdir -p "$work"
shopt -s nullglob
inputs=("$regress"/*)
# libFuzzer's own failure status is 77, which meson reads as "skipped": a
# finding must fail the test, so it exits 1 instead.
if [ ${#inputs[@]} -gt 0 ]; then
    "$bin" -error_exitcode=1 -runs=1 "${inputs[@]}"
fi
exec "$bin" -error_exitcode=1 -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "$work" "$seeds"
