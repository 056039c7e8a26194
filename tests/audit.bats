#!/usr/bin/env bats
# What a PolicyReport says, through the real policy-server: the objects of test_data/audit/, sent
# to /audit/<policy> as Kubewarden's audit scanner sends them (the bare AdmissionRequest wrapped
# as {"request": ...}, no apiVersion or kind, as Go marshals admission/v1's AdmissionReview), and
# the same objects sent to /validate/<policy> as an API server sends them (a user, the plural as
# the resource), in mutate, warn and reject modes, mutateTemplates false, and policyMode monitor.
#
#   make engine-tests        # this file among the others (needs annotated-policy.wasm)
#
# What policy-server 1.35.0 does, as measured here: /audit evaluates the policy and answers its
# verdict whatever the policyMode (monitor included: monitor only changes /validate, which then
# allows everything); the audit scanner files any allowed answer as PASS and anything else as
# FAIL, with the message.

bats_require_minimum_version 1.5.0

load lib/kubewarden

REPO=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
POLICY=${POLICY:-$REPO/annotated-policy.wasm}
A=$REPO/test_data/audit
DEPLOYMENT_MESSAGE='spec.template.spec.containers[0] "nginx": imagePullPolicy is IfNotPresent, must be Always (image nginx:1.27)'
POD_MESSAGE='spec.containers[0] "web": imagePullPolicy is IfNotPresent, must be Always (image nginx:1.27)'
# Every policy of the server: the modes, the GitOps setting, and monitor mode.
POLICIES=(mutate warn reject no-templates monitor)

fail() {
  printf '%s\n' "$@" >&2
  return 1
}

# policy ID POLICY_MODE SETTINGS_JSON: one policy of policies.yml, allowed to mutate.
policy() {
  printf '%s:\n  module: file://%s\n  allowedToMutate: true\n  policyMode: %s\n  settings: %s\n' \
    "$1" "$POLICY" "$2" "$3"
}

setup_file() {
  [ -s "$POLICY" ] || fail "$POLICY is missing: run make annotated-policy.wasm"
  export WORK=$BATS_FILE_TMPDIR
  kubewarden_scratch "$WORK/xdg"
  {
    policy mutate protect '{}'
    policy warn protect '{"mode":"warn"}'
    policy reject protect '{"mode":"reject"}'
    policy no-templates protect '{"mutateTemplates":false}'
    policy monitor monitor '{}'
  } >"$WORK/policies.yml"
  policy_server_start "$WORK/server" "$WORK/policies.yml" || {
    cat "$POLICY_SERVER_LOG" >&2
    fail "policy-server did not start"
  }
  export FILE_SERVER_PID=$POLICY_SERVER_PID
}

# A test that started a server of its own stops it, also when it fails.
teardown() {
  if [ -n "${POLICY_SERVER_PID:-}" ] && [ "$POLICY_SERVER_PID" != "$FILE_SERVER_PID" ]; then
    policy_server_stop
  fi
}

teardown_file() {
  policy_server_stop
}

# audit_body FIXTURE: the body the audit scanner posts for the object.
audit_body() {
  jq -c '{request: .}' "$A/$1"
}

# api_server_body FIXTURE: the same object as an API server's CREATE, as an AdmissionReview.
api_server_body() {
  jq -c '{apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: (.
    | .resource.resource = (.kind.kind | ascii_downcase + "s")
    | .requestResource = .resource
    | .userInfo = {username: "kubernetes-admin", groups: ["system:masters", "system:authenticated"]})}' "$A/$1"
}

