#!/usr/bin/env bash
# Benchmarks the image-pull-policy module against two baselines, in warm and fresh mode.
#
#   bench/run.sh
#
# Builds the policy module, bench/baseline-accept, bench/baseline-sdk and policy-host, then
# times `validate` for every request of bench/requests/ (plus a generated 10,000-container Pod)
# with each module, and prints per request and mode the median µs of
#   accept  baseline-accept: answers a constant, never reads the payload (waPC + host floor)
#   sdk     baseline-sdk: parses the payload with the SDK's ValidationRequest<Value>, accepts
#   policy  the image-pull-policy module
# and the added-cost ratio (policy - accept) / (sdk - accept): 1.0 means the policy costs as
# much as parsing the request with the SDK; below 1 it is cheaper than that.
#
# Environment (all optional):
#   POLICY_WASM        module to benchmark as "policy" (default: `make policy.wasm`, the module
#                      as it ships, size-optimised by wasm-opt; when set, nothing is
#                      built for it, e.g. POLICY_WASM=target/wasm32-wasip1/release/baseline_sdk.wasm)
#   POLICY_SETTINGS    settings JSON given to every module (default {})
#   WARM_ITERATIONS    timed warm iterations (default 2000)
#   FRESH_ITERATIONS   timed fresh iterations (default 1000)
#   WARMUP             untimed iterations before each mode (default 50)
#   ROUNDS             rounds over every request, each a new host process (default 5);
#                      figures are the median of the rounds' medians
#   BIG_ITERATIONS     timed iterations, each mode, for the 10,000-container Pod (default 10)
#   BIG_WARMUP         warm-up for the 10,000-container Pod (default 2)
#   BIG_CONTAINERS     containers in the generated Pod (default 10000; 0 skips it)
#   REQUESTS           space-separated request files to use instead of the whole set
#   POLICY_TIMEOUT     seconds; runs with wasmtime epoch interruption like the policy server's
#                      --policy-timeout (default: off, as kwctl)
#   COLD_CACHE_MIB     MiB written through before every call, so that each module runs with cold
#                      caches as in a busy policy server (default 0: off; 32 is past this
#                      machine's last-level cache; see docs/performance.md)
#   SKIP_BUILD=1       use the modules and host already built
#   OUT_DIR            where results go (default target/bench)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

WARM_ITERATIONS="${WARM_ITERATIONS:-2000}"
FRESH_ITERATIONS="${FRESH_ITERATIONS:-1000}"
WARMUP="${WARMUP:-50}"
ROUNDS="${ROUNDS:-5}"
BIG_ITERATIONS="${BIG_ITERATIONS:-10}"
BIG_WARMUP="${BIG_WARMUP:-2}"
BIG_CONTAINERS="${BIG_CONTAINERS:-10000}"
POLICY_SETTINGS="${POLICY_SETTINGS:-{\}}"
OUT_DIR="${OUT_DIR:-$root/target/bench}"
wasm_dir="$root/target/wasm32-wasip1/release"
host="$root/target/host/policy-host"
host_args=(--cold-cache-mib "${COLD_CACHE_MIB:-0}")
if [[ -n "${POLICY_TIMEOUT:-}" ]]; then
  host_args+=(--policy-timeout "$POLICY_TIMEOUT")
fi

for tool in cargo jq; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is required" >&2; exit 1; }
done
mkdir -p "$OUT_DIR"

# --- build -----------------------------------------------------------------------------------
# One cargo invocation per module kind: building the policy together with the baselines would
# unify serde_json's features across them (the policy enables raw_value), and the baselines
# would no longer be the plain SDK.
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  echo "== building" >&2
  if [[ -z "${POLICY_WASM:-}" ]]; then
    make --no-print-directory --silent policy.wasm >/dev/null
  fi
  cargo build --quiet --target wasm32-wasip1 --release -p baseline-accept -p baseline-sdk
  cargo build --quiet -p policy-host --profile host
fi

accept_wasm="$wasm_dir/baseline_accept.wasm"
sdk_wasm="$wasm_dir/baseline_sdk.wasm"
policy_wasm="${POLICY_WASM:-policy.wasm}"
for f in "$accept_wasm" "$sdk_wasm" "$policy_wasm" "$host"; do
  [[ -f "$f" ]] || { echo "run.sh: missing $f (build failed, or SKIP_BUILD=1 without a build)" >&2; exit 1; }
done

# --- requests --------------------------------------------------------------------------------
source bench/requests.bash
bench_requests "$OUT_DIR"

