#!/usr/bin/env bash
# Builds the policy and runs it over sample admission requests. The engine is the real kwctl when
# it is found (KWCTL, PATH, ../shared/kubewarden/bin), else the project's waPC host, which is
# built first (a few minutes on a fresh machine). DEMO_ENGINE=kwctl or DEMO_ENGINE=host chooses.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source tests/lib/kubewarden.bash

engine=${DEMO_ENGINE:-}
if [ -z "$engine" ]; then
  if kubewarden_find kwctl >/dev/null; then engine=kwctl; else engine=host; fi
fi
case $engine in
  kwctl)
    run_policy=$(kubewarden_find kwctl) || { kubewarden_missing kwctl >&2; exit 1; }
    kubewarden_scratch "${CARGO_TARGET_DIR:-target}/demo/kwctl"
    make --no-print-directory policy.wasm >/dev/null
    printf 'engine: %s (%s)\n' "$("$run_policy" --version 2>/dev/null | head -n 1)" "$run_policy"
    ;;
  host)
    echo "engine: the project's waPC host (kwctl not found); building it first"
    make --no-print-directory policy.wasm host >/dev/null
    run_policy=$(make --no-print-directory --silent print-host)
    ;;
  *)
    echo "DEMO_ENGINE is kwctl or host" >&2
    exit 2
    ;;
esac
printf 'policy.wasm: %s bytes\n\n' "$(stat -c %s policy.wasm)"

show() { # title, request file, settings JSON
  local title=$1 request=$2 settings=${3:-'{}'} response
  response=$("$run_policy" run --request-path "$request" --settings-json "$settings" policy.wasm 2>/dev/null)
  printf '== %s\n   request:  %s  settings: %s\n' "$title" "$request" "$settings"
  jq -r '
    if .allowed and .patch then "   MUTATED:  " + (.patch | @base64d | fromjson | map(.op + " " + .path + " = " + (.value | tostring)) | join(", "))
    elif .allowed then "   ACCEPTED"
    else "   REJECTED: " + .status.message end,
    ((.warnings // [])[] | "   warning:  " + .)' <<<"$response"
  echo
}

show "compliant Pod" test_data/pod-compliant.json
show "Pod with IfNotPresent" test_data/pod-ifnotpresent.json
show "Deployment without imagePullPolicy (kubectl create)" test_data/deployment.json
show "Pod with every kind of container and an image volume" test_data/pod-all-lists.json
show "CronJob whose init container uses :latest" test_data/cronjob-latest-init.json
show "localhost:5000/app: a registry port, no tag" test_data/pod-localhost-port.json
show "the same IfNotPresent Pod, reject mode" test_data/pod-ifnotpresent.json '{"mode":"reject"}'
show "Deployment, warn mode" test_data/deployment.json '{"mode":"warn"}'
show "Deployment, mutateTemplates off" test_data/deployment.json '{"mutateTemplates":false}'
show "Deployment update that only removes a finalizer" test_data/deployment-update-finalizer-removal.json
show "kubectl debug: a new ephemeral container" test_data/pod-ephemeral-debug.json
show "malformed: image is not a string" test_data/malformed-image-not-string.json
printf '== invalid settings {"mode":"block"}\n   '
{ "$run_policy" run --request-path test_data/pod-compliant.json --settings-json '{"mode":"block"}' policy.wasm 2>&1 || true; } |
  grep '^Error: ' | tail -n 1
