//! `--settings FILE`: the policy's settings as YAML, or a ClusterAdmissionPolicy /
//! AdmissionPolicy manifest, whose `spec.settings` and `spec.rules` are used.

use std::path::Path;

use serde_json::{Map, Value};

use crate::admission::{Admission, LabelSelector, PolicyMode};
use crate::request::WebhookRules;
use crate::yaml;

/// The rules the policy is published with (`metadata.yml`, which `kwctl annotate` embeds):
/// the objects a policy server sends to it when its ClusterAdmissionPolicy copies them.
const METADATA_YML: &str = include_str!("../../metadata.yml");

const POLICY_KINDS: [&str; 2] = ["ClusterAdmissionPolicy", "AdmissionPolicy"];

/// The setting whose resolution needs a registry at admission; `scan` never pins.
pub const PIN_DIGESTS: &str = "pinDigests";

/// Everything about the policy's configuration that decides what admission answers.
#[derive(Clone, Debug)]
pub struct PolicyConfig {
    pub settings: Map<String, Value>,
    pub rules: WebhookRules,
    /// What the policy manifest says about which objects are sent and what the answer becomes.
    pub admission: Admission,
    /// Where the settings came from, for messages: the file, and the policy's name.
    pub source: String,
    /// What scan changed in the settings, for the user to know.
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingsFileError {
    #[error("cannot read the settings file {file}: {reason}")]
    Unreadable { file: String, reason: String },
    #[error("{file}: {error}")]
    Yaml {
        file: String,
        error: yaml::YamlError,
    },
    #[error("{file}: line {line}: {problem}")]
    Invalid {
        file: String,
        line: usize,
        problem: &'static str,
    },
}

impl PolicyConfig {
    /// Default settings, and the rules of the policy's metadata.
    pub fn defaults() -> PolicyConfig {
        PolicyConfig {
            settings: Map::new(),
            rules: metadata_rules(),
            admission: Admission::default(),
            source: "default settings".to_owned(),
            notes: Vec::new(),
        }
    }

    /// Reads `--settings`.
    pub fn from_file(path: &Path) -> Result<PolicyConfig, SettingsFileError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SettingsFileError::Unreadable {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        PolicyConfig::from_text(&text, &file)
    }

