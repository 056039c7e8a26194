#!/usr/bin/env bats
# Digest pinning end to end: the policy module asks a real OCI registry (Debian's docker-registry
# on 127.0.0.1, tests/lib/registry.bash) for the digest of each tag, through the host capability
# oci/v1/manifest_digest, and writes it into the object.
#
#   make pinning-tests                         # every engine found (see PINNING_ENGINES)
#   PINNING_ENGINES=host bats tests/pinning.bats
#   PINNING_ENGINES="kwctl policy-server" bats tests/pinning.bats
#
# Engines (PINNING_ENGINES, default "host kwctl policy-server"):
#   host           the project's waPC host (target/host-dev/policy-host run) on policy.wasm
#   kwctl          the real `kwctl run` on annotated-policy.wasm
#   policy-server  the real policy-server, on annotated-policy.wasm, over HTTP
# A real engine that is asked for but not found is skipped, and said so (a failure under
# CI=true). Every `run` case runs under each of host and kwctl, with `--sources-path` naming the
# registry as an insecure (plain-HTTP) source.
#
# The images are pushed by setup_file (and by the tests that move a tag); each case uses its own
# repositories, and counts the manifest requests (HEAD or GET /v2/<repo>/manifests/...) that
# an OCI client (user agent oci-client/...) made during one run, from the registry's access log:
# curl's own requests (registry_tag_digest) are not counted. Everything started here is stopped in
# teardown_file, also when a test fails.

bats_require_minimum_version 1.5.0

load lib/kubewarden

REPO=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
PINNING_ENGINES=${PINNING_ENGINES:-host kwctl policy-server}
HOST_BIN=${HOST_BIN:-$REPO/target/host-dev/policy-host}
# No run may hang: a bound per engine run.
RUN_SECONDS=${RUN_SECONDS:-60}

fail() {
  {
    printf 'FAIL: %s\n' "$@"
    printf 'engine: %s, exit status: %s\n' "${ENGINE-}" "${status-}"
    printf 'stdout: %.3000s\n' "${output-}"
    printf 'stderr (first lines): %.1500s\n' "$(printf '%s\n' "${stderr-}" | grep -v '^ ' | head -n 20)"
  } >&2
  return 1
}

note() {
  printf '# %s\n' "$@" >&3
}

# pinning SCOPE [JSON]: settings that pin SCOPE, from this file's registry (pinRegistries), with
# the keys of JSON added or replaced.
pinning() {
  jq -nc --arg scope "$1" --argjson extra "${2:-"{}"}" --arg registry "$REGISTRY/*" \
    '{mode: "mutate", pinDigests: $scope, pinRegistries: [$registry]} + $extra'
}

# wants ENGINE: ENGINE is asked for.
wants() {
  [[ " $PINNING_ENGINES " == *" $1 "* ]]
}

