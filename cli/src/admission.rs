//! What a ClusterAdmissionPolicy or AdmissionPolicy says besides its settings and rules: which
//! objects reach the module (`namespaceSelector`, `objectSelector`, an AdmissionPolicy's own
//! namespace) and what its answer becomes (`mode: monitor`, `mutating: false`), as the API
//! server and policy-server apply them.

use std::collections::BTreeMap;

use policy_admission::AdmissionResponse;
use serde::Deserialize;

use crate::findings::{Finding, Origin};
use crate::manifest::ManifestObject;
use crate::yaml::Node;

/// The label the API server sets on every namespace, to its name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// policy-server 1.35's refusal of a mutation by a policy not allowed to mutate
/// (`spec.mutating: false`, `allowedToMutate: false`).
pub fn mutation_refusal(policy: &str) -> String {
    format!("Request rejected by policy {policy}. The policy attempted to mutate the request, but it is currently configured to not allow mutations.")
}

/// Kinds the API server keeps outside namespaces (of those a policy's rules may select).
const CLUSTER_SCOPED_KINDS: [&str; 10] = [
    "Namespace",
    "Node",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "StorageClass",
    "CustomResourceDefinition",
    "PriorityClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
];

pub type Labels = BTreeMap<String, String>;

/// A Kubernetes label selector (`metav1.LabelSelector`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(default)]
    match_labels: Labels,
    #[serde(default)]
    match_expressions: Vec<Requirement>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Requirement {
    key: String,
    operator: Operator,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// The labels a selector is matched against, and whether they are all known.
#[derive(Clone, Copy, Debug)]
pub struct KnownLabels<'a> {
    pub labels: &'a Labels,
    /// Only the labels in `labels` are known to be there or not; others may be set.
    pub complete: bool,
}

/// A selector's answer over labels that may be partly unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    Yes,
    No,
    Unknown,
}

impl LabelSelector {
    /// Checks what the API server checks when the webhook is created.
    pub fn validate(&self) -> Result<(), String> {
        for requirement in &self.match_expressions {
            let needs_values = matches!(requirement.operator, Operator::In | Operator::NotIn);
            if needs_values == requirement.values.is_empty() {
                return Err(format!(
                    "matchExpressions for key {:?}: {:?} {}",
                    requirement.key,
                    requirement.operator,
                    if needs_values {
                        "needs values"
                    } else {
                        "takes no values"
                    }
                ));
            }
        }
        Ok(())
    }

    /// Every requirement must hold (an empty selector selects everything).
    pub fn matches(&self, known: KnownLabels<'_>) -> Match {
        let requirements = self
            .match_labels
            .iter()
            .map(|(key, value)| Requirement {
                key: key.clone(),
                operator: Operator::In,
                values: vec![value.clone()],
            })
            .chain(self.match_expressions.iter().cloned());
        let mut answer = Match::Yes;
        for requirement in requirements {
            match requirement.matches(known) {
                Match::No => return Match::No,
                Match::Unknown => answer = Match::Unknown,
                Match::Yes => {}
            }
        }
        answer
    }
}

impl Requirement {
    fn matches(&self, known: KnownLabels<'_>) -> Match {
        let value = known.labels.get(&self.key);
        if value.is_none() && !known.complete {
            return Match::Unknown;
        }
        let listed = value.is_some_and(|value| self.values.contains(value));
        let holds = match self.operator {
            Operator::In => listed,
            Operator::NotIn => !listed,
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        };
        if holds {
            Match::Yes
        } else {
            Match::No
        }
    }
}

/// `spec.mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PolicyMode {
    #[default]
    Protect,
    Monitor,
}

/// The policy manifest's part of admission. Plain settings files get the default: every object
/// the rules select is sent, and the answer is the module's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    /// The policy's name, as policy-server names it in its messages.
    pub policy: String,
    pub mode: PolicyMode,
    pub mutating: bool,
    pub namespace_selector: Option<LabelSelector>,
    pub object_selector: Option<LabelSelector>,
    /// An AdmissionPolicy's namespace: it sees objects of that namespace only. `Some(None)`
    /// for one written without a namespace (it goes where kubectl puts it).
    pub own_namespace: Option<Option<String>>,
}

impl Default for Admission {
    fn default() -> Admission {
        Admission {
            policy: "image-pull-policy".to_owned(),
            mode: PolicyMode::Protect,
            mutating: true,
            namespace_selector: None,
            object_selector: None,
            own_namespace: None,
        }
    }
}

/// Whether the API server sends an object to the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    Sent,
    NotSent,
    /// It depends on what the input does not say; the text says what.
    Undecided(String),
}