# --- measure ---------------------------------------------------------------------------------
results="$OUT_DIR/results.jsonl"
: > "$results"
status=0
# In one host run the three modules take turns call by call, so noise on the machine touches
# them alike; rounds repeat that in new processes (where wasmtime's memory lands differs from
# process to process), and the report takes, for each figure, the median of the rounds' medians.
for round in $(seq "$ROUNDS"); do
for request in "${requests[@]}"; do
  name="$(basename "$request")"
  if [[ "$request" == "${big:-}" ]]; then
    warm_it="$BIG_ITERATIONS"; fresh_it="$BIG_ITERATIONS"; warmup="$BIG_WARMUP"
  else
    warm_it="$WARM_ITERATIONS"; fresh_it="$FRESH_ITERATIONS"; warmup="$WARMUP"
  fi
  for mode in warm fresh; do
    if [[ "$mode" == warm ]]; then it="$warm_it"; else it="$fresh_it"; fi
    echo "== round $round  $name  $mode  ($it iterations per module)" >&2
    # The host prints one line per module, in the order given: policy, accept, sdk.
    if lines="$("$host" bench "${host_args[@]}" --json --mode "$mode" --iterations "$it" --warmup "$warmup" \
                  --settings-json "$POLICY_SETTINGS" --request-path "$request" "$policy_wasm" \
                  --baseline "$accept_wasm" --baseline "$sdk_wasm")"; then
      jq -sc '["policy", "accept", "sdk"] as $roles | to_entries[] | .value + {role: $roles[.key]}' \
        <<< "$lines" >> "$results"
    else
      echo "run.sh: the benchmark failed on $name ($mode), see above" >&2
      for role in policy accept sdk; do
        jq -nc --arg role "$role" --arg request "$name" --arg mode "$mode" \
          '{role: $role, request: $request, mode: $mode, error: true}' >> "$results"
      done
      status=1
    fi
  done
done
done

# --- report ----------------------------------------------------------------------------------
report="$OUT_DIR/results.txt"
jq -rs --arg accept "$accept_wasm" --arg sdk "$sdk_wasm" --arg policy "$policy_wasm" '
  def fixed($d): ($d | if . == 1 then 10 else 100 end) as $k | (. * $k | round) as $c
    | ($c | if . < 0 then "-" else "" end) + (($c | fabs) / $k | floor | tostring) + "."
      + (($c | fabs) % $k | tostring | if length < $d then ("0" * ($d - length)) + . else . end);
  def fmt: if . == null then "ERR" else fixed(1) end;
  def pad(n): tostring | (" " * ([n - length, 0] | max)) + .;
  def rpad(n): tostring | . + (" " * ([n - length, 0] | max));
  def median: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
  def role($r): map(select(.role == $r)) as $runs
    | ($runs | map(.median_us) | if any(. == null) then null else median end) as $m
    | ($runs[0] // null) | if . == null then null else . + {median_us: $m} end;
  def outcome: if . == null or .error then "ERR"
               elif .allowed | not then "rejected" elif .mutated then "mutated" else "accepted" end;
  . as $all
  | [$all[] | .request] as $order
  | ($order | reduce .[] as $r ([]; if index([$r]) then . else . + [$r] end)) as $requests
  | ("request" | rpad(34)) + ("mode" | rpad(6)) + ("accept µs" | pad(11)) + ("sdk µs" | pad(11))
      + ("policy µs" | pad(11)) + ("added cost" | pad(12)) + "  policy outcome",
    ("-" * 100),
    ( $requests[] as $r | ("warm", "fresh") as $m
      | [$all[] | select(.request == $r and .mode == $m)] as $rows
      | ($rows | role("accept")) as $a
      | ($rows | role("sdk")) as $s
      | ($rows | role("policy")) as $p
      | (if ($a.median_us and $s.median_us and $p.median_us and ($s.median_us - $a.median_us) > 0)
         then (($p.median_us - $a.median_us) / ($s.median_us - $a.median_us) | fixed(2))
         else "n/a" end) as $ratio
      | ($r | rpad(34)) + ($m | rpad(6)) + ($a.median_us | fmt | pad(11)) + ($s.median_us | fmt | pad(11))
          + ($p.median_us | fmt | pad(11)) + ($ratio | pad(12)) + "  " + ($p | outcome)
    ),
    "",
    "added cost = (policy - accept) / (sdk - accept), on medians",
    "",
    "module sizes (bytes):",
    ( [["accept", $accept], ["sdk", $sdk], ["policy", $policy]][] as [$role, $path]
      | ([$all[] | select(.role == $role and .module_bytes != null) | .module_bytes][0]) as $bytes
      | "  " + ($role | rpad(7)) + ($bytes | tostring | pad(9)) + "  " + $path )
' "$results" | tee "$report"

# Memory on the largest request: peak RSS of a host process that evaluates it once in a fresh
# instance; the accept baseline's figure is the host's own share (its copy of the request).
if [[ -n "${big:-}" ]]; then
  echo | tee -a "$report"
  echo "peak RSS, one fresh evaluation of $(basename "$big") (KiB):" | tee -a "$report"
  for role in accept sdk policy; do
    case $role in accept) module=$accept_wasm ;; sdk) module=$sdk_wasm ;; policy) module=$policy_wasm ;; esac
    rss=$("$host" bench --request-path "$big" --settings-json "$POLICY_SETTINGS" --mode fresh \
      --iterations 1 --warmup 0 "$module" | sed -n 's/^peak RSS of this process: \([0-9]*\) KiB$/\1/p')
    printf '  %-7s %9s\n' "$role" "${rss:-ERR}" | tee -a "$report"
  done
fi
echo >&2
echo "raw results: $results; table: $report" >&2
exit "$status"
