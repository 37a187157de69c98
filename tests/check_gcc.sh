#!/usr/bin/env bash
# The quickstart builds with Debian's default compiler (gcc) while the test
# build uses clang; each warns about things the other does not, and
# -Werror makes any of them a broken quickstart.  This compiles every C
# file of the project with gcc at -O2 and -O3 (some warnings need the
# optimiser) and the project's warning flags, writing nothing.
# Usage: tests/check_gcc.sh [SOURCE_ROOT]
set -uo pipefail
cd "${1:-$(dirname "$0")/..}"
command -v gcc >/dev/null || { echo "gcc not installed: skipped"; exit 77; }
mapfile -t files < <(git ls-files '*.c' 2>/dev/null | grep -v '^tests/fuzz/')
[ ${#files[@]} -gt 0 ] || { echo "no sources found"; exit 1; }
flags=(-std=gnu17 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 '-DSLUICE_VERSION="check"' -I.
       -Wall -Wextra -Werror -fno-strict-aliasing -Wshadow -Wstrict-prototypes
       -Wmissing-prototypes -Wvla -Wformat=2 -Wno-unused-parameter -fstack-protector-strong
       $(pkg-config --cflags liburing libnghttp2 wolfssl inih jansson criterion 2>/dev/null))
status=0
for opt in -O2 -O3; do
    out=$(printf '%s\n' "${files[@]}" |
        xargs -P "$(nproc)" -I{} sh -c 'gcc "$@" -c "{}" -o /dev/null 2>&1 || echo "FAILED: {}"' _ "$opt" "${flags[@]}")
    if [ -n "$out" ]; then
        echo "== gcc $opt:"
        echo "$out"
        status=1
    fi
done
[ $status -eq 0 ] && echo "gcc -O2/-O3 -Werror: ${#files[@]} files compile"
exit $status
