#!/usr/bin/env bash
# Writes layout/hot-functions.txt: the module's functions that run on the benchmark's requests,
# as `perf` samples them with cold caches, in the order they are first seen (the one-container
# Pod's first). Needs `perf`, and builds the module (make policy.wasm) and the host.
#
#   layout/profile.sh            # then review and commit layout/hot-functions.txt
#
# Environment: ITERATIONS (default 1500) calls per request; COLD_CACHE_MIB (default 32).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
ITERATIONS="${ITERATIONS:-1500}"
COLD_CACHE_MIB="${COLD_CACHE_MIB:-32}"
command -v perf >/dev/null || { echo "layout/profile.sh needs perf" >&2; exit 1; }

make --no-print-directory --silent policy.wasm host >/dev/null
host="$(make --no-print-directory --silent print-host)"
named="$(ls target/wasm32-wasip1/release/image_pull_policy.named.wasm)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

requests=(pod-one-container deployment-kubectl-apply pod-50-containers cronjob pod-mutated
  pod-rejected-many)
for request in "${requests[@]}"; do
  POLICY_HOST_PERF_MAP=1 perf record -q -F 25000 -o "$work/$request.data" \
    "$host" bench -r "bench/requests/$request.json" --mode fresh --iterations "$ITERATIONS" \
    --cold-cache-mib "$COLD_CACHE_MIB" "$named" >/dev/null 2>&1
  jit="$(perf report -i "$work/$request.data" --sort dso 2>/dev/null |
    grep -o '\[JIT\] tid [0-9]*' | head -n 1)"
  # The module's functions (wasmtime's trampolines and builtins are not in the module), by
  # samples; names without their hash and crate disambiguators, as wasm-layout reads them.
  perf report -i "$work/$request.data" --no-children --sort symbol --dsos "$jit" 2>/dev/null |
    sed -n 's/^ *[0-9.]*% *\[\.\] \(.*\)$/\1/p' | sed 's/ *- *- *$//' |
    grep -v -E '^(wasm\[[0-9]+\]::|signatures\[[0-9]+\]::|wasmtime_builtin)' |
    sed -E 's/::h[0-9a-f]{16}$//; s/\[[0-9a-f]+\]//g' >"$work/$request.txt"
done

{
  echo "# The functions a request runs, put first in the module by wasm-layout (see"
  echo "# docs/performance.md). Written by layout/profile.sh; a name no function has any more is"
  echo "# reported by the build and costs nothing else."
  for request in "${requests[@]}"; do cat "$work/$request.txt"; done | awk '!seen[$0]++'
} >layout/hot-functions.txt
echo "layout/hot-functions.txt: $(grep -vc '^#' layout/hot-functions.txt) functions"
