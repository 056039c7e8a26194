//! Consistency of the Kubewarden packaging files: `metadata.yml` (read by
//! `kwctl annotate`), `artifacthub-pkg.yml` (written by `kwctl scaffold
//! artifacthub`), `questions-ui.yml` (the Rancher UI form) and the
//! ClusterAdmissionPolicy manifests in `examples/`.
//!
//! Every check returns the list of problems it found instead of panicking, so
//! that the `*_detects_*` tests at the end can feed it a broken copy of the
//! files and prove that it fails when it should.
//!
//! Run with `cargo test --test artifacts`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// What the files must say (SPEC.md, "Settings" and "What is evaluated").
// ---------------------------------------------------------------------------

/// Every setting of the policy with its type and default.
fn spec_settings() -> Vec<(&'static str, SettingKind, Value)> {
    vec![
        ("mode", SettingKind::Enum(&MODES), json!("mutate")),
        ("requireTag", SettingKind::Bool, json!(true)),
        ("deniedTags", SettingKind::StringList, json!(["latest"])),
        ("requireFullVersion", SettingKind::Bool, json!(false)),
        ("requireDigest", SettingKind::Bool, json!(false)),
        ("requireAlwaysForDigests", SettingKind::Bool, json!(true)),
        ("exemptImages", SettingKind::StringList, json!([])),
        ("exemptContainers", SettingKind::ExemptionList, json!([])),
        ("mutateTemplates", SettingKind::Bool, json!(true)),
        ("pinDigests", SettingKind::Enum(&PIN_SCOPES), json!("off")),
        ("pinRegistries", SettingKind::StringList, json!([])),
        (
            "registryFailure",
            SettingKind::Enum(&REGISTRY_FAILURES),
            json!("reject"),
        ),
    ]
}

const MODES: [&str; 3] = ["mutate", "reject", "warn"];
const PIN_SCOPES: [&str; 3] = ["off", "pods", "all"];
const REGISTRY_FAILURES: [&str; 2] = ["reject", "accept"];

#[derive(Clone, Copy, Debug, PartialEq)]
enum SettingKind {
    /// A string, one of these.
    Enum(&'static [&'static str]),
    Bool,
    StringList,
    /// `[{name: PATTERN, image: PATTERN}]`
    ExemptionList,
}

/// (apiGroup, apiVersion, resource, operation) tuples the rules must cover,
/// no more and no fewer.
fn expected_rule_tuples() -> BTreeSet<(String, String, String, String)> {
    let mut out = BTreeSet::new();
    let workloads = [
        ("", "pods"),
        ("", "replicationcontrollers"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
    ];
    for (group, resource) in workloads {
        for op in ["CREATE", "UPDATE"] {
            out.insert((group.into(), "v1".into(), resource.into(), op.into()));
        }
    }
    out.insert((
        String::new(),
        "v1".into(),
        "pods/ephemeralcontainers".into(),
        "UPDATE".into(),
    ));
    out
}

/// Kinds the policy evaluates, as `io.artifacthub.resources` lists them.
const KINDS: [&str; 8] = [
    "Pod",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "ReplicationController",
    "Job",
    "CronJob",
];

fn kind_of_resource(resource: &str) -> Option<&'static str> {
    let base = resource.split('/').next().unwrap_or(resource);
    Some(match base {
        "pods" => "Pod",
        "deployments" => "Deployment",
        "replicasets" => "ReplicaSet",
        "statefulsets" => "StatefulSet",
        "daemonsets" => "DaemonSet",
        "replicationcontrollers" => "ReplicationController",
        "jobs" => "Job",
        "cronjobs" => "CronJob",
        _ => return None,
    })
}

/// The example manifests: file name, expected `settings.mode`, expected
/// `settings.mutateTemplates` (None: left to the default).
const EXAMPLES: [(&str, &str, Option<bool>); 4] = [
    ("mutate.yaml", "mutate", None),
    ("reject.yaml", "reject", None),
    ("warn.yaml", "warn", None),
    ("gitops.yaml", "mutate", Some(false)),
];

const KUBEWARDEN_NAMESPACE: &str = "kubewarden";

// ---------------------------------------------------------------------------
// Loading.
// ---------------------------------------------------------------------------

#[derive(Clone)]
struct Files {
    cargo_toml: String,
    metadata: Value,
    artifacthub: Value,
    questions: Value,
    questions_text: String,
    /// (file name, manifest), sorted by file name.
    examples: Vec<(String, Value)>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn parse_yaml(text: &str, what: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{what} is not valid YAML: {e}"))
}

/// The folder of `examples/` with manifests to scan.
const EXAMPLE_MANIFESTS: &str = "manifests";

fn load() -> Files {
    let root = root();
    let questions_text = read(&root.join("questions-ui.yml"));
    let mut examples = Vec::new();
    let dir = root.join("examples");
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // examples/manifests/ holds workloads for `scan`, not policies.
        if name == EXAMPLE_MANIFESTS && path.is_dir() {
            continue;
        }
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            examples.push((name.clone(), parse_yaml(&read(&path), &name)));
        }
    }
    examples.sort_by(|a, b| a.0.cmp(&b.0));
    Files {
        cargo_toml: read(&root.join("Cargo.toml")),
        metadata: parse_yaml(&read(&root.join("metadata.yml")), "metadata.yml"),
        artifacthub: parse_yaml(
            &read(&root.join("artifacthub-pkg.yml")),
            "artifacthub-pkg.yml",
        ),
        questions: parse_yaml(&questions_text, "questions-ui.yml"),
        questions_text,
        examples,
    }
}

// ---------------------------------------------------------------------------
// Small helpers.
// ---------------------------------------------------------------------------

/// Walks object keys (no JSON-pointer escaping: keys such as
/// `kubewarden/rules` contain '/').
fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| match v {
        Value::Array(a) => a.get(key.parse::<usize>().ok()?),
        _ => v.get(*key),
    })
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path).and_then(Value::as_str)
}

fn annotation<'a>(metadata: &'a Value, key: &str) -> Option<&'a str> {
    str_at(metadata, &["annotations", key])
}

