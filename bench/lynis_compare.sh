#!/usr/bin/env bash
# Same-host comparison: `hvguard scan local` against `lynis audit system --quick` (Debian's lynis).
#   bash bench/lynis_compare.sh [repeat]
# Prints each tool's median wall time and the ratio. Lynis writes its own log/report under /var/log
# (its default); hvguard writes nothing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repeat="${1:-5}"
command -v lynis >/dev/null || { echo "lynis is not installed (apt-get install lynis)" >&2; exit 2; }

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
time_it() {
    local t0 t1
    t0=$EPOCHREALTIME
    "$@" >/dev/null 2>&1 || true
    t1=$EPOCHREALTIME
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

hv=() ly=()
for _ in $(seq "$repeat"); do
    hv+=("$(time_it "$root/.venv/bin/hvguard" scan local --format json)")
    ly+=("$(time_it lynis audit system --quick --no-colors)")
done
hv_med=$(printf '%s\n' "${hv[@]}" | median)
ly_med=$(printf '%s\n' "${ly[@]}" | median)
echo "hvguard scan local: median ${hv_med} s (n=$repeat): 36 SS-009 measures, host + every VM"
echo "lynis audit system --quick: median ${ly_med} s (n=$repeat): general host hardening, no VM checks"
awk -v h="$hv_med" -v l="$ly_med" 'BEGIN { printf "ratio lynis/hvguard: %.1f×\n", l / h }'