    pub fn from_text(text: &str, file: &str) -> Result<PolicyConfig, SettingsFileError> {
        let invalid = |line: usize, problem| SettingsFileError::Invalid {
            file: file.to_owned(),
            line,
            problem,
        };
        let documents = yaml::load(text).map_err(|error| SettingsFileError::Yaml {
            file: file.to_owned(),
            error,
        })?;
        let roots: Vec<&yaml::Node> = documents.iter().filter_map(|d| d.root.as_ref()).collect();
        let policies: Vec<&yaml::Node> = roots
            .iter()
            .copied()
            .filter(|root| {
                root.get("kind")
                    .and_then(yaml::Node::as_str)
                    .is_some_and(|kind| POLICY_KINDS.contains(&kind))
            })
            .collect();
        let mut config = match (policies.as_slice(), roots.as_slice()) {
            ([policy], _) => from_policy(policy, file).map_err(|(line, p)| invalid(line, p))?,
            ([], []) => PolicyConfig::defaults(),
            ([], [settings]) => {
                let settings = match settings.to_json() {
                    Value::Object(map) => map,
                    Value::Null => Map::new(),
                    _ => return Err(invalid(settings.span.start.line, SETTINGS_NOT_A_MAPPING)),
                };
                PolicyConfig {
                    settings,
                    source: file.to_owned(),
                    ..PolicyConfig::defaults()
                }
            }
            (_, _) => return Err(invalid(1, SEVERAL_POLICIES)),
        };
        config.settings = sorted(config.settings);
        config.notes.extend(pinning_note(&config.settings));
        config.notes.extend(config.admission.notes());
        Ok(config)
    }
}

const SETTINGS_NOT_A_MAPPING: &str = "the settings must be a mapping";
const SEVERAL_POLICIES: &str =
    "the file must hold the settings, or exactly one ClusterAdmissionPolicy or AdmissionPolicy";
const SPEC_NOT_A_MAPPING: &str = "spec.settings and spec.rules must be a mapping and a list";
const BAD_MODE: &str = "spec.mode must be protect or monitor";
const BAD_MUTATING: &str = "spec.mutating must be true or false";
const BAD_SELECTOR: &str = "spec.namespaceSelector and spec.objectSelector must be label selectors: matchLabels, and matchExpressions with In or NotIn and values, or Exists or DoesNotExist without";

fn from_policy(policy: &yaml::Node, file: &str) -> Result<PolicyConfig, (usize, &'static str)> {
    let line = policy.span.start.line;
    let spec = policy.get("spec");
    let settings = match spec
        .and_then(|spec| spec.get("settings"))
        .map(yaml::Node::to_json)
    {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err((line, SPEC_NOT_A_MAPPING)),
    };
    let rules = match spec.and_then(|spec| spec.get("rules")) {
        None => metadata_rules(),
        Some(rules) => {
            serde_json::from_value(rules.to_json()).map_err(|_| (line, SPEC_NOT_A_MAPPING))?
        }
    };
    let metadata = |key| {
        policy
            .get("metadata")
            .and_then(|m| m.get(key))
            .and_then(yaml::Node::as_str)
    };
    let name = metadata("name").unwrap_or("unnamed");
    let field = |key| spec.and_then(|spec| spec.get(key)).map(yaml::Node::to_json);
    let mode = match field("mode") {
        None | Some(Value::Null) => PolicyMode::Protect,
        Some(mode) => serde_json::from_value(mode).map_err(|_| (line, BAD_MODE))?,
    };
    let mutating = match field("mutating") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(mutating)) => mutating,
        Some(_) => return Err((line, BAD_MUTATING)),
    };
    let selector = |key| -> Result<Option<LabelSelector>, (usize, &'static str)> {
        match field(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => {
                let selector: LabelSelector =
                    serde_json::from_value(value).map_err(|_| (line, BAD_SELECTOR))?;
                selector.validate().map_err(|_| (line, BAD_SELECTOR))?;
                Ok(Some(selector))
            }
        }
    };
    let namespaced = policy.get("kind").and_then(yaml::Node::as_str) == Some("AdmissionPolicy");
    let own_namespace = namespaced.then(|| metadata("namespace").map(str::to_owned));
    // The policy's name in policy-server's messages, as the Kubewarden controller names it.
    let id = match &own_namespace {
        Some(namespace) => format!(
            "namespaced-{}-{name}",
            namespace.as_deref().unwrap_or("default")
        ),
        None => format!("clusterwide-{name}"),
    };
    Ok(PolicyConfig {
        settings,
        rules,
        admission: Admission {
            policy: id,
            mode,
            mutating,
            namespace_selector: selector("namespaceSelector")?,
            object_selector: selector("objectSelector")?,
            own_namespace,
        },
        source: format!("{file} (policy {name})"),
        notes: Vec::new(),
    })
}

/// Keys sorted at every level, as policy-evaluator hands settings to a policy.
fn sorted(settings: Map<String, Value>) -> Map<String, Value> {
    let mut value = Value::Object(settings);
    value.sort_all_objects();
    match value {
        Value::Object(map) => map,
        _ => unreachable!("an object stays an object"),
    }
}

/// Scan judges manifests, not registries: the evaluator turns pinning off (after the module has
/// checked the settings as given), and the report says so.
fn pinning_note(settings: &Map<String, Value>) -> Option<String> {
    let value = settings.get(PIN_DIGESTS)?;
    if value.is_null() || value.as_str() == Some("off") {
        return None;
    }
    Some(format!(
        "{PIN_DIGESTS} is evaluated as \"off\": scan does not resolve tags to digests"
    ))
}