/// The value of `key = "…"` in the `[package]` table of Cargo.toml.
fn package_field(cargo_toml: &str, key: &str) -> Option<String> {
    let mut in_package = false;
    for line in cargo_toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if !in_package {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.trim() != key {
            continue;
        }
        let v = v.trim();
        return v
            .strip_prefix('"')
            .and_then(|v| v.split_once('"'))
            .map(|(s, _)| s.to_owned());
    }
    None
}

fn is_semver(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
        })
}

/// RFC 1123 subdomain, as `kwctl scaffold manifest` requires of a policy name.
fn is_rfc1123(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn string_list(value: Option<&Value>) -> Option<Vec<String>> {
    value?
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn csv(value: &str) -> Vec<String> {
    value.split(',').map(|s| s.trim().to_owned()).collect()
}

fn rule_tuples(rules: &Value) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for rule in rules.as_array().into_iter().flatten() {
        let field = |k: &str| string_list(rule.get(k)).unwrap_or_default();
        for g in field("apiGroups") {
            for v in field("apiVersions") {
                for r in field("resources") {
                    for o in field("operations") {
                        out.push((g.clone(), v.clone(), r.clone(), o.clone()));
                    }
                }
            }
        }
    }
    out
}

fn report(problems: Vec<String>) {
    assert!(problems.is_empty(), "\n  - {}\n", problems.join("\n  - "));
}

// ---------------------------------------------------------------------------
// Checks.
// ---------------------------------------------------------------------------

fn check_versions(f: &Files) -> Vec<String> {
    let mut p = Vec::new();
    let Some(cargo) = package_field(&f.cargo_toml, "version") else {
        return vec!["Cargo.toml: no version in [package]".into()];
    };
    if !is_semver(&cargo) {
        p.push(format!("Cargo.toml version {cargo:?} is not semver"));
    }
    let meta = annotation(&f.metadata, "io.kubewarden.policy.version");
    if meta != Some(cargo.as_str()) {
        p.push(format!(
            "metadata.yml io.kubewarden.policy.version {meta:?} != Cargo.toml {cargo:?}"
        ));
    }
    let hub = str_at(&f.artifacthub, &["version"]);
    if hub != Some(cargo.as_str()) {
        p.push(format!(
            "artifacthub-pkg.yml version {hub:?} != Cargo.toml {cargo:?}"
        ));
    }
    let tag = format!(":v{cargo}");
    let image = str_at(&f.artifacthub, &["containersImages", "0", "image"]);
    if !image.is_some_and(|i| i.ends_with(&tag)) {
        p.push(format!(
            "artifacthub-pkg.yml containersImages[0].image {image:?} is not tagged {tag}"
        ));
    }
    let wasm = format!("/releases/download/v{cargo}/policy.wasm");
    let links = f.artifacthub.get("links").and_then(Value::as_array);
    let policy_link = links
        .into_iter()
        .flatten()
        .find(|l| str_at(l, &["name"]) == Some("policy"))
        .and_then(|l| str_at(l, &["url"]));
    if !policy_link.is_some_and(|u| u.ends_with(&wasm)) {
        p.push(format!(
            "artifacthub-pkg.yml policy link {policy_link:?} does not end with {wasm}"
        ));
    }
    let install = str_at(&f.artifacthub, &["install"]).unwrap_or("");
    if !install.contains(&tag) {
        p.push(format!(
            "artifacthub-pkg.yml install does not mention {tag}"
        ));
    }
    for (name, manifest) in &f.examples {
        let module = str_at(manifest, &["spec", "module"]).unwrap_or("");
        if !module.ends_with(&tag) {
            p.push(format!(
                "examples/{name}: module {module:?} is not tagged {tag}"
            ));
        }
    }
    p
}

fn check_names(f: &Files) -> Vec<String> {
    let mut p = Vec::new();
    let m = &f.metadata;
    let h = &f.artifacthub;
    let crate_name = package_field(&f.cargo_toml, "name");
    let title = annotation(m, "io.kubewarden.policy.title");
    if title != crate_name.as_deref() {
        p.push(format!(
            "metadata title {title:?} != crate name {crate_name:?}"
        ));
    }
    let mut same = |what: &str, meta: Option<&str>, hub: Option<&str>| {
        if meta.is_none() || meta != hub {
            p.push(format!(
                "{what}: metadata.yml {meta:?} != artifacthub-pkg.yml {hub:?}"
            ));
        }
    };
    same("name", title, str_at(h, &["name"]));
    same(
        "displayName",
        annotation(m, "io.artifacthub.displayName"),
        str_at(h, &["displayName"]),
    );
    same(
        "description",
        annotation(m, "io.kubewarden.policy.description"),
        str_at(h, &["description"]),
    );
    same(
        "license",
        annotation(m, "io.kubewarden.policy.license"),
        str_at(h, &["license"]),
    );
    same(
        "homeURL",
        annotation(m, "io.kubewarden.policy.url"),
        str_at(h, &["homeURL"]),
    );

    let license = package_field(&f.cargo_toml, "license");
    if annotation(m, "io.kubewarden.policy.license") != license.as_deref() {
        p.push(format!(
            "metadata license differs from Cargo.toml {license:?}"
        ));
    }
    let repository = package_field(&f.cargo_toml, "repository");
    for key in ["io.kubewarden.policy.url", "io.kubewarden.policy.source"] {
        if annotation(m, key) != repository.as_deref() {
            p.push(format!(
                "metadata {key} {:?} != Cargo.toml repository {repository:?}",
                annotation(m, key)
            ));
        }
    }
    let source = annotation(m, "io.kubewarden.policy.source").unwrap_or("");
    let links: Vec<(String, String)> = h
        .get("links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|l| {
            (
                str_at(l, &["name"]).unwrap_or("").to_owned(),
                str_at(l, &["url"]).unwrap_or("").to_owned(),
            )
        })
        .collect();
    let names: Vec<&str> = links.iter().map(|(n, _)| n.as_str()).collect();
    if names != ["policy", "source"] {
        p.push(format!(
            "artifacthub links are {names:?}, kwctl writes [policy, source]"
        ));
    }
    if !links.iter().any(|(n, u)| n == "source" && u == source) {
        p.push(format!("artifacthub source link is not {source:?}"));
    }
    if !links
        .iter()
        .any(|(n, u)| n == "policy" && u.starts_with(&format!("{source}/releases/download/")))
    {
        p.push(
            "artifacthub policy link does not point to a release of the source repository".into(),
        );
    }

    let oci = annotation(m, "io.kubewarden.policy.ociUrl").unwrap_or("");
    let version = annotation(m, "io.kubewarden.policy.version").unwrap_or("");
    let image = format!("{oci}:v{version}");
    let images = h.get("containersImages").cloned().unwrap_or(Value::Null);
    if images != json!([{"name": "policy", "image": image}]) {
        p.push(format!(
            "artifacthub containersImages {images} != [{{name: policy, image: {image}}}]"
        ));
    }
    let install = str_at(h, &["install"]).unwrap_or("");
    if !install.contains(&format!("kwctl pull {image}\n"))
        || !install.contains(&format!("registry://{image}\n"))
    {
        p.push(format!(
            "artifacthub install does not pull and scaffold {image}"
        ));
    }
    let keywords = annotation(m, "io.artifacthub.keywords").map(csv);
    let hub_keywords = string_list(h.get("keywords"));
    if keywords.is_none() || keywords != hub_keywords {
        p.push(format!(
            "keywords: metadata {keywords:?} != artifacthub {hub_keywords:?}"
        ));
    }
    let author = annotation(m, "io.kubewarden.policy.author").unwrap_or("");
    let maintainers = h.get("maintainers").cloned().unwrap_or(Value::Null);
    let expected = author
        .strip_suffix('>')
        .and_then(|a| a.split_once(" <"))
        .map(|(name, email)| json!([{"name": name, "email": email}]));
    if expected.as_ref() != Some(&maintainers) {
        p.push(format!(
            "artifacthub maintainers {maintainers} do not match author {author:?}"
        ));
    }
    if h.get("provider") != Some(&json!({"name": "kubewarden"})) {
        p.push("artifacthub provider is not {name: kubewarden}".into());
    }
    let rec =
        json!([{"url": "https://artifacthub.io/packages/helm/kubewarden/kubewarden-controller"}]);
    if h.get("recommendations") != Some(&rec) {
        p.push("artifacthub recommendations are not the kubewarden-controller chart".into());
    }
    let created = str_at(h, &["createdAt"]).unwrap_or("");
    let b = created.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || !created.ends_with('Z')
    {
        p.push(format!(
            "artifacthub createdAt {created:?} is not an RFC 3339 UTC time"
        ));
    }
    p
}

