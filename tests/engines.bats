#!/usr/bin/env bats
# Three engines, one answer. Every run of e2e.bats, as the real kwctl answered it, is answered
# alike by the project's host and by the real policy-server over HTTP:
#
#   make e2e-tests e2e-tests-kwctl   # both passes write their runs down (E2E_RECORD)
#   make engine-tests                # this file
#
# The cases are the runs of e2e.bats, not a copy of them: a case added there is covered here
# without more work. For each run, the same request file and settings:
#
#   * host: the same exit status and AdmissionResponse as kwctl (patch decoded), and the same
#     error line when there is no response;
#   * policy-server, policyMode protect, allowedToMutate true: the same AdmissionResponse as
#     kwctl (uid, allowed, decoded patch, status, warnings, audit annotations); a request kwctl
#     cannot read is refused by the server's HTTP layer, and so is one over the server's body
#     limit (HTTP 413);
#   * policy-server, policyMode monitor: kwctl's answer made an untouched acceptance (no patch, no
#     status; warnings kept), with kwctl's verdict in the log;
#   * invalid settings: policy-server refuses to start, with the policy's own message in its log.
#
# Runs skipped under kwctl (HOST_ONLY in e2e.bats) are listed with their reason, and so are the
# runs that replay a recorded host-capabilities session (--replay-host-capabilities-interactions,
# the digest pinning cases): policy-server has no replay, and would ask a registry that is not
# there; the host still answers them as kwctl does (both replay the same session).

bats_require_minimum_version 1.5.0

load lib/kubewarden

REPO=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
HOST_RUNS=${HOST_RUNS:-$REPO/target/e2e/host/runs.jsonl}
KWCTL_RUNS=${KWCTL_RUNS:-$REPO/target/e2e/kwctl/runs.jsonl}
POLICY=${POLICY:-$REPO/annotated-policy.wasm}
SETTINGS_ERROR='Provided settings are not valid: '
REPLAY_FLAG=--replay-host-capabilities-interactions
REPLAY_REASON="it replays a recorded host-capabilities session ($REPLAY_FLAG), which policy-server cannot do"

# jq definitions shared by the checks below.
JQ_DEFS='
  # The AdmissionResponse an engine printed: its last line that is a JSON object.
  def response_of($stdout): [$stdout | split("\n")[] | select(startswith("{")) | fromjson? | objects] | last;
  # The last "Error: ..." line an engine printed on stderr.
  def error_of($stderr): [$stderr | split("\n")[] | select(startswith("Error: "))] | last;
  # A response with its patch decoded, for comparing what it says rather than its encoding.
  def decoded: if type == "object" and (.patch | type) == "string"
               then .patch |= (@base64d | fromjson) else . end;
  def settings_text: if .settings == null then "" elif .settings.json then .settings.json
                     else "file " + .settings.path end;
'

fail() {
  printf '%s\n' "$@" >&2
  return 1
}

# Prints to the test output, also when the test passes.
note() {
  printf '# %s\n' "$@" >&3
}

