#!/usr/bin/env bash
# Regenerates the extra request fixtures that e2e.bats needs, from the fixtures
# one directory up (which stay untouched), with jq only.
#
# Each file is a bare AdmissionRequest, like the fixtures it comes from, with a
# fixed uid derived from its file name, so running this twice gives identical
# output. A few values jq cannot write (a JSON unicode escape, a duplicated key)
# are put in as text after jq has run, and checked afterwards.
#
# The very large requests (10,000 containers, a 3 MiB object, deep nesting) are
# not stored here: e2e.bats builds them in its setup_file, from the same fixtures.
#
# Usage: test_data/e2e/generate.sh        (requires jq, md5sum)
set -euo pipefail
export LC_ALL=C

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$(dirname "$HERE")"
OUT="$HERE"

command -v jq >/dev/null || { echo "jq not found" >&2; exit 1; }

# A fixed, UUID-shaped uid from the file name.
uid() {
  printf 'e2e/%s' "$1" | md5sum |
    sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12}).*/\1-\2-\3-\4-\5/'
}

DIGEST="sha256:$(printf 'image-pull-policy e2e digest' | sha256sum | cut -c1-64)"

# jq definitions shared by every edit.
#   c(name; image; policy)  a container as kubectl writes it; policy null = no field
#   vol(name; ref; policy)  an image volume; policy null = no pullPolicy field
JQ_DEFS='
def c($n; $i; $p): {name: $n, image: $i, resources: {}}
  + (if $p == null then {} else {imagePullPolicy: $p} end);
def vol($n; $r; $p): {name: $n, image: ({reference: $r}
  + (if $p == null then {} else {pullPolicy: $p} end))};
'

# derive SOURCE NAME FILTER: SOURCE.json with FILTER applied, as NAME.json.
derive() {
  local source=$1 name=$2 filter=$3
  jq --arg uid "$(uid "$name")" --arg digest "$DIGEST" \
    "$JQ_DEFS (.uid = \$uid) | $filter" "$SRC/$source.json" >"$OUT/$name.json"
}

# pod NAME SPEC_FILTER: a Pod CREATE (from pod-ifnotpresent) with FILTER applied to .object.spec.
pod() { derive pod-ifnotpresent "$1" ".object.spec |= ($2)"; }

# deployment NAME SPEC_FILTER: a Deployment CREATE, FILTER applied to the template's spec.
deployment() { derive deployment-defaulted "$1" ".object.spec.template.spec |= ($2)"; }

# ---------------------------------------------------------------------------
# Main cases
# ---------------------------------------------------------------------------

# The SPEC's example message: an init container "setup" busybox:1.36 IfNotPresent.
deployment deployment-init-setup \
  '.initContainers = [c("setup"; "busybox:1.36"; "IfNotPresent")]
   | .containers[0].imagePullPolicy = "Always"'

pod pod-never '.containers = [c("web"; "nginx:1.27"; "Never")]'

# One container exempt by name, one by the written image, one init container by
# the fully qualified image (busybox → docker.io/library/busybox:latest), and one
# container that no exemption covers.
pod pod-exemptions \
  '.containers = [
     c("istio-proxy"; "envoyproxy/envoy:latest"; "IfNotPresent"),
     c("trusted"; "registry.example.com/trusted/app:latest"; "IfNotPresent"),
     c("web"; "nginx:1.27"; "IfNotPresent")]
   | .initContainers = [c("init"; "busybox"; "IfNotPresent")]'

# A kind the policy does not evaluate, with a pod template that breaks every rule.
derive deployment rollout-latest \
  '.kind = {group: "argoproj.io", version: "v1alpha1", kind: "Rollout"}
   | .requestKind = .kind
   | .resource = {group: "argoproj.io", version: "v1alpha1", resource: "rollouts"}
   | .requestResource = .resource
   | .object.apiVersion = "argoproj.io/v1alpha1" | .object.kind = "Rollout"
   | .object.spec.template.spec.containers = [c("nginx"; "nginx:latest"; "IfNotPresent")]'

# 25 containers, all IfNotPresent: more than the 20 a message lists.
pod pod-25-containers \
  '.containers = [range(25) as $i | c("c\($i)"; "nginx:1.27"; "IfNotPresent")]'

pod pod-empty-image '.containers = [c("web"; ""; "Always")]'

pod pod-volume-image-not-object \
  '.volumes = [{name: "models", image: "registry.example.com/models:v3"}]
   | .containers[0].imagePullPolicy = "Always"'