fn check_metadata_flags(f: &Files) -> Vec<String> {
    let mut p = Vec::new();
    let m = &f.metadata;
    let mut expect = |key: &str, want: Value| {
        if m.get(key) != Some(&want) {
            p.push(format!(
                "metadata.yml {key}: {:?}, expected {want}",
                m.get(key)
            ));
        }
    };
    expect("mutating", json!(true));
    expect("executionMode", json!("kubewarden-wapc"));
    expect("backgroundAudit", json!(true));
    expect("policyType", json!("kubernetes"));
    expect("contextAwareResources", json!([]));
    if m.get("contextAware").is_some_and(|v| v != &json!(false)) {
        p.push("metadata.yml contextAware must be false".into());
    }
    p
}

/// What `kwctl annotate` and `kwctl scaffold` ask of metadata.yml: it is
/// deserialized into policy-evaluator's `Metadata` and validated
/// (src/policy_metadata.rs), and `ArtifactHubPkg::from_metadata`
/// (src/policy_artifacthub.rs) needs some annotations.
fn check_metadata_accepted_by_kwctl(f: &Files) -> Vec<String> {
    let mut p = Vec::new();
    let m = &f.metadata;
    let Some(obj) = m.as_object() else {
        return vec!["metadata.yml is not a mapping".into()];
    };
    // Fields of `Metadata`; anything else is silently dropped by serde.
    let known = [
        "rules",
        "annotations",
        "mutating",
        "backgroundAudit",
        "executionMode",
        "policyType",
        "contextAwareResources",
        "hostCapabilities",
        "minimumKubewardenVersion",
    ];
    for key in obj.keys() {
        if key == "protocolVersion" {
            p.push("metadata.yml must not set protocolVersion: kwctl annotate reads it from the module".into());
        } else if key != "contextAware" && !known.contains(&key.as_str()) {
            p.push(format!(
                "metadata.yml: unknown field {key:?} would be ignored"
            ));
        }
    }
    // `rules` and `mutating` have no serde default.
    if !obj.get("mutating").is_some_and(Value::is_boolean) {
        p.push("metadata.yml: mutating must be a boolean".into());
    }
    if let Some(b) = obj.get("backgroundAudit") {
        if !b.is_boolean() {
            p.push("metadata.yml: backgroundAudit must be a boolean".into());
        }
    }
    let mode = str_at(m, &["executionMode"]).unwrap_or("kubewarden-wapc");
    if !["kubewarden-wapc", "opa", "gatekeeper", "wasi"].contains(&mode) {
        p.push(format!("metadata.yml: unknown executionMode {mode:?}"));
    }
    let policy_type = str_at(m, &["policyType"]).unwrap_or("kubernetes");
    if !["kubernetes", "raw"].contains(&policy_type) {
        p.push(format!("metadata.yml: unknown policyType {policy_type:?}"));
    }
    for res in obj
        .get("contextAwareResources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for k in ["apiVersion", "kind"] {
            if str_at(res, &[k]).is_none_or(str::is_empty) {
                p.push(format!("contextAwareResources entry {res} lacks {k}"));
            }
        }
    }

    match obj.get("rules").and_then(Value::as_array) {
        None => p.push("metadata.yml: rules must be a list".into()),
        Some(rules) if rules.is_empty() => p.push("metadata.yml: no rules".into()),
        Some(rules) => {
            for (i, rule) in rules.iter().enumerate() {
                p.extend(
                    check_rule(rule)
                        .into_iter()
                        .map(|e| format!("rules[{i}]: {e}")),
                );
            }
        }
    }

    match obj.get("annotations").and_then(Value::as_object) {
        None => p.push("metadata.yml: annotations must be a mapping".into()),
        Some(annotations) => {
            for (k, v) in annotations {
                if !v.is_string() {
                    p.push(format!(
                        "annotation {k}: {v} is not a string (Metadata wants a map of strings)"
                    ));
                }
            }
        }
    }
    for key in [
        "io.kubewarden.policy.title",
        "io.kubewarden.policy.version",
        "io.kubewarden.policy.description",
        "io.kubewarden.policy.author",
        "io.kubewarden.policy.url",
        "io.kubewarden.policy.source",
        "io.kubewarden.policy.license",
        "io.kubewarden.policy.ociUrl",
        "io.kubewarden.policy.severity",
        "io.kubewarden.policy.category",
        "io.artifacthub.displayName",
        "io.artifacthub.resources",
        "io.artifacthub.keywords",
    ] {
        if annotation(m, key).is_none_or(|v| v.trim().is_empty()) {
            p.push(format!("metadata.yml: annotation {key} missing or empty"));
        }
    }
    let title = annotation(m, "io.kubewarden.policy.title").unwrap_or("");
    if !is_rfc1123(title) {
        p.push(format!(
            "title {title:?} is not an RFC 1123 name (kwctl scaffold manifest uses it)"
        ));
    }
    let version = annotation(m, "io.kubewarden.policy.version").unwrap_or("");
    if !is_semver(version) {
        p.push(format!(
            "io.kubewarden.policy.version {version:?} is not semver"
        ));
    }
    if annotation(m, "io.artifacthub.keywords")
        .map(csv)
        .is_some_and(|k| k.iter().any(String::is_empty))
    {
        p.push("io.artifacthub.keywords has an empty entry".into());
    }
    for key in ["io.kubewarden.policy.url", "io.kubewarden.policy.source"] {
        if !annotation(m, key).is_some_and(|u| u.starts_with("https://") && !u.ends_with('/')) {
            p.push(format!(
                "{key} is not an https URL without a trailing slash"
            ));
        }
    }
    let author = annotation(m, "io.kubewarden.policy.author").unwrap_or("");
    let email = author
        .strip_suffix('>')
        .and_then(|a| a.split_once(" <"))
        .map(|(_, e)| e);
    if !email.is_some_and(|e| {
        e.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
    }) {
        p.push(format!(
            "io.kubewarden.policy.author {author:?} is not `Name <email>`"
        ));
    }
    let oci = annotation(m, "io.kubewarden.policy.ociUrl").unwrap_or("");
    let last = oci.rsplit('/').next().unwrap_or("");
    if oci.contains("://")
        || oci.contains('@')
        || last.contains(':')
        || oci != oci.to_ascii_lowercase()
    {
        p.push(format!("io.kubewarden.policy.ociUrl {oci:?} must be a lower-case repository without scheme, tag or digest"));
    }
    let severity = annotation(m, "io.kubewarden.policy.severity").unwrap_or("");
    if !["info", "low", "medium", "high", "critical"].contains(&severity) {
        p.push(format!(
            "io.kubewarden.policy.severity {severity:?} is not info|low|medium|high|critical"
        ));
    }
    p
}

