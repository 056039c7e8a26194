//! Admission requests built from the fuzz input, so that the fuzzer spends its time in the
//! pod-spec walker, the rules and the mutation instead of at JSON syntax. Besides the response
//! invariants of `common`, it checks what holds for every request:
//! - an operation or a kind the policy does not evaluate is accepted untouched (valid settings);
//! - an UPDATE that changes no container (old object == object, names unique per list) is
//!   never refused for a rule and never mutated.
#![no_main]

use std::collections::HashSet;

use arbitrary::Arbitrary;
use image_pull_policy::fuzzing::{validate, validate_settings};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Number, Value};

mod common;

#[derive(Arbitrary, Debug)]
enum Kind {
    Pod,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    ReplicationController,
    Job,
    CronJob,
    ConfigMap,
    Other(String),
}

impl Kind {
    /// (group, kind, path of the pod spec), or None for a kind the policy does not evaluate.
    fn describe(&self) -> (&str, &str, Option<&'static [&'static str]>) {
        const TEMPLATE: &[&str] = &["spec", "template", "spec"];
        match self {
            Self::Pod => ("", "Pod", Some(&["spec"])),
            Self::Deployment => ("apps", "Deployment", Some(TEMPLATE)),
            Self::ReplicaSet => ("apps", "ReplicaSet", Some(TEMPLATE)),
            Self::StatefulSet => ("apps", "StatefulSet", Some(TEMPLATE)),
            Self::DaemonSet => ("apps", "DaemonSet", Some(TEMPLATE)),
            Self::ReplicationController => ("", "ReplicationController", Some(TEMPLATE)),
            Self::Job => ("batch", "Job", Some(TEMPLATE)),
            Self::CronJob => (
                "batch",
                "CronJob",
                Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
            ),
            Self::ConfigMap => ("", "ConfigMap", None),
            Self::Other(kind) => ("example.com", kind, None),
        }
    }
}

#[derive(Arbitrary, Debug, PartialEq)]
enum Operation {
    Create,
    Update,
    Delete,
    Connect,
    Other(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    kind: Kind,
    group_given: bool,
    operation: Operation,
    ephemeral_subresource: bool,
    settings: Option<SettingsInput>,
    object: Shape,
    old: OldObject,
    top_extra: Vec<(Key, Leaf)>,
    /// `controller` of an entry of `metadata.ownerReferences`, when there is one.
    owner: Option<Leaf>,
}

#[derive(Arbitrary, Debug)]
enum OldObject {
    Absent,
    Same,
    Other(Shape),
}

#[derive(Arbitrary, Debug)]
enum Shape {
    Spec(PodSpec),
    /// Something that is not a pod spec where the pod spec should be.
    Leaf(Leaf),
}

#[derive(Arbitrary, Debug)]
struct SettingsInput {
    mode: Option<ModeInput>,
    require_tag: Option<bool>,
    denied_tags: Option<Vec<Tag>>,
    require_digest: Option<bool>,
    require_always_for_digests: Option<bool>,
    exempt_images: Option<Vec<String>>,
    exempt_containers: Option<Vec<ContainerExemption>>,
    mutate_templates: Option<bool>,
    pin_digests: Option<Choice<PinScope>>,
    registry_failure: Option<Choice<RegistryFailure>>,
    // Last, so that the committed findings still decode to the settings they were found with.
    require_full_version: Option<bool>,
}

/// A string setting: one of its values, or anything else.
#[derive(Arbitrary, Debug)]
enum Choice<T> {
    Known(T),
    Other(Leaf),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum PinScope {
    Off,
    Pods,
    All,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum RegistryFailure {
    Reject,
    Accept,
}

impl<T: Copy + Into<&'static str>> Choice<T> {
    fn json(&self) -> Value {
        match self {
            Self::Known(known) => json!((*known).into()),
            Self::Other(leaf) => leaf.json(),
        }
    }
}

impl From<PinScope> for &'static str {
    fn from(scope: PinScope) -> Self {
        match scope {
            PinScope::Off => "off",
            PinScope::Pods => "pods",
            PinScope::All => "all",
        }
    }
}

impl From<RegistryFailure> for &'static str {
    fn from(failure: RegistryFailure) -> Self {
        match failure {
            RegistryFailure::Reject => "reject",
            RegistryFailure::Accept => "accept",
        }
    }
}

