#!/usr/bin/env bash
# Benchmarks the image-pull-policy module in the real policy-server, against the two baselines
# loaded in the same server process.
#
#   bench/server.sh
#
# Annotates policy.wasm, bench/baseline-accept and bench/baseline-sdk (the baselines with
# bench/baseline-metadata.yml), starts one policy-server on loopback with the three of them
# (policy ids policy, accept, sdk; the policy allowed to mutate), and for every request of
# bench/requests/ (plus a generated 2,000-container Pod) posts it as an AdmissionReview with wrk
# (bench/server.lua), one module after the other, for at most DURATION seconds and MAX_ANSWERS
# answers a run. Every answer must be HTTP 200 and the same bytes as the first one, whose
# response must equal what `kwctl run` answers for that module, request and settings.
#
# Prints per request and module the answers per second, p50 and p99 latency and errors (median of
# the rounds), the added cost (c_policy − c_accept) / (c_sdk − c_accept) with c = 1 / throughput,
# and the server's peak memory. The goal: at most 0.5 on every accepted request, and no error.
#
# Environment (all optional):
#   DURATION      seconds per run, at most (default 5)
#   MAX_ANSWERS   answers per run and wrk thread, at most (default 200000)
#   ROUNDS        rounds over every request and module; figures are medians (default 3)
#   CONNECTIONS   wrk connections (default 4); THREADS: wrk threads (default 1)
#   WORKERS       policy-server worker threads (default: its own, one per CPU)
#   POLICY_SETTINGS  settings JSON for the three modules (default {})
#   BIG_CONTAINERS   containers in the generated Pod (default 2000, about 1.7 MB: policy-server
#                    refuses a body over 2 MiB with HTTP 413; 0 skips it)
#   REQUESTS      space-separated request files instead of the whole set
#   SKIP_BUILD=1  use the modules already built
#   OUT_DIR       where results go (default target/bench/server)
# kwctl and policy-server are found as for the tests (KWCTL / POLICY_SERVER, PATH,
# ../shared/kubewarden/bin).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source tests/lib/kubewarden.bash

DURATION="${DURATION:-5}"
MAX_ANSWERS="${MAX_ANSWERS:-200000}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-4}"
THREADS="${THREADS:-1}"
POLICY_SETTINGS="${POLICY_SETTINGS:-{\}}"
BIG_CONTAINERS="${BIG_CONTAINERS:-2000}"
OUT_DIR="${OUT_DIR:-$root/target/bench/server}"
wasm_dir="$root/target/wasm32-wasip1/release"

for tool in cargo jq wrk curl; do
  command -v "$tool" >/dev/null || { echo "server.sh: $tool is required (scripts/setup.sh installs it)" >&2; exit 1; }
done
kwctl=$(kubewarden_find kwctl) || { kubewarden_missing kwctl >&2; exit 1; }
kubewarden_find policy-server >/dev/null || { kubewarden_missing policy-server >&2; exit 1; }
rm -rf "$OUT_DIR"
mkdir -p "$OUT_DIR/modules" "$OUT_DIR/bodies"
kubewarden_scratch "$OUT_DIR/xdg"

# --- build and annotate ----------------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  echo "== building" >&2
  make --no-print-directory --silent annotated-policy.wasm KWCTL="$kwctl" >/dev/null
  # Apart from the policy: one build would unify serde_json's features (see bench/run.sh).
  cargo build --quiet --target wasm32-wasip1 --release -p baseline-accept -p baseline-sdk
fi
cp annotated-policy.wasm "$OUT_DIR/modules/policy.wasm"
for baseline in accept sdk; do
  "$kwctl" annotate -m bench/baseline-metadata.yml -o "$OUT_DIR/modules/$baseline.wasm" \
    "$wasm_dir/baseline_$baseline.wasm" 2>"$OUT_DIR/annotate-$baseline.log" ||
    { cat "$OUT_DIR/annotate-$baseline.log" >&2; exit 1; }
done

# --- requests --------------------------------------------------------------------------------
source bench/requests.bash
bench_requests "$root/target/bench"
modules=(policy accept sdk)

# --- server ----------------------------------------------------------------------------------
{
  for module in "${modules[@]}"; do
    printf '%s:\n  module: file://%s\n  allowedToMutate: true\n  settings:\n    %s\n' \
      "$module" "$OUT_DIR/modules/$module.wasm" "$POLICY_SETTINGS"
  done
} >"$OUT_DIR/policies.yml"
server_args=()
[[ -z "${WORKERS:-}" ]] || server_args+=(--workers "$WORKERS")
trap policy_server_stop EXIT
echo "== starting policy-server" >&2
POLICY_SERVER_LOG_LEVEL=warn policy_server_start "$OUT_DIR/server" "$OUT_DIR/policies.yml" "${server_args[@]}" ||
  { tail -c 3000 "$POLICY_SERVER_LOG" >&2; exit 1; }
rss_ready=$(awk '/^VmRSS:/ {print $2}' "/proc/$POLICY_SERVER_PID/status")