/// policy-evaluator's `Rule` validation, plus unknown fields (serde would
/// drop them silently).
fn check_rule(rule: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let Some(obj) = rule.as_object() else {
        return vec!["not a mapping".into()];
    };
    let fields = ["apiGroups", "apiVersions", "resources", "operations"];
    for key in obj.keys() {
        if !fields.contains(&key.as_str()) {
            p.push(format!("unknown field {key:?}"));
        }
    }
    for key in fields {
        let Some(list) = string_list(obj.get(key)) else {
            p.push(format!("{key} must be a list of strings"));
            continue;
        };
        if list.is_empty() {
            p.push(format!("{key} must not be empty"));
        }
        if key != "resources" && list.len() > 1 && list.iter().any(|s| s == "*") {
            p.push(format!("{key}: '*' cannot be combined with other entries"));
        }
        if key == "operations" {
            for op in &list {
                if !["CREATE", "UPDATE", "DELETE", "CONNECT", "*"].contains(&op.as_str()) {
                    p.push(format!("unknown operation {op:?}"));
                }
            }
        }
        if key == "resources" {
            p.extend(check_resources(&list));
        }
    }
    p
}

fn check_resources(list: &[String]) -> Vec<String> {
    let mut p = Vec::new();
    if list.iter().any(String::is_empty) {
        p.push("empty resource".into());
    }
    if list.len() > 1 && list.iter().any(|r| r == "*/*") {
        p.push("'*/*' cannot be combined with other resources".into());
    }
    if list.iter().any(|r| r == "*") && list.iter().any(|r| r != "*" && !r.contains('/')) {
        p.push("'*' cannot be combined with resources without a subresource".into());
    }
    let split: Vec<(&str, &str)> = list.iter().filter_map(|r| r.split_once('/')).collect();
    for (res, sub) in &split {
        if *sub == "*" && split.iter().filter(|(r, _)| r == res).count() > 1 {
            p.push(format!(
                "'{res}/*' cannot be combined with other subresources of {res}"
            ));
        }
        if *res == "*" && split.iter().filter(|(_, s)| s == sub).count() > 1 {
            p.push(format!(
                "'*/{sub}' cannot be combined with other resources' {sub}"
            ));
        }
    }
    p
}

