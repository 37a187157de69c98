#!/usr/bin/env bash
# Source checks run by `meson test`: formatting (clang-format with the root
# .clang-format), functions we do not use (curl's checksrc idea), and
# cppcheck.  Usage: tests/check_source.sh [SOURCE_ROOT]
set -uo pipefail
cd "${1:-$(dirname "$0")/..}"
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null || find shared dataplane controlplane supervisor perf tests -name '*.[ch]')
[ ${#files[@]} -gt 0 ] || { echo "no sources found"; exit 1; }
status=0

if command -v clang-format >/dev/null; then
    if ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/sluice-format.$$; then
        echo "== clang-format: these need formatting (run clang-format -i):"
        grep -oE '^[^: ]+:[0-9]+:[0-9]+: error' /tmp/sluice-format.$$ | cut -d: -f1 | sort -u
        status=1
    fi
    rm -f /tmp/sluice-format.$$
fi

# Unbounded or locale/error-prone calls: use snprintf, memcpy with lengths,
# strtoull with checks.
banned='\b(sprintf|vsprintf|strcpy|strcat|strncpy|strtok|gets|atoi|atol|atoll|atof|sscanf)[[:space:]]*\('
if grep -nE "$banned" "${files[@]}" | grep -v '^[^:]*:[0-9]*:[[:space:]]*\(/\*\|\*\|//\)'; then
    echo "== banned functions used (see docs/CONVENTIONS.md)"
    status=1
fi

if command -v cppcheck >/dev/null; then
    src=()
    for f in "${files[@]}"; do
        case "$f" in tests/*) ;; *.c) src+=("$f") ;; esac
    done
    if ! cppcheck -q --enable=warning,performance,portability --error-exitcode=1 \
        --inline-suppr --suppress=missingIncludeSystem -D__GNUC__ -I. "${src[@]}"; then
        echo "== cppcheck found problems"
        status=1
    fi
fi
[ $status -eq 0 ] && echo "source checks passed (${#files[@]} files)"
exit $status
