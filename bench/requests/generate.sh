#!/usr/bin/env bash
# Generates the AdmissionRequests of the benchmark set.
#
#   bench/requests/generate.sh            rewrites the committed requests in bench/requests/
#   bench/requests/generate.sh pod-n N F  writes a Pod of N compliant containers to file F
#                                         (run.sh uses it for the 10,000-container request)
#
# Objects start from `kubectl create ... --dry-run=client -o json` where kubectl can make them
# without a cluster (Deployment, CronJob); Pods are built with jq (`kubectl run` needs a server).
# jq then adds what the API server fills in before calling admission webhooks (defaulted
# fields, uid, creationTimestamp, managedFields, the projected service-account token volume)
# and wraps the object into a bare admission/v1 AdmissionRequest.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kubectl="${KUBECTL:-kubectl}"

created="2025-11-20T10:15:02Z"
user_info='{"username":"kubernetes-admin","groups":["kubeadm:cluster-admins","system:authenticated"]}'

# wrap GROUP VERSION KIND RESOURCE UID FIELD_MANAGER < object  ->  AdmissionRequest
wrap() {
  jq --arg group "$1" --arg version "$2" --arg kind "$3" --arg resource "$4" --arg uid "$5" \
     --arg manager "$6" --argjson userInfo "$user_info" '
    {
      uid: $uid,
      kind: {group: $group, version: $version, kind: $kind},
      resource: {group: $group, version: $version, resource: $resource},
      requestKind: {group: $group, version: $version, kind: $kind},
      requestResource: {group: $group, version: $version, resource: $resource},
      name: .metadata.name,
      namespace: .metadata.namespace,
      operation: "CREATE",
      userInfo: $userInfo,
      object: .,
      oldObject: null,
      dryRun: false,
      options: {kind: "CreateOptions", apiVersion: "meta.k8s.io/v1", fieldManager: $manager}
    }'
}

# Fields the API server defaults in every container.
container_defaults='{
  resources: {},
  volumeMounts: [{name: "kube-api-access-7xq2d", readOnly: true,
                  mountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}],
  terminationMessagePath: "/dev/termination-log",
  terminationMessagePolicy: "File"
}'