fn check_rule_coverage(f: &Files) -> Vec<String> {
    let mut p = Vec::new();
    let rules = f.metadata.get("rules").cloned().unwrap_or(Value::Null);
    let tuples = rule_tuples(&rules);
    let set: BTreeSet<_> = tuples.iter().cloned().collect();
    if set.len() != tuples.len() {
        p.push("metadata.yml rules list some (group, version, resource, operation) twice".into());
    }
    let expected = expected_rule_tuples();
    for missing in expected.difference(&set) {
        p.push(format!("metadata.yml rules miss {missing:?}"));
    }
    for extra in set.difference(&expected) {
        p.push(format!("metadata.yml rules have unexpected {extra:?}"));
    }
    // io.artifacthub.resources names the kinds the rules select.
    let listed: BTreeSet<String> = annotation(&f.metadata, "io.artifacthub.resources")
        .map(csv)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let from_rules: BTreeSet<String> = set
        .iter()
        .map(|(_, _, r, _)| kind_of_resource(r).unwrap_or("?").to_owned())
        .collect();
    let kinds: BTreeSet<String> = KINDS.iter().map(|k| (*k).to_owned()).collect();
    if listed != kinds {
        p.push(format!(
            "io.artifacthub.resources lists {listed:?}, expected {kinds:?}"
        ));
    }
    if from_rules != kinds {
        p.push(format!(
            "the rules select kinds {from_rules:?}, expected {kinds:?}"
        ));
    }
    p
}

fn check_artifacthub_annotations(f: &Files) -> Vec<String> {
    let mut p = Vec::new();
    let Some(ann) = f.artifacthub.get("annotations").and_then(Value::as_object) else {
        return vec!["artifacthub-pkg.yml has no annotations mapping".into()];
    };
    let keys: BTreeSet<&str> = ann.keys().map(String::as_str).collect();
    // kwctl writes kubewarden/contextAwareResources only when the list is not
    // empty, and kubewarden/hidden-ui only when io.kubewarden.hidden-ui is set.
    let expected: BTreeSet<&str> = [
        "kubewarden/mutation",
        "kubewarden/questions-ui",
        "kubewarden/resources",
        "kubewarden/rules",
    ]
    .into();
    if keys != expected {
        p.push(format!(
            "artifacthub annotations are {keys:?}, kwctl writes {expected:?}"
        ));
    }
    let mutating = f.metadata.get("mutating").and_then(Value::as_bool);
    let mutation = ann.get("kubewarden/mutation").and_then(Value::as_str);
    if mutation != Some("true") || mutating.map(|b| b.to_string()).as_deref() != mutation {
        p.push(format!("kubewarden/mutation {mutation:?} must be the string 'true' (metadata mutating {mutating:?})"));
    }
    let hub_rules = ann
        .get("kubewarden/rules")
        .and_then(Value::as_str)
        .map(|s| serde_saphyr::from_str::<Value>(s).map_err(|e| e.to_string()));
    match hub_rules {
        None => p.push("kubewarden/rules is not a string".into()),
        Some(Err(e)) => p.push(format!("kubewarden/rules is not YAML: {e}")),
        Some(Ok(rules)) => {
            if Some(&rules) != f.metadata.get("rules") {
                p.push("kubewarden/rules differs from metadata.yml rules".into());
            }
        }
    }
    let resources = ann
        .get("kubewarden/resources")
        .and_then(Value::as_str)
        .map(csv);
    let listed = annotation(&f.metadata, "io.artifacthub.resources").map(csv);
    if resources.is_none() || resources != listed {
        p.push(format!(
            "kubewarden/resources {resources:?} != io.artifacthub.resources {listed:?}"
        ));
    }
    match ann.get("kubewarden/questions-ui").and_then(Value::as_str) {
        None => p.push("kubewarden/questions-ui is not a string".into()),
        Some(text) => {
            match serde_saphyr::from_str::<Value>(text) {
                Ok(q) if q == f.questions => {}
                Ok(_) => p.push("kubewarden/questions-ui differs from questions-ui.yml".into()),
                Err(e) => p.push(format!("kubewarden/questions-ui is not YAML: {e}")),
            }
            // kwctl copies the file verbatim.
            if text != f.questions_text {
                p.push("kubewarden/questions-ui is not a verbatim copy of questions-ui.yml (run `make artifacthub`)".into());
            }
        }
    }
    p
}

