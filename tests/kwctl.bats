#!/usr/bin/env bats
# The Kubewarden packaging files, checked by the real kwctl rather than by a copy of its rules:
# metadata.yml by `kwctl annotate`, artifacthub-pkg.yml against `make artifacthub` (kwctl
# scaffold artifacthub), and examples/ against `kwctl scaffold manifest`. tests/artifacts.rs
# keeps what kwctl does not check (annotation formats, unknown keys, the settings' defaults).
#
#   make engine-tests     # with the other real-engine tests
#   bats tests/kwctl.bats

bats_require_minimum_version 1.5.0

load lib/kubewarden

REPO=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
POLICY=$REPO/annotated-policy.wasm

fail() {
  printf '%s\n' "$@" >&2
  return 1
}

setup_file() {
  [ -f "$POLICY" ] || fail "$POLICY is missing: run make annotated-policy.wasm"
  KWCTL=$(kubewarden_find kwctl) || fail "$(kubewarden_missing kwctl)"
  export KWCTL
  kubewarden_scratch "$BATS_FILE_TMPDIR/xdg"
}

# annotate METADATA: kwctl annotate of policy.wasm with METADATA, into the test's directory.
annotate() {
  run --separate-stderr "$KWCTL" annotate -m "$1" -u "$REPO/README.md" \
    -o "$BATS_TEST_TMPDIR/annotated.wasm" "$REPO/policy.wasm"
}

@test "kwctl annotate: accepts metadata.yml, and refuses each kind of metadata it cannot use" {
  annotate "$REPO/metadata.yml"
  [ "$status" -eq 0 ] || fail "kwctl annotate refused metadata.yml: ${stderr: -2000}"
  # What kwctl itself checks, so that tests/artifacts.rs need not: each edit of metadata.yml
  # (a yq filter) and what kwctl says of it.
  local edit expected
  while IFS='|' read -r edit expected; do
    yq -y "$edit" "$REPO/metadata.yml" >"$BATS_TEST_TMPDIR/metadata.yml"
    annotate "$BATS_TEST_TMPDIR/metadata.yml"
    [ "$status" -ne 0 ] || fail "kwctl annotate accepted metadata.yml with $edit"
    [[ "$stderr" == *"$expected"* ]] || fail "kwctl annotate, $edit: no [$expected] in ${stderr: -1000}"
  done <<'EOF'
del(.rules)|missing field `rules`
.rules[0].operations += ["PATCH"]|unknown variant `PATCH`
.rules[0].apiGroups = []|api_groups
.rules[0].operations = ["*", "CREATE"]|No other elements can be defined when '*' is used
.rules[0].resources = ["*", "pods"]|must not specify other resources without subresources
del(.mutating)|missing field `mutating`
.mutating = "yes"|expected a boolean
.executionMode = "opa-wasm"|unknown variant `opa-wasm`
EOF
}

@test "artifacthub-pkg.yml is what make artifacthub (kwctl scaffold artifacthub) writes" {
  make -C "$REPO" --no-print-directory artifacthub KWCTL="$KWCTL" \
    ARTIFACTHUB_PKG="$BATS_TEST_TMPDIR/artifacthub-pkg.yml" >/dev/null 2>"$BATS_TEST_TMPDIR/err" ||
    fail "make artifacthub failed: $(tail -c 2000 "$BATS_TEST_TMPDIR/err")"
  # createdAt is the time kwctl ran: the committed one is kept.
  run diff <(grep -v '^createdAt: ' "$REPO/artifacthub-pkg.yml") \
    <(grep -v '^createdAt: ' "$BATS_TEST_TMPDIR/artifacthub-pkg.yml")
  [ "$status" -eq 0 ] || fail "artifacthub-pkg.yml is out of date: run make artifacthub" "$output"
  grep -Eq '^createdAt: [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$' "$REPO/artifacthub-pkg.yml" ||
    fail "artifacthub-pkg.yml has no createdAt timestamp"
}

@test "examples/: each is the manifest kwctl scaffold manifest writes for its settings, and runs" {
  local example count=0 oci_url version expected_module
  oci_url=$(yq -r '.annotations["io.kubewarden.policy.ociUrl"]' "$REPO/metadata.yml")
  version=$(yq -r '.annotations["io.kubewarden.policy.version"]' "$REPO/metadata.yml")
  expected_module=registry://$oci_url:v$version
  for example in "$REPO"/examples/*.yaml; do
    count=$((count + 1))
    yq -c . "$example" >"$BATS_TEST_TMPDIR/example.json"
    run --separate-stderr "$KWCTL" scaffold manifest \
      --type "$(jq -r .kind "$BATS_TEST_TMPDIR/example.json")" \
      --title "$(jq -r .metadata.name "$BATS_TEST_TMPDIR/example.json")" \
      --settings-json "$(jq -c '.spec.settings // {}' "$BATS_TEST_TMPDIR/example.json")" "$POLICY"
    [ "$status" -eq 0 ] || fail "$example: kwctl scaffold manifest failed: ${stderr: -2000}"
    printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/scaffold.yaml"
    # The example may add to what kwctl writes (spec.mode, namespaceSelector, comments), and
    # declare itself non-mutating when its settings never mutate (reject and warn modes; the
    # run below proves it), but it may not say otherwise.
    run jq -rn --slurpfile example "$BATS_TEST_TMPDIR/example.json" \
      --slurpfile scaffold <(yq -c . "$BATS_TEST_TMPDIR/scaffold.yaml") --arg expected_module "$expected_module" '
        $example[0] as $e | $scaffold[0] as $s
        | [ (["apiVersion"], ["kind"], ["metadata", "name"], ["metadata", "annotations"],
             ["spec", "rules"], ["spec", "settings"], ["spec", "backgroundAudit"]) as $path
            | select($s | getpath($path) != null)
            | select(($e | getpath($path)) != ($s | getpath($path)))
            | "\($path | join(".")): example \($e | getpath($path) | tojson), kwctl \($s | getpath($path) | tojson)" ]
          + (if $e.spec.mutating == $s.spec.mutating then []
             elif $e.spec.mutating == false and ($e.spec.settings.mode | IN("reject", "warn")) then []
             else ["spec.mutating: example \($e.spec.mutating), kwctl \($s.spec.mutating)"] end)
          + (if $e.spec.module == $expected_module then [] else ["spec.module: \($e.spec.module), not \($expected_module)"] end)
        | .[]'
    [ -z "$output" ] || fail "$example differs from kwctl scaffold manifest:" "$output"
    # The scaffolded manifest, with the example's settings, is a policy kwctl runs.
    run --separate-stderr "$KWCTL" run --request-path "$REPO/test_data/pod-ifnotpresent.json" \
      "$BATS_TEST_TMPDIR/scaffold.yaml"
    [ "$status" -eq 0 ] || fail "$example: kwctl run of its manifest failed: ${stderr: -2000}"
    jq -e '(.allowed | type) == "boolean"' <<<"$output" >/dev/null || fail "$example: no answer: $output"
    if [ "$(jq -r .spec.mutating "$BATS_TEST_TMPDIR/example.json")" = false ]; then
      jq -e '.patch == null' <<<"$output" >/dev/null || fail "$example is not mutating, yet its settings mutate: $output"
    fi
  done
  ((count > 0)) || fail "no examples"
}
