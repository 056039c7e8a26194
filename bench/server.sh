#!/usr/bin/env bash
# Benchmarks the image-pull-policy module in the real policy-server, against the previous
# release's module and two baselines, all four loaded in the same server process.
#
#   bench/server.sh
#
# Builds and annotates policy.wasm, the previous release's module (PREVIOUS, built from its own
# sources with its own Makefile), bench/baseline-accept and bench/baseline-sdk (the baselines
# with bench/baseline-metadata.yml); starts one policy-server on loopback with the four of them
# (policy ids policy, previous, accept, sdk; allowed to mutate); and posts every request of
# bench/requests/ (plus a generated 2,000-container Pod) as an AdmissionReview with wrk
# (bench/interleaved.lua). Every answer must be HTTP 200 and the same bytes as the first one, whose
# response must equal what `kwctl run` answers for that module, request and settings.
#
# The modules are measured in interleaved rounds: in each round, every request is sent to the
# modules in turn, request by request, over one connection (bench/interleaved.lua), so that a
# slow moment of the machine falls on the four alike; the round's order of modules turns from one
# round to the next. A module's cost is its median latency from request to answer; its added
# cost is (p50_module − p50_accept) / (p50_sdk − p50_accept), computed within each round and
# reported as the median over the rounds with the spread between the first and third quartiles.
#
# Prints per request and module the p50 and p99 latency, the added cost of the previous module
# and of this one, and the server's memory. The goal: at most 0.25 on the one-container Pod, the
# applied Deployment and the 50-container Pod, and no error.
#
# Environment (all optional):
#   ANSWERS       timed answers per module, request and round (default 2000), after WARMUP
#                 untimed ones (default 100); BIG_ANSWERS for the generated Pod (default 40)
#   MAX_SECONDS   the most a run may take (default 120)
#   ROUNDS        rounds over every request (default 5)
#   WORKERS       policy-server worker threads (default: its own, one per CPU)
#   POLICY_SETTINGS  settings JSON for the four modules (default {})
#   BIG_CONTAINERS   containers in the generated Pod (default 2000, about 1.7 MB: policy-server
#                    refuses a body over 2 MiB with HTTP 413; 0 skips it)
#   REQUESTS      space-separated request files instead of the whole set
#   PREVIOUS      the commit or tag of the previous release (default: the newest v* tag before
#                 HEAD, else the commit in bench/previous-release); `none` leaves it out
#   CANDIDATES    space-separated ID=MODULE.wasm pairs: more modules measured in the same rounds
#                 (annotated with bench/baseline-metadata.yml), to try a change against this one
#   SKIP_BUILD=1  use the modules already built
#   OUT_DIR       where results go (default target/bench/server)
# kwctl and policy-server are found as for the tests (KWCTL / POLICY_SERVER, PATH,
# ../shared/kubewarden/bin).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source tests/lib/kubewarden.bash

ANSWERS="${ANSWERS:-2000}"
WARMUP="${WARMUP:-100}"
BIG_ANSWERS="${BIG_ANSWERS:-40}"
MAX_SECONDS="${MAX_SECONDS:-120}"
ROUNDS="${ROUNDS:-5}"
POLICY_SETTINGS="${POLICY_SETTINGS:-{\}}"
BIG_CONTAINERS="${BIG_CONTAINERS:-2000}"
OUT_DIR="${OUT_DIR:-$root/target/bench/server}"
wasm_dir="$root/target/wasm32-wasip1/release"

for tool in cargo git jq wrk curl; do
  command -v "$tool" >/dev/null || { echo "server.sh: $tool is required (scripts/setup.sh installs it)" >&2; exit 1; }
done
kwctl=$(kubewarden_find kwctl) || { kubewarden_missing kwctl >&2; exit 1; }
kubewarden_find policy-server >/dev/null || { kubewarden_missing policy-server >&2; exit 1; }
rm -rf "$OUT_DIR"
mkdir -p "$OUT_DIR/modules" "$OUT_DIR/bodies"
kubewarden_scratch "$OUT_DIR/xdg"