# requireDigest: one digest-pinned IfNotPresent container, one tag-only Always container.
pod pod-digest-and-tag \
  '.containers = [c("pinned"; "nginx@\($digest)"; "IfNotPresent"),
                  c("tagged"; "nginx:1.27"; "Always")]'

# An UPDATE that adds a new container next to an unchanged one.
derive deployment-update-image deployment-update-add-container \
  '.object.spec.template.spec.containers[0].image = "nginx:1.26"
   | .object.spec.template.spec.containers += [c("metrics"; "registry.example.com/team/metrics:0.9.1"; "IfNotPresent")]'

# ---------------------------------------------------------------------------
# Bypass matrix
# ---------------------------------------------------------------------------

deployment deployment-init-latest \
  '.initContainers = [c("setup"; "busybox:latest"; "Always")]
   | .containers[0].imagePullPolicy = "Always"'

pod pod-sidecar-latest \
  '.initContainers = [c("proxy"; "envoyproxy/envoy:latest"; "Always") + {restartPolicy: "Always"}]
   | .containers[0].imagePullPolicy = "Always"'

pod pod-ephemeral-latest \
  '.ephemeralContainers = [c("debugger"; "busybox:latest"; "Always")]
   | .containers[0].imagePullPolicy = "Always"'

derive pod-ephemeral-debug pod-ephemeral-debug-latest \
  '.object.spec.ephemeralContainers[0].image = "busybox:latest"
   | .object.spec.ephemeralContainers[0].imagePullPolicy = "Always"'

derive cronjob cronjob-latest \
  '.object.spec.jobTemplate.spec.template.spec.containers[0].image = "busybox:latest"
   | .object.spec.jobTemplate.spec.template.spec.containers[0].imagePullPolicy = "Always"'

# UPDATE of an existing Pod whose only change is Always → IfNotPresent.
derive pod-update-label pod-update-policy-only \
  '.oldObject.spec.containers[0].imagePullPolicy = "Always"
   | .object.metadata.labels = .oldObject.metadata.labels
   | .options.fieldManager = "kubectl-edit"'

pod pod-registry-port '.containers = [c("web"; "registry:5000/app"; "Always")]'
pod pod-registry-port-latest '.containers = [c("web"; "registry:5000/app:latest"; "Always")]'
pod pod-ipv6-registry '.containers = [c("web"; "[::1]:5000/app"; "Always")]'

pod pod-latest-and-digest \
  '.containers = [c("web"; "registry.example.com/app:latest@\($digest)"; "IfNotPresent")]'

pod pod-evil-suffix \
  '.containers = [c("web"; "registry.example.com.evil.io/trusted/app:latest"; "Always")]'
pod pod-evil-prefix \
  '.containers = [c("web"; "evil.io/registry.example.com/trusted/app:latest"; "Always")]'

# exemptContainers names containers; an image volume named like one is not exempt.
pod pod-istio-volume \
  '.volumes = [vol("istio-data"; "registry.example.com/models:latest"; "Always")]
   | .containers[0].imagePullPolicy = "Always"'

pod pod-tag-uppercase '.containers = [c("web"; "nginx:LATEST"; "IfNotPresent")]'
pod pod-uppercase-domain '.containers = [c("web"; "Nginx/app:1"; "IfNotPresent")]'

pod pod-duplicate-names \
  '.containers = [c("app"; "nginx:1.27"; "Always"), c("app"; "nginx:latest"; "Always")]'

pod pod-policy-lowercase '.containers = [c("web"; "nginx:1.27"; "always")]'
pod pod-policy-null '.containers = [c("web"; "nginx:1.27"; "Always") | .imagePullPolicy = null]'

pod pod-volume-latest \
  '.volumes = [vol("models"; "registry.example.com/models:latest"; "Always")]
   | .containers[0].imagePullPolicy = "Always"'

pod pod-volume-no-policy \
  '.volumes = [vol("models"; "registry.example.com/models:v3"; null)]
   | .containers[0].imagePullPolicy = "Always"'

pod pod-image-whitespace '.containers = [c("web"; " nginx:1.27"; "Always")]'
# An image ID written as the image: the grammar reads it as repository "sha256" with
# a tag, not as a digest, so it is not pinned.
pod pod-image-id '.containers = [c("web"; $digest; "IfNotPresent")]'

pod pod-malformed-digest '.containers = [c("web"; "nginx@sha256:abc"; "Always")]'