/// An `exemptContainers` entry: name and image patterns, or (invalid) a name alone.
#[derive(Arbitrary, Debug)]
enum ContainerExemption {
    NameAndImage(String, String),
    NameOnly(String),
}

#[derive(Arbitrary, Debug)]
enum ModeInput {
    Mutate,
    Reject,
    Warn,
    Other(Leaf),
}

#[derive(Arbitrary, Debug)]
struct PodSpec {
    containers: Option<List<Container>>,
    init_containers: Option<List<Container>>,
    ephemeral_containers: Option<List<Container>>,
    volumes: Option<List<Volume>>,
    extra: Vec<(Key, Leaf)>,
}

#[derive(Arbitrary, Debug)]
enum List<T> {
    Entries(Vec<T>),
    NotAList(Leaf),
}

#[derive(Arbitrary, Debug)]
struct Container {
    name: Name,
    image: ImageField,
    policy: Option<Policy>,
    extra: Vec<(Key, Leaf)>,
}

#[derive(Arbitrary, Debug)]
struct Volume {
    name: Name,
    /// None: an ordinary volume (emptyDir).
    image: Option<VolumeImage>,
}

#[derive(Arbitrary, Debug)]
enum VolumeImage {
    Source {
        reference: Option<ImageField>,
        policy: Option<Policy>,
        extra: Vec<(Key, Leaf)>,
    },
    NotAnObject(Leaf),
}

#[derive(Arbitrary, Debug)]
enum Name {
    Short(u8),
    Any(String),
    Missing,
}

#[derive(Arbitrary, Debug)]
enum ImageField {
    Reference(Reference),
    Text(String),
    NotAString(Leaf),
}

#[derive(Arbitrary, Debug)]
struct Reference {
    registry: Option<Registry>,
    path: Vec<u8>,
    tag: Option<Tag>,
    digest: Option<Digest>,
}

