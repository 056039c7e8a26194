#!/usr/bin/env bats
# The module as users get it: `make push` publishes annotated-policy.wasm to an OCI registry,
# `kwctl pull` and `kwctl inspect` read it back, and policy-server loads it from the registry.
# The registry is Debian's docker-registry on 127.0.0.1 (tests/lib/registry.bash), over plain
# HTTP through a sources file; everything started here is stopped in teardown_file.
#
#   make engine-tests     # with the other real-engine tests
#   bats tests/registry.bats

bats_require_minimum_version 1.5.0

load lib/kubewarden

REPO=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
POLICY=$REPO/annotated-policy.wasm
REQUEST=$REPO/test_data/pod-ifnotpresent.json

fail() {
  printf '%s\n' "$@" >&2
  return 1
}

setup_file() {
  [ -f "$POLICY" ] || fail "$POLICY is missing: run make annotated-policy.wasm"
  KWCTL=$(kubewarden_find kwctl) || fail "$(kubewarden_missing kwctl)"
  export KWCTL WORK=$BATS_FILE_TMPDIR
  kubewarden_scratch "$WORK/xdg"
  registry_start "$WORK/registry" || fail "the registry did not start"
  local version
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n 1)
  export REPOSITORY=$REGISTRY/policies/image-pull-policy TAG=v$version
  export MODULE_URI=registry://$REPOSITORY:$TAG
  make -C "$REPO" --no-print-directory push OCI_REPOSITORY="$REPOSITORY" \
    SOURCES="$REGISTRY_SOURCES" KWCTL="$KWCTL" >"$WORK/push.log" 2>&1 ||
    fail "make push failed: $(tail -c 2000 "$WORK/push.log")"
}

teardown_file() {
  policy_server_stop
  registry_stop
}

@test "make push: the registry serves the annotated module as a Wasm layer under the version tag" {
  run curl -fsS --max-time 30 -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REGISTRY/v2/policies/image-pull-policy/manifests/$TAG"
  [ "$status" -eq 0 ] || fail "no manifest for $TAG: $output"
  local digest
  digest=sha256:$(sha256sum "$POLICY" | cut -d' ' -f1)
  jq -e --arg digest "$digest" --argjson size "$(stat -c %s "$POLICY")" '
    .config.mediaType == "application/vnd.wasm.config.v1+json"
    and (.layers | length) == 1
    and .layers[0].mediaType == "application/vnd.wasm.content.layer.v1+wasm"
    and .layers[0].digest == $digest and .layers[0].size == $size' <<<"$output" >/dev/null ||
    fail "the manifest does not carry annotated-policy.wasm ($digest): $output"
}

@test "kwctl pull: the module comes back byte for byte" {
  run "$KWCTL" pull --sources-path "$REGISTRY_SOURCES" -o "$WORK/pulled.wasm" "$MODULE_URI"
  [ "$status" -eq 0 ] || fail "kwctl pull failed: ${output: -2000}"
  cmp "$WORK/pulled.wasm" "$POLICY" || fail "the pulled module differs from annotated-policy.wasm"
}

@test "kwctl inspect: the pulled module shows metadata.yml and README.md as its usage text" {
  "$KWCTL" pull --sources-path "$REGISTRY_SOURCES" "$MODULE_URI" 2>/dev/null
  "$KWCTL" inspect --sources-path "$REGISTRY_SOURCES" -o yaml "$MODULE_URI" >"$WORK/inspect.yaml" 2>"$WORK/inspect.err" ||
    fail "kwctl inspect failed: $(tail -c 2000 "$WORK/inspect.err")"
  # Every key of metadata.yml, annotations included, as written; kwctl adds protocolVersion
  # (from the module), its own version, and the usage text.
  jq -en --slurpfile shown <(yq -c . "$WORK/inspect.yaml") --slurpfile metadata <(yq -c . "$REPO/metadata.yml") '
    $shown[0] as $s | $metadata[0] as $m
    | ($m | del(.annotations) | to_entries | all(.value == $s[.key]))
      and ($m.annotations | to_entries | all(.value == $s.annotations[.key]))
      and $s.protocolVersion == "v1"' >/dev/null ||
    fail "kwctl inspect does not show metadata.yml: $(cat "$WORK/inspect.yaml")"
  cmp <(yq -j '.annotations["io.kubewarden.policy.usage"]' "$WORK/inspect.yaml") "$REPO/README.md" ||
    fail "the usage text is not README.md"
  # The readable form too: the title, and the Usage section.
  run "$KWCTL" inspect --sources-path "$REGISTRY_SOURCES" "$MODULE_URI"
  [[ "$output" == *"title:"*"$(yq -r '.annotations["io.kubewarden.policy.title"]' "$REPO/metadata.yml")"* ]] ||
    fail "no title: $output"
  [[ "$output" == *$'\nUsage'* ]] || fail "no usage section: $output"
}

@test "kwctl run: the module from the registry answers as the local file" {
  run --separate-stderr "$KWCTL" run --sources-path "$REGISTRY_SOURCES" --request-path "$REQUEST" "$MODULE_URI"
  [ "$status" -eq 0 ] || fail "kwctl run from the registry failed: ${stderr: -2000}"
  local from_registry=$output
  run --separate-stderr "$KWCTL" run --request-path "$REQUEST" "$POLICY"
  [ "$status" -eq 0 ] || fail "kwctl run on the file failed: ${stderr: -2000}"
  [ "$from_registry" = "$output" ] || fail "registry: $from_registry" "file: $output"
  jq -e '.allowed and .patch' <<<"$output" >/dev/null || fail "not a mutation: $output"
}

@test "policy-server: loads the module from the registry (insecure source) and answers as kwctl" {
  printf 'from-registry:\n  module: %s\n  allowedToMutate: true\n' "$MODULE_URI" >"$WORK/policies.yml"
  policy_server_start "$WORK/server" "$WORK/policies.yml" --sources-path "$REGISTRY_SOURCES" ||
    fail "policy-server did not start: $(tail -c 3000 "$POLICY_SERVER_LOG")"
  grep -q "policy download" "$POLICY_SERVER_LOG" || fail "no download of the policy in the log"
  admission_review "$REQUEST" >"$WORK/review.json"
  run policy_server_validate from-registry "$WORK/review.json" "$WORK/answer.json"
  [ "$output" = 200 ] || fail "HTTP $output: $(cat "$WORK/answer.json")"
  local expected
  expected=$("$KWCTL" run --request-path "$REQUEST" "$POLICY" 2>/dev/null)
  jq -e --argjson expected "$expected" '.response == $expected' "$WORK/answer.json" >/dev/null ||
    fail "kwctl: $expected" "server: $(cat "$WORK/answer.json")"
  policy_server_stop
}