# ask ENDPOINT POLICY BODY: posts BODY to /ENDPOINT/POLICY; sets `answer` to the response.
ask() {
  local http
  printf '%s' "$3" >"$BATS_TEST_TMPDIR/body.json"
  http=$(curl -sS --max-time 60 -o "$BATS_TEST_TMPDIR/answer.json" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' --data-binary "@$BATS_TEST_TMPDIR/body.json" \
    "$POLICY_SERVER_URL/$1/$2") || fail "/$1/$2: no answer"
  [ "$http" = 200 ] || fail "/$1/$2: HTTP $http: $(head -c 600 "$BATS_TEST_TMPDIR/answer.json")"
  answer=$(jq -c '.response' "$BATS_TEST_TMPDIR/answer.json")
}

# expect WHAT JQ_EXPRESSION: the answer satisfies the expression (with $m bound to MESSAGE).
expect() {
  jq -e --arg m "${MESSAGE:-}" "$2" <<<"$answer" >/dev/null || fail "$WHERE: expected $1, got $answer"
}

refused_as_reject_mode() {
  expect "a refusal with the reject-mode message, no patch, no warning" \
    '.allowed == false and .status.message == $m and .patch == null and ((.warnings // []) == [])'
}

# refused_on_audit_by_every_policy FIXTURE MESSAGE: /audit refuses FIXTURE with MESSAGE, as reject
# mode does, under every policy of the server.
refused_on_audit_by_every_policy() {
  local id body
  body=$(audit_body "$1")
  for id in "${POLICIES[@]}"; do
    WHERE="/audit/$id" MESSAGE=$2
    ask audit "$id" "$body"
    refused_as_reject_mode
  done
}

@test "/audit: a Deployment with IfNotPresent is refused with the reject-mode message, in every mode and in monitor" {
  refused_on_audit_by_every_policy deployment-ifnotpresent.json "$DEPLOYMENT_MESSAGE"
}

@test "/audit: a Pod with IfNotPresent is refused with the reject-mode message, in every mode and in monitor" {
  refused_on_audit_by_every_policy pod-ifnotpresent.json "$POD_MESSAGE"
}

@test "/audit and /validate: a compliant Deployment is allowed untouched, in every mode" {
  local id
  for id in "${POLICIES[@]}"; do
    WHERE="/audit/$id"
    ask audit "$id" "$(audit_body deployment-compliant.json)"
    expect "allowed, no patch, no warning" '.allowed == true and .patch == null and ((.warnings // []) == [])'
    WHERE="/validate/$id"
    ask validate "$id" "$(api_server_body deployment-compliant.json)"
    expect "allowed, no patch, no warning" '.allowed == true and .patch == null and ((.warnings // []) == [])'
  done
}

@test "/validate: the same Deployment from the API server is mutated, warned, refused, or left alone by monitor" {
  local body
  body=$(api_server_body deployment-ifnotpresent.json)
  MESSAGE=$DEPLOYMENT_MESSAGE
  WHERE=/validate/mutate
  ask validate mutate "$body"
  expect "allowed with a patch setting Always" '.allowed == true and .patchType == "JSONPatch"
    and (.patch | @base64d | fromjson) == [{"op": "replace",
      "path": "/spec/template/spec/containers/0/imagePullPolicy", "value": "Always"}]'
  WHERE=/validate/warn
  ask validate warn "$body"
  expect "allowed with the message as a warning" '.allowed == true and .patch == null and .warnings == [$m]'
  WHERE=/validate/reject
  ask validate reject "$body"
  expect "refused" '.allowed == false and .status.message == $m'
  WHERE=/validate/no-templates
  ask validate no-templates "$body"
  MESSAGE='spec.template.spec.containers[0] "nginx": imagePullPolicy is IfNotPresent, must be Always; not changed in the template, the Pods it creates get imagePullPolicy Always (image nginx:1.27)'
  expect "allowed with a warning, the template unchanged" '.allowed == true and .patch == null and .warnings == [$m]'
  WHERE=/validate/monitor
  ask validate monitor "$body"
  expect "allowed untouched (monitor)" '.allowed == true and .patch == null'
}

@test "/validate: the same Pod from the API server is mutated in mutate mode" {
  WHERE=/validate/mutate
  ask validate mutate "$(api_server_body pod-ifnotpresent.json)"
  expect "allowed with a patch setting Always" '.allowed == true
    and (.patch | @base64d | fromjson | map(.path)) == ["/spec/containers/0/imagePullPolicy"]'
}

@test "policy-server: /audit ignores policyMode monitor, /validate applies it" {
  WHERE=/audit/monitor MESSAGE=$DEPLOYMENT_MESSAGE
  ask audit monitor "$(audit_body deployment-ifnotpresent.json)"
  refused_as_reject_mode
  WHERE=/validate/monitor
  ask validate monitor "$(audit_body deployment-ifnotpresent.json)"
  expect "allowed (monitor turns every answer into an acceptance)" '.allowed == true and .patch == null'
}

@test "/audit with pinDigests: no registry call (no host capability is granted, and none is needed)" {
  local settings='{"pinDigests":"all","pinRegistries":["docker.io/*"]}'
  # A server of its own (stopped by teardown): hostCapabilities left empty denies
  # oci/v1/manifest_digest.
  policy pin protect "$settings" >"$WORK/pin.yml"
  policy_server_start "$WORK/pin-server" "$WORK/pin.yml" || {
    cat "$POLICY_SERVER_LOG" >&2
    fail "policy-server did not start with $settings"
  }
  WHERE=/audit/pin
  ask audit pin "$(audit_body deployment-compliant.json)"
  expect "allowed untouched: nothing was resolved" '.allowed == true and .patch == null and ((.warnings // []) == [])'
  WHERE=/validate/pin
  ask validate pin "$(api_server_body deployment-compliant.json)"
  expect "refused: the engine denied the registry call admission makes" \
    '.allowed == false and (.status.message | contains("cannot pin the tag to its digest"))'
}