fn check_questions(f: &Files) -> Vec<String> {
    let mut p = Vec::new();
    let Some(questions) = f.questions.get("questions").and_then(Value::as_array) else {
        return vec!["questions-ui.yml has no `questions` list".into()];
    };
    if f.questions.as_object().map(|o| o.len()) != Some(1) {
        p.push("questions-ui.yml has top-level keys besides `questions`".into());
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for q in questions {
        let variable = str_at(q, &["variable"])
            .unwrap_or("<no variable>")
            .to_owned();
        *seen.entry(variable.clone()).or_default() += 1;
        for key in ["label", "description", "group", "type"] {
            if str_at(q, &[key]).is_none_or(str::is_empty) {
                p.push(format!("question {variable}: no {key}"));
            }
        }
        if let Some(cond) = str_at(q, &["show_if"]) {
            for clause in cond.split("||").flat_map(|c| c.split("&&")) {
                let var = clause.split('=').next().unwrap_or("");
                if !spec_settings().iter().any(|(k, _, _)| *k == var) {
                    p.push(format!(
                        "question {variable}: show_if refers to unknown {var:?}"
                    ));
                }
            }
        }
        let Some((_, kind, default)) = spec_settings().into_iter().find(|(k, _, _)| *k == variable)
        else {
            p.push(format!(
                "questions-ui.yml asks for {variable:?}, which is not a setting"
            ));
            continue;
        };
        if q.get("default") != Some(&default) {
            p.push(format!(
                "question {variable}: default {:?}, SPEC default {default}",
                q.get("default")
            ));
        }
        let ty = str_at(q, &["type"]).unwrap_or("");
        let want = match kind {
            SettingKind::Enum(_) => "enum",
            SettingKind::Bool => "boolean",
            SettingKind::StringList => "array[",
            SettingKind::ExemptionList => "sequence[",
        };
        if ty != want {
            p.push(format!(
                "question {variable}: type {ty:?}, expected {want:?}"
            ));
        }
        if let SettingKind::Enum(choices) = kind {
            let options = string_list(q.get("options"));
            let expected: Vec<String> = choices.iter().map(|c| c.to_string()).collect();
            if options.as_deref() != Some(&expected[..]) {
                p.push(format!(
                    "question {variable}: options {options:?}, expected {choices:?}"
                ));
            }
        }
        if q.get("required").is_some_and(|r| r != &json!(false)) {
            p.push(format!("question {variable}: every setting is optional"));
        }
    }
    for (key, _, _) in spec_settings() {
        match seen.get(key) {
            Some(1) => {}
            Some(n) => p.push(format!("questions-ui.yml asks for {key} {n} times")),
            None => p.push(format!("questions-ui.yml does not ask for {key}")),
        }
    }
    p
}

fn check_settings_value(key: &str, value: &Value) -> Option<String> {
    let (_, kind, _) = spec_settings().into_iter().find(|(k, _, _)| *k == key)?;
    let ok = match kind {
        SettingKind::Enum(choices) => value.as_str().is_some_and(|v| choices.contains(&v)),
        SettingKind::Bool => value.is_boolean(),
        SettingKind::StringList => string_list(Some(value)).is_some(),
        SettingKind::ExemptionList => value.as_array().is_some_and(|entries| {
            entries.iter().all(|entry| {
                entry.as_object().is_some_and(|fields| {
                    fields.len() == 2
                        && ["name", "image"].iter().all(|key| {
                            fields
                                .get(*key)
                                .and_then(Value::as_str)
                                .is_some_and(|p| !p.is_empty())
                        })
                })
            })
        }),
    };
    (!ok).then(|| format!("setting {key}: {value} is not a valid {kind:?}"))
}

fn check_examples(f: &Files) -> Vec<String> {
    let mut p = Vec::new();
    let names: Vec<&str> = f.examples.iter().map(|(n, _)| n.as_str()).collect();
    let mut expected: Vec<&str> = EXAMPLES.iter().map(|(n, _, _)| *n).collect();
    expected.sort_unstable();
    if names != expected {
        p.push(format!("examples/ holds {names:?}, expected {expected:?}"));
    }
    let oci = annotation(&f.metadata, "io.kubewarden.policy.ociUrl").unwrap_or("");
    let version = annotation(&f.metadata, "io.kubewarden.policy.version").unwrap_or("");
    let module = format!("registry://{oci}:v{version}");
    let rules = f.metadata.get("rules");
    let spec_fields = [
        "policyServer",
        "module",
        "mode",
        "settings",
        "rules",
        "failurePolicy",
        "mutating",
        "matchPolicy",
        "namespaceSelector",
        "objectSelector",
        "sideEffects",
        "timeoutSeconds",
        "backgroundAudit",
        "contextAwareResources",
        "message",
        "matchConditions",
    ];
    for (name, doc) in &f.examples {
        let mut bad = |msg: String| p.push(format!("examples/{name}: {msg}"));
        if str_at(doc, &["apiVersion"]) != Some("policies.kubewarden.io/v1") {
            bad("apiVersion is not policies.kubewarden.io/v1".into());
        }
        if str_at(doc, &["kind"]) != Some("ClusterAdmissionPolicy") {
            bad("kind is not ClusterAdmissionPolicy".into());
        }
        let policy_name = str_at(doc, &["metadata", "name"]).unwrap_or("");
        if !is_rfc1123(policy_name) {
            bad(format!(
                "metadata.name {policy_name:?} is not an RFC 1123 name"
            ));
        }
        let Some(spec) = doc.get("spec").and_then(Value::as_object) else {
            bad("no spec".into());
            continue;
        };
        for key in spec.keys() {
            if !spec_fields.contains(&key.as_str()) {
                bad(format!("unknown spec field {key:?}"));
            }
        }
        if str_at(doc, &["spec", "module"]) != Some(module.as_str()) {
            bad(format!("spec.module is not {module}"));
        }
        if spec.get("rules") != rules {
            bad("spec.rules differ from metadata.yml rules".into());
        }
        if spec.get("mode") != Some(&json!("protect")) {
            bad("spec.mode is not protect".into());
        }
        if spec.get("backgroundAudit") != Some(&json!(true)) {
            bad("spec.backgroundAudit is not true".into());
        }
        if spec
            .get("contextAwareResources")
            .is_some_and(|c| c != &json!([]))
        {
            bad("the policy needs no contextAwareResources".into());
        }
        let excluded: BTreeSet<String> =
            at(doc, &["spec", "namespaceSelector", "matchExpressions"])
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|e| {
                    str_at(e, &["key"]) == Some("kubernetes.io/metadata.name")
                        && str_at(e, &["operator"]) == Some("NotIn")
                })
                .flat_map(|e| string_list(e.get("values")).unwrap_or_default())
                .collect();
        for ns in ["kube-system", KUBEWARDEN_NAMESPACE] {
            if !excluded.contains(ns) {
                bad(format!("namespaceSelector does not exclude {ns}"));
            }
        }
        let settings = spec.get("settings").and_then(Value::as_object);
        let Some(settings) = settings else {
            bad("spec.settings is not a mapping".into());
            continue;
        };
        for (key, value) in settings {
            if !spec_settings().iter().any(|(k, _, _)| k == key) {
                bad(format!("unknown setting {key:?}"));
            } else if let Some(e) = check_settings_value(key, value) {
                bad(e);
            }
        }
        let mode = settings
            .get("mode")
            .and_then(Value::as_str)
            .unwrap_or("mutate");
        if let Some((_, want_mode, want_templates)) = EXAMPLES.iter().find(|(n, _, _)| n == name) {
            if mode != *want_mode {
                bad(format!("settings.mode is {mode:?}, expected {want_mode:?}"));
            }
            let templates = settings.get("mutateTemplates").and_then(Value::as_bool);
            if want_templates.is_some() && templates != *want_templates {
                bad(format!(
                    "settings.mutateTemplates is {templates:?}, expected {want_templates:?}"
                ));
            }
        }
        // A policy that may return patches must be declared mutating (the
        // policy server refuses patches of a non-mutating policy); reject and
        // warn never patch and are registered as validating webhooks.
        let mutating = spec.get("mutating").and_then(Value::as_bool);
        if mutating != Some(mode == "mutate") {
            bad(format!(
                "spec.mutating is {mutating:?} for settings.mode {mode:?}"
            ));
        }
        let meta = |k: &str| annotation(&f.metadata, k);
        for key in [
            "io.kubewarden.policy.severity",
            "io.kubewarden.policy.category",
        ] {
            if str_at(doc, &["metadata", "annotations", key]) != meta(key) {
                bad(format!("annotation {key} differs from metadata.yml"));
            }
        }
    }
    p
}

