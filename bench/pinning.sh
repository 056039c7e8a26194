#!/usr/bin/env bash
# Digest pinning through the real policy-server: what a Pod's admission costs when the policy asks
# a registry (on 127.0.0.1) for each tag's digest.
#
#   bench/pinning.sh
#
# Starts Debian's docker-registry on loopback (tests/lib/registry.bash) and one policy-server
# (tests/lib/kubewarden.bash) with annotated-policy.wasm as policy `pin`: mode mutate, pinDigests
# pods, allowed to mutate, granted oci/v1/manifest_digest, with a sources file that lets it use the
# registry over plain HTTP. Then posts, with wrk, a Pod with 1 and a Pod with 8 distinct tagged
# images (8: the most the policy resolves in one request) (pull policy Always, so that the only patch is the pinned images):
#
#   * warm: the same Pod again and again, within the server's 60 s digest cache (primed by a
#     first request just before); bench/server.lua checks every answer is the first one's bytes;
#   * cold: every request a Pod with tags no request used before (one manifest pushed under
#     COLD_REQUESTS x images tags beforehand), so each image is a cache miss;
#     bench/pinning-cold.lua checks each answer is an HTTP 200 pinning mutation. A cold run
#     ends when its Pods are used up (time cap: 4 x DURATION), so that no admission is still in
#     flight, asking the registry, when the requests are counted; the defaults take about
#     DURATION seconds on a 2-core machine.
#
# The first answer of each Pod is checked against the registry: every image pinned to the digest
# it serves. Prints answers per second, p50 and p99 latency, errors, and the manifest requests
# the server made per admission (HEAD/GET /v2/.../manifests/... by oci-client, counted in the
# registry's access log). Everything started here is stopped on exit.
#
# Environment (all optional):
#   DURATION        seconds per run, at most (default 3)
#   CONNECTIONS     wrk connections, one thread each (default 4)
#   MAX_ANSWERS     answers per warm run, at most (default 100000)
#   COLD_REQUESTS_1 / COLD_REQUESTS_8   cold requests with 1 / 8 images (default 49 / 9: one
#                   checked by hand, then an equal share per connection)
#   OUT_DIR         where results go (default target/bench/pinning)
# kwctl and policy-server are found as for the tests (KWCTL / POLICY_SERVER, PATH,
# ../shared/kubewarden/bin); annotated-policy.wasm must be built (make annotated-policy.wasm).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source tests/lib/kubewarden.bash

DURATION="${DURATION:-3}"
CONNECTIONS="${CONNECTIONS:-4}"
MAX_ANSWERS="${MAX_ANSWERS:-100000}"
COLD_REQUESTS_1="${COLD_REQUESTS_1:-49}"
COLD_REQUESTS_8="${COLD_REQUESTS_8:-9}"
OUT_DIR="${OUT_DIR:-$root/target/bench/pinning}"
POLICY="$root/annotated-policy.wasm"

for tool in jq wrk curl; do
  command -v "$tool" >/dev/null || { echo "pinning.sh: $tool is required (scripts/setup.sh installs it)" >&2; exit 1; }
done
kubewarden_find policy-server >/dev/null || { kubewarden_missing policy-server >&2; exit 1; }
[[ -f "$POLICY" ]] || { echo "pinning.sh: $POLICY is missing: make annotated-policy.wasm" >&2; exit 1; }
rm -rf "$OUT_DIR"
mkdir -p "$OUT_DIR/bodies"
kubewarden_scratch "$OUT_DIR/xdg"
export XDG_DATA_HOME=$OUT_DIR/xdg/data

cleanup() {
  policy_server_stop
  registry_stop
}
trap cleanup EXIT

# --- registry --------------------------------------------------------------------------------
echo "== registry and images" >&2
registry_start "$OUT_DIR/registry"
registry_push_image bench/app base "pinning bench" >/dev/null
manifest="$OUT_DIR/manifest.json"
curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://$REGISTRY/v2/bench/app/manifests/base" >"$manifest"
digest=$(registry_digest_of "$manifest")