# --- the previous release --------------------------------------------------------------------
if [[ -z "${PREVIOUS:-}" ]]; then
  PREVIOUS=$(git describe --tags --abbrev=0 --match 'v[0-9]*' HEAD^ 2>/dev/null ||
    sed -n '/^[0-9a-f]\{7,40\}$/p' bench/previous-release | head -n 1)
fi
modules=(policy accept sdk)
if [[ "$PREVIOUS" != none ]]; then
  previous_commit=$(git rev-parse --verify --quiet "$PREVIOUS^{commit}") || {
    echo "server.sh: the previous release $PREVIOUS is not in this clone (fetch its history, or PREVIOUS=none)" >&2
    exit 1
  }
  modules=(policy previous accept sdk)
  # Built once per commit from its own sources, lockfile and Makefile (wasm-opt flags included),
  # and kept under target/ for the next run.
  previous_dir="$root/target/bench/previous/$previous_commit"
  if [[ ! -s "$previous_dir/policy.wasm" ]]; then
    echo "== building the previous release, $PREVIOUS ($previous_commit)" >&2
    rm -rf "$previous_dir"
    mkdir -p "$previous_dir/src"
    git archive "$previous_commit" | tar -x -C "$previous_dir/src"
    CARGO_TARGET_DIR="$root/target/previous" make -C "$previous_dir/src" --no-print-directory --silent \
      policy.wasm >"$previous_dir/build.log" 2>&1 || { tail -n 30 "$previous_dir/build.log" >&2; exit 1; }
    cp "$previous_dir/src/policy.wasm" "$previous_dir/policy.wasm"
  fi
fi

# --- build and annotate ----------------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  echo "== building" >&2
  make --no-print-directory --silent annotated-policy.wasm KWCTL="$kwctl" >/dev/null
  # Apart from the policy: one build would unify serde_json's features (see bench/run.sh).
  cargo build --quiet --target wasm32-wasip1 --release -p baseline-accept -p baseline-sdk
fi
cp annotated-policy.wasm "$OUT_DIR/modules/policy.wasm"
annotate() { # annotate METADATA MODULE ID
  "$kwctl" annotate -m "$1" -o "$OUT_DIR/modules/$3.wasm" "$2" 2>"$OUT_DIR/annotate-$3.log" ||
    { cat "$OUT_DIR/annotate-$3.log" >&2; exit 1; }
}
annotate bench/baseline-metadata.yml "$wasm_dir/baseline_accept.wasm" accept
annotate bench/baseline-metadata.yml "$wasm_dir/baseline_sdk.wasm" sdk
[[ -z "${previous_dir:-}" ]] || annotate "$previous_dir/src/metadata.yml" "$previous_dir/policy.wasm" previous
candidates=()
for candidate in ${CANDIDATES:-}; do
  id=${candidate%%=*}
  [[ "$id" =~ ^[a-z][a-z0-9-]*$ && "$candidate" == *=* && -s "${candidate#*=}" ]] ||
    { echo "server.sh: CANDIDATES takes ID=MODULE.wasm pairs (lower-case ids), not $candidate" >&2; exit 1; }
  annotate bench/baseline-metadata.yml "${candidate#*=}" "$id"
  candidates+=("$id")
  modules+=("$id")
done