// ---------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------

#[test]
fn versions_agree_with_cargo_toml() {
    report(check_versions(&load()));
}

#[test]
fn names_and_descriptions_agree() {
    report(check_names(&load()));
}

#[test]
fn metadata_declares_a_mutating_wapc_policy_without_context() {
    report(check_metadata_flags(&load()));
}

#[test]
fn metadata_is_what_kwctl_annotate_accepts() {
    report(check_metadata_accepted_by_kwctl(&load()));
}

#[test]
fn rules_cover_exactly_the_evaluated_resources() {
    report(check_rule_coverage(&load()));
}

#[test]
fn artifacthub_annotations_match_metadata_and_questions() {
    report(check_artifacthub_annotations(&load()));
}

#[test]
fn questions_ask_for_every_setting_once_with_spec_defaults() {
    report(check_questions(&load()));
}

#[test]
fn examples_are_valid_cluster_admission_policies() {
    report(check_examples(&load()));
}

// Each check must be able to fail: break one thing in a copy of the files
// and expect the check to name it.

fn expect_problem(problems: Vec<String>, needle: &str) {
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "expected a problem mentioning {needle:?}, got {problems:?}"
    );
}

fn set(value: &mut Value, path: &[&str], new: Value) {
    let (last, parents) = path.split_last().unwrap();
    let mut v = value;
    for key in parents {
        v = match v {
            Value::Array(a) => &mut a[key.parse::<usize>().unwrap()],
            other => other.get_mut(*key).unwrap_or_else(|| panic!("no {key}")),
        };
    }
    match v {
        Value::Array(a) => a[last.parse::<usize>().unwrap()] = new,
        Value::Object(o) => {
            o.insert((*last).to_owned(), new);
        }
        _ => panic!("cannot set {path:?}"),
    }
}

fn remove(value: &mut Value, path: &[&str]) {
    let (last, parents) = path.split_last().unwrap();
    let parent = parents.iter().fold(value, |v, k| v.get_mut(*k).unwrap());
    parent.as_object_mut().unwrap().remove(*last);
}

#[test]
fn check_versions_detects_a_version_mismatch() {
    let mut f = load();
    f.cargo_toml = f.cargo_toml.replacen("version = \"", "version = \"9", 1);
    expect_problem(check_versions(&f), "io.kubewarden.policy.version");
    let mut f = load();
    set(&mut f.artifacthub, &["version"], json!("0.0.0"));
    expect_problem(check_versions(&f), "artifacthub-pkg.yml version");
    let mut f = load();
    set(
        &mut f.examples[0].1,
        &["spec", "module"],
        json!("registry://x/y:v0.0.0"),
    );
    expect_problem(check_versions(&f), "is not tagged");
}

#[test]
fn check_names_detects_a_name_mismatch() {
    let mut f = load();
    set(&mut f.artifacthub, &["name"], json!("other"));
    expect_problem(check_names(&f), "name:");
    let mut f = load();
    set(
        &mut f.metadata,
        &["annotations", "io.kubewarden.policy.source"],
        json!("https://github.com/x/y"),
    );
    expect_problem(check_names(&f), "repository");
    let mut f = load();
    set(
        &mut f.artifacthub,
        &["containersImages", "0", "image"],
        json!("ghcr.io/x/y:v0.1.0"),
    );
    expect_problem(check_names(&f), "containersImages");
}

#[test]
fn check_metadata_flags_detects_each_flag() {
    for (key, bad) in [
        ("mutating", json!(false)),
        ("executionMode", json!("wasi")),
        ("backgroundAudit", json!(false)),
        (
            "contextAwareResources",
            json!([{"apiVersion": "v1", "kind": "Namespace"}]),
        ),
    ] {
        let mut f = load();
        set(&mut f.metadata, &[key], bad);
        expect_problem(check_metadata_flags(&f), key);
    }
}

#[test]
fn check_metadata_accepted_by_kwctl_detects_what_kwctl_refuses() {
    let mut f = load();
    set(&mut f.metadata, &["protocolVersion"], json!("v1"));
    expect_problem(check_metadata_accepted_by_kwctl(&f), "protocolVersion");
    let mut f = load();
    set(&mut f.metadata, &["rules", "0", "apiGroups"], json!([]));
    expect_problem(
        check_metadata_accepted_by_kwctl(&f),
        "apiGroups must not be empty",
    );
    let mut f = load();
    set(
        &mut f.metadata,
        &["rules", "0", "operations"],
        json!(["*", "CREATE"]),
    );
    expect_problem(
        check_metadata_accepted_by_kwctl(&f),
        "'*' cannot be combined",
    );
    let mut f = load();
    set(
        &mut f.metadata,
        &["rules", "0", "resources"],
        json!(["*", "pods"]),
    );
    expect_problem(
        check_metadata_accepted_by_kwctl(&f),
        "without a subresource",
    );
    let mut f = load();
    set(
        &mut f.metadata,
        &["rules", "0", "operations"],
        json!(["PATCH"]),
    );
    expect_problem(check_metadata_accepted_by_kwctl(&f), "unknown operation");
    let mut f = load();
    remove(&mut f.metadata, &["mutating"]);
    expect_problem(
        check_metadata_accepted_by_kwctl(&f),
        "mutating must be a boolean",
    );
    let mut f = load();
    set(
        &mut f.metadata,
        &["annotations", "io.kubewarden.policy.version"],
        json!(1),
    );
    expect_problem(check_metadata_accepted_by_kwctl(&f), "is not a string");
    let mut f = load();
    set(
        &mut f.metadata,
        &["annotations", "io.kubewarden.policy.author"],
        json!("nobody"),
    );
    expect_problem(check_metadata_accepted_by_kwctl(&f), "Name <email>");
    let mut f = load();
    set(
        &mut f.metadata,
        &["annotations", "io.kubewarden.policy.severity"],
        json!("severe"),
    );
    expect_problem(check_metadata_accepted_by_kwctl(&f), "severity");
}