#[derive(Arbitrary, Debug)]
enum Registry {
    DockerHub,
    IndexDockerHub,
    Localhost,
    LocalhostPort(u16),
    Host(u8),
    HostPort(u8, u16),
    Ipv6(u16),
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum Tag {
    Latest,
    Version(u8, u8),
    Any(String),
    /// `v3`, a version of one number.
    Major(u8),
    FullVersion(u8, u8, u8),
    /// A `deniedTags` pattern: the text and a `*` (in an image, the text alone).
    Glob(String),
}

impl Tag {
    fn text(&self) -> String {
        match self {
            Self::Latest => "latest".to_owned(),
            Self::Version(a, b) => format!("{a}.{b}"),
            Self::Major(a) => format!("v{a}"),
            Self::FullVersion(a, b, c) => format!("{a}.{b}.{c}-alpine"),
            Self::Glob(text) | Self::Any(text) => text.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Digest {
    Sha256([u8; 32]),
    Sha512([u8; 64]),
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum Policy {
    Always,
    IfNotPresent,
    Never,
    Any(String),
    NotAString(Leaf),
}

#[derive(Arbitrary, Debug)]
enum Key {
    Known(u8),
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum Leaf {
    Null,
    Bool(bool),
    Int(i64),
    Big(u128, u8),
    Float(f64),
    Text(String),
    EmptyObject,
    EmptyList,
}

const PATH: &[&str] = &[
    "nginx", "library", "team", "app", "a.b", "a__b", "a-b", "x", "UP", "-",
];
const HOSTS: &[&str] = &[
    "ghcr.io",
    "registry.example.com",
    "quay.io",
    "example",
    "a-b.c",
    "10.0.0.1",
];
const KEYS: &[&str] = &[
    "name",
    "image",
    "imagePullPolicy",
    "containers",
    "initContainers",
    "volumes",
    "spec",
    "template",
    "reference",
    "pullPolicy",
    "restartPolicy",
    "ephemeralContainers",
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Reference {
    fn text(&self) -> String {
        let mut out = String::new();
        match &self.registry {
            None => {}
            Some(Registry::DockerHub) => out.push_str("docker.io/"),
            Some(Registry::IndexDockerHub) => out.push_str("index.docker.io/"),
            Some(Registry::Localhost) => out.push_str("localhost/"),
            Some(Registry::LocalhostPort(port)) => out.push_str(&format!("localhost:{port}/")),
            Some(Registry::Host(i)) => {
                out.push_str(&format!("{}/", HOSTS[*i as usize % HOSTS.len()]))
            }
            Some(Registry::HostPort(i, port)) => {
                out.push_str(&format!("{}:{port}/", HOSTS[*i as usize % HOSTS.len()]));
            }
            Some(Registry::Ipv6(port)) => out.push_str(&format!("[::1]:{port}/")),
            Some(Registry::Any(text)) => {
                out.push_str(text);
                out.push('/');
            }
        }
        let components: Vec<&str> = self
            .path
            .iter()
            .map(|i| PATH[*i as usize % PATH.len()])
            .collect();
        out.push_str(&if components.is_empty() {
            "app".to_owned()
        } else {
            components.join("/")
        });
        match &self.tag {
            None => {}
            Some(tag) => {
                out.push(':');
                out.push_str(&tag.text());
            }
        }
        match &self.digest {
            None => {}
            Some(Digest::Sha256(bytes)) => out.push_str(&format!("@sha256:{}", hex(bytes))),
            Some(Digest::Sha512(bytes)) => out.push_str(&format!("@sha512:{}", hex(bytes))),
            Some(Digest::Any(text)) => {
                out.push('@');
                out.push_str(text);
            }
        }
        out
    }
}

impl Leaf {
    fn json(&self) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Bool(b) => json!(b),
            Self::Int(i) => json!(i),
            Self::Big(n, scale) => {
                // Numbers past u64 and decimals with many digits, kept as written.
                let text = if scale % 2 == 0 {
                    format!("{n}{n}")
                } else {
                    format!("-{n}.{scale}0e{scale}")
                };
                text.parse::<Number>().map_or(Value::Null, Value::Number)
            }
            Self::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Self::Text(text) => json!(text),
            Self::EmptyObject => json!({}),
            Self::EmptyList => json!([]),
        }
    }
}

impl Key {
    fn text(&self) -> String {
        match self {
            Self::Known(i) => KEYS[*i as usize % KEYS.len()].to_owned(),
            Self::Any(text) => format!("x-{text}"),
        }
    }
}

/// Extra keys never replace the fields the input sets on purpose: those are inserted last.
fn extras(map: &mut Map<String, Value>, extra: &[(Key, Leaf)]) {
    for (key, leaf) in extra {
        map.insert(key.text(), leaf.json());
    }
}

impl Name {
    fn json(&self) -> Option<Value> {
        match self {
            Self::Short(i) => Some(json!(format!("c{}", i % 8))),
            Self::Any(text) => Some(json!(text)),
            Self::Missing => None,
        }
    }
}

impl ImageField {
    fn json(&self) -> Value {
        match self {
            Self::Reference(reference) => json!(reference.text()),
            Self::Text(text) => json!(text),
            Self::NotAString(leaf) => leaf.json(),
        }
    }
}

impl Policy {
    fn json(&self) -> Value {
        match self {
            Self::Always => json!("Always"),
            Self::IfNotPresent => json!("IfNotPresent"),
            Self::Never => json!("Never"),
            Self::Any(text) => json!(text),
            Self::NotAString(leaf) => leaf.json(),
        }
    }
}

impl Container {
    fn json(&self) -> Value {
        let mut map = Map::new();
        extras(&mut map, &self.extra);
        if let Some(name) = self.name.json() {
            map.insert("name".into(), name);
        }
        map.insert("image".into(), self.image.json());
        if let Some(policy) = &self.policy {
            map.insert("imagePullPolicy".into(), policy.json());
        }
        Value::Object(map)
    }
}

impl Volume {
    fn json(&self) -> Value {
        let mut map = Map::new();
        if let Some(name) = self.name.json() {
            map.insert("name".into(), name);
        }
        match &self.image {
            None => {
                map.insert("emptyDir".into(), json!({}));
            }
            Some(VolumeImage::NotAnObject(leaf)) => {
                map.insert("image".into(), leaf.json());
            }
            Some(VolumeImage::Source {
                reference,
                policy,
                extra,
            }) => {
                let mut image = Map::new();
                extras(&mut image, extra);
                if let Some(reference) = reference {
                    image.insert("reference".into(), reference.json());
                }
                if let Some(policy) = policy {
                    image.insert("pullPolicy".into(), policy.json());
                }
                map.insert("image".into(), Value::Object(image));
            }
        }
        Value::Object(map)
    }
}

fn list<T>(list: &List<T>, entry: impl Fn(&T) -> Value) -> Value {
    match list {
        List::Entries(entries) => Value::Array(entries.iter().map(entry).collect()),
        List::NotAList(leaf) => leaf.json(),
    }
}

impl PodSpec {
    fn json(&self) -> Value {
        let mut map = Map::new();
        extras(&mut map, &self.extra);
        let lists = [
            ("containers", &self.containers),
            ("initContainers", &self.init_containers),
            ("ephemeralContainers", &self.ephemeral_containers),
        ];
        for (key, entries) in lists {
            if let Some(entries) = entries {
                map.insert(key.into(), list(entries, Container::json));
            }
        }
        if let Some(volumes) = &self.volumes {
            map.insert("volumes".into(), list(volumes, Volume::json));
        }
        Value::Object(map)
    }

    /// Whether no two entries of one list share a name, as the API server requires.
    fn names_unique(&self) -> bool {
        let container_lists = [
            &self.containers,
            &self.init_containers,
            &self.ephemeral_containers,
        ];
        let containers_unique = container_lists.iter().all(|entries| match entries {
            Some(List::Entries(entries)) => unique(entries.iter().map(|c| c.name.json())),
            _ => true,
        });
        let volumes_unique = match &self.volumes {
            Some(List::Entries(entries)) => unique(entries.iter().map(|v| v.name.json())),
            _ => true,
        };
        containers_unique && volumes_unique
    }
}

fn unique(names: impl Iterator<Item = Option<Value>>) -> bool {
    let mut seen = HashSet::new();
    // A missing name reads as "", as the policy reads it.
    names
        .map(|name| {
            name.and_then(|n| n.as_str().map(str::to_owned))
                .unwrap_or_default()
        })
        .all(|name| seen.insert(name))
}

impl Shape {
    fn json(&self) -> Value {
        match self {
            Self::Spec(spec) => spec.json(),
            Self::Leaf(leaf) => leaf.json(),
        }
    }
}

/// The object with `pod_spec` at `path` (or under `spec` for kinds the policy does not read).
fn object(
    path: Option<&[&str]>,
    kind: &str,
    pod_spec: Value,
    extra: &[(Key, Leaf)],
    owner: Option<&Leaf>,
) -> Value {
    let mut value = pod_spec;
    for key in path.unwrap_or(&["spec"]).iter().rev() {
        let mut map = Map::new();
        map.insert((*key).into(), value);
        value = Value::Object(map);
    }
    let Value::Object(mut map) = value else {
        unreachable!()
    };
    extras(&mut map, extra);
    map.insert("kind".into(), json!(kind));
    let mut metadata = json!({"name": "fuzzed", "labels": {"app": "x"}});
    if let Some(controller) = owner {
        metadata["ownerReferences"] = json!([{
            "apiVersion": "apps/v1", "kind": "Deployment", "name": "owner",
            "uid": "0b5c2d8e-4f1a-4c3b-9e7d-2a6f8b1c3d4e", "controller": controller.json(),
        }]);
    }
    map.insert("metadata".into(), metadata);
    Value::Object(map)
}

impl SettingsInput {
    fn json(&self) -> Value {
        let mut map = Map::new();
        if let Some(mode) = &self.mode {
            let mode = match mode {
                ModeInput::Mutate => json!("mutate"),
                ModeInput::Reject => json!("reject"),
                ModeInput::Warn => json!("warn"),
                ModeInput::Other(leaf) => leaf.json(),
            };
            map.insert("mode".into(), mode);
        }
        let flags = [
            ("requireTag", self.require_tag),
            ("requireFullVersion", self.require_full_version),
            ("requireDigest", self.require_digest),
            ("requireAlwaysForDigests", self.require_always_for_digests),
            ("mutateTemplates", self.mutate_templates),
        ];
        for (key, flag) in flags {
            if let Some(flag) = flag {
                map.insert(key.into(), json!(flag));
            }
        }
        if let Some(tags) = &self.denied_tags {
            let tags: Vec<String> = tags
                .iter()
                .map(|tag| match tag {
                    Tag::Glob(text) => format!("{text}*"),
                    other => other.text(),
                })
                .collect();
            map.insert("deniedTags".into(), json!(tags));
        }
        if let Some(patterns) = &self.exempt_images {
            map.insert("exemptImages".into(), json!(patterns));
        }
        if let Some(exemptions) = &self.exempt_containers {
            let entries: Vec<Value> = exemptions
                .iter()
                .map(|exemption| match exemption {
                    ContainerExemption::NameAndImage(name, image) => {
                        json!({"name": name, "image": image})
                    }
                    ContainerExemption::NameOnly(name) => json!(name),
                })
                .collect();
            map.insert("exemptContainers".into(), Value::Array(entries));
        }
        if let Some(scope) = &self.pin_digests {
            map.insert("pinDigests".into(), scope.json());
            // The hosts of the generated images, so that both asked and refused images occur.
            map.insert(
                "pinRegistries".into(),
                json!(["docker.io/*", "registry.example.com/*", "localhost/*"]),
            );
        }
        if let Some(failure) = &self.registry_failure {
            map.insert("registryFailure".into(), failure.json());
        }
        Value::Object(map)
    }
}

fuzz_target!(|input: Input| {
    let (group, kind, path) = input.kind.describe();
    let operation = match &input.operation {
        Operation::Create => "CREATE".to_owned(),
        Operation::Update => "UPDATE".to_owned(),
        Operation::Delete => "DELETE".to_owned(),
        Operation::Connect => "CONNECT".to_owned(),
        Operation::Other(text) => text.clone(),
    };
    let new_object = object(
        path,
        kind,
        input.object.json(),
        &input.top_extra,
        input.owner.as_ref(),
    );
    let mut kind_json = json!({"version": "v1", "kind": kind});
    if input.group_given {
        kind_json["group"] = json!(group);
    }
    let mut request = json!({
        "uid": "fuzz",
        "kind": kind_json,
        "operation": operation,
        "object": new_object,
    });
    if input.ephemeral_subresource {
        request["subResource"] = json!("ephemeralcontainers");
    }
    match &input.old {
        OldObject::Absent => {}
        OldObject::Same => request["oldObject"] = request["object"].clone(),
        OldObject::Other(shape) => {
            request["oldObject"] = object(
                path,
                kind,
                shape.json(),
                &input.top_extra,
                input.owner.as_ref(),
            );
        }
    }
    let settings = input
        .settings
        .as_ref()
        .map_or(json!({}), SettingsInput::json);
    let payload = serde_json::to_vec(&json!({"request": request, "settings": settings}))
        .expect("a built request serializes");

    let response = validate(&payload, &mut common::FuzzRegistry);
    common::check_response(&payload, &response);

    let settings_text = settings.to_string();
    if !validate_settings(settings_text.as_bytes()).valid {
        return;
    }
    // Without a group the kind alone is matched, so an unknown group's "Pod" may be evaluated.
    let evaluated_kind = match input.kind {
        Kind::Other(_) => !input.group_given,
        _ => path.is_some(),
    };
    let evaluated_operation = matches!(input.operation, Operation::Create | Operation::Update)
        || matches!(&input.operation, Operation::Other(op) if op == "CREATE" || op == "UPDATE");
    if !evaluated_kind || !evaluated_operation {
        assert!(
            response.accepted && response.mutated_object.is_none() && response.warnings.is_none(),
            "{operation} of {kind} is not left alone: {response:?}"
        );
    }
    let unchanged_update = operation == "UPDATE"
        && matches!(input.old, OldObject::Same)
        && matches!(&input.object, Shape::Spec(spec) if spec.names_unique());
    if unchanged_update {
        assert!(
            response.mutated_object.is_none(),
            "an unchanged UPDATE is mutated: {response:?}"
        );
        assert!(
            response.warnings.is_none(),
            "an unchanged UPDATE gets warnings: {response:?}"
        );
        if let Some(message) = response.message.as_deref().filter(|_| !response.accepted) {
            assert!(
                !message.contains("\" ("),
                "an unchanged UPDATE is refused for a rule: {message}"
            );
        }
    }
});
