#!/usr/bin/env bash
# Throughput of svlog against s6-log and runit's svlogd: LINES lines of 100 bytes (default
# 1,000,000) piped through `T s1000000 n20 DIR` (svlogd: -tt and a config file with s1000000
# and n20). Prints wall time and CPU seconds (user+sys) of the whole pipeline, best of RUNS.
# Usage: bench/svlog.sh [PATH_TO_SVLOG]   (default: the one release.sh built)
set -euo pipefail
cd "$(dirname "$0")/.."
machine=$(uname -m)
svlog=${1:-${CARGO_TARGET_DIR:-target}/$machine-unknown-linux-musl/release/svlog}
lines=${LINES_COUNT:-1000000}
runs=${RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1,000,000 lines of 99 characters and a newline
awk -v n="$lines" 'BEGIN { pad = sprintf("%91s", ""); gsub(/ /, "x", pad); for (i = 0; i < n; i++) printf "%07d %s\n", i, pad }' > "$work/input"
echo "input: $(wc -l < "$work/input") lines, $(wc -c < "$work/input") bytes"

measure() { # NAME DIR COMMAND...
  local name=$1 dir=$2 best=""
  shift 2
  for _ in $(seq "$runs"); do
    rm -rf "$dir"
    if [ "$name" = svlogd ]; then mkdir -p "$dir" && printf 's1000000\nn20\n' > "$dir/config"; fi
    local t
    t=$( { /usr/bin/time -f '%e %U %S' bash -c 'cat "$1" | "${@:2}"' bash "$work/input" "$@" ; } 2>&1 >/dev/null | tail -n 1)
    local wall cpu
    wall=$(echo "$t" | awk '{print $1}')
    cpu=$(echo "$t" | awk '{printf "%.2f", $2 + $3}')
    if [ -z "$best" ] || awk -v a="$wall" -v b="${best%% *}" 'BEGIN { exit !(a < b) }'; then best="$wall $cpu"; fi
  done
  local kept
  kept=$( (cat "$dir"/@* "$dir"/current 2>/dev/null || true) | wc -l)
  local files
  files=$(ls "$dir" | grep -c -e '^@' -e '^current$' || true)
  printf '%-8s wall %5ss  cpu %5ss  (%d files, %d lines kept)\n' "$name" "${best%% *}" "${best##* }" \
    "$files" "$kept"
}

measure svlog "$work/svlog" "$svlog" T s1000000 n20 "$work/svlog"
if command -v s6-log >/dev/null; then measure s6-log "$work/s6-log" s6-log T s1000000 n20 "$work/s6-log"; fi
if command -v svlogd >/dev/null; then measure svlogd "$work/svlogd" svlogd -tt "$work/svlogd"; fi