#[test]
fn check_rule_coverage_detects_missing_and_extra_rules() {
    let mut f = load();
    set(
        &mut f.metadata,
        &["rules", "2", "resources"],
        json!(["deployments"]),
    );
    expect_problem(check_rule_coverage(&f), "miss");
    let mut f = load();
    set(
        &mut f.metadata,
        &["rules", "0", "operations"],
        json!(["CREATE", "UPDATE", "DELETE"]),
    );
    expect_problem(check_rule_coverage(&f), "unexpected");
    let mut f = load();
    set(
        &mut f.metadata,
        &["rules", "4", "operations"],
        json!(["CREATE", "UPDATE"]),
    );
    expect_problem(check_rule_coverage(&f), "unexpected");
    let mut f = load();
    set(
        &mut f.metadata,
        &["annotations", "io.artifacthub.resources"],
        json!("Pod"),
    );
    expect_problem(check_rule_coverage(&f), "io.artifacthub.resources");
}

#[test]
fn check_artifacthub_annotations_detects_drift() {
    let mut f = load();
    set(
        &mut f.artifacthub,
        &["annotations", "kubewarden/mutation"],
        json!("false"),
    );
    expect_problem(check_artifacthub_annotations(&f), "kubewarden/mutation");
    let mut f = load();
    set(
        &mut f.metadata,
        &["rules", "0", "operations"],
        json!(["CREATE"]),
    );
    expect_problem(
        check_artifacthub_annotations(&f),
        "kubewarden/rules differs",
    );
    let mut f = load();
    set(
        &mut f.artifacthub,
        &["annotations", "kubewarden/resources"],
        json!("Pod, Deployment"),
    );
    expect_problem(check_artifacthub_annotations(&f), "kubewarden/resources");
    let mut f = load();
    set(
        &mut f.questions,
        &["questions", "0", "default"],
        json!("warn"),
    );
    f.questions_text.push_str("# edited\n");
    let problems = check_artifacthub_annotations(&f);
    expect_problem(problems.clone(), "differs from questions-ui.yml");
    expect_problem(problems, "verbatim");
    let mut f = load();
    set(
        &mut f.artifacthub,
        &["annotations", "kubewarden/contextAwareResources"],
        json!("[]\n"),
    );
    expect_problem(check_artifacthub_annotations(&f), "kwctl writes");
}

#[test]
fn check_questions_detects_wrong_defaults_duplicates_and_strangers() {
    let mut f = load();
    let questions = f.questions["questions"].as_array_mut().unwrap();
    let i = questions
        .iter()
        .position(|q| q["variable"] == "deniedTags")
        .unwrap();
    questions[i]["default"] = json!([]);
    expect_problem(check_questions(&f), "deniedTags: default");

    let mut f = load();
    let questions = f.questions["questions"].as_array_mut().unwrap();
    let dup = questions[0].clone();
    questions.push(dup);
    expect_problem(check_questions(&f), "mode 2 times");

    let mut f = load();
    let questions = f.questions["questions"].as_array_mut().unwrap();
    questions.retain(|q| q["variable"] != "exemptContainers");
    questions.push(json!({"variable": "description", "type": "string", "default": null}));
    let problems = check_questions(&f);
    expect_problem(problems.clone(), "does not ask for exemptContainers");
    expect_problem(problems, "\"description\", which is not a setting");

    let mut f = load();
    set(
        &mut f.questions,
        &["questions", "0", "options"],
        json!(["mutate", "reject"]),
    );
    expect_problem(check_questions(&f), "options");
}

#[test]
fn check_examples_detects_broken_manifests() {
    let index = |f: &Files, name: &str| f.examples.iter().position(|(n, _)| n == name).unwrap();
    let mut f = load();
    let i = index(&f, "reject.yaml");
    set(&mut f.examples[i].1, &["spec", "mutating"], json!(true));
    expect_problem(check_examples(&f), "spec.mutating");
    let mut f = load();
    let i = index(&f, "mutate.yaml");
    set(
        &mut f.examples[i].1,
        &["spec", "rules", "0", "resources"],
        json!(["pods", "services"]),
    );
    expect_problem(check_examples(&f), "spec.rules differ");
    let mut f = load();
    let i = index(&f, "gitops.yaml");
    set(
        &mut f.examples[i].1,
        &["spec", "settings", "mutateTemplates"],
        json!(true),
    );
    expect_problem(check_examples(&f), "mutateTemplates");
    let mut f = load();
    let i = index(&f, "warn.yaml");
    set(
        &mut f.examples[i].1,
        &["spec", "settings", "requireTags"],
        json!(true),
    );
    expect_problem(check_examples(&f), "unknown setting");
    let mut f = load();
    set(
        &mut f.examples[0].1,
        &["spec", "namespaceSelector"],
        json!({}),
    );
    expect_problem(check_examples(&f), "does not exclude kube-system");
    let mut f = load();
    set(&mut f.examples[0].1, &["kind"], json!("AdmissionPolicy"));
    expect_problem(check_examples(&f), "kind");
    let mut f = load();
    f.examples.pop();
    expect_problem(check_examples(&f), "examples/ holds");
}

#[test]
fn package_field_reads_only_the_package_table() {
    let toml = "[lib]\nversion = \"1.0.0\"\n[package]\nname = \"x\"\nversion = \"0.2.0\" # c\n[dependencies]\nversion = \"3\"\n";
    assert_eq!(package_field(toml, "version").as_deref(), Some("0.2.0"));
    assert_eq!(package_field(toml, "name").as_deref(), Some("x"));
    assert_eq!(
        package_field("[dependencies]\nversion = \"3\"\n", "version"),
        None
    );
}