/// The rules in the policy's `metadata.yml`.
pub fn metadata_rules() -> WebhookRules {
    let documents = yaml::load(METADATA_YML).expect("metadata.yml is valid YAML");
    let rules = documents
        .first()
        .and_then(|d| d.root.as_ref())
        .and_then(|root| root.get("rules"))
        .map(yaml::Node::to_json)
        .expect("metadata.yml has rules");
    serde_json::from_value(rules).expect("metadata.yml rules are webhook rules")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{guess_resource, ObjectType};
    use serde_json::json;

    fn object_type(group: &str, kind: &str) -> ObjectType {
        ObjectType {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            resource: guess_resource(kind),
        }
    }

    #[test]
    fn metadata_rules_select_the_workload_kinds_only() {
        let rules = metadata_rules();
        for (group, kind) in [
            ("", "Pod"),
            ("", "ReplicationController"),
            ("apps", "Deployment"),
            ("apps", "ReplicaSet"),
            ("apps", "StatefulSet"),
            ("apps", "DaemonSet"),
            ("batch", "Job"),
            ("batch", "CronJob"),
        ] {
            assert!(rules.selects_create(&object_type(group, kind)), "{kind}");
        }
        assert!(!rules.selects_create(&object_type("", "ConfigMap")));
        assert!(!rules.selects_create(&object_type("", "Service")));
    }

    #[test]
    fn plain_settings_keep_metadata_rules() {
        let config =
            PolicyConfig::from_text("mode: reject\ndeniedTags: [latest, dev]\n", "s.yaml").unwrap();
        assert_eq!(
            Value::Object(config.settings),
            json!({"deniedTags": ["latest", "dev"], "mode": "reject"})
        );
        assert_eq!(config.rules, metadata_rules());
        assert!(PolicyConfig::from_text("", "empty.yaml")
            .unwrap()
            .settings
            .is_empty());
    }

    #[test]
    fn policy_manifests_give_settings_and_rules() {
        let text = "\
apiVersion: policies.kubewarden.io/v1
kind: ClusterAdmissionPolicy
metadata:
  name: pull
spec:
  module: registry://example/p:v1
  mutating: false
  rules:
    - apiGroups: [\"\"]
      apiVersions: [v1]
      resources: [pods]
      operations: [CREATE]
  settings:
    mode: warn
";
        let config = PolicyConfig::from_text(text, "cap.yaml").unwrap();
        assert_eq!(Value::Object(config.settings), json!({"mode": "warn"}));
        assert!(config.rules.selects_create(&object_type("", "Pod")));
        assert!(!config
            .rules
            .selects_create(&object_type("apps", "Deployment")));
        assert_eq!(config.source, "cap.yaml (policy pull)");
    }

    #[test]
    fn policy_manifests_give_mode_mutating_and_selectors() {
        let text = "\
apiVersion: policies.kubewarden.io/v1
kind: AdmissionPolicy
metadata: {name: pull, namespace: shop}
spec:
  mode: monitor
  mutating: false
  objectSelector:
    matchExpressions: [{key: app, operator: Exists}]
  namespaceSelector: {matchLabels: {team: shop}}
";
        let config = PolicyConfig::from_text(text, "ap.yaml").unwrap();
        let admission = &config.admission;
        assert_eq!(admission.policy, "namespaced-shop-pull");
        assert_eq!(admission.mode, PolicyMode::Monitor);
        assert!(!admission.mutating);
        assert!(admission.namespace_selector.is_some() && admission.object_selector.is_some());
        assert_eq!(admission.own_namespace, Some(Some("shop".to_owned())));
        assert_eq!(config.notes.len(), 2, "{:?}", config.notes);
        let cluster = PolicyConfig::from_text(
            "kind: ClusterAdmissionPolicy\nmetadata: {name: p}\nspec: {mutating: true}\n",
            "cap.yaml",
        )
        .unwrap();
        assert_eq!(cluster.admission.policy, "clusterwide-p");
        assert_eq!(cluster.admission.own_namespace, None);
        assert!(cluster.admission.mutating && cluster.notes.is_empty());
        assert_eq!(PolicyConfig::defaults().admission, Admission::default());
        for (spec, problem) in [
            ("{mode: audit}", BAD_MODE),
            ("{mutating: yes please}", BAD_MUTATING),
            (
                "{namespaceSelector: {matchExpressions: [{key: a, operator: In}]}}",
                BAD_SELECTOR,
            ),
            ("{objectSelector: {matchLabel: {a: b}}}", BAD_SELECTOR),
        ] {
            let text = format!("kind: ClusterAdmissionPolicy\nspec: {spec}\n");
            let error = PolicyConfig::from_text(&text, "cap.yaml").unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("cap.yaml: line 1: {problem}"),
                "{spec}"
            );
        }
    }

    #[test]
    fn pinning_is_noted() {
        let config = PolicyConfig::from_text("pinDigests: all\n", "s.yaml").unwrap();
        assert_eq!(Value::Object(config.settings), json!({"pinDigests": "all"}));
        assert_eq!(config.notes.len(), 1);
    }

    #[test]
    fn unusable_files_are_named() {
        let error = PolicyConfig::from_text("- mode\n", "s.yaml").unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("s.yaml: line 1: {SETTINGS_NOT_A_MAPPING}")
        );
        let error = PolicyConfig::from_text("mode: [\n", "s.yaml").unwrap_err();
        assert!(error.to_string().starts_with("s.yaml: line "), "{error}");
    }
}
