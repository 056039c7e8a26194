//! A manifest object as the CREATE AdmissionRequest the API server would send for it, and the
//! webhook rules that decide whether the policy server receives it at all.

use policy_admission::{AdmissionRequest, GroupVersionKind, GroupVersionResource, UserInfo};
use serde_json::{json, Value};

use crate::manifest::ManifestObject;

/// Group, version and resource of an object, as webhook rules name them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub resource: String,
}

impl ObjectType {
    pub fn of(object: &ManifestObject<'_>) -> ObjectType {
        let (group, version) = match object.api_version.split_once('/') {
            Some((group, version)) => (group.to_owned(), version.to_owned()),
            None => (String::new(), object.api_version.clone()),
        };
        ObjectType {
            group,
            version,
            resource: guess_resource(&object.kind),
            kind: object.kind.clone(),
        }
    }
}

/// The resource name of a kind as Kubernetes guesses it without discovery
/// (`meta.UnsafeGuessKindToResource`): lower case, `s` → `ses`, `y` → `ies`, else `s`.
pub fn guess_resource(kind: &str) -> String {
    let lower = kind.to_lowercase();
    if lower.ends_with('s') {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

/// The CREATE request for an object. `object` is its JSON; keys are sorted as
/// policy-evaluator sorts them.
pub fn create_request(
    uid: String,
    object: &ManifestObject<'_>,
    mut object_json: Value,
) -> AdmissionRequest {
    let object_type = ObjectType::of(object);
    object_json.sort_all_objects();
    let kind = GroupVersionKind {
        group: object_type.group.clone(),
        version: object_type.version.clone(),
        kind: object_type.kind.clone(),
    };
    let resource = GroupVersionResource {
        group: object_type.group,
        version: object_type.version,
        resource: object_type.resource,
    };
    AdmissionRequest {
        uid,
        request_kind: Some(kind.clone()),
        request_resource: Some(resource.clone()),
        kind,
        resource,
        sub_resource: None,
        request_sub_resource: None,
        name: object.name.clone(),
        namespace: object.namespace.clone(),
        operation: "CREATE".to_owned(),
        user_info: UserInfo {
            username: Some("image-pull-policy-scan".to_owned()),
            ..UserInfo::default()
        },
        object: Some(object_json),
        old_object: None,
        dry_run: Some(false),
        options: Some(json!({"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"})),
    }
}

/// The `rules` of a ValidatingWebhookConfiguration, as a policy's metadata or its
/// ClusterAdmissionPolicy states them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct WebhookRules(Vec<WebhookRule>);

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookRule {
    #[serde(default)]
    api_groups: Vec<String>,
    #[serde(default)]
    api_versions: Vec<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    operations: Vec<String>,
}

impl WebhookRules {
    /// Whether a CREATE of an object of this type is sent to the policy.
    pub fn selects_create(&self, object_type: &ObjectType) -> bool {
        self.0.iter().any(|rule| {
            let listed = |list: &[String], value: &str| list.iter().any(|e| e == "*" || e == value);
            listed(&rule.operations, "CREATE")
                && listed(&rule.api_groups, &object_type.group)
                && listed(&rule.api_versions, &object_type.version)
                && rule
                    .resources
                    .iter()
                    .any(|r| r == "*" || r == "*/*" || *r == object_type.resource)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_guessed_like_kubernetes_does() {
        let guessed: Vec<_> = [
            "Pod",
            "Deployment",
            "ReplicaSet",
            "StatefulSet",
            "DaemonSet",
            "ReplicationController",
            "Job",
            "CronJob",
            "NetworkPolicy",
            "Ingress",
        ]
        .iter()
        .map(|kind| guess_resource(kind))
        .collect();
        assert_eq!(
            guessed,
            [
                "pods",
                "deployments",
                "replicasets",
                "statefulsets",
                "daemonsets",
                "replicationcontrollers",
                "jobs",
                "cronjobs",
                "networkpolicies",
                "ingresses"
            ]
        );
    }

    fn object_type(api_version: &str, kind: &str) -> ObjectType {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        ObjectType {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            resource: guess_resource(kind),
        }
    }

    #[test]
    fn rules_select_by_group_version_resource_and_operation() {
        let rules: WebhookRules = serde_json::from_value(json!([
            {"apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments"], "operations": ["CREATE", "UPDATE"]},
            {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods/ephemeralcontainers"], "operations": ["UPDATE"]},
            {"apiGroups": ["batch"], "apiVersions": ["*"], "resources": ["*"], "operations": ["*"]}
        ]))
        .unwrap();
        assert!(rules.selects_create(&object_type("apps/v1", "Deployment")));
        assert!(!rules.selects_create(&object_type("apps/v1beta1", "Deployment")));
        assert!(!rules.selects_create(&object_type("v1", "Pod")));
        assert!(rules.selects_create(&object_type("batch/v1", "CronJob")));
        assert!(!rules.selects_create(&object_type("v1", "ConfigMap")));
    }
}
