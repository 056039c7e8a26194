#!/usr/bin/env bash
# Records the host-capability sessions that e2e.bats replays, so that both e2e passes (the
# project host and kwctl) check a pinned patch without a registry.
#
# Starts a registry on 127.0.0.1 (tests/lib/registry.bash), pushes app:1.0 (one platform) and
# multi:2.0 (an index over amd64 and arm64), and for each case runs the real
#   kwctl run --record-host-capabilities-interactions SESSION --sources-path ... annotated-policy.wasm
# on a Pod (test_data/pod-ifnotpresent.json with the registry's image), pinDigests "pods". Then the
# registry's random port is rewritten to 127.0.0.1:5000 in the sessions and the requests, which
# are written here:
#
#   pod-pin.json          pod-pin.session.yml          127.0.0.1:5000/app:1.0, pinned
#   pod-pin-index.json    pod-pin-index.session.yml    127.0.0.1:5000/multi:2.0, the index's digest
#   pod-pin-unknown.json  pod-pin-unknown.session.yml  127.0.0.1:5000/app:9.9, manifest unknown
#
# A replay reaches nothing: the port is only text. The pushed contents are fixed, so a new
# recording gives the same digests. Usage: test_data/e2e/sessions/record.sh (needs kwctl,
# docker-registry, jq, curl; make annotated-policy.wasm first).
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
source "$repo/tests/lib/kubewarden.bash"

kwctl=$(kubewarden_find kwctl) || { kubewarden_missing kwctl >&2; exit 1; }
[ -f "$repo/annotated-policy.wasm" ] || { echo "run make annotated-policy.wasm first" >&2; exit 1; }
work=$(mktemp -d)
trap 'registry_stop; rm -rf "$work"' EXIT
kubewarden_scratch "$work/xdg"
export XDG_DATA_HOME=$work/xdg/data

registry_start "$work/registry"
registry_push_image app 1.0 "e2e app 1.0" >/dev/null
registry_push_index multi 2.0 "e2e multi 2.0" >/dev/null

uid() {
  printf 'e2e/sessions/%s' "$1" | md5sum | sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12}).*/\1-\2-\3-\4-\5/'
}

for case in pin=app:1.0 pin-index=multi:2.0 pin-unknown=app:9.9; do
  name=pod-${case%%=*} image=${case#*=}
  jq --arg uid "$(uid "$name")" --arg image "$REGISTRY/$image" \
    '.uid = $uid | .object.spec.containers[0].image = $image' \
    "$repo/test_data/pod-ifnotpresent.json" >"$work/$name.json"
  timeout 60 "$kwctl" run --sources-path "$REGISTRY_SOURCES" \
    --record-host-capabilities-interactions "$work/$name.session.yml" \
    --request-path "$work/$name.json" --settings-json "{\"mode\":\"mutate\",\"pinDigests\":\"pods\",\"pinRegistries\":[\"$REGISTRY/*\"]}" \
    "$repo/annotated-policy.wasm" >"$work/$name.answer.json" 2>"$work/$name.stderr" ||
    { cat "$work/$name.stderr" >&2; exit 1; }
  for file in "$name.json" "$name.session.yml"; do
    sed "s/127\.0\.0\.1:${REGISTRY#127.0.0.1:}/127.0.0.1:5000/g" "$work/$file" >"$here/$file"
  done
  echo "$name: $(jq -c '{allowed, patch: (.patch // empty | @base64d | fromjson | map(select(.path | endswith("/image"))))}' "$work/$name.answer.json")"
done