# A CRD that happens to be called Deployment, in another group.
derive deployment crd-named-deployment \
  '.kind.group = "evil.example.com" | .requestKind = .kind
   | .resource.group = "evil.example.com" | .requestResource = .resource
   | .object.apiVersion = "evil.example.com/v1"
   | .object.spec.template.spec.containers = [c("nginx"; "nginx:latest"; "IfNotPresent")]'

# An UPDATE whose oldObject cannot be read: every container is evaluated.
derive deployment-update-finalizer-removal deployment-update-unreadable-old \
  '.oldObject.spec.template.spec.containers = {"not": "a list"}'

# An UPDATE that adds a :latest container next to a legacy :latest one.
derive deployment-update-finalizer-removal deployment-update-add-latest \
  'del(.object.metadata.deletionTimestamp, .object.metadata.deletionGracePeriodSeconds,
       .oldObject.metadata.deletionTimestamp, .oldObject.metadata.deletionGracePeriodSeconds)
   | .oldObject.metadata.finalizers = .object.metadata.finalizers
   | .object.spec.template.spec.containers += [c("debug"; "busybox:latest"; "Always")]'

# An UPDATE that moves a legacy :latest container from initContainers to containers.
derive deployment-update-finalizer-removal deployment-update-move-list \
  'del(.object.metadata.deletionTimestamp, .object.metadata.deletionGracePeriodSeconds,
       .oldObject.metadata.deletionTimestamp, .oldObject.metadata.deletionGracePeriodSeconds)
   | .oldObject.metadata.finalizers = .object.metadata.finalizers
   | .oldObject.spec.template.spec.initContainers = [c("setup"; "busybox:latest"; "Always")]
   | .object.spec.template.spec.containers += [c("setup"; "busybox:latest"; "Always")]'

# ---------------------------------------------------------------------------
# Controllers and the API server's limits
# ---------------------------------------------------------------------------

# What a controller sends: its service account, its field manager.
CONTROLLER_DEFS='
def controller($name): .userInfo = {username: "system:serviceaccount:kube-system:\($name)",
    uid: "2f0a7c1e-6b1d-4c55-8a0e-3c9d1e7b5a40",
    groups: ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]}
  | .options.fieldManager = "kube-controller-manager";
def owner($kind; $name): [{apiVersion: (if $kind == "CronJob" then "batch/v1" else "apps/v1" end),
    kind: $kind, name: $name, uid: "5d3f7e2a-9c41-4b8e-a6d0-1e2f3a4b5c6d",
    controller: true, blockOwnerDeletion: true}];
'

# The ReplicaSet the Deployment controller creates from deployment-defaulted's template (which
# predates the policy: IfNotPresent), and the same object without an owner.
HASH=7c5ddbdf54
derive deployment-defaulted replicaset-owned-by-deployment "$CONTROLLER_DEFS"'
  controller("deployment-controller")
  | .kind = {group: "apps", version: "v1", kind: "ReplicaSet"} | .requestKind = .kind
  | .resource = {group: "apps", version: "v1", resource: "replicasets"} | .requestResource = .resource
  | .name = "web-'$HASH'"
  | .object.kind = "ReplicaSet"
  | .object.metadata = {name: "web-'$HASH'", namespace: "default", creationTimestamp: null,
      labels: {app: "web", "pod-template-hash": "'$HASH'"},
      annotations: {"deployment.kubernetes.io/desired-replicas": "2",
        "deployment.kubernetes.io/max-replicas": "3", "deployment.kubernetes.io/revision": "1"},
      ownerReferences: owner("Deployment"; "web")}
  | .object.spec = {replicas: 2,
      selector: {matchLabels: {app: "web", "pod-template-hash": "'$HASH'"}},
      template: (.object.spec.template | .metadata.labels["pod-template-hash"] = "'$HASH'")}'
derive e2e/replicaset-owned-by-deployment replicaset-unowned \
  'del(.object.metadata.ownerReferences) | .userInfo = {username: "kubernetes-admin",
     groups: ["system:masters", "system:authenticated"]} | .options.fieldManager = "kubectl-create"'