/// The labels of namespaces: from `Namespace` objects in the input and `--namespace-labels`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Namespaces(BTreeMap<String, Labels>);

impl Namespaces {
    /// Adds a namespace's labels; given twice, the labels are merged, the later winning.
    pub fn add(&mut self, name: &str, labels: Labels) {
        self.0.entry(name.to_owned()).or_default().extend(labels);
    }

    /// Adds the `Namespace` objects among `objects`.
    pub fn add_objects(&mut self, objects: &[ManifestObject<'_>]) {
        for object in objects {
            if object.kind == "Namespace" && object.api_version == "v1" {
                if let Some(name) = &object.name {
                    self.add(name, labels(object.node));
                }
            }
        }
    }

    /// A namespace's labels, `kubernetes.io/metadata.name` included; complete when the
    /// namespace is in the input or named by the flag.
    fn labels(&self, name: &str) -> (Labels, bool) {
        let (mut labels, complete) = match self.0.get(name) {
            Some(labels) => (labels.clone(), true),
            None => (Labels::new(), false),
        };
        labels.insert(NAMESPACE_NAME_LABEL.to_owned(), name.to_owned());
        (labels, complete)
    }
}

/// Reads `--namespace-labels NS=k=v,k2=v2` (`NS=` for a namespace with no other labels).
pub fn parse_namespace_labels(text: &str) -> Result<(String, Labels), String> {
    let (name, pairs) = text
        .split_once('=')
        .filter(|(name, _)| !name.is_empty())
        .ok_or_else(|| format!("--namespace-labels {text:?}: write NAMESPACE=key=value,..."))?;
    let mut labels = Labels::new();
    for pair in pairs.split(',').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .filter(|(key, _)| !key.is_empty())
            .ok_or_else(|| format!("--namespace-labels {text:?}: {pair:?} is not key=value"))?;
        labels.insert(key.to_owned(), value.to_owned());
    }
    Ok((name.to_owned(), labels))
}

/// An object's `metadata.labels` (values that are not strings are left out: the API server
/// refuses them).
fn labels(object: &Node) -> Labels {
    let Some(serde_json::Value::Object(map)) = object
        .get("metadata")
        .and_then(|metadata| metadata.get("labels"))
        .map(Node::to_json)
    else {
        return Labels::new();
    };
    map.into_iter()
        .filter_map(|(key, value)| Some((key, value.as_str()?.to_owned())))
        .collect()
}