# pod_object NAME UID < containers-array  ->  Pod as the API server hands it to webhooks
pod_object() {
  jq --arg name "$1" --arg uid "$2" --arg created "$created" "
    (. | map($container_defaults + .)) as \$containers |
    {
      kind: \"Pod\",
      apiVersion: \"v1\",
      metadata: {
        name: \$name, namespace: \"default\", uid: \$uid, creationTimestamp: \$created,
        labels: {run: \$name},
        managedFields: [{
          manager: \"kubectl-run\", operation: \"Update\", apiVersion: \"v1\", time: \$created,
          fieldsType: \"FieldsV1\",
          fieldsV1: {\"f:metadata\": {\"f:labels\": {\".\": {}, \"f:run\": {}}},
                     \"f:spec\": {\"f:containers\": (\$containers | map({key: (\"k:{\\\"name\\\":\\\"\" + .name + \"\\\"}\"),
                                   value: {\".\": {}, \"f:image\": {}, \"f:imagePullPolicy\": {}, \"f:name\": {},
                                           \"f:resources\": {}, \"f:terminationMessagePath\": {},
                                           \"f:terminationMessagePolicy\": {}}}) | from_entries),
                                 \"f:dnsPolicy\": {}, \"f:enableServiceLinks\": {}, \"f:restartPolicy\": {},
                                 \"f:schedulerName\": {}, \"f:securityContext\": {},
                                 \"f:terminationGracePeriodSeconds\": {}}}
        }]
      },
      spec: {
        volumes: [{name: \"kube-api-access-7xq2d\", projected: {
          sources: [
            {serviceAccountToken: {expirationSeconds: 3607, path: \"token\"}},
            {configMap: {name: \"kube-root-ca.crt\", items: [{key: \"ca.crt\", path: \"ca.crt\"}]}},
            {downwardAPI: {items: [{path: \"namespace\", fieldRef: {apiVersion: \"v1\", fieldPath: \"metadata.namespace\"}}]}}
          ],
          defaultMode: 420}}],
        containers: \$containers,
        restartPolicy: \"Always\",
        terminationGracePeriodSeconds: 30,
        dnsPolicy: \"ClusterFirst\",
        serviceAccountName: \"default\",
        serviceAccount: \"default\",
        securityContext: {},
        schedulerName: \"default-scheduler\",
        tolerations: [
          {key: \"node.kubernetes.io/not-ready\", operator: \"Exists\", effect: \"NoExecute\", tolerationSeconds: 300},
          {key: \"node.kubernetes.io/unreachable\", operator: \"Exists\", effect: \"NoExecute\", tolerationSeconds: 300}
        ],
        priority: 0,
        enableServiceLinks: true,
        preemptionPolicy: \"PreemptLowerPriority\"
      },
      status: {}
    }"
}

# containers N IMAGE_PREFIX TAG POLICY  ->  array of N containers
containers() {
  jq -n --argjson n "$1" --arg prefix "$2" --arg tag "$3" --arg policy "$4" '
    [range(0; $n) | {name: ("c\(.)"), image: ("\($prefix)\(.):\($tag)"), imagePullPolicy: $policy}]'
}

pod_request() { # NAME UID CONTAINERS_JSON_ARRAY
  echo "$3" | pod_object "$1" "$2" | wrap "" v1 Pod pods "$2" kubectl-run
}

pod_n() { # N FILE
  pod_request "pod-$1-containers" "5b1f0c4e-0000-4000-8000-0000000$(printf '%05d' "$1")" \
    "$(containers "$1" registry.example.com/team/svc 1.0.3 Always)" > "$2"
}

if [[ "${1:-}" == "pod-n" ]]; then
  pod_n "$2" "$3"
  exit 0
fi

# --- pod-one-container.json ----------------------------------------------------------------
pod_request app 7c3a5d4e-1f2b-4c6d-8e9f-0a1b2c3d4e5f \
  '[{"name":"app","image":"registry.example.com/team/app:1.4.2","imagePullPolicy":"Always"}]' \
  > "$here/pod-one-container.json"

# --- pod-mutated.json: two tagged images with IfNotPresent -> mutated to Always -------------
pod_request web-mutated 2d9e7f10-3a4b-4c5d-9e6f-7a8b9c0d1e2f \
  '[{"name":"web","image":"registry.example.com/team/web:2.3.1","imagePullPolicy":"IfNotPresent"},
    {"name":"log-shipper","image":"registry.example.com/platform/fluent-bit:3.1.9","imagePullPolicy":"IfNotPresent"}]' \
  > "$here/pod-mutated.json"

# --- pod-50-containers.json ------------------------------------------------------------------
pod_n 50 "$here/pod-50-containers.json"

# --- pod-rejected-many.json: 30 containers on :latest ----------------------------------------
pod_request latest-everywhere 9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d \
  "$(containers 30 registry.example.com/team/worker latest Always)" \
  > "$here/pod-rejected-many.json"

# --- deployment-kubectl-apply.json -----------------------------------------------------------
# The manifest a user applies; kubectl stores it in the last-applied-configuration annotation.
applied="$("$kubectl" create deployment checkout --image=registry.example.com/shop/checkout:1.12.4 \
  --replicas=3 --port=8080 --dry-run=client -o json | jq -c '
  del(.status, .spec.strategy, .metadata.creationTimestamp, .spec.template.metadata.creationTimestamp)
  | .metadata.namespace = "shop"
  | .metadata.labels = {app: "checkout", "app.kubernetes.io/part-of": "shop", "app.kubernetes.io/version": "1.12.4"}
  | .spec.template.metadata.labels = {app: "checkout", "app.kubernetes.io/part-of": "shop"}
  | .spec.template.metadata.annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"}
  | .spec.template.spec.containers[0] += {
      imagePullPolicy: "Always",
      ports: [{containerPort: 8080, name: "http"}, {containerPort: 9090, name: "metrics"}],
      env: [{name: "LOG_LEVEL", value: "info"}, {name: "PAYMENTS_URL", value: "http://payments.shop.svc:8080"},
            {name: "POD_NAME", valueFrom: {fieldRef: {fieldPath: "metadata.name"}}}],
      resources: {requests: {cpu: "250m", memory: "256Mi"}, limits: {memory: "512Mi"}},
      readinessProbe: {httpGet: {path: "/healthz/ready", port: "http"}, periodSeconds: 5},
      livenessProbe: {httpGet: {path: "/healthz/live", port: "http"}, initialDelaySeconds: 10}
    }
  | .spec.template.spec.containers += [{name: "istio-proxy", image: "registry.example.com/mesh/proxyv2:1.22.3",
      imagePullPolicy: "Always", ports: [{containerPort: 15090, name: "http-envoy-prom"}],
      resources: {requests: {cpu: "100m", memory: "128Mi"}}}]
  ')"

echo "$applied" | jq --arg applied "$applied" --arg created "$created" '
  def probe_defaults: . + {timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3}
    | .httpGet += {scheme: "HTTP"} | .periodSeconds //= 10;
  .metadata += {
    uid: "0f6c2b1e-8d4a-4e3b-9c7d-5a6b7c8d9e0f",
    generation: 1,
    creationTimestamp: $created,
    annotations: {"kubectl.kubernetes.io/last-applied-configuration": ($applied + "\n")},
    managedFields: [{
      manager: "kubectl-client-side-apply", operation: "Update", apiVersion: "apps/v1", time: $created,
      fieldsType: "FieldsV1",
      fieldsV1: {
        "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                       "f:labels": {".": {}, "f:app": {}, "f:app.kubernetes.io/part-of": {}, "f:app.kubernetes.io/version": {}}},
        "f:spec": {"f:progressDeadlineSeconds": {}, "f:replicas": {}, "f:revisionHistoryLimit": {},
                   "f:selector": {}, "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}},
                   "f:template": {"f:metadata": {"f:annotations": {".": {}, "f:prometheus.io/port": {}, "f:prometheus.io/scrape": {}},
                                                 "f:labels": {".": {}, "f:app": {}, "f:app.kubernetes.io/part-of": {}}},
                                  "f:spec": {"f:containers": (.spec.template.spec.containers | map({key: ("k:{\"name\":\"" + .name + "\"}"),
                                               value: {".": {}, "f:env": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:livenessProbe": {},
                                                       "f:name": {}, "f:ports": {}, "f:readinessProbe": {}, "f:resources": {},
                                                       "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}}) | from_entries),
                                             "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {},
                                             "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}}}}
      }
    }]
  }
  | .spec += {progressDeadlineSeconds: 600, revisionHistoryLimit: 10,
              strategy: {type: "RollingUpdate", rollingUpdate: {maxUnavailable: "25%", maxSurge: "25%"}}}
  | .spec.template.metadata.creationTimestamp = null
  | .spec.template.spec.containers |= map(
      . + {terminationMessagePath: "/dev/termination-log", terminationMessagePolicy: "File"}
      | .ports |= map(. + {protocol: "TCP"})
      | if .readinessProbe then .readinessProbe |= probe_defaults else . end
      | if .livenessProbe then .livenessProbe |= probe_defaults else . end
      | if .env then .env |= map(if .valueFrom then .valueFrom.fieldRef.apiVersion = "v1" else . end) else . end)
  | .spec.template.spec += {restartPolicy: "Always", terminationGracePeriodSeconds: 30, dnsPolicy: "ClusterFirst",
                            securityContext: {}, schedulerName: "default-scheduler"}
  | .status = {}
' | wrap apps v1 Deployment deployments 4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8 kubectl-client-side-apply \
  > "$here/deployment-kubectl-apply.json"

# --- cronjob.json ----------------------------------------------------------------------------
"$kubectl" create cronjob nightly-report --image=registry.example.com/team/report:2.0.1 \
  --schedule="0 2 * * *" --dry-run=client -o json -- /bin/report --since=24h | jq --arg created "$created" '
  .metadata += {namespace: "default", uid: "6b7c8d9e-0f1a-4b2c-8d3e-4f5a6b7c8d9e", generation: 1, creationTimestamp: $created}
  | .spec += {concurrencyPolicy: "Allow", suspend: false, successfulJobsHistoryLimit: 3, failedJobsHistoryLimit: 1}
  | .spec.jobTemplate.metadata = {name: "nightly-report", creationTimestamp: null}
  | .spec.jobTemplate.spec.template.metadata = {creationTimestamp: null}
  | .spec.jobTemplate.spec.template.spec.containers |= map(. + {imagePullPolicy: "Always",
      resources: {}, terminationMessagePath: "/dev/termination-log", terminationMessagePolicy: "File"})
  | .spec.jobTemplate.spec.template.spec += {restartPolicy: "OnFailure", terminationGracePeriodSeconds: 30,
      dnsPolicy: "ClusterFirst", securityContext: {}, schedulerName: "default-scheduler"}
  | .status = {}
' | wrap batch v1 CronJob cronjobs 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d kubectl-create \
  > "$here/cronjob.json"

for f in "$here"/*.json; do
  printf '%8d  %s\n' "$(wc -c < "$f")" "$(basename "$f")"
done