# The Job the CronJob controller creates from cronjob's job template (IfNotPresent).
derive cronjob job-owned-by-cronjob "$CONTROLLER_DEFS"'
  controller("cronjob-controller")
  | .kind = {group: "batch", version: "v1", kind: "Job"} | .requestKind = .kind
  | .resource = {group: "batch", version: "v1", resource: "jobs"} | .requestResource = .resource
  | .name = "report-29433600"
  | .object.kind = "Job"
  | .object.metadata = {name: "report-29433600", namespace: "default", creationTimestamp: null,
      labels: {"batch.kubernetes.io/controller-uid": "5d3f7e2a-9c41-4b8e-a6d0-1e2f3a4b5c6d"},
      annotations: {"batch.kubernetes.io/cronjob-scheduled-timestamp": "2026-12-01T00:00:00Z"},
      ownerReferences: owner("CronJob"; "report")}
  | .object.spec = .object.spec.jobTemplate.spec'

# A Pod the ReplicaSet controller creates: mutated like any other Pod.
pod pod-owned-by-replicaset '.containers[0].imagePullPolicy = "IfNotPresent"'
jq "$CONTROLLER_DEFS"'controller("replicaset-controller")
    | .object.metadata.ownerReferences = owner("ReplicaSet"; "web-'$HASH'")' \
  "$OUT/pod-owned-by-replicaset.json" >"$OUT/pod-owned.tmp"
mv "$OUT/pod-owned.tmp" "$OUT/pod-owned-by-replicaset.json"

# Image volumes whose reference is left for a controller to fill in: nothing to pull yet.
deployment deployment-image-volume-no-reference \
  '.volumes = [{name: "models", image: {pullPolicy: "IfNotPresent"}},
               {name: "weights", image: {reference: "", pullPolicy: "Never"}}]
   | .containers[0].imagePullPolicy = "Always"'
derive deployment-update-finalizer-removal deployment-update-image-volume-no-reference \
  '.object.spec.template.spec.volumes = [{name: "models", image: {pullPolicy: "IfNotPresent"}}]
   | .oldObject.spec.template.spec.volumes = .object.spec.template.spec.volumes'

# 22 digest-pinned IfNotPresent images, e.g. under mutateTemplates: false: 22 long warnings
# would be cut by the API server.
deployment deployment-22-digests \
  '.containers = [range(22) as $i | c("collector-\($i)";
     "registry.example.com/platform/observability/collector-\($i)@\($digest)"; "IfNotPresent")]'

# A container that claims an exempt sidecar's name with another image.
pod pod-claims-sidecar-name \
  '.containers = [c("istio-proxy"; "evil.example/miner:latest"; "Never")]'

# An ephemeral container written into the Pod by a plain UPDATE, not the subresource.
derive pod-ephemeral-debug pod-update-ephemeral-without-subresource \
  'del(.subResource, .requestSubResource) | .options.fieldManager = "kubectl-edit"'

# Placeholders replaced as text: jq would decode the escape / merge the keys.
pod pod-unicode-escape '.containers = [c("web"; "UNICODE-PLACEHOLDER"; "Always")]'
sed -i 's/"UNICODE-PLACEHOLDER"/"nginx\\u003alatest"/' "$OUT/pod-unicode-escape.json"
grep -qF '"nginx\u003alatest"' "$OUT/pod-unicode-escape.json"
[ "$(jq -r '.object.spec.containers[0].image' "$OUT/pod-unicode-escape.json")" = "nginx:latest" ]

pod pod-policy-escaped '.containers = [c("web"; "nginx:1.27"; "POLICY-PLACEHOLDER")]'
sed -i 's/"POLICY-PLACEHOLDER"/"\\u0041lways"/' "$OUT/pod-policy-escaped.json"
grep -qF '"\u0041lways"' "$OUT/pod-policy-escaped.json"

pod pod-duplicate-keys '.containers = [c("web"; "DUPLICATE-PLACEHOLDER"; "Always")]'
sed -i 's/"image": "DUPLICATE-PLACEHOLDER"/"image": "nginx:1.27", "image": "nginx:latest"/' \
  "$OUT/pod-duplicate-keys.json"
grep -qF '"image": "nginx:1.27", "image": "nginx:latest"' "$OUT/pod-duplicate-keys.json"

pod pod-volume-duplicate-reference \
  '.volumes = [vol("models"; "VOLUME-PLACEHOLDER"; "Always")]
   | .containers[0].imagePullPolicy = "Always"'
sed -i 's/"reference": "VOLUME-PLACEHOLDER"/"reference": "registry.example.com\/models:v3", "reference": "registry.example.com\/models:latest"/' \
  "$OUT/pod-volume-duplicate-reference.json"
grep -qF '"reference": "registry.example.com/models:v3", "reference": "registry.example.com/models:latest"' \
  "$OUT/pod-volume-duplicate-reference.json"

echo "fixtures written to $OUT"