impl Admission {
    /// Notes for the report about what the manifest changes in the answers.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.mode == PolicyMode::Monitor {
            notes.push(format!("policy {} is in monitor mode: admission refuses and changes nothing; what protect mode would refuse is reported as warnings", self.policy));
        }
        if !self.mutating {
            notes.push(format!("policy {} is not mutating (spec.mutating: false): policy-server refuses every object the module would change", self.policy));
        }
        notes
    }

    /// Whether the API server sends a CREATE of `object` to the policy.
    pub fn reach(&self, object: &ManifestObject<'_>, namespaces: &Namespaces) -> Reach {
        let cluster_scoped = CLUSTER_SCOPED_KINDS.contains(&object.kind.as_str());
        if let Some(own) = &self.own_namespace {
            if cluster_scoped {
                return Reach::NotSent;
            }
            match (own, &object.namespace) {
                (Some(own), Some(namespace)) if own != namespace => return Reach::NotSent,
                (Some(_), Some(_)) | (None, None) => {}
                _ => return Reach::Undecided(format!("the AdmissionPolicy {} sees only its own namespace, and {} is written without one", self.policy, if object.namespace.is_none() { "the object" } else { "the policy" })),
            }
        }
        let mut answer = Reach::Sent;
        if let Some(selector) = &self.object_selector {
            let labels = labels(object.node);
            if selector.matches(KnownLabels {
                labels: &labels,
                complete: true,
            }) == Match::No
            {
                return Reach::NotSent;
            }
        }
        if let Some(selector) = &self.namespace_selector {
            let (labels, complete) = if object.kind == "Namespace" {
                (labels(object.node), true)
            } else if cluster_scoped {
                // The API server never skips a cluster-scoped object for its namespaceSelector.
                (Labels::new(), true)
            } else if let Some(namespace) = &object.namespace {
                namespaces.labels(namespace)
            } else {
                (Labels::new(), false)
            };
            let matched = if cluster_scoped && object.kind != "Namespace" {
                Match::Yes
            } else {
                selector.matches(KnownLabels {
                    labels: &labels,
                    complete,
                })
            };
            match matched {
                Match::No => return Reach::NotSent,
                Match::Unknown => {
                    answer = Reach::Undecided(match &object.namespace {
                        Some(namespace) => format!("the namespaceSelector of policy {} needs the labels of namespace {namespace}: add its Namespace object to the input, or --namespace-labels {namespace}=key=value,...", self.policy),
                        None => format!("the namespaceSelector of policy {} needs the object's namespace, which is not written", self.policy),
                    })
                }
                Match::Yes => {}
            }
        }
        answer
    }

    /// What policy-server answers, from the module's answer and its findings.
    pub fn answer(
        &self,
        response: &mut AdmissionResponse,
        patch: &mut Vec<serde_json::Value>,
        findings: &mut [Finding],
    ) {
        if self.mode == PolicyMode::Monitor {
            response.allowed = true;
            response.status = None;
            response.patch = None;
            response.patch_type = None;
            patch.clear();
            for finding in findings.iter_mut() {
                finding.origin = Origin::Warning;
            }
            return;
        }
        if !self.mutating && response.allowed && response.patch.is_some() {
            response.allowed = false;
            response.patch = None;
            response.patch_type = None;
            response.status = Some(policy_admission::AdmissionResponseStatus {
                message: Some(mutation_refusal(&self.policy)),
                code: None,
            });
            for finding in findings.iter_mut() {
                finding.origin = Origin::Refusal;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest;
    use serde_json::json;

    fn selector(value: serde_json::Value) -> LabelSelector {
        let selector: LabelSelector = serde_json::from_value(value).unwrap();
        selector.validate().unwrap();
        selector
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The semantics of `metav1.LabelSelector` as the Kubernetes documentation gives them.
    #[test]
    fn selectors_match_as_kubernetes_documents() {
        let team = labels(&[("team", "shop"), ("tier", "web")]);
        let cases = [
            ("empty selects everything", json!({}), Match::Yes),
            (
                "matchLabels equal",
                json!({"matchLabels": {"team": "shop"}}),
                Match::Yes,
            ),
            (
                "matchLabels other value",
                json!({"matchLabels": {"team": "ops"}}),
                Match::No,
            ),
            (
                "matchLabels missing key",
                json!({"matchLabels": {"env": "prod"}}),
                Match::No,
            ),
            (
                "In listed",
                json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "db"]}]}),
                Match::Yes,
            ),
            (
                "In not listed",
                json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}]}),
                Match::No,
            ),
            (
                "In missing key",
                json!({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}),
                Match::No,
            ),
            (
                "NotIn listed",
                json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}),
                Match::No,
            ),
            (
                "NotIn missing key",
                json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}),
                Match::Yes,
            ),
            (
                "Exists",
                json!({"matchExpressions": [{"key": "team", "operator": "Exists"}]}),
                Match::Yes,
            ),
            (
                "Exists missing",
                json!({"matchExpressions": [{"key": "env", "operator": "Exists"}]}),
                Match::No,
            ),
            (
                "DoesNotExist",
                json!({"matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]}),
                Match::Yes,
            ),
            (
                "DoesNotExist present",
                json!({"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}),
                Match::No,
            ),
            (
                "all must hold",
                json!({"matchLabels": {"team": "shop"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}]}),
                Match::No,
            ),
        ];
        for (name, value, expected) in cases {
            let known = KnownLabels {
                labels: &team,
                complete: true,
            };
            assert_eq!(selector(value).matches(known), expected, "{name}");
        }
    }

    #[test]
    fn unknown_labels_leave_a_selector_undecided_unless_a_known_one_fails() {
        let known = labels(&[(NAMESPACE_NAME_LABEL, "shop")]);
        let partial = KnownLabels {
            labels: &known,
            complete: false,
        };
        let by_name = json!({"matchExpressions": [{"key": NAMESPACE_NAME_LABEL, "operator": "NotIn", "values": ["kube-system"]}]});
        assert_eq!(selector(by_name).matches(partial), Match::Yes);
        let other = json!({"matchLabels": {"team": "shop"}});
        assert_eq!(selector(other).matches(partial), Match::Unknown);
        let both = json!({"matchLabels": {"team": "shop", NAMESPACE_NAME_LABEL: "ops"}});
        assert_eq!(selector(both).matches(partial), Match::No);
    }

    #[test]
    fn invalid_selectors_are_refused() {
        for value in [
            json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
        ] {
            let selector: LabelSelector = serde_json::from_value(value).unwrap();
            assert!(selector.validate().is_err());
        }
        assert!(serde_json::from_value::<LabelSelector>(
            json!({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]})
        )
        .is_err());
        assert!(serde_json::from_value::<LabelSelector>(json!({"matchLabel": {}})).is_err());
    }

    const OBJECTS: &str = "\
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: shop}}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: shop, labels: {app: web}}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: kube-system}
---
apiVersion: v1
kind: Pod
metadata: {name: c, namespace: other}
---
apiVersion: v1
kind: Pod
metadata: {name: d}
";

    fn reaches(admission: &Admission, flags: &[&str]) -> Vec<String> {
        let documents = manifest::parse(OBJECTS).unwrap();
        let contents = manifest::objects(&documents).unwrap();
        let mut namespaces = Namespaces::default();
        for flag in flags {
            let (name, labels) = parse_namespace_labels(flag).unwrap();
            namespaces.add(&name, labels);
        }
        namespaces.add_objects(&contents.objects);
        contents
            .objects
            .iter()
            .map(|object| match admission.reach(object, &namespaces) {
                Reach::Sent => "sent".to_owned(),
                Reach::NotSent => "not sent".to_owned(),
                Reach::Undecided(_) => "undecided".to_owned(),
            })
            .collect()
    }

    #[test]
    fn namespace_selectors_use_the_namespaces_of_the_input_and_the_flag() {
        let admission = Admission {
            namespace_selector: Some(selector(json!({"matchLabels": {"team": "shop"}}))),
            ..Admission::default()
        };
        // Namespace shop (its own labels), a, b, c, d.
        assert_eq!(
            reaches(&admission, &[]),
            ["sent", "sent", "undecided", "undecided", "undecided"]
        );
        assert_eq!(
            reaches(&admission, &["kube-system=", "other=team=shop,x=y"]),
            ["sent", "sent", "not sent", "sent", "undecided"]
        );
        let not_system = Admission {
            namespace_selector: Some(selector(
                json!({"matchExpressions": [{"key": NAMESPACE_NAME_LABEL, "operator": "NotIn", "values": ["kube-system"]}]}),
            )),
            ..Admission::default()
        };
        assert_eq!(
            reaches(&not_system, &[]),
            ["sent", "sent", "not sent", "sent", "undecided"]
        );
    }

    #[test]
    fn object_selectors_and_admission_policies() {
        let admission = Admission {
            object_selector: Some(selector(json!({"matchLabels": {"app": "web"}}))),
            ..Admission::default()
        };
        assert_eq!(
            reaches(&admission, &[]),
            ["not sent", "sent", "not sent", "not sent", "not sent"]
        );
        let namespaced = Admission {
            own_namespace: Some(Some("shop".to_owned())),
            ..Admission::default()
        };
        assert_eq!(
            reaches(&namespaced, &[]),
            ["not sent", "sent", "not sent", "not sent", "undecided"]
        );
    }

    #[test]
    fn namespace_label_flags_are_read() {
        assert_eq!(
            parse_namespace_labels("shop=team=shop,tier=web").unwrap(),
            (
                "shop".to_owned(),
                labels(&[("team", "shop"), ("tier", "web")])
            )
        );
        assert_eq!(
            parse_namespace_labels("shop=").unwrap(),
            ("shop".to_owned(), Labels::new())
        );
        assert!(parse_namespace_labels("shop").is_err());
        assert!(parse_namespace_labels("shop=team").is_err());
        assert!(parse_namespace_labels("=a=b").is_err());
    }

    fn mutation() -> (AdmissionResponse, Vec<serde_json::Value>) {
        let response = AdmissionResponse {
            uid: "u".into(),
            allowed: true,
            patch_type: Some("JSONPatch".into()),
            patch: Some("W10=".into()),
            warnings: Some(vec!["w".into()]),
            ..AdmissionResponse::default()
        };
        (response, vec![json!({"op": "add"})])
    }

    #[test]
    fn answers_become_policy_servers() {
        let (mut response, mut patch) = mutation();
        let not_mutating = Admission {
            mutating: false,
            policy: "clusterwide-p".into(),
            ..Admission::default()
        };
        not_mutating.answer(&mut response, &mut patch, &mut []);
        assert!(!response.allowed && response.patch.is_none());
        assert_eq!(response.status.unwrap().message.unwrap(), "Request rejected by policy clusterwide-p. The policy attempted to mutate the request, but it is currently configured to not allow mutations.");
        assert_eq!(response.warnings, Some(vec!["w".to_owned()]));
        assert_eq!(patch.len(), 1, "--fix may still write the pull policy");

        let monitor = Admission {
            mode: PolicyMode::Monitor,
            ..Admission::default()
        };
        let (mut response, mut patch) = mutation();
        response.allowed = false;
        monitor.answer(&mut response, &mut patch, &mut []);
        assert!(response.allowed && response.patch.is_none() && patch.is_empty());
        assert_eq!(response.warnings, Some(vec!["w".to_owned()]));

        let (mut response, mut patch) = mutation();
        Admission::default().answer(&mut response, &mut patch, &mut []);
        assert_eq!((response, patch), mutation());
    }
}