# --- requests --------------------------------------------------------------------------------
source bench/requests.bash
bench_requests "$root/target/bench"

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
# One wrk run per round and request: the modules take turns request by request over one
# connection (bench/interleaved.lua), ANSWERS timed answers each after WARMUP untimed ones.
results="$OUT_DIR/results.jsonl"
: >"$results"
mkdir -p "$OUT_DIR/latencies"
echo "== $ROUNDS rounds of ${#requests[@]} requests, ${#modules[@]} modules in turn, $ANSWERS answers each" >&2
for round in $(seq "$ROUNDS"); do
  # Each round starts with another module.
  shift_by=$(((round - 1) % ${#modules[@]}))
  order=("${modules[@]:shift_by}" "${modules[@]:0:shift_by}")
  for request in "${requests[@]}"; do
    name=$(basename "$request" .json)
    answers=$ANSWERS warmup=$WARMUP
    if [[ "$request" == *"-$BIG_CONTAINERS-containers.json" ]]; then answers=$BIG_ANSWERS warmup=1; fi
    wrk_args=()
    for module in "${order[@]}"; do
      wrk_args+=("/validate/$module" "$OUT_DIR/bodies/$name.json" "$OUT_DIR/bodies/$name.$module.expected")
    done
    latencies="$OUT_DIR/latencies/$name.$round"
    # wrk runs until its duration unless interrupted: SIGINT once the latencies are written.
    wrk -t 1 -c 1 -d "${MAX_SECONDS}s" --timeout 30s -s bench/interleaved.lua "$POLICY_SERVER_URL" -- \
      "$warmup" "$answers" "$latencies" "${wrk_args[@]}" >"$latencies.wrk" &
    wrk_pid=$!
    while kill -0 "$wrk_pid" 2>/dev/null && [[ ! -e "$latencies" ]]; do sleep 0.05; done
    kill -INT "$wrk_pid" 2>/dev/null || true
    wait "$wrk_pid" || true
    line=$(grep '^{' "$latencies.wrk" | tail -n 1)
    [[ -n "$line" ]] || { echo "server.sh: wrk gave no figures on $name" >&2; exit 1; }
    jq -e '.reached' <<<"$line" >/dev/null ||
      { echo "server.sh: $name: fewer than $answers answers per module within $MAX_SECONDS s ($line)" >&2; exit 1; }
    # The run's figures per module: median, p99 and count of its latencies.
    outcome=$(jq -r '.response | if .allowed | not then "rejected" elif .patch then "mutated" else "accepted" end' \
      "$OUT_DIR/bodies/$name.policy.expected")
    jq -Rnc --arg order "${order[*]}" --arg request "$name" --arg outcome "$outcome" \
      --argjson round "$round" --argjson run "$line" '
      ($order | split(" ")) as $ids
      | [inputs | split(" ") | map(tonumber)] | group_by(.[0])[]
      | (map(.[1]) | sort) as $l
      | {request: $request, outcome: $outcome, round: $round, module: $ids[.[0][0] - 1],
         timed: ($l | length), p50_us: $l[($l | length - 1) / 2 | floor],
         p99_us: $l[($l | length - 1) * 0.99 | floor], run: $run}' "$latencies" >>"$results"
    printf '   round %s  %-30s %s\n' "$round" "$name" \
      "$(jq -rs --arg r "$name" --argjson n "$round" 'map(select(.request == $r and .round == $n) | "\(.module) \(.p50_us) µs") | join(", ")' "$results")" >&2
  done
done
rss_peak=$(awk '/^VmHWM:/ {print $2}' "/proc/$POLICY_SERVER_PID/status")
policy_server_stop

# --- report ----------------------------------------------------------------------------------
report="$OUT_DIR/results.txt"
jq -rs --argjson rss_ready "$rss_ready" --argjson rss_peak "$rss_peak" --arg previous "${PREVIOUS:-none}" \
  --argjson candidates "$(printf '%s\n' "${candidates[@]}" | jq -Rnc '[inputs | select(length > 0)]')" \
  --argjson goal_requests '["pod-one-container", "deployment-kubectl-apply", "pod-50-containers"]' '
  def quantile($q): sort | if length == 0 then null else .[(length - 1) * $q | floor] end;
  def median: quantile(0.5);
  def fixed($d): if . == null then "n/a" else (. * pow(10; $d) | round) / pow(10; $d) | tostring end;
  def pad($n): tostring | (" " * ([$n - length, 0] | max)) + .;
  def rpad($n): tostring | . + (" " * ([$n - length, 0] | max));
  . as $rows
  | ($rows | map(.request) | reduce .[] as $r ([]; if index([$r]) then . else . + [$r] end)) as $names
  | ($rows | map(.module) | unique) as $ids
  # One ratio per round (the modules of a round ran in turn), then the median over the rounds.
  | def ratios($name; $id):
      [ $rows | map(select(.request == $name)) | group_by(.round)[] | INDEX(.module)
        | select(.[$id] and .accept and .sdk and (.sdk.p50_us - .accept.p50_us) > 0)
        | (.[$id].p50_us - .accept.p50_us) / (.sdk.p50_us - .accept.p50_us) ];
    def cost($name; $id): ratios($name; $id) as $r
      | {median: ($r | median), q1: ($r | quantile(0.25)), q3: ($r | quantile(0.75))};
    def costtext: if .median == null then "n/a"
      else "\(.median | fixed(2)) [\(.q1 | fixed(2))–\(.q3 | fixed(2))]" end;
  [ $names[] as $name
    | ($rows | map(select(.request == $name))) as $runs
    | { request: $name,
        outcome: $runs[0].outcome,
        rows: ( [ $ids[] as $id | $runs | map(select(.module == $id)) | select(length > 0)
                  | {module: $id, p50: (map(.p50_us) | median), p99: (map(.p99_us) | median),
                     timed: (map(.timed) | add)} ] | INDEX(.module) ),
        policy: cost($name; "policy"),
        costs: ( [ ("previous", $candidates[]) as $id | select($ids | index($id)) | {key: $id, value: cost($name; $id)} ]
                 | from_entries ) } ] as $table
  | ("request" | rpad(30)) + ("module" | rpad(10)) + ("p50 µs" | pad(10)) + ("p99 µs" | pad(10))
      + ("answers" | pad(9)) + "  added cost, median [quartiles]",
    ("-" * 104),
    ( $table[] as $t | ("accept", "sdk", "previous", $candidates[], "policy") as $id | $t.rows[$id] // empty | . as $r
      | ($t.request | rpad(30)) + ($id | rpad(10)) + ($r.p50 | fixed(1) | pad(10)) + ($r.p99 | fixed(0) | pad(10))
        + ($r.timed | pad(9))
        + (if $id == "policy" then "  " + ($t.policy | costtext) elif $t.costs[$id] then "  " + ($t.costs[$id] | costtext) else "" end)
        + (if $id == "policy" then "  (" + $t.outcome + ")" else "" end) ),
    "",
    "latency: from request to answer, one connection, the modules in turn request by request; p50 and p99 per",
    "run, median over \($rows | map(.round) | max) rounds. added cost = (p50_module - p50_accept) / (p50_sdk - p50_accept),",
    "one ratio per round. previous = \($previous)",
    "policy-server RSS: \($rss_ready) KiB when ready, \($rss_peak) KiB at its peak (every module loaded)",
    ( [$rows[] | .run] | unique | map(.wrong_answers + .socket_errors) | add) as $errors
    | "errors (HTTP status, wrong answer, socket): \($errors)",
    ( ($table | INDEX(.request)) as $by_name
      # `//` binds less tightly than `>`: unbracketed, every figure was counted as over.
      | [$goal_requests[] | select(($by_name[.].policy.median // 1) > 0.25)] as $over
      | if $errors > 0 then "goal NOT met: errors"
        elif ($over | length) > 0 then "goal NOT met: added cost over 0.25 (or not measured) on \($over | join(", "))"
        else "goal met: added cost at most 0.25 on \($goal_requests | join(", ")), no error" end )
' "$results" | tee "$report"
echo "raw results: $results; latencies: $OUT_DIR/latencies/; table: $report" >&2
jq -se 'map(.run.wrong_answers + .run.socket_errors) | add == 0' "$results" >/dev/null