setup_file() {
  export WORK=$BATS_FILE_TMPDIR
  kubewarden_scratch "$WORK/xdg"
  export XDG_DATA_HOME=$WORK/xdg/data
  mkdir -p "$XDG_DATA_HOME" "$WORK/requests"

  # The engines of the `run` cases, and whether policy-server is tested.
  local engines=() missing=() kwctl server
  if wants host; then
    [ -x "$HOST_BIN" ] || fail "$HOST_BIN is missing: run make host"
    [ -f "$REPO/policy.wasm" ] || fail "policy.wasm is missing: run make policy.wasm"
    engines+=(host)
  fi
  if wants kwctl || wants policy-server; then
    [ -f "$REPO/annotated-policy.wasm" ] || fail "annotated-policy.wasm is missing: run make annotated-policy.wasm"
  fi
  if wants kwctl; then
    if kwctl=$(kubewarden_find kwctl); then
      export KWCTL_BIN=$kwctl
      engines+=(kwctl)
    else
      missing+=("$(kubewarden_missing kwctl)")
    fi
  fi
  export WITH_SERVER= SERVER_SKIPPED="policy-server is not among PINNING_ENGINES ($PINNING_ENGINES)"
  if wants policy-server; then
    if server=$(kubewarden_find policy-server); then
      WITH_SERVER=1
    else
      missing+=("$(kubewarden_missing policy-server)")
      SERVER_SKIPPED="policy-server was not found: ${missing[-1]}"
    fi
  fi
  if ((${#missing[@]})); then
    [ "${CI:-}" != true ] || fail "${missing[@]}" "CI=true: a real engine may not be skipped"
    printf '# SKIPPED: %s\n' "${missing[@]}" >&3
  fi
  export ENGINES="${engines[*]}"

  registry_start "$WORK/registry" || fail "the registry did not start"
  # A single-platform image, a multi-platform index (amd64 and arm64), a third image for the
  # 10-container Pod, and images for the policy-server cases.
  export APP_DIGEST MULTI_DIGEST
  APP_DIGEST=$(registry_push_image app 1.0 "app 1.0") || fail "push app:1.0"
  MULTI_DIGEST=$(registry_push_index multi 2.0) || fail "push multi:2.0"
  registry_push_image third 3.1 "third 3.1" >/dev/null || fail "push third:3.1"
  registry_push_image server/app 1.0 "server app 1.0" >/dev/null || fail "push server/app:1.0"
  registry_push_image server/moving v1 "server moving, first" >/dev/null || fail "push server/moving:v1"

  # The port of the registry that never answers (a listener, started by its test), trusted by
  # the `granted` policy.
  export SILENT_PORT
  SILENT_PORT=$(registry_free_port)
  if [ -n "$WITH_SERVER" ]; then
    start_policy_server || fail "policy-server did not start: $(tail -c 3000 "$POLICY_SERVER_LOG")"
  fi
}

teardown_file() {
  policy_server_stop
  registry_stop
  # A registry a test started and stopped (stopped there too; this is for a failed test).
  if [ -f "$WORK/stopped-registry.pid" ]; then
    kill "$(cat "$WORK/stopped-registry.pid")" 2>/dev/null || true
  fi
  local pid
  for pid in "$WORK"/*.listener.pid; do
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  done
}

# listener_start NAME [PORT]: tests/lib/listener.py on PORT (default a free one), which accepts
# connections and never answers; sets LISTENER_PORT and LISTENER_ACCEPTS (a file, one line per
# accepted connection).
listener_start() {
  LISTENER_PORT=${2:-$(registry_free_port)}
  LISTENER_ACCEPTS=$WORK/$1.accepts
  rm -f "$LISTENER_ACCEPTS"
  python3 "$REPO/tests/lib/listener.py" "$LISTENER_PORT" "$LISTENER_ACCEPTS" &
  echo $! >"$WORK/$1.listener.pid"
  local tries=0
  # The file appears once the socket listens; connecting to find out would count as an accept.
  until [ -f "$LISTENER_ACCEPTS" ]; do
    ((++tries < 100)) || fail "the listener $1 did not start"
    sleep 0.1
  done
}

listener_stop() {
  kill "$(cat "$WORK/$1.listener.pid")" 2>/dev/null || true
  rm -f "$WORK/$1.listener.pid"
}

accepts() {
  wc -l <"$LISTENER_ACCEPTS"
}

# ---------------------------------------------------------------------------------------------
# Requests, as kubectl writes the objects (test_data/pod-ifnotpresent.json and
# deployment-defaulted.json are `kubectl create --dry-run=client -o json` output in an
# AdmissionRequest), with the images of this registry.
# ---------------------------------------------------------------------------------------------

# containers NAME=IMAGE...: a JSON list of containers as kubectl writes them, pull policy Always
# (so that the only patch operations left are the pinned images).
containers() {
  local pair
  for pair; do
    jq -nc --arg name "${pair%%=*}" --arg image "${pair#*=}" \
      '{name: $name, image: $image, resources: {}, imagePullPolicy: "Always"}'
  done | jq -sc .
}

uid() {
  printf 'pinning/%s' "$1" | md5sum | sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12}).*/\1-\2-\3-\4-\5/'
}

# pod_request NAME CONTAINERS_JSON [VOLUMES_JSON]: writes $WORK/requests/NAME.json, a Pod CREATE.
pod_request() {
  jq --arg uid "$(uid "$1")" --argjson containers "$2" --argjson volumes "${3:-null}" '
    .uid = $uid | .object.spec.containers = $containers
    | if $volumes then .object.spec.volumes = $volumes else . end' \
    "$REPO/test_data/pod-ifnotpresent.json" >"$WORK/requests/$1.json"
  printf '%s\n' "$WORK/requests/$1.json"
}

# deployment_request NAME CONTAINERS_JSON: a Deployment CREATE, CONTAINERS in its template.
deployment_request() {
  jq --arg uid "$(uid "$1")" --argjson containers "$2" '
    .uid = $uid | .object.spec.template.spec.containers = $containers' \
    "$REPO/test_data/deployment-defaulted.json" >"$WORK/requests/$1.json"
  printf '%s\n' "$WORK/requests/$1.json"
}

# ---------------------------------------------------------------------------------------------
# Running an engine, and what it answered
# ---------------------------------------------------------------------------------------------

# manifest_requests OFFSET: manifest requests by an OCI client in the registry's access log
# since byte OFFSET. The log line is written once the answer is sent: wait until the count
# stays the same for 0.2 s.
manifest_requests() {
  local offset=$1 count last=-1 i
  for i in $(seq 10); do
    count=$(tail -c +"$((offset + 1))" "$REGISTRY_LOG" |
      grep -cE '"(HEAD|GET) /v2/[^ ]+/manifests/[^ ]+ HTTP/[0-9.]+" [0-9]+ [0-9]+ "[^"]*" "oci-client/' || true)
    [ "$count" != "$last" ] || break
    last=$count
    sleep 0.2
  done
  printf '%s\n' "$count"
}

log_offset() {
  stat -c %s "$REGISTRY_LOG"
}

# engine_run ENGINE REQUEST SETTINGS_JSON [ARG...]: `run` of ENGINE (host or kwctl) with the
# registry's sources file, bounded in time. Sets status, output, stderr (bats) and CALLS, the
# manifest requests the run made.
engine_run() {
  local engine=$1 request=$2 settings=$3 offset
  shift 3
  offset=$(log_offset)
  case $engine in
    host)
      run --separate-stderr timeout -k 5 "$RUN_SECONDS" "$HOST_BIN" run --sources-path "$REGISTRY_SOURCES" \
        "$@" --request-path "$request" --settings-json "$settings" "$REPO/policy.wasm"
      ;;
    kwctl)
      run --separate-stderr timeout -k 5 "$RUN_SECONDS" "$KWCTL_BIN" run --sources-path "$REGISTRY_SOURCES" \
        "$@" --request-path "$request" --settings-json "$settings" "$REPO/annotated-policy.wasm"
      ;;
    *) fail "unknown engine $engine" ;;
  esac
  CALLS=$(manifest_requests "$offset")
}

