#!/usr/bin/env bash
# Regenerates every admission-request fixture in this directory.
#
# Every Kubernetes object starts as `kubectl ... --dry-run=client -o json`
# output and is then edited with jq.  No cluster is needed or contacted:
#   * `kubectl create ...` works fully offline;
#   * `kubectl run` insists on a RESTMapper (server discovery) even with
#     --dry-run=client, so it is pointed at a throw-away kubeconfig whose
#     server name (fixtures.invalid) cannot resolve, plus a pre-seeded
#     discovery cache that answers "v1 has pods".
#
# The output is deterministic: fixed UUIDs (derived from the file name),
# fixed timestamps, fixed digests (sha256 of fixed strings).
#
# Usage: test_data/generate.sh        (requires kubectl and jq)
set -euo pipefail
export LC_ALL=C

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$HERE"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT/settings"

command -v kubectl >/dev/null || { echo "kubectl not found" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq not found" >&2; exit 1; }

# --------------------------------------------------------------------------
# Offline kubectl
# --------------------------------------------------------------------------
cat >"$WORK/kubeconfig" <<'EOF'
apiVersion: v1
kind: Config
clusters:
- name: fixtures
  cluster:
    server: https://fixtures.invalid:6443
contexts:
- name: fixtures
  context:
    cluster: fixtures
    user: fixtures
    namespace: default
current-context: fixtures
users:
- name: fixtures
  user:
    token: not-a-real-token
EOF
DISC="$WORK/cache/discovery/fixtures.invalid_6443"
mkdir -p "$DISC/v1"
cat >"$DISC/servergroups.json" <<'EOF'
{"kind":"APIGroupList","apiVersion":"v1","groups":[{"name":"","versions":[{"groupVersion":"v1","version":"v1"}],"preferredVersion":{"groupVersion":"v1","version":"v1"}}]}
EOF
cat >"$DISC/v1/serverresources.json" <<'EOF'
{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"v1","resources":[{"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod","verbs":["create","delete","get","list","patch","update","watch"]}]}
EOF

KUBECTL=(kubectl --kubeconfig="$WORK/kubeconfig" --cache-dir="$WORK/cache")
kc_run() { "${KUBECTL[@]}" run --dry-run=client -o json "$@"; }
kc_create() { local what=$1; shift; "${KUBECTL[@]}" create "$what" --dry-run=client -o json "$@"; }

# --------------------------------------------------------------------------
# Fixed values
# --------------------------------------------------------------------------
hex64() { printf '%s' "$1" | sha256sum | cut -c1-64; }
uuid_for() { # stable UUID (v4 layout) derived from a name
  local h; h=$(printf '%s' "$1" | md5sum | cut -c1-32)
  printf '%s-%s-4%s-8%s-%s\n' "${h:0:8}" "${h:8:4}" "${h:13:3}" "${h:17:3}" "${h:20:12}"
}
NGINX_DIGEST="sha256:$(hex64 'fixture:nginx')"
APP_DIGEST="sha256:$(hex64 'fixture:registry.example.com/app:1.0')"
NULL="$WORK/null.json"; echo null >"$NULL"

# --------------------------------------------------------------------------
# jq library: API-server defaulting, built-in admission plugins, key order
# --------------------------------------------------------------------------
read -r -d '' LIB <<'JQ' || true
# Re-orders an object's keys: keys listed in $order first (in that order),
# then every other key in its current order.  Used to mimic Go struct
# field order, which is what the API server serialises.
def reorder($order):
  . as $o
  | reduce ($order[] | select(. as $k | $o | has($k))) as $k ({}; . + {($k): $o[$k]})
    + ($o | with_entries(select(.key as $k | ($order | index([$k])) == null)));

def meta_order: ["name","generateName","namespace","selfLink","uid","resourceVersion","generation","creationTimestamp","deletionTimestamp","deletionGracePeriodSeconds","labels","annotations","ownerReferences","finalizers","managedFields"];
def container_order: ["name","image","command","args","workingDir","ports","envFrom","env","resources","resizePolicy","restartPolicy","volumeMounts","volumeDevices","livenessProbe","readinessProbe","startupProbe","lifecycle","terminationMessagePath","terminationMessagePolicy","imagePullPolicy","securityContext","stdin","stdinOnce","tty","targetContainerName"];
def podspec_order: ["volumes","initContainers","containers","ephemeralContainers","restartPolicy","terminationGracePeriodSeconds","activeDeadlineSeconds","dnsPolicy","nodeSelector","serviceAccountName","serviceAccount","automountServiceAccountToken","nodeName","hostNetwork","hostPID","hostIPC","shareProcessNamespace","securityContext","imagePullSecrets","hostname","subdomain","affinity","schedulerName","tolerations","hostAliases","priorityClassName","priority","dnsConfig","readinessGates","runtimeClassName","enableServiceLinks","preemptionPolicy","overhead","topologySpreadConstraints","setHostnameAsFQDN","os","hostUsers","schedulingGates","resourceClaims","resources"];
def deployspec_order: ["replicas","selector","template","strategy","minReadySeconds","revisionHistoryLimit","paused","progressDeadlineSeconds"];

# Tag of an image reference ("" when there is none).  The last path
# component is inspected so that a registry port (localhost:5000/app) is
# not mistaken for a tag.
def image_tag: (split("@")[0] | split("/") | last) as $l
  | if ($l | contains(":")) then ($l | split(":") | last) else "" end;
# Kubernetes' defaulting rule (SetDefaults_Container / image volumes):
# Always for ":latest" or for a reference with neither tag nor digest,
# IfNotPresent otherwise.
def default_pull_policy_for($ref):
  ($ref | image_tag) as $t
  | if $t == "latest" or ($t == "" and ($ref | contains("@") | not)) then "Always" else "IfNotPresent" end;

def default_container:
  (.resources //= {})
  | (if has("imagePullPolicy") then . else .imagePullPolicy = default_pull_policy_for(.image // "") end)
  | (.terminationMessagePath //= "/dev/termination-log")
  | (.terminationMessagePolicy //= "File")
  | reorder(container_order);

def default_podspec:
  (.containers |= map(default_container))
  | (if has("initContainers") then .initContainers |= map(default_container) else . end)
  | (if has("ephemeralContainers") then .ephemeralContainers |= map(default_container) else . end)
  | (if has("volumes") then .volumes |= map(if has("image") then .image.pullPolicy //= default_pull_policy_for(.image.reference) else . end) else . end)
  | (.restartPolicy //= "Always")
  | (.terminationGracePeriodSeconds //= 30)
  | (.dnsPolicy //= "ClusterFirst")
  | (.securityContext //= {})
  | (.schedulerName //= "default-scheduler")
  | reorder(podspec_order);

# What the API server does to a Pod before calling mutating webhooks:
# defaulting (SetDefaults_Pod/PodSpec/Container) and the built-in
# ServiceAccount, DefaultTolerationSeconds and Priority admission plugins,
# and the namespace taken from the request URL.
def sa_volume: {"name":"kube-api-access-x7k2p","projected":{"sources":[
    {"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},
    {"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}},
    {"downwardAPI":{"items":[{"path":"namespace","fieldRef":{"apiVersion":"v1","fieldPath":"metadata.namespace"}}]}}],
  "defaultMode":420}};
def sa_mount: {"name":"kube-api-access-x7k2p","readOnly":true,"mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"};
def add_sa_mount: .volumeMounts = ((.volumeMounts // []) + [sa_mount]) | reorder(container_order);
def default_pod:
  (.metadata.namespace = "default" | .metadata |= reorder(meta_order))
  | .spec |= (
      default_podspec
      | (.enableServiceLinks //= true)
      | (.serviceAccountName //= "default")
      | (.serviceAccount //= "default")
      | (.volumes = ((.volumes // []) + [sa_volume]))
      | (.containers |= map(add_sa_mount))
      | (if has("initContainers") then .initContainers |= map(add_sa_mount) else . end)
      | (.tolerations = ((.tolerations // []) + [
          {"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300},
          {"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}]))
      | (.priority //= 0)
      | (.preemptionPolicy //= "PreemptLowerPriority")
      | reorder(podspec_order));

def default_deployment:
  (.metadata.namespace = "default" | .metadata |= reorder(meta_order))
  | .spec |= (
      (.replicas //= 1)
      | (if (.strategy // {}) == {} then .strategy = {"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}} else . end)
      | (.revisionHistoryLimit //= 10)
      | (.progressDeadlineSeconds //= 600)
      | (.template.spec |= default_podspec)
      | reorder(deployspec_order));

# Metadata of an object that already exists in etcd.
def stored($uid; $rv; $gen):
  .metadata |= ((. + {"namespace":"default","uid":$uid,"resourceVersion":$rv,"creationTimestamp":"2025-01-15T10:00:00Z"}
                 + (if $gen == null then {} else {"generation":$gen} end)) | reorder(meta_order));

# Status of a running single-container Pod as the kubelet reports it.
def running_status($image; $imageID; $containerID):
  {"phase":"Running",
   "conditions":[
     {"type":"PodReadyToStartContainers","status":"True","lastProbeTime":null,"lastTransitionTime":"2025-01-15T10:00:03Z"},
     {"type":"Initialized","status":"True","lastProbeTime":null,"lastTransitionTime":"2025-01-15T10:00:00Z"},
     {"type":"Ready","status":"True","lastProbeTime":null,"lastTransitionTime":"2025-01-15T10:00:04Z"},
     {"type":"ContainersReady","status":"True","lastProbeTime":null,"lastTransitionTime":"2025-01-15T10:00:04Z"},
     {"type":"PodScheduled","status":"True","lastProbeTime":null,"lastTransitionTime":"2025-01-15T10:00:00Z"}],
   "hostIP":"172.18.0.3","hostIPs":[{"ip":"172.18.0.3"}],
   "podIP":"10.244.1.7","podIPs":[{"ip":"10.244.1.7"}],
   "startTime":"2025-01-15T10:00:00Z",
   "containerStatuses":[{"name":"web","state":{"running":{"startedAt":"2025-01-15T10:00:03Z"}},"lastState":{},
     "ready":true,"restartCount":0,"image":$image,"imageID":$imageID,"containerID":$containerID,"started":true}],
   "qosClass":"BestEffort"};

def pull($p): .imagePullPolicy = $p | reorder(container_order);
JQ

# jqo FILTER [jq args...] — run a filter (with the library) on stdin.
jqo() { local f=$1; shift; jq "$@" "$LIB
$f"; }

# --------------------------------------------------------------------------
# AdmissionRequest writer
# mkreq FILE GROUP VERSION KIND RESOURCE SUBRESOURCE OPERATION OPTIONS OBJECT_FILE OLDOBJECT_FILE
#   NAME is taken from the object (or the old object for DELETE).
# --------------------------------------------------------------------------
mkreq() {
  local file=$1 group=$2 version=$3 kind=$4 resource=$5 sub=$6 op=$7 options=$8 obj=$9 old=${10}
  jq -n \
    --arg uid "$(uuid_for "$file")" --arg g "$group" --arg v "$version" --arg k "$kind" \
    --arg r "$resource" --arg sub "$sub" --arg op "$op" --argjson opts "$options" \
    --slurpfile obj "$obj" --slurpfile old "$old" '
    ($obj[0] // $old[0]) as $any
    | {uid: $uid,
       kind: {group: $g, version: $v, kind: $k},
       resource: {group: $g, version: $v, resource: $r}}
    + (if $sub != "" then {subResource: $sub} else {} end)
    + {requestKind: {group: $g, version: $v, kind: $k},
       requestResource: {group: $g, version: $v, resource: $r}}
    + (if $sub != "" then {requestSubResource: $sub} else {} end)
    + {name: ($any.metadata.name // ""),
       namespace: "default",
       operation: $op,
       userInfo: {username: "kubernetes-admin", groups: ["system:masters", "system:authenticated"]},
       object: $obj[0],
       oldObject: $old[0],
       dryRun: false,
       options: $opts}' >"$OUT/$file"
}
create_opts() { printf '{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1","fieldManager":"%s"}' "$1"; }
update_opts() {
  if [ -n "${1:-}" ]; then printf '{"kind":"UpdateOptions","apiVersion":"meta.k8s.io/v1","fieldManager":"%s"}' "$1"
  else printf '{"kind":"UpdateOptions","apiVersion":"meta.k8s.io/v1"}'; fi
}
DELETE_OPTS='{"kind":"DeleteOptions","apiVersion":"meta.k8s.io/v1","propagationPolicy":"Background"}'

pod_create() { mkreq "$1" "" v1 Pod pods "" CREATE "$(create_opts "${3:-kubectl-run}")" "$2" "$NULL"; }

# ==========================================================================
# Pods (CREATE)
# ==========================================================================
kc_run web --image=registry.example.com/team/web:1.4.2 --image-pull-policy=Always >"$WORK/pod-compliant.json"
pod_create pod-compliant.json "$WORK/pod-compliant.json"

kc_run web --image=nginx:1.27 --image-pull-policy=IfNotPresent >"$WORK/pod-ifnotpresent.json"
pod_create pod-ifnotpresent.json "$WORK/pod-ifnotpresent.json"

kc_run web --image=nginx:1.27 >"$WORK/pod-no-policy.json"
pod_create pod-no-policy.json "$WORK/pod-no-policy.json"

kc_run web --image=nginx:latest --image-pull-policy=Always >"$WORK/pod-latest.json"
pod_create pod-latest.json "$WORK/pod-latest.json"

kc_run web --image=nginx >"$WORK/pod-untagged.json"
pod_create pod-untagged.json "$WORK/pod-untagged.json"

kc_run app --image=localhost:5000/app --image-pull-policy=Always >"$WORK/pod-localhost-port.json"
pod_create pod-localhost-port.json "$WORK/pod-localhost-port.json"

kc_run app --image=localhost:5000/app:2.0 --image-pull-policy=IfNotPresent >"$WORK/pod-localhost-port-tagged.json"
pod_create pod-localhost-port-tagged.json "$WORK/pod-localhost-port-tagged.json"

kc_run web --image="nginx@$NGINX_DIGEST" --image-pull-policy=IfNotPresent >"$WORK/pod-digest.json"
pod_create pod-digest.json "$WORK/pod-digest.json"

kc_run app --image="registry.example.com/app:1.0@$APP_DIGEST" --image-pull-policy=Always >"$WORK/pod-tag-and-digest.json"
pod_create pod-tag-and-digest.json "$WORK/pod-tag-and-digest.json"

# Every place an image can appear in a PodSpec.  (The API server would
# refuse ephemeralContainers on CREATE in validation, but mutating
# webhooks run before validation and do see them.)
kc_run web --image=registry.example.com/team/web:1.4.2 --image-pull-policy=IfNotPresent \
  | jqo '.spec |= (
      .containers[0].volumeMounts = [{"name":"models","readOnly":true,"mountPath":"/models"},{"name":"scratch","mountPath":"/scratch"}]
      | .containers[0] |= reorder(container_order)
      | .containers += [{"name":"metrics","image":"registry.example.com/team/metrics:0.9.1","resources":{},"imagePullPolicy":"IfNotPresent"}]
      | .initContainers = [
          {"name":"migrate","image":"registry.example.com/team/migrate:1.4.2","resources":{},"imagePullPolicy":"IfNotPresent"},
          {"name":"log-shipper","image":"registry.example.com/team/log-shipper:2.3.1","resources":{},"restartPolicy":"Always","imagePullPolicy":"IfNotPresent"}]
      | .ephemeralContainers = [
          {"name":"debugger","image":"busybox:1.36","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent","stdin":true,"tty":true}]
      | .volumes = [
          {"name":"scratch","emptyDir":{}},
          {"name":"models","image":{"reference":"registry.example.com/models:v3","pullPolicy":"IfNotPresent"}}]
      | reorder(podspec_order))' >"$WORK/pod-all-lists.json"
pod_create pod-all-lists.json "$WORK/pod-all-lists.json" kubectl-create

# Tags that float and tags that do not (requireFullVersion, deniedTags patterns):
# a version without patch or minor, full versions, a date, a commit hash, a tag
# with a digest, and a -SNAPSHOT build. All Always, so only tag rules speak.
kc_run api --image=registry.example.com/team/api:1.2 --image-pull-policy=Always \
  | jqo '.spec |= (
      .containers += [
          {"name":"worker","image":"registry.example.com/team/worker:v3-alpine","resources":{},"imagePullPolicy":"Always"},
          {"name":"web","image":"registry.example.com/team/web:v1.4.2","resources":{},"imagePullPolicy":"Always"},
          {"name":"cache","image":"redis:7.2.5-alpine","resources":{},"imagePullPolicy":"Always"},
          {"name":"legacy","image":"registry.example.com/team/legacy:1.2.3.4","resources":{},"imagePullPolicy":"Always"},
          {"name":"nightly","image":"registry.example.com/team/batch:20240101","resources":{},"imagePullPolicy":"Always"},
          {"name":"tools","image":"registry.example.com/team/tools:3f2a9c1","resources":{},"imagePullPolicy":"Always"},
          {"name":"debian","image":"debian:bookworm","resources":{},"imagePullPolicy":"Always"},
          {"name":"pinned","image":("registry.example.com/app:1.2@" + $digest),"resources":{},"imagePullPolicy":"Always"}]
      | .initContainers = [
          {"name":"migrate","image":"registry.example.com/team/migrate:1.4-SNAPSHOT","resources":{},"imagePullPolicy":"Always"}]
      | reorder(podspec_order))' --arg digest "$APP_DIGEST" >"$WORK/pod-floating-tags.json"
pod_create pod-floating-tags.json "$WORK/pod-floating-tags.json" kubectl-create

# kubectl itself refuses "NGINX:1.27" (invalid reference format), so the
# image is swapped in afterwards.
kc_run web --image=nginx:1.27 --image-pull-policy=IfNotPresent \
  | jqo '.spec.containers[0].image = "NGINX:1.27"' >"$WORK/pod-uppercase.json"
pod_create pod-uppercase.json "$WORK/pod-uppercase.json" kubectl-create

# Fields no Kubernetes type knows.  jq (1.6) would round big numbers to
# doubles, drop the trailing zero of 1.10 and re-encode escapes as raw
# UTF-8, so those values are written as placeholders and substituted
# textually afterwards.
kc_run web --image=nginx:1.27 --image-pull-policy=IfNotPresent \
  | jqo '
    .spec.containers += [{"name":"sidecar","image":"registry.example.com/team/log-shipper:2.3.1","resources":{},"imagePullPolicy":"Always"}]
    | .metadata.annotations = {
        "zz.example.com/last": "written first",
        "example.com/owner": "team-web",
        "aa.example.com/first": "written last",
        "example.com/description": "Caf\u00e9 \u2014 \u65e5\u672c\u8a9e \u2713 \ud83d\ude80"}
    | default_pod
    | .spec.futureField = {"nested": [1, 2, {"x": null}]}
    | .spec.containers[0].futureContainerField = {"zeta": true, "alpha": [], "mid": {}}
    | {"zFutureTopLevel": {
         "bigInteger": "@@BIGINT@@",
         "float": "@@FLOAT@@",
         "escaped": "@@ESCAPED@@",
         "rawUnicode": "Gr\u00fc\u00dfe \u2603 \ud834\udd1e",
         "emptyObject": {},
         "emptyList": [],
         "nullValue": null,
         "b": 2, "a": 1}}
      + .' >"$WORK/pod-extra-fields.json"
pod_create pod-extra-fields.json "$WORK/pod-extra-fields.json" kubectl-create
# Substitutions: bare numbers and a string that keeps its \u escapes.
perl -0pi -e '
  s/"\@\@BIGINT\@\@"/12345678901234567890123456789/;
  s/"\@\@FLOAT\@\@"/1.10/;
  s/"\@\@ESCAPED\@\@"/"caf\\u00e9 \\u2603 \\ud83d\\ude80 tab\\t quote\\" backslash\\\\ slash\\\/ nul\\u0000"/;
' "$OUT/pod-extra-fields.json"

# ==========================================================================
# Workloads (CREATE)
# ==========================================================================
kc_create deployment web --image=nginx:1.27 --replicas=2 >"$WORK/deployment.json"
mkreq deployment.json apps v1 Deployment deployments "" CREATE "$(create_opts kubectl-create)" "$WORK/deployment.json" "$NULL"

jqo 'default_deployment' <"$WORK/deployment.json" >"$WORK/deployment-defaulted.json"
mkreq deployment-defaulted.json apps v1 Deployment deployments "" CREATE "$(create_opts kubectl-create)" "$WORK/deployment-defaulted.json" "$NULL"

kc_create deployment web --image=registry.example.com/team/web:1.4.2 --replicas=2 \
  | jqo '.spec.template.spec.containers |= map(pull("Always"))' >"$WORK/deployment-compliant.json"
mkreq deployment-compliant.json apps v1 Deployment deployments "" CREATE "$(create_opts kubectl-create)" "$WORK/deployment-compliant.json" "$NULL"

# kubectl has no generators for these; derive them from the Deployment.
jqo '.spec.template.spec.containers |= map(pull("IfNotPresent"))' <"$WORK/deployment.json" >"$WORK/deploy-base.json"

jqo '{kind:"ReplicaSet", apiVersion:"apps/v1", metadata, spec:{replicas:.spec.replicas, selector:.spec.selector, template:.spec.template}, status:{}}' \
  <"$WORK/deploy-base.json" >"$WORK/replicaset.json"
mkreq replicaset.json apps v1 ReplicaSet replicasets "" CREATE "$(create_opts kubectl-create)" "$WORK/replicaset.json" "$NULL"

jqo '{kind:"StatefulSet", apiVersion:"apps/v1", metadata, spec:{replicas:.spec.replicas, selector:.spec.selector, template:.spec.template, serviceName:"web"}, status:{}}' \
  <"$WORK/deploy-base.json" >"$WORK/statefulset.json"
mkreq statefulset.json apps v1 StatefulSet statefulsets "" CREATE "$(create_opts kubectl-create)" "$WORK/statefulset.json" "$NULL"

jqo '{kind:"DaemonSet", apiVersion:"apps/v1", metadata, spec:{selector:.spec.selector, template:.spec.template}, status:{}}' \
  <"$WORK/deploy-base.json" >"$WORK/daemonset.json"
mkreq daemonset.json apps v1 DaemonSet daemonsets "" CREATE "$(create_opts kubectl-create)" "$WORK/daemonset.json" "$NULL"

jqo '{kind:"ReplicationController", apiVersion:"v1", metadata, spec:{replicas:.spec.replicas, selector:.spec.selector.matchLabels, template:.spec.template}, status:{}}' \
  <"$WORK/deploy-base.json" >"$WORK/replicationcontroller.json"
mkreq replicationcontroller.json "" v1 ReplicationController replicationcontrollers "" CREATE "$(create_opts kubectl-create)" "$WORK/replicationcontroller.json" "$NULL"

kc_create job pi --image=busybox:1.36 -- sh -c 'echo done' >"$WORK/job.json"
mkreq job.json batch v1 Job jobs "" CREATE "$(create_opts kubectl-create)" "$WORK/job.json" "$NULL"

kc_create cronjob report --image=busybox:1.36 --schedule="*/5 * * * *" -- sh -c 'date' \
  | jqo '.spec.jobTemplate.spec.template.spec.containers |= map(pull("IfNotPresent"))' >"$WORK/cronjob.json"
mkreq cronjob.json batch v1 CronJob cronjobs "" CREATE "$(create_opts kubectl-create)" "$WORK/cronjob.json" "$NULL"

kc_create cronjob report --image=busybox:1.36 --schedule="*/5 * * * *" -- sh -c 'date' \
  | jqo '.spec.jobTemplate.spec.template.spec |= (
      .containers |= map(pull("Always"))
      | .initContainers = [{"name":"wait","image":"busybox:latest","command":["sh","-c","sleep 5"],"resources":{},"imagePullPolicy":"Always"}]
      | reorder(podspec_order))' >"$WORK/cronjob-latest-init.json"
mkreq cronjob-latest-init.json batch v1 CronJob cronjobs "" CREATE "$(create_opts kubectl-create)" "$WORK/cronjob-latest-init.json" "$NULL"

kc_create configmap app-config --from-literal=LOG_LEVEL=info --from-literal=IMAGE=nginx:latest >"$WORK/configmap.json"
mkreq configmap.json "" v1 ConfigMap configmaps "" CREATE "$(create_opts kubectl-create)" "$WORK/configmap.json" "$NULL"

# ==========================================================================
# UPDATE / DELETE
# ==========================================================================
POD_UID=3f1c2a9e-5b7d-4e8f-9a10-2b3c4d5e6f70
NGINX127_ID="docker.io/library/nginx@sha256:$(hex64 'fixture:nginx:1.27')"
NGINX126_ID="docker.io/library/nginx@sha256:$(hex64 'fixture:nginx:1.26')"
CONTAINER_ID="containerd://$(hex64 'fixture:container:web')"

# A running Pod as stored in etcd (defaulted, admitted, with status).
running_pod() { # IMAGE IMAGE_ID
  kc_run web --image="$1" --image-pull-policy=IfNotPresent \
    | jqo 'default_pod | stored($uid; "48213"; null)
           | .spec.nodeName = "worker-1" | .spec |= reorder(podspec_order)
           | .status = running_status("docker.io/library/" + $img; $imgid; $cid)' \
      --arg uid "$POD_UID" --arg img "$1" --arg imgid "$2" --arg cid "$CONTAINER_ID"
}

# Only a label changes (kubectl label pod web tier=frontend).
running_pod nginx:1.27 "$NGINX127_ID" >"$WORK/pod-label-old.json"
jqo '.metadata.labels.tier = "frontend"' <"$WORK/pod-label-old.json" >"$WORK/pod-label-new.json"
mkreq pod-update-label.json "" v1 Pod pods "" UPDATE "$(update_opts kubectl-label)" "$WORK/pod-label-new.json" "$WORK/pod-label-old.json"

# kubectl set image pod/web web=nginx:1.27 (imagePullPolicy is immutable on
# Pods, so the policy cannot fix it by mutation).
running_pod nginx:1.26 "$NGINX126_ID" >"$WORK/pod-image-old.json"
jqo '.spec.containers[0].image = "nginx:1.27"' <"$WORK/pod-image-old.json" >"$WORK/pod-image-new.json"
mkreq pod-update-image.json "" v1 Pod pods "" UPDATE "$(update_opts kubectl-set)" "$WORK/pod-image-new.json" "$WORK/pod-image-old.json"

# kubectl debug web -it -c debugger --image=busybox:1.36 --image-pull-policy=IfNotPresent
# kubectl builds {name, image, imagePullPolicy, stdin, tty,
# terminationMessagePolicy: File} (profile "legacy" adds nothing) and
# PATCHes pods/web/ephemeralcontainers; the API server turns that into an
# UPDATE of the subresource and defaults the new container
# (terminationMessagePath).  "resources": {} is how Go serialises the
# empty struct.
running_pod nginx:1.27 "$NGINX127_ID" >"$WORK/pod-debug-old.json"
jqo '.spec.ephemeralContainers = [
       {"name":"debugger","image":"busybox:1.36","resources":{},"terminationMessagePolicy":"File",
        "imagePullPolicy":"IfNotPresent","stdin":true,"tty":true} | default_container]
     | .spec |= reorder(podspec_order)' <"$WORK/pod-debug-old.json" >"$WORK/pod-debug-new.json"
mkreq pod-ephemeral-debug.json "" v1 Pod pods ephemeralcontainers UPDATE "$(update_opts)" "$WORK/pod-debug-new.json" "$WORK/pod-debug-old.json"

# A legacy Deployment (IfNotPresent plus a :latest image) being deleted:
# the controller removes its finalizer.
DEPLOY_UID=9b8e7d6c-5a4f-4e3d-8c2b-1a0f9e8d7c6b
kc_create deployment legacy --image=nginx:1.25 --image=registry.example.com/team/cache:latest \
  | jqo 'default_deployment | stored($uid; "77120"; 4)
         | .metadata.annotations = {"deployment.kubernetes.io/revision":"3"}
         | .metadata |= reorder(meta_order)
         | .status = {"observedGeneration":4,"replicas":1,"updatedReplicas":1,"readyReplicas":1,"availableReplicas":1}' \
      --arg uid "$DEPLOY_UID" >"$WORK/legacy.json"
jqo '.metadata.deletionTimestamp = "2025-01-20T08:30:00Z" | .metadata.deletionGracePeriodSeconds = 0
     | .metadata.finalizers = ["example.com/cleanup"] | .metadata |= reorder(meta_order)' \
  <"$WORK/legacy.json" >"$WORK/legacy-old.json"
jqo 'del(.metadata.finalizers)' <"$WORK/legacy-old.json" >"$WORK/legacy-new.json"
mkreq deployment-update-finalizer-removal.json apps v1 Deployment deployments "" UPDATE "$(update_opts kubectl-patch)" "$WORK/legacy-new.json" "$WORK/legacy-old.json"

mkreq deployment-delete.json apps v1 Deployment deployments "" DELETE "$DELETE_OPTS" "$NULL" "$WORK/legacy.json"

# kubectl set image deployment/web nginx=nginx:1.27 on a two-container Deployment.
WEB_UID=0d4c6b2a-8e1f-4a7b-9c3d-5e6f7a8b9c0d
stored_web() { jqo 'default_deployment | stored($uid; "51877"; 1)
                    | .metadata.annotations = {"deployment.kubernetes.io/revision":"1"}
                    | .metadata |= reorder(meta_order)
                    | .status = {"observedGeneration":1,"replicas":2,"updatedReplicas":2,"readyReplicas":2,"availableReplicas":2}' \
                 --arg uid "$WEB_UID"; }
kc_create deployment web --image=nginx:1.26 --image=registry.example.com/team/log-shipper:2.3.1 --replicas=2 \
  | stored_web >"$WORK/web2-old.json"
jqo '.spec.template.spec.containers[0].image = "nginx:1.27"' <"$WORK/web2-old.json" >"$WORK/web2-new.json"
mkreq deployment-update-image.json apps v1 Deployment deployments "" UPDATE "$(update_opts kubectl-set)" "$WORK/web2-new.json" "$WORK/web2-old.json"

# Same request without oldObject at all.
jq 'del(.oldObject)' "$OUT/deployment-update-image.json" >"$WORK/tmp.json"
jq --arg uid "$(uuid_for deployment-update-no-oldobject.json)" '.uid = $uid' "$WORK/tmp.json" >"$OUT/deployment-update-no-oldobject.json"

# kubectl edit: only imagePullPolicy Always -> IfNotPresent.
kc_create deployment web --image=nginx:1.27 --replicas=2 \
  | jqo '.spec.template.spec.containers |= map(pull("Always"))' | stored_web >"$WORK/web1-old.json"
jqo '.spec.template.spec.containers[0].imagePullPolicy = "IfNotPresent"' <"$WORK/web1-old.json" >"$WORK/web1-new.json"
mkreq deployment-update-policy-only.json apps v1 Deployment deployments "" UPDATE "$(update_opts kubectl-edit)" "$WORK/web1-new.json" "$WORK/web1-old.json"

# ==========================================================================
# Malformed requests and the AdmissionReview envelope
# ==========================================================================
malformed() { # FILE JQ_FILTER_ON_REQUEST
  jq --arg uid "$(uuid_for "$1")" ".uid = \$uid | $2" "$OUT/pod-ifnotpresent.json" >"$OUT/$1"
}
malformed malformed-null-object.json '.object = null'
malformed malformed-containers-not-list.json '.object.spec.containers = {"web": .object.spec.containers[0]}'
malformed malformed-image-not-string.json '.object.spec.containers[0].image = 42'
malformed malformed-missing-image.json '.object.spec.containers[0] |= del(.image)'

jq '{apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: .}' \
  "$OUT/pod-ifnotpresent.json" >"$OUT/admission-review-pod.json"

# ==========================================================================
# Audit scanner requests (audit/)
# ==========================================================================
# audit_req FILE OBJECT_FILE: the request Kubewarden's audit scanner sends to policy-server's
# /audit endpoint for an object it lists (newAdmissionRequest in the audit scanner's
# internal/scanner/admission_request.go), in the field order Go's encoding/json writes an
# admission/v1 AdmissionRequest: the object's own uid as the request's, the kind (not the
# plural) as resource.resource, no requestResource, operation CREATE, an empty userInfo, no
# dryRun, null oldObject and options, and the object as Go marshals an unstructured object
# (every key sorted). The scanner posts it as {"request": ...}, with no apiVersion or kind.
audit_req() {
  mkdir -p "$OUT/audit"
  jq -S . "$2" >"$WORK/audit-object.json"
  jq -n --slurpfile obj "$WORK/audit-object.json" '
    $obj[0] as $o
    | ($o.apiVersion | if contains("/") then split("/") else ["", .] end) as [$g, $v]
    | {uid: $o.metadata.uid,
       kind: {group: $g, version: $v, kind: $o.kind},
       resource: {group: $g, version: $v, resource: $o.kind},
       requestKind: {group: $g, version: $v, kind: $o.kind},
       name: $o.metadata.name,
       namespace: $o.metadata.namespace,
       operation: "CREATE",
       userInfo: {},
       object: $o,
       oldObject: null,
       options: null}' >"$OUT/audit/$1"
}
kc_create deployment web --image=nginx:1.27 --replicas=2 | stored_web >"$WORK/audit-deployment.json"
audit_req deployment-ifnotpresent.json "$WORK/audit-deployment.json"
kc_create deployment api --image=registry.example.com/team/api:2.8.1 --replicas=2 \
  | jqo '.spec.template.spec.containers |= map(pull("Always"))' | stored_web \
  | jq --arg uid "$(uuid_for audit/deployment-compliant.json)" '.metadata.uid = $uid' \
  >"$WORK/audit-deployment-compliant.json"
audit_req deployment-compliant.json "$WORK/audit-deployment-compliant.json"
running_pod nginx:1.27 "$NGINX127_ID" >"$WORK/audit-pod.json"
audit_req pod-ifnotpresent.json "$WORK/audit-pod.json"

# ==========================================================================
# Settings
# ==========================================================================
S="$OUT/settings"
echo '{"mode":"reject"}' | jq . >"$S/reject.json"
echo '{"mode":"warn"}' | jq . >"$S/warn.json"
echo '{"mutateTemplates":false}' | jq . >"$S/no-templates.json"
echo '{"requireDigest":true,"requireAlwaysForDigests":false}' | jq . >"$S/digests.json"
echo '{"exemptImages":["registry.example.com/trusted/*","docker.io/library/busybox:*"],"exemptContainers":[{"name":"istio-*","image":"docker.io/envoyproxy/envoy:*"}]}' | jq . >"$S/exemptions.json"
echo '{"mod":"reject"}' | jq . >"$S/invalid-unknown-key.json"
echo '{"mode":"block"}' | jq . >"$S/invalid-mode.json"
echo '{"deniedTags":["bad tag!"]}' | jq . >"$S/invalid-denied-tag.json"
echo '{"requireFullVersion":true,"deniedTags":["latest","*-SNAPSHOT","2???????"]}' | jq . >"$S/floating-tags.json"
echo '{"deniedTags":["latest","*-SNAPSHOT","v1:*"]}' | jq . >"$S/invalid-denied-tag-pattern.json"
echo '{"exemptContainers":["istio-proxy"]}' | jq . >"$S/invalid-name-only-exemption.json"

# ==========================================================================
# Validation
# ==========================================================================
status=0
for f in "$OUT"/*.json "$S"/*.json; do
  if ! jq -e . "$f" >/dev/null; then echo "invalid JSON: $f" >&2; status=1; fi
done
grep -q '"bigInteger": 12345678901234567890123456789,' "$OUT/pod-extra-fields.json" || { echo "big integer lost" >&2; status=1; }
grep -q '"float": 1.10,' "$OUT/pod-extra-fields.json" || { echo "1.10 lost" >&2; status=1; }
# Every request except the envelope is a bare AdmissionRequest.
for f in "$OUT"/*.json; do
  case "$f" in */admission-review-pod.json) continue ;; esac
  jq -e 'has("uid") and has("kind") and has("resource") and has("operation") and (.dryRun == false)
         and (.options.apiVersion == "meta.k8s.io/v1")' "$f" >/dev/null \
    || { echo "not an AdmissionRequest: $f" >&2; status=1; }
done
[ "$status" -eq 0 ] && echo "generated $(ls "$OUT"/*.json | wc -l) requests and $(ls "$S"/*.json | wc -l) settings files in $OUT"
exit "$status"