setup_file() {
  local runs module
  # Each pass against the module it ran: the host on policy.wasm, kwctl on the annotated one.
  for runs in "$HOST_RUNS:$REPO/policy.wasm" "$KWCTL_RUNS:$POLICY"; do
    module=${runs#*:} runs=${runs%%:*}
    [ -s "$runs" ] || fail "$runs is missing: run make e2e-tests e2e-tests-kwctl first"
    [ "$runs" -nt "$module" ] || fail "$runs is older than $module: run make e2e-tests e2e-tests-kwctl again"
  done
  export WORK=$BATS_FILE_TMPDIR
  kubewarden_scratch "$WORK/xdg"
  cd "$REPO"

  # One case a kwctl run, numbered in the order of e2e.bats. Runs whose settings kwctl accepted
  # share a policy per distinct settings (group); runs with invalid settings get a server each.
  jq -sc --arg replay "$REPLAY_FLAG" "$JQ_DEFS"'
    map(select(.skipped | not) | select(.args | index($replay) | not)
        | response_of(.stdout) as $response | error_of(.stderr) as $error
        | . + {response: $response, error: $error,
               outcome: (if .status == 0 and $response then "answered"
                         elif ($error // "") | contains("'"$SETTINGS_ERROR"'") then "invalid-settings"
                         else "unreadable" end)})
    | (map(select(.outcome != "invalid-settings") | settings_text) | unique) as $groups
    | to_entries[] | .key as $case | .value
    | {case: $case, test, request, settings, status, response, error, outcome,
       group: (if .outcome == "invalid-settings" then null else settings_text as $s | $groups | index($s) end)}
  ' "$KWCTL_RUNS" >"$WORK/cases.jsonl"

  write_policies >"$WORK/policies.yml"
  policy_server_start "$WORK/server" "$WORK/policies.yml" || {
    cat "$POLICY_SERVER_LOG" >&2
    fail "policy-server did not start"
  }
  ask_policy_server
}

teardown_file() {
  policy_server_stop
}

# settings_yaml CASE_JSON: the `settings:` key of a policy in policies.yml for the case's
# settings. JSON is YAML, and a settings file (YAML or JSON) goes in as written.
settings_yaml() {
  local settings
  settings=$(jq -r '.settings | if . == null then "{}" elif .json then .json else empty end' <<<"$1")
  if [ -z "$settings" ]; then
    settings=$(cat "$(jq -r .settings.path <<<"$1")")
  fi
  printf '  settings:\n'
  sed 's/^/    /' <<<"$settings"
}

# policy_yaml ID MODE CASE_JSON: one policy of policies.yml, allowed to mutate.
policy_yaml() {
  printf '%s:\n  module: file://%s\n  allowedToMutate: true\n  policyMode: %s\n' "$1" "$POLICY" "$2"
  settings_yaml "$3"
}

# The policies file: per settings group, g<N> (protect) and g<N>-monitor; and `no-mutation`, the
# default settings without allowedToMutate.
write_policies() {
  local group case
  for group in $(jq -r 'select(.group != null) | .group' "$WORK/cases.jsonl" | sort -nu); do
    case=$(jq -c "select(.group == $group)" "$WORK/cases.jsonl" | head -n 1)
    policy_yaml "g$group" protect "$case"
    policy_yaml "g$group-monitor" monitor "$case"
  done
  printf 'no-mutation:\n  module: file://%s\n' "$POLICY"
}

# Sends every case to its group's protect and monitor policies; keeps each answer, its HTTP
# status, and the log lines the monitor evaluation wrote.
ask_policy_server() {
  local case request group offset
  mkdir -p "$WORK/answers"
  while IFS=$'\t' read -r case request group; do
    admission_review "$request" >"$WORK/answers/$case.request.json"
    stat -c %s "$WORK/answers/$case.request.json" >"$WORK/answers/$case.bytes"
    policy_server_validate "g$group" "$WORK/answers/$case.request.json" "$WORK/answers/$case.protect.json" \
      >"$WORK/answers/$case.protect.http" || echo 000 >"$WORK/answers/$case.protect.http"
    offset=$(stat -c %s "$POLICY_SERVER_LOG")
    policy_server_validate "g$group-monitor" "$WORK/answers/$case.request.json" "$WORK/answers/$case.monitor.json" \
      >"$WORK/answers/$case.monitor.http" || echo 000 >"$WORK/answers/$case.monitor.http"
    tail -c +"$((offset + 1))" "$POLICY_SERVER_LOG" | grep -F '(monitor mode)' >"$WORK/answers/$case.monitor.log" || true
  done < <(jq -r 'select(.outcome != "invalid-settings") | [.case, .request, .group] | @tsv' "$WORK/cases.jsonl")
}

# answers KIND: every case that was sent, with the server's answer to it under `server`
# (`http`: the HTTP status, `review`: the body when it is JSON, `log`: monitor log lines).
answers() {
  local kind=$1 case
  while read -r case; do
    jq -c --arg http "$(cat "$WORK/answers/$case.$kind.http")" \
      --argjson bytes "$(cat "$WORK/answers/$case.bytes")" --argjson limit "$POLICY_SERVER_MAX_BODY_BYTES" \
      --slurpfile review <(jq -c . "$WORK/answers/$case.$kind.json" 2>/dev/null || echo null) \
      --rawfile log <(cat "$WORK/answers/$case.$kind.log" 2>/dev/null) \
      '. + {too_large: ($bytes > $limit), server: {http: $http, review: $review[0], log: $log}}' \
      < <(jq -c "select(.case == $case)" "$WORK/cases.jsonl")
  done < <(jq -r 'select(.outcome != "invalid-settings") | .case' "$WORK/cases.jsonl")
}

@test "the cases: every e2e run under kwctl, and the runs left out with their reason" {
  local total
  total=$(wc -l <"$WORK/cases.jsonl")
  ((total > 0)) || fail "no e2e runs recorded under kwctl"
  note "$total e2e runs under kwctl for policy-server: $(jq -sr 'group_by(.outcome) | map("\(length) \(.[0].outcome)") | join(", ")' "$WORK/cases.jsonl")"
  note "$(jq -sr 'map(select(.outcome == "answered") | .group) | unique | length' "$WORK/cases.jsonl") distinct settings"
  jq -r 'select(.skipped) | "left out: \(.test): \(.skipped)"' "$KWCTL_RUNS" | while read -r line; do note "$line"; done
  note "$(jq -sr --arg replay "$REPLAY_FLAG" 'map(select((.skipped | not) and (.args | index($replay)))) | length' "$KWCTL_RUNS") more replay a session (left out of policy-server, compared with the host), $(jq -sr 'map(select(.skipped)) | length' "$KWCTL_RUNS") skipped under kwctl"
  jq -r --arg replay "$REPLAY_FLAG" --arg why "$REPLAY_REASON" \
    'select((.skipped | not) and (.args | index($replay))) | "left out of policy-server: \(.test): \($why)"' \
    "$KWCTL_RUNS" | while read -r line; do note "$line"; done
}

@test "host: the same exit status, AdmissionResponse and error as kwctl, for every e2e run" {
  local report
  # Runs are paired by test and by their order within the test.
  report=$(jq -nr "$JQ_DEFS"'
    def keyed: group_by(.test) | map(to_entries | map(.value + {nth: .key})) | add
               | map({key: "\(.test)#\(.nth)", value: .}) | from_entries;
    def view: {status, response: (response_of(.stdout) | decoded), error: error_of(.stderr)};
    ([inputs] | map(select(.skipped | not))) as $all
    | ($all | map(select(.engine == "host")) | keyed) as $host
    | ($all | map(select(.engine == "kwctl")) | keyed) as $kwctl
    | [$kwctl | keys[] as $k | {key: $k, kwctl: ($kwctl[$k] | view), host: ($host[$k] // null | if . then view else null end)}]
    | (map(select(.host != .kwctl))) as $differ
    | "\(length - ($differ | length)) of \(length) runs agree",
      ($differ[] | "DIFFERENT: \(.key)\n  kwctl: \(.kwctl | tojson | .[0:600])\n  host:  \(.host | tojson | .[0:600])")
  ' <(jq -c '. + {engine: "host"}' "$HOST_RUNS") <(jq -c '. + {engine: "kwctl"}' "$KWCTL_RUNS"))
  note "host = kwctl: $(head -n 1 <<<"$report")"
  if grep -q '^DIFFERENT' <<<"$report"; then
    fail "$report"
  fi
}

@test "policy-server (protect, allowedToMutate): the same AdmissionResponse as kwctl, for every e2e run" {
  local report
  report=$(answers protect | jq -sr "$JQ_DEFS"'
    map(. + {problem: (
      if .too_large then
        if .server.http == "413" then null else "over the body limit, yet HTTP \(.server.http)" end
      elif .outcome == "answered" then
        if .server.http != "200" then "HTTP \(.server.http): \(.server.review // "" | tostring | .[0:300])"
        elif (.server.review.response | decoded) != (.response | decoded) then
          "kwctl:  \(.response | decoded | tojson | .[0:600])\n  server: \(.server.review.response | decoded | tojson | .[0:600])"
        else null end
      elif (.server.http | test("^4")) then null
      else "kwctl could not read the request (\(.error)), the server answered HTTP \(.server.http): \(.server.review | tojson | .[0:300])"
      end)})
    | "\(map(select(.problem == null)) | length) of \(length) runs agree: \(map(select(.outcome == "answered" and (.too_large | not))) | length) answered alike, \(map(select(.outcome == "unreadable")) | length) unreadable refused by both, \(map(select(.too_large)) | length) over the server body limit (HTTP 413)",
      (.[] | select(.problem) | "DIFFERENT: \(.test)\n  \(.problem)")')
  note "policy-server = kwctl: $(head -n 1 <<<"$report")"
  if grep -q '^DIFFERENT' <<<"$report"; then
    fail "$report"
  fi
}

@test "policy-server (monitor): every request accepted untouched, warnings kept, kwctl's verdict in the log" {
  local report
  # policy-evaluator logs the AdmissionResponse it would have given in Rust's Debug format, where
  # a string is quoted and escaped as JSON quotes and escapes these messages.
  report=$(answers monitor | jq -sr '
    map(select(.outcome == "answered" and (.too_large | not))
      | .response as $kwctl
      | (.server.log | split("\n") | map(select(length > 0) | fromjson | .fields.response)) as $logged
      | . + {problem: (
          if .server.http != "200" then "HTTP \(.server.http)"
          elif .server.review.response != ($kwctl | .allowed = true | del(.patchType, .patch, .status))
          then "not kwctl'"'"'s answer accepted untouched (warnings kept): \(.server.review.response | tojson | .[0:400])"
          elif ($logged | length) != 1 then "\($logged | length) monitor-mode log lines"
          elif ($logged[0] | contains("allowed: \($kwctl.allowed),") | not) then "the log says otherwise than kwctl: \($logged[0] | .[0:400])"
          elif $kwctl.status.message and ($logged[0] | contains("message: Some(\($kwctl.status.message | tojson))") | not)
          then "the log lacks the message \($kwctl.status.message | .[0:200]): \($logged[0] | .[0:400])"
          else null end)})
    | "\(map(select(.problem == null)) | length) of \(length) answered runs agree",
      (.[] | select(.problem) | "DIFFERENT: \(.test)\n  \(.problem)")')
  note "policy-server monitor = kwctl: $(head -n 1 <<<"$report")"
  if grep -q '^DIFFERENT' <<<"$report"; then
    fail "$report"
  fi
}

# server_refuses_settings DIR MESSAGE: policy-server, started with DIR/policies.yml, exits at
# start with the policy's MESSAGE in its log.
server_refuses_settings() (
  if policy_server_start "$1" "$1/policies.yml" 2>/dev/null; then
    policy_server_stop
    echo "the server started"
    return 1
  fi
  [ "${POLICY_SERVER_STATUS:-0}" -ne 0 ] || { echo "the server was not ready in time"; return 1; }
  grep -qF "Policy settings are invalid: $2" "$POLICY_SERVER_LOG" ||
    { echo "its log lacks [Policy settings are invalid: $2]: $(tail -c 600 "$POLICY_SERVER_LOG")"; return 1; }
)

@test "policy-server: refuses to start on each invalid setting, with the policy's message in its log" {
  local case test message problem count=0 problems=()
  while IFS=$'\t' read -r case test message; do
    count=$((count + 1))
    mkdir -p "$WORK/invalid-$case"
    policy_yaml invalid protect "$(jq -c "select(.case == $case)" "$WORK/cases.jsonl")" >"$WORK/invalid-$case/policies.yml"
    problem=$(unset POLICY_SERVER_PID; server_refuses_settings "$WORK/invalid-$case" "$message") ||
      problems+=("DIFFERENT: $test: $problem")
  done < <(jq -r --arg prefix "$SETTINGS_ERROR" 'select(.outcome == "invalid-settings")
             | [.case, .test, (.error | split($prefix)[1])] | @tsv' "$WORK/cases.jsonl")
  ((count > 0)) || fail "no e2e run has invalid settings"
  note "policy-server refused to start on $((count - ${#problems[@]})) of $count invalid settings"
  ((${#problems[@]} == 0)) || fail "${problems[@]}"
}

@test "policy-server: without allowedToMutate, the policy's mutation is refused by the server" {
  local case request
  read -r case request < <(jq -r 'select(.outcome == "answered" and .settings == null and .response.patch)
                                  | [.case, .request] | @tsv' "$WORK/cases.jsonl" | head -n 1)
  [ -n "$case" ] || fail "no e2e run with default settings is a mutation"
  run policy_server_validate no-mutation "$WORK/answers/$case.request.json" "$WORK/no-mutation.json"
  [ "$output" = 200 ] || fail "HTTP $output"
  jq -e '.response | .allowed == false and .patch == null
         and (.status.message | contains("configured to not allow mutations"))' "$WORK/no-mutation.json" >/dev/null ||
    fail "not refused: $(cat "$WORK/no-mutation.json")"
}