# push_tags TAG...: the same manifest under every TAG, in one curl.
push_tags() {
  local tag
  {
    printf 'header = "Content-Type: application/vnd.oci.image.manifest.v1+json"\nfail\nsilent\nshow-error\n'
    for tag; do
      printf 'upload-file = "%s"\nurl = "http://%s/v2/bench/app/manifests/%s"\noutput = "/dev/null"\n' \
        "$manifest" "$REGISTRY" "$tag"
    done
  } >"$OUT_DIR/push.curlrc"
  curl -K "$OUT_DIR/push.curlrc"
}

# review TAG...: an AdmissionReview of a Pod with one container per TAG (image bench/app:TAG),
# on one line.
review() {
  local uid
  uid=$(printf '%s' "$*" | md5sum | sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12}).*/\1-\2-\3-\4-\5/')
  jq -c --arg uid "$uid" --arg registry "$REGISTRY" '
    {apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
     request: (.uid = $uid | .object.spec.containers = ($ARGS.positional | to_entries
       | map({name: "c\(.key)", image: "\($registry)/bench/app:\(.value)", resources: {},
              imagePullPolicy: "Always"})))}' \
    test_data/pod-ifnotpresent.json --args "$@"
}

tags() { # tags PREFIX COUNT
  local i
  for i in $(seq 0 $(($2 - 1))); do printf '%s%s\n' "$1" "$i"; done
}

# Warm Pods: tags w1-0 and w8-0..7. Cold Pods: request r of the n-image case has tags
# c<n>-<r>-0..n-1.
mapfile -t warm1 < <(tags w1- 1)
mapfile -t warm8 < <(tags w8- 8)
push_tags "${warm1[@]}" "${warm8[@]}"
review "${warm1[@]}" >"$OUT_DIR/bodies/warm-1.json"
review "${warm8[@]}" >"$OUT_DIR/bodies/warm-8.json"
for images in 1 8; do
  requests_var=COLD_REQUESTS_$images
  cold_tags=()
  : >"$OUT_DIR/bodies/cold-$images.jsonl"
  for r in $(seq "${!requests_var}"); do
    mapfile -t pod_tags < <(tags "c$images-$r-" "$images")
    cold_tags+=("${pod_tags[@]}")
    review "${pod_tags[@]}" >>"$OUT_DIR/bodies/cold-$images.jsonl"
  done
  echo "   pushing ${#cold_tags[@]} tags for the cold $images-image Pods" >&2
  push_tags "${cold_tags[@]}"
done

# --- server ----------------------------------------------------------------------------------
cat >"$OUT_DIR/policies.yml" <<EOF
pin:
  module: file://$POLICY
  allowedToMutate: true
  hostCapabilities: ["oci/v1/manifest_digest"]
  settings: {mode: mutate, pinDigests: pods, pinRegistries: ["$REGISTRY/*"]}
EOF
echo "== starting policy-server" >&2
POLICY_SERVER_LOG_LEVEL=warn policy_server_start "$OUT_DIR/server" "$OUT_DIR/policies.yml" \
  --sources-path "$REGISTRY_SOURCES" || { tail -c 3000 "$POLICY_SERVER_LOG" >&2; exit 1; }

# manifest_requests OFFSET: manifest requests by an OCI client in the registry's log since OFFSET.
manifest_requests() {
  sleep 0.3
  tail -c +"$(($1 + 1))" "$REGISTRY_LOG" |
    grep -cE '"(HEAD|GET) /v2/[^ ]+/manifests/[^ ]+ HTTP/[0-9.]+" [0-9]+ [0-9]+ "[^"]*" "oci-client/' || true
}

# check_answer ANSWER_FILE IMAGES: an HTTP-200 answer pinning IMAGES containers to $digest.
check_answer() {
  jq -e --arg digest "$digest" --argjson n "$2" '
    .response.allowed == true
    and ([.response.patch | @base64d | fromjson | .[] | select(.path | test("^/spec/containers/[0-9]+/image$"))
          | select(.op == "replace" and (.value | endswith("@" + $digest)))] | length) == $n' "$1" >/dev/null
}

results="$OUT_DIR/results.jsonl"
: >"$results"

# record CASE IMAGES CACHE LINE OFFSET
record() {
  local calls
  calls=$(manifest_requests "$5")
  [[ -n "$4" ]] || { echo "pinning.sh: wrk gave no figures for $1" >&2; exit 1; }
  jq -c --arg case "$1" --argjson images "$2" --arg cache "$3" --argjson calls "$calls" \
    '. + {case: $case, images: $images, cache: $cache, calls: $calls}' <<<"$4" >>"$results"
  printf '   %-10s %8.1f answers/s, %s manifest requests\n' "$1" "$(jq -r .rps <<<"$4")" "$calls" >&2
}