# --- expected answers: kwctl's, for each request and module ----------------------------------
echo "== checking every first answer against kwctl run" >&2
for request in "${requests[@]}"; do
  name=$(basename "$request" .json)
  admission_review "$request" >"$OUT_DIR/bodies/$name.json"
  for module in "${modules[@]}"; do
    expected="$OUT_DIR/bodies/$name.$module.expected"
    http=$(policy_server_validate "$module" "$OUT_DIR/bodies/$name.json" "$expected")
    kwctl_answer=$("$kwctl" run --request-path "$request" --settings-json "$POLICY_SETTINGS" \
      "$OUT_DIR/modules/$module.wasm" 2>/dev/null)
    if [[ "$http" != 200 ]] || ! jq -e --argjson kwctl "$kwctl_answer" '.response == $kwctl' "$expected" >/dev/null; then
      echo "server.sh: $module on $name: HTTP $http, answer $(head -c 500 "$expected"), kwctl: ${kwctl_answer:0:500}" >&2
      exit 1
    fi
  done
done

# --- measure ---------------------------------------------------------------------------------
results="$OUT_DIR/results.jsonl"
: >"$results"
per_thread=$(((MAX_ANSWERS + THREADS - 1) / THREADS))
runs=$((ROUNDS * ${#requests[@]} * ${#modules[@]}))
echo "== $runs runs of at most ${DURATION} s and $MAX_ANSWERS answers ($CONNECTIONS connections)" >&2
for round in $(seq "$ROUNDS"); do
  # Each round starts with another module, so that no module always runs first.
  shift_by=$(((round - 1) % ${#modules[@]}))
  order=("${modules[@]:shift_by}" "${modules[@]:0:shift_by}")
  for request in "${requests[@]}"; do
    name=$(basename "$request" .json)
    for module in "${order[@]}"; do
      line=$(wrk --latency -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --timeout 10s \
        -s bench/server.lua "$POLICY_SERVER_URL/validate/$module" -- \
        "$OUT_DIR/bodies/$name.json" "$OUT_DIR/bodies/$name.$module.expected" "$per_thread" |
        grep '^{' | tail -n 1)
      [[ -n "$line" ]] || { echo "server.sh: wrk gave no figures for $module on $name" >&2; exit 1; }
      jq -c --arg request "$name" --arg id "$module" --argjson round "$round" \
        --arg outcome "$(jq -r '.response | if .allowed | not then "rejected" elif .patch then "mutated" else "accepted" end' \
          "$OUT_DIR/bodies/$name.$module.expected")" \
        '. + {request: $request, module: $id, round: $round, outcome: $outcome}' <<<"$line" >>"$results"
      printf '   round %s  %-30s %-7s %9.1f answers/s\n' "$round" "$name" "$module" "$(jq -r .rps <<<"$line")" >&2
    done
  done
done
rss_peak=$(awk '/^VmHWM:/ {print $2}' "/proc/$POLICY_SERVER_PID/status")
policy_server_stop

# --- report ----------------------------------------------------------------------------------
report="$OUT_DIR/results.txt"
jq -rs --argjson rss_ready "$rss_ready" --argjson rss_peak "$rss_peak" '
  def median: sort | .[(length - 1) / 2 | floor];
  def fixed($d): (. * pow(10; $d) | round) / pow(10; $d) | tostring;
  def pad($n): tostring | (" " * ([$n - length, 0] | max)) + .;
  def rpad($n): tostring | . + (" " * ([$n - length, 0] | max));
  (map(.request) | unique) as $names
  | [group_by(.request, .module)[] | {request: .[0].request, module: .[0].module, outcome: .[0].outcome,
      rps: (map(.rps) | median), p50: (map(.p50_us) | median), p99: (map(.p99_us) | median),
      answers: (map(.answers) | add), errors: (map(.wrong_answers + .socket_errors) | add)}] as $rows
  | [ $names[] as $name | $rows | map(select(.request == $name)) | INDEX(.module) | . as $m
      | {request: $name, outcome: $m.policy.outcome, rows: $m,
         ratio: ((1 / $m.policy.rps - 1 / $m.accept.rps) / (1 / $m.sdk.rps - 1 / $m.accept.rps))} ] as $table
  | ("request" | rpad(30)) + ("module" | rpad(8)) + ("answers/s" | pad(11)) + ("p50 µs" | pad(9))
      + ("p99 µs" | pad(9)) + ("errors" | pad(8)) + ("added cost" | pad(12)) + "  policy outcome",
    ("-" * 100),
    ( $table[] as $t | ("accept", "sdk", "policy") as $id | $t.rows[$id] as $r
      | ($t.request | rpad(30)) + ($id | rpad(8)) + ($r.rps | fixed(0) | pad(11)) + ($r.p50 | pad(9))
        + ($r.p99 | pad(9)) + ($r.errors | pad(8))
        + (if $id == "policy" then ($t.ratio | fixed(2) | pad(12)) + "  " + $t.outcome else "" end) ),
    "",
    "added cost = (c_policy - c_accept) / (c_sdk - c_accept), c = 1 / (answers per second, median of the rounds)",
    "policy-server RSS: \($rss_ready) KiB when ready, \($rss_peak) KiB at its peak (the three modules loaded)",
    "answers checked: \($rows | map(.answers) | add), errors (HTTP status, wrong answer, socket): \($rows | map(.errors) | add)",
    ( [$table[] | select(.outcome == "accepted" and .ratio > 0.5) | .request] as $over
      | if ($rows | map(.errors) | add) > 0 then "goal NOT met: errors"
        elif ($over | length) > 0 then "goal NOT met: added cost over 0.5 on \($over | join(", "))"
        else "goal met: added cost at most 0.5 on every accepted request, no error" end )
' "$results" | tee "$report"
echo "raw results: $results; table: $report" >&2
jq -se 'map(.wrong_answers + .socket_errors) | add == 0' "$results" >/dev/null