# The AdmissionResponse: the last stdout line that is a JSON object.
response() {
  printf '%s\n' "$output" | grep -E '^\{' | tail -n 1
}

# Nothing trapped: exit status 0 and an AdmissionResponse with a boolean `allowed`.
assert_answered() {
  [ "$status" -eq 0 ] || fail "exit status $status"
  response | jq -e '(.allowed | type) == "boolean" and has("uid")' >/dev/null 2>&1 ||
    fail "no AdmissionResponse on stdout"
}

assert_allowed() {
  assert_answered
  [ "$(response | jq -r .allowed)" = "$1" ] || fail "allowed is not $1"
}

# The patch's operations on images (…/image and …/image/reference), as `op path value` lines,
# sorted.
image_ops() {
  response | jq -r '.patch // empty | @base64d | fromjson | .[]
    | select(.path | test("/image(/reference)?$")) | "\(.op) \(.path) \(.value)"' | LC_ALL=C sort
}

# assert_image_ops [OP_PATH_VALUE...]: exactly these image operations (none when no argument).
assert_image_ops() {
  local expected= got
  if (($#)); then
    expected=$(printf '%s\n' "$@" | LC_ALL=C sort)
  fi
  got=$(image_ops)
  [ "$got" = "$expected" ] || fail "image operations: expected [$expected], got [$got]"
}

assert_calls() {
  [ "$CALLS" -eq "$1" ] || fail "manifest requests: expected $1, got $CALLS"
}

warnings() {
  response | jq -r '.warnings // [] | .[]'
}

message() {
  response | jq -r '.status.message // empty'
}

# pinned_warning_for DIGEST: the part of the warning that names a pinned digest.
pinned_text() {
  printf "pinned to %s…, the tag's digest at admission" "${1:0:19}"
}

# ---------------------------------------------------------------------------------------------
# kwctl run and the project host
# ---------------------------------------------------------------------------------------------

@test "a single-platform tag is pinned to exactly the digest the registry serves, with one manifest request" {
  local request served
  served=$(registry_tag_digest app 1.0)
  [ "$served" = "$APP_DIGEST" ] || fail "the registry serves $served for app:1.0, pushed $APP_DIGEST"
  request=$(pod_request single "$(containers web="$REGISTRY/app:1.0")")
  for ENGINE in $ENGINES; do
    engine_run "$ENGINE" "$request" "$(pinning pods)"
    assert_allowed true
    assert_image_ops "replace /spec/containers/0/image $REGISTRY/app:1.0@$served"
    [ "$(warnings)" = "spec.containers[0] \"web\": $(pinned_text "$served") (image $REGISTRY/app:1.0)" ] ||
      fail "not the one pinned warning"
    assert_calls 1
  done
}

@test "a multi-platform tag is pinned to its index's digest, not to a platform's manifest" {
  local request served amd64 arm64
  served=$(registry_tag_digest multi 2.0)
  amd64=$(registry_tag_digest multi 2.0-amd64)
  arm64=$(registry_tag_digest multi 2.0-arm64)
  [ "$served" = "$MULTI_DIGEST" ] || fail "the registry serves $served for multi:2.0, pushed the index $MULTI_DIGEST"
  curl -fsS -H 'Accept: application/vnd.oci.image.index.v1+json' "http://$REGISTRY/v2/multi/manifests/$served" |
    jq -e '.mediaType == "application/vnd.oci.image.index.v1+json" and (.manifests | length) == 2' >/dev/null ||
    fail "multi:2.0 is not a 2-platform index"
  request=$(pod_request multi "$(containers web="$REGISTRY/multi:2.0")")
  for ENGINE in $ENGINES; do
    engine_run "$ENGINE" "$request" "$(pinning pods)"
    assert_allowed true
    assert_image_ops "replace /spec/containers/0/image $REGISTRY/multi:2.0@$served"
    [[ "$(image_ops)" != *"$amd64"* && "$(image_ops)" != *"$arm64"* ]] || fail "pinned to a platform's manifest"
    assert_calls 1
  done
}

@test "pinDigests pods pins a Pod but not a Deployment's template; all pins the template too" {
  local pod deployment served
  served=$(registry_tag_digest app 1.0)
  pod=$(pod_request scope-pod "$(containers web="$REGISTRY/app:1.0")")
  deployment=$(deployment_request scope-deployment "$(containers nginx="$REGISTRY/app:1.0")")
  for ENGINE in $ENGINES; do
    engine_run "$ENGINE" "$deployment" "$(pinning pods)"
    assert_allowed true
    assert_image_ops
    assert_calls 0
    engine_run "$ENGINE" "$deployment" "$(pinning all)"
    assert_allowed true
    assert_image_ops "replace /spec/template/spec/containers/0/image $REGISTRY/app:1.0@$served"
    assert_calls 1
    engine_run "$ENGINE" "$pod" "$(pinning all)"
    assert_allowed true
    assert_image_ops "replace /spec/containers/0/image $REGISTRY/app:1.0@$served"
    assert_calls 1
    # pinDigests off (the default) asks nothing.
    engine_run "$ENGINE" "$pod" '{"mode":"mutate"}'
    assert_allowed true
    assert_image_ops
    assert_calls 0
  done
}

@test "an image with a digest, an exempt image and a :latest image make no registry call" {
  local settings kept refused
  settings=$(pinning all "$(jq -nc --arg exempt "$REGISTRY/trusted/*" '{exemptImages: [$exempt]}')")
  kept=$(pod_request no-call "$(containers digested="$REGISTRY/app:1.0@$APP_DIGEST" \
    exempt="$REGISTRY/trusted/tool:2.0")")
  # A :latest image refuses the request: nothing in it is resolved, not even a good tag.
  refused=$(pod_request latest "$(containers latest="$REGISTRY/app:latest" web="$REGISTRY/app:1.0")")
  for ENGINE in $ENGINES; do
    engine_run "$ENGINE" "$kept" "$settings"
    assert_allowed true
    assert_image_ops
    assert_calls 0
    engine_run "$ENGINE" "$refused" "$settings"
    assert_allowed false
    assert_image_ops
    [[ "$(message)" == *'"latest": tag "latest" is denied'* ]] || fail "not refused for :latest"
    assert_calls 0
  done
}

@test "10 containers with 3 distinct images: 3 manifest requests, every container pinned" {
  local request list=() expected=() i image digest
  local images=(app:1.0 multi:2.0 third:3.1 app:1.0 app:1.0 multi:2.0 third:3.1 app:1.0 multi:2.0 third:3.1)
  for i in "${!images[@]}"; do
    image=${images[$i]}
    list+=("c$i=$REGISTRY/$image")
    digest=$(registry_tag_digest "${image%%:*}" "${image#*:}")
    expected+=("replace /spec/containers/$i/image $REGISTRY/$image@$digest")
  done
  request=$(pod_request ten "$(containers "${list[@]}")")
  for ENGINE in $ENGINES; do
    engine_run "$ENGINE" "$request" "$(pinning pods)"
    assert_allowed true
    assert_image_ops "${expected[@]}"
    [ "$(warnings | grep -c 'pinned to sha256:')" -eq 10 ] || fail "not 10 pinned warnings"
    assert_calls 3
  done
}

@test "moving the tag changes what a new Pod gets (each run a new process, no cache)" {
  local request first second
  request=$(pod_request moving "$(containers web="$REGISTRY/moving:v1")")
  for ENGINE in $ENGINES; do
    first=$(registry_push_image moving v1 "moving $ENGINE first")
    engine_run "$ENGINE" "$request" "$(pinning pods)"
    assert_allowed true
    assert_image_ops "replace /spec/containers/0/image $REGISTRY/moving:v1@$first"
    second=$(registry_push_image moving v1 "moving $ENGINE second")
    [ "$second" != "$first" ] && [ "$(registry_tag_digest moving v1)" = "$second" ] || fail "the tag did not move"
    engine_run "$ENGINE" "$request" "$(pinning pods)"
    assert_allowed true
    assert_image_ops "replace /spec/containers/0/image $REGISTRY/moving:v1@$second"
    assert_calls 1
  done
}

# A refusal names the category only; the registry's own words go to the engine's log
# (policy-server's is checked below).
@test "an unknown tag: refused as not found, after two manifest requests" {
  local request
  request=$(pod_request unknown "$(containers web="$REGISTRY/app:9.9")")
  for ENGINE in $ENGINES; do
    engine_run "$ENGINE" "$request" "$(pinning pods)"
    assert_allowed false
    assert_image_ops
    [ "$(message)" = 'spec.containers[0] "web": cannot pin the tag to its digest: not found: the registry has no such repository or tag (the policy server'"'"'s log has the details); registryFailure "accept" would admit it unpinned (image '"$REGISTRY/app:9.9)" ] ||
      fail "not the documented refusal for an unknown tag"
    # HEAD answers 404 without a digest, then a GET (docs/pinning-engine.md).
    assert_calls 2
  done
}

@test "a stopped registry: refused under registryFailure reject, accepted unpinned with a warning under accept" {
  local stopped request sources
  # A second registry, with the image, then stopped: its port refuses connections.
  stopped=$(
    registry_start "$WORK/stopped-registry" >/dev/null || exit 1
    echo "$REGISTRY_PID" >"$WORK/stopped-registry.pid"
    registry_push_image app 1.0 "stopped" >/dev/null || { registry_stop; exit 1; }
    registry_stop
    printf '%s\n' "$REGISTRY"
  ) || fail "the second registry did not start"
  rm -f "$WORK/stopped-registry.pid"
  sources=$WORK/stopped-registry/sources.yml
  request=$(pod_request stopped "$(containers web="$stopped/app:1.0")")
  for ENGINE in $ENGINES; do
    REGISTRY_SOURCES=$sources engine_run "$ENGINE" "$request" "$(pinning pods "{\"pinRegistries\": [\"$stopped/*\"]}")"
    assert_allowed false
    assert_image_ops
    [ "$(message)" = 'spec.containers[0] "web": cannot pin the tag to its digest: unreachable: the policy server cannot connect to the registry (the policy server'"'"'s log has the details); registryFailure "accept" would admit it unpinned (image '"$stopped/app:1.0)" ] ||
      fail "not the documented refusal"
    REGISTRY_SOURCES=$sources engine_run "$ENGINE" "$request" "$(pinning pods "{\"pinRegistries\": [\"$stopped/*\"], \"registryFailure\": \"accept\"}")"
    assert_allowed true
    assert_image_ops
    [ "$(warnings)" = 'spec.containers[0] "web": not pinned, accepted as it is: unreachable: the policy server cannot connect to the registry (the policy server'"'"'s log has the details) (image '"$stopped/app:1.0)" ] ||
      fail "not the documented warning"
    [ "$(warnings | wc -l)" -eq 1 ] || fail "not one warning"
  done
}

@test "an image volume's reference is pinned in a Pod" {
  local request served volumes
  served=$(registry_tag_digest app 1.0)
  volumes=$(jq -nc --arg ref "$REGISTRY/app:1.0" '[{name: "models", image: {reference: $ref, pullPolicy: "Always"}}]')
  request=$(pod_request volume "$(containers web="$REGISTRY/multi:2.0")" "$volumes")
  request=$(jq '.object.spec.containers[0].volumeMounts = [{name: "models", readOnly: true, mountPath: "/models"}]' \
    "$request" >"$request.tmp" && mv "$request.tmp" "$request" && printf '%s\n' "$request")
  for ENGINE in $ENGINES; do
    engine_run "$ENGINE" "$request" "$(pinning pods)"
    assert_allowed true
    assert_image_ops "replace /spec/containers/0/image $REGISTRY/multi:2.0@$MULTI_DIGEST" \
      "replace /spec/volumes/0/image/reference $REGISTRY/app:1.0@$served"
    assert_calls 2
  done
}

# ---------------------------------------------------------------------------------------------
# policy-server
# ---------------------------------------------------------------------------------------------

# One server for the file: the annotated module under three policy ids, allowed to mutate,
# pinning Pods: `granted` has the capability; `denied-reject` and `denied-accept` do not (no
# hostCapabilities: policy-server 1.35 then grants none).
start_policy_server() {
  local module=$REPO/annotated-policy.wasm
  cat >"$WORK/policies.yml" <<EOF
granted:
  module: file://$module
  allowedToMutate: true
  hostCapabilities: ["oci/v1/manifest_digest"]
  settings: {mode: mutate, pinDigests: pods, pinRegistries: ["$REGISTRY/*", "127.0.0.1:$SILENT_PORT/*"]}
digest-rules:
  module: file://$module
  allowedToMutate: true
  hostCapabilities: ["oci/v1/manifest_digest"]
  settings:
    mode: mutate
    pinDigests: pods
    pinRegistries: ["$REGISTRY/*", "[fd00::1]:5000/*"]
    requireDigest: true
    requireAlwaysForDigests: false
denied-reject:
  module: file://$module
  allowedToMutate: true
  settings: {mode: mutate, pinDigests: pods, pinRegistries: ["$REGISTRY/*"]}
denied-accept:
  module: file://$module
  allowedToMutate: true
  settings: {mode: mutate, pinDigests: pods, pinRegistries: ["$REGISTRY/*"], registryFailure: accept}
EOF
  POLICY_SERVER_LOG_LEVEL=warn policy_server_start "$WORK/server" "$WORK/policies.yml" \
    --sources-path "$REGISTRY_SOURCES"
}

# server_run POLICY REQUEST: posts REQUEST; sets status (0 for HTTP 200), output (the
# AdmissionResponse, one line) and CALLS.
server_run() {
  local offset http
  offset=$(log_offset)
  admission_review "$2" >"$WORK/server-body.json"
  http=$(policy_server_validate "$1" "$WORK/server-body.json" "$WORK/server-answer.json") || http=000
  status=0
  [ "$http" = 200 ] || status=$http
  output=$(jq -c '.response' "$WORK/server-answer.json" 2>/dev/null || cat "$WORK/server-answer.json")
  stderr=
  CALLS=$(manifest_requests "$offset")
}

@test "policy-server with the grant pins a tag and an index; a moved tag keeps its old digest for the server's 60 s cache" {
  [ -n "$WITH_SERVER" ] || skip "$SERVER_SKIPPED"
  ENGINE=policy-server
  local request first second served
  served=$(registry_tag_digest server/app 1.0)
  request=$(pod_request server-pin "$(containers web="$REGISTRY/server/app:1.0" multi="$REGISTRY/multi:2.0")")
  server_run granted "$request"
  assert_allowed true
  assert_image_ops "replace /spec/containers/0/image $REGISTRY/server/app:1.0@$served" \
    "replace /spec/containers/1/image $REGISTRY/multi:2.0@$MULTI_DIGEST"
  assert_calls 2
  # The same again: both digests come from the server's cache.
  server_run granted "$request"
  assert_allowed true
  assert_image_ops "replace /spec/containers/0/image $REGISTRY/server/app:1.0@$served" \
    "replace /spec/containers/1/image $REGISTRY/multi:2.0@$MULTI_DIGEST"
  assert_calls 0

  first=$(registry_tag_digest server/moving v1)
  request=$(pod_request server-moving "$(containers web="$REGISTRY/server/moving:v1")")
  server_run granted "$request"
  assert_image_ops "replace /spec/containers/0/image $REGISTRY/server/moving:v1@$first"
  assert_calls 1
  second=$(registry_push_image server/moving v1 "server moving, second")
  [ "$second" != "$first" ] || fail "the tag did not move"
  # Within 60 s of the first answer, a new Pod still gets the old digest, and nobody asks.
  server_run granted "$request"
  assert_allowed true
  assert_image_ops "replace /spec/containers/0/image $REGISTRY/server/moving:v1@$first"
  assert_calls 0
}

@test "policy-server without the grant: refused or accepted as registryFailure says, naming the missing grant, asking nothing" {
  [ -n "$WITH_SERVER" ] || skip "$SERVER_SKIPPED"
  ENGINE=policy-server
  local request grant
  grant="the policy server has not granted this policy the host capability oci/v1/manifest_digest (the policy server's log has the details)"
  request=$(pod_request server-denied "$(containers web="$REGISTRY/server/app:1.0")")
  server_run denied-reject "$request"
  assert_allowed false
  assert_image_ops
  [ "$(message)" = "spec.containers[0] \"web\": cannot pin the tag to its digest: $grant; registryFailure \"accept\" would admit it unpinned (image $REGISTRY/server/app:1.0)" ] ||
    fail "not the refusal naming the grant"
  assert_calls 0
  server_run denied-accept "$request"
  assert_allowed true
  assert_image_ops
  [ "$(warnings)" = "spec.containers[0] \"web\": not pinned, accepted as it is: $grant (image $REGISTRY/server/app:1.0)" ] ||
    fail "not the warning naming the grant"
  assert_calls 0
}

@test "policy-server and a registry that never answers: no answer until the connection closes, then the policy server's timeout refusal" {
  [ -n "$WITH_SERVER" ] || skip "$SERVER_SKIPPED"
  ENGINE=policy-server
  local port request started elapsed
  # Accepts connections and never writes a byte: not even a TLS handshake completes. The
  # `granted` policy trusts it (pinRegistries): this is what a trusted registry that hangs does.
  listener_start silent "$SILENT_PORT"
  port=$SILENT_PORT
  request=$(pod_request silent "$(containers web="127.0.0.1:$port/app:1.0")")
  admission_review "$request" >"$WORK/silent-body.json"
  # The registry client sets no timeout and --policy-timeout (2 s) only fires in guest code: in
  # a cluster the API server gives up first (the webhook's timeoutSeconds, failurePolicy).
  started=$SECONDS
  if curl -sS --max-time 6 -o "$WORK/silent-answer.json" -X POST -H 'Content-Type: application/json' \
    --data-binary "@$WORK/silent-body.json" "$POLICY_SERVER_URL/validate/granted" 2>/dev/null; then
    fail "policy-server answered while the registry was silent: $(cat "$WORK/silent-answer.json")"
  fi
  curl -sS --max-time 60 -o "$WORK/silent-answer.json" -X POST -H 'Content-Type: application/json' \
    --data-binary "@$WORK/silent-body.json" "$POLICY_SERVER_URL/validate/granted" &
  local answer_pid=$!
  sleep 3
  listener_stop silent
  wait "$answer_pid" || fail "no answer once the registry closed its connections"
  elapsed=$((SECONDS - started))
  status=0 output=$(jq -c '.response' "$WORK/silent-answer.json")
  assert_allowed false
  [ "$(jq -r '.status.code' <<<"$output")" = 500 ] || fail "not the server's 500 refusal"
  [[ "$(message)" == *"exceeded the allowed execution time"* ]] ||
    fail "not the policy server's timeout refusal"
  # registryFailure never applied: the policy did not get to read the error.
  [[ "$(message)" != *"cannot pin"* ]] || fail "the policy answered after its deadline"
  ((elapsed < 60)) || fail "took ${elapsed}s"
}

# ---------------------------------------------------------------------------------------------
# The trust boundary: what a Pod's author can make the policy server do
# ---------------------------------------------------------------------------------------------

@test "an image outside pinRegistries causes no connection; an open and a closed port read the same" {
  local attacker closed closed_port open_message closed_message good started
  listener_start attacker
  closed_port=$(registry_free_port)
  attacker=$(pod_request attacker "$(containers web="127.0.0.1:$LISTENER_PORT/attacker/app:1.0")")
  closed=$(pod_request attacker-closed "$(containers web="127.0.0.1:$closed_port/attacker/app:1.0")")
  good=$(pod_request after-attacker "$(containers web="$REGISTRY/app:1.0")")
  for ENGINE in $ENGINES; do
    engine_run "$ENGINE" "$attacker" "$(pinning pods)"
    assert_allowed false
    open_message=$(message)
    [ "$open_message" = "spec.containers[0] \"web\": cannot pin the tag to its digest: its registry is not in pinRegistries; registryFailure \"accept\" would admit it unpinned (image 127.0.0.1:$LISTENER_PORT/attacker/app:1.0)" ] ||
      fail "not the refusal for an image outside pinRegistries"
    engine_run "$ENGINE" "$closed" "$(pinning pods)"
    assert_allowed false
    closed_message=$(message)
    [ "${open_message//$LISTENER_PORT/PORT}" = "${closed_message//$closed_port/PORT}" ] ||
      fail "an open and a closed port read differently: [$open_message] [$closed_message]"
    engine_run "$ENGINE" "$good" "$(pinning pods)"
    assert_allowed true
    assert_calls 1
  done
  if [ -n "$WITH_SERVER" ]; then
    ENGINE=policy-server
    # The attacker's Pod in the background, and at once another Pod that needs the registry.
    admission_review "$attacker" >"$WORK/attacker-body.json"
    started=$(date +%s%N)
    curl -sS --max-time 20 -o "$WORK/attacker-answer.json" -X POST -H 'Content-Type: application/json' \
      --data-binary "@$WORK/attacker-body.json" "$POLICY_SERVER_URL/validate/granted" &
    local attacker_pid=$!
    server_run granted "$good"
    assert_allowed true
    wait "$attacker_pid" || fail "no answer to the attacker's Pod"
    (($(date +%s%N) - started < 5000000000)) || fail "not answered at once"
    status=0 output=$(jq -c '.response' "$WORK/attacker-answer.json")
    assert_allowed false
    [ "$(message)" = "$open_message" ] || fail "policy-server refused otherwise: $(message)"
  fi
  [ "$(accepts)" -eq 0 ] || fail "the policy server connected to the attacker's port $(accepts) times"
  listener_stop attacker
}

@test "past 8 distinct images: refused before any call under reject; the first 8 pinned under accept" {
  local list=() expected=() i request
  for i in $(seq 0 8); do
    list+=("c$i=$REGISTRY/bound/app$i:1.0")
  done
  for i in $(seq 0 7); do
    registry_push_image "bound/app$i" 1.0 "bound $i" >/dev/null || fail "push bound/app$i"
  done
  request=$(pod_request bound "$(containers "${list[@]}")")
  for ENGINE in $ENGINES; do
    engine_run "$ENGINE" "$request" "$(pinning pods)"
    assert_allowed false
    assert_calls 0
    [[ "$(message)" == *'"c8": cannot pin the tag to its digest: the request names more than 8 distinct images to pin;'* ]] ||
      fail "not refused for the bound"
    engine_run "$ENGINE" "$request" "$(pinning pods '{"registryFailure": "accept"}')"
    assert_allowed true
    assert_calls 8
    [ "$(image_ops | wc -l)" -eq 8 ] || fail "not 8 pinned images"
    [[ "$(warnings)" == *'"c8": not pinned, accepted as it is: the request names more than 8 distinct images to pin'* ]] ||
      fail "no warning for the ninth"
  done
}

@test "policy-server: a refusal names the category, and the registry's own words are in policy-server's log" {
  [ -n "$WITH_SERVER" ] || skip "$SERVER_SKIPPED"
  ENGINE=policy-server
  local request offset
  offset=$(stat -c %s "$POLICY_SERVER_LOG")
  request=$(pod_request server-unknown "$(containers web="$REGISTRY/server/app:9.9")")
  server_run granted "$request"
  assert_allowed false
  [ "$(message)" = "spec.containers[0] \"web\": cannot pin the tag to its digest: not found: the registry has no such repository or tag (the policy server's log has the details); registryFailure \"accept\" would admit it unpinned (image $REGISTRY/server/app:9.9)" ] ||
    fail "not the not-found refusal"
  local tries=0 logged=
  while ((tries++ < 20)); do
    logged=$(tail -c +"$((offset + 1))" "$POLICY_SERVER_LOG" | grep -F 'cannot pin the tag to its digest' || true)
    [ -z "$logged" ] || break
    sleep 0.1
  done
  [ -n "$logged" ] || fail "nothing logged: $(tail -c 2000 "$POLICY_SERVER_LOG")"
  [[ "$logged" == *"$REGISTRY/server/app:9.9"* && "$logged" == *"manifest unknown"* ]] ||
    fail "the log lacks the image or the registry's answer: $logged"
}

@test "policy-server: digest rules are judged after pinning; an UPDATE is pinned like a CREATE; IPv6 is never sent" {
  [ -n "$WITH_SERVER" ] || skip "$SERVER_SKIPPED"
  ENGINE=policy-server
  local served create update ipv6
  served=$(registry_tag_digest server/app 1.0)
  # requireDigest and requireAlwaysForDigests false: the pinned IfNotPresent container passes.
  create=$(pod_request digest-rules "$(containers web="$REGISTRY/server/app:1.0" | jq -c '.[0].imagePullPolicy = "IfNotPresent"')")
  server_run digest-rules "$create"
  assert_allowed true
  [ "$(response | jq -r '.patch | @base64d | fromjson | map("\(.op) \(.path) \(.value)") | join(",")')" = "replace /spec/containers/0/image $REGISTRY/server/app:1.0@$served" ] ||
    fail "not only the image pinned"
  update=$(jq --arg image "$REGISTRY/server/app:1.0" '
    .operation = "UPDATE" | .oldObject = .object | .oldObject.spec.containers[0].image = ($image | sub("1.0$"; "0.9"))' \
    "$create" >"$WORK/requests/update.json" && printf '%s\n' "$WORK/requests/update.json")
  server_run digest-rules "$update"
  assert_allowed true
  assert_image_ops "replace /spec/containers/0/image $REGISTRY/server/app:1.0@$served"
  ipv6=$(pod_request ipv6 "$(containers web="[fd00::1]:5000/team/app:1.0")")
  server_run digest-rules "$ipv6"
  assert_allowed false
  [[ "$(message)" == *"cannot pin the tag to its digest: the policy server cannot read a registry host in brackets (IPv6)"* ]] ||
    fail "not the IPv6 refusal"
  assert_calls 0
}