echo "== measuring (warm: ${DURATION} s a run; cold: its Pods; $CONNECTIONS connections)" >&2
for images in 1 8; do
  # warm: prime the cache with one request (checked), then the same Pod for DURATION seconds.
  body="$OUT_DIR/bodies/warm-$images.json"
  expected="$OUT_DIR/bodies/warm-$images.expected"
  http=$(policy_server_validate pin "$body" "$expected")
  [[ "$http" == 200 ]] && check_answer "$expected" "$images" ||
    { echo "pinning.sh: warm $images: HTTP $http, $(head -c 600 "$expected")" >&2; exit 1; }
  offset=$(stat -c %s "$REGISTRY_LOG")
  line=$(wrk --latency -t "$CONNECTIONS" -c "$CONNECTIONS" -d "${DURATION}s" --timeout 10s \
    -s bench/server.lua "$POLICY_SERVER_URL/validate/pin" -- "$body" "$expected" \
    "$(((MAX_ANSWERS + CONNECTIONS - 1) / CONNECTIONS))" | grep '^{' | tail -n 1 || true)
  record "warm-$images" "$images" warm "$line" "$offset"

  # cold: the first cold Pod by hand (checked, and counted apart), then the rest through wrk.
  bodies="$OUT_DIR/bodies/cold-$images.jsonl"
  head -n 1 "$bodies" >"$OUT_DIR/bodies/cold-$images.first.json"
  http=$(policy_server_validate pin "$OUT_DIR/bodies/cold-$images.first.json" "$OUT_DIR/bodies/cold-$images.first.answer")
  [[ "$http" == 200 ]] && check_answer "$OUT_DIR/bodies/cold-$images.first.answer" "$images" ||
    { echo "pinning.sh: cold $images: HTTP $http, $(head -c 600 "$OUT_DIR/bodies/cold-$images.first.answer")" >&2; exit 1; }
  tail -n +2 "$bodies" >"$OUT_DIR/bodies/cold-$images.rest.jsonl"
  offset=$(stat -c %s "$REGISTRY_LOG")
  line=$(wrk --latency -t "$CONNECTIONS" -c "$CONNECTIONS" -d "$((DURATION * 4))s" --timeout 10s \
    -s bench/pinning-cold.lua "$POLICY_SERVER_URL/validate/pin" -- \
    "$OUT_DIR/bodies/cold-$images.rest.jsonl" "$CONNECTIONS" | grep '^{' | tail -n 1 || true)
  record "cold-$images" "$images" cold "$line" "$offset"
done
policy_server_stop

# --- report ----------------------------------------------------------------------------------
report="$OUT_DIR/results.txt"
jq -rs --arg connections "$CONNECTIONS" '
  def fixed($d): (. * pow(10; $d) | round) / pow(10; $d) | tostring;
  def pad($n): tostring | (" " * ([$n - length, 0] | max)) + .;
  ("images" | pad(6)) + ("cache" | pad(7)) + ("answers" | pad(9)) + ("answers/s" | pad(11))
    + ("p50 ms" | pad(9)) + ("p99 ms" | pad(9)) + ("errors" | pad(8)) + ("manifest req/admission" | pad(24)),
  ("-" * 83),
  (.[] | (.images | pad(6)) + (.cache | pad(7)) + (.answers | pad(9)) + (.rps | fixed(1) | pad(11))
    + (.p50_us / 1000 | fixed(2) | pad(9)) + (.p99_us / 1000 | fixed(2) | pad(9))
    + (.wrong_answers + .socket_errors | pad(8))
    + (if .answers > 0 then .calls / .answers | fixed(2) else "-" end | pad(24))),
  "",
  "one policy-server (\($connections) wrk connections), registry on 127.0.0.1 over plain HTTP (insecure_sources);",
  "warm: the same Pod within the 60 s digest cache; cold: every Pod new tags (each image a cache miss)"
' "$results" | tee "$report"
echo "raw results: $results; table: $report" >&2
jq -se 'map(.wrong_answers + .socket_errors) | add == 0' "$results" >/dev/null
