//! Property tests over the whole evaluation: random workloads of every kind, with random
//! containers, image volumes, references, pull policies and unknown fields at every level,
//! checked against expectations computed here from SPEC.md's rules, not with the policy's own.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Number, Value};

use crate::diff::differences;
use crate::evaluation::validate;
use crate::tests::Outcome;
use crate::tests::TestRegistry;

const CASES: u32 = 256;

fn config() -> Config {
    Config {
        cases: CASES,
        // Failures are reported by the assertion; no regression files next to the sources.
        failure_persistence: None,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------------
// The generated model
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pod,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    ReplicationController,
    Job,
    CronJob,
}

impl Kind {
    const ALL: [Self; 8] = [
        Self::Pod,
        Self::Deployment,
        Self::ReplicaSet,
        Self::StatefulSet,
        Self::DaemonSet,
        Self::ReplicationController,
        Self::Job,
        Self::CronJob,
    ];

    fn group_and_name(self) -> (&'static str, &'static str) {
        match self {
            Self::Pod => ("", "Pod"),
            Self::Deployment => ("apps", "Deployment"),
            Self::ReplicaSet => ("apps", "ReplicaSet"),
            Self::StatefulSet => ("apps", "StatefulSet"),
            Self::DaemonSet => ("apps", "DaemonSet"),
            Self::ReplicationController => ("", "ReplicationController"),
            Self::Job => ("batch", "Job"),
            Self::CronJob => ("batch", "CronJob"),
        }
    }

    /// Where the pod spec sits, as SPEC.md lists it.
    fn pod_spec_path(self) -> &'static [&'static str] {
        match self {
            Self::Pod => &["spec"],
            Self::CronJob => &["spec", "jobTemplate", "spec", "template", "spec"],
            _ => &["spec", "template", "spec"],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum List {
    Containers,
    InitContainers,
    EphemeralContainers,
    Volumes,
}

impl List {
    fn key(self) -> &'static str {
        match self {
            Self::Containers => "containers",
            Self::InitContainers => "initContainers",
            Self::EphemeralContainers => "ephemeralContainers",
            Self::Volumes => "volumes",
        }
    }
}

/// A valid image reference with the tag and digest it was built with.
#[derive(Debug, Clone)]
struct Reference {
    text: String,
    tag: Option<String>,
    digest: Option<String>,
}

type Extras = Vec<(String, Value)>;

/// A container, or an image volume (`list == Volumes`).
#[derive(Debug, Clone)]
struct Slot {
    name: String,
    image: String,
    /// Tag and digest when `image` is a valid reference built by `reference()`.
    reference: Option<Reference>,
    policy: Option<String>,
    extras: Extras,
}

#[derive(Debug, Clone)]
enum VolumeEntry {
    Image(Slot, Extras),
    EmptyDir(String),
}

#[derive(Debug, Clone)]
struct PodSpec {
    containers: Vec<Slot>,
    init_containers: Vec<Slot>,
    ephemeral_containers: Vec<Slot>,
    volumes: Vec<VolumeEntry>,
    extras: Extras,
}

/// `metadata.ownerReferences`: none, an owner that is not the controller, or a controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    None,
    NotController,
    Controller,
}

impl Workload {
    /// SPEC: a workload other than a Pod whose controller owns it is never mutated.
    fn mutable(&self) -> bool {
        self.kind == Kind::Pod || self.owner != Owner::Controller
    }
}

#[derive(Debug, Clone)]
struct Workload {
    kind: Kind,
    spec: PodSpec,
    labels: BTreeMap<String, String>,
    finalizers: Vec<String>,
    owner: Owner,
    /// Unknown fields at the top, in metadata, in the workload's spec and in the template.
    top_extras: Extras,
    metadata_extras: Extras,
    outer_extras: Extras,
}

/// One image slot as the expectations see it: where it is and what it holds.
struct View<'w> {
    list: List,
    index: usize,
    slot: &'w Slot,
}

impl PodSpec {
    /// Every image slot in the policy's evaluation order: the lists, then the index.
    fn views(&self) -> Vec<View<'_>> {
        let mut views = Vec::new();
        let lists = [
            (List::Containers, &self.containers),
            (List::InitContainers, &self.init_containers),
            (List::EphemeralContainers, &self.ephemeral_containers),
        ];
        for (list, slots) in lists {
            for (index, slot) in slots.iter().enumerate() {
                views.push(View { list, index, slot });
            }
        }
        for (index, entry) in self.volumes.iter().enumerate() {
            if let VolumeEntry::Image(slot, _) = entry {
                views.push(View {
                    list: List::Volumes,
                    index,
                    slot,
                });
            }
        }
        views
    }

    fn slots_mut(&mut self) -> impl Iterator<Item = &mut Slot> {
        self.containers
            .iter_mut()
            .chain(self.init_containers.iter_mut())
            .chain(self.ephemeral_containers.iter_mut())
            .chain(self.volumes.iter_mut().filter_map(|entry| match entry {
                VolumeEntry::Image(slot, _) => Some(slot),
                VolumeEntry::EmptyDir(_) => None,
            }))
    }
}

impl Workload {
    /// Every unknown field written into the object, at every level.
    fn all_extras(&self) -> impl Iterator<Item = &(String, Value)> {
        let spec = &self.spec;
        let slots = spec
            .containers
            .iter()
            .chain(&spec.init_containers)
            .chain(&spec.ephemeral_containers)
            .flat_map(|slot| &slot.extras);
        let volumes = spec.volumes.iter().flat_map(|entry| match entry {
            VolumeEntry::Image(slot, extras) => slot.extras.iter().chain(extras.iter()),
            VolumeEntry::EmptyDir(_) => [].iter().chain([].iter()),
        });
        self.top_extras
            .iter()
            .chain(&self.metadata_extras)
            .chain(&self.outer_extras)
            .chain(&spec.extras)
            .chain(slots)
            .chain(volumes)
    }
}

impl View<'_> {
    /// `spec.template.spec.initContainers[0]`, as messages name a slot.
    fn path(&self, kind: Kind) -> String {
        format!(
            "{}.{}[{}]",
            kind.pod_spec_path().join("."),
            self.list.key(),
            self.index
        )
    }

    /// How a message item or warning starts for this slot: path, quoted name, colon.
    fn subject(&self, kind: Kind) -> String {
        format!("{} \"{}\": ", self.path(kind), self.slot.name)
    }

    /// How a message item ends: the image, in brackets.
    fn image_tail(&self) -> String {
        format!(" (image {})", self.slot.image)
    }

    /// The JSON Pointer of the pull-policy key.
    fn policy_pointer(&self, kind: Kind) -> String {
        let mut pointer: String = kind
            .pod_spec_path()
            .iter()
            .map(|key| format!("/{key}"))
            .collect();
        pointer.push_str(&format!("/{}/{}", self.list.key(), self.index));
        pointer.push_str(match self.list {
            List::Volumes => "/image/pullPolicy",
            _ => "/imagePullPolicy",
        });
        pointer
    }
}

// ---------------------------------------------------------------------------------------------
// SPEC.md's rules under default settings, written out independently
// ---------------------------------------------------------------------------------------------

/// The violations of one slot under the default settings.
#[derive(Debug, Default, PartialEq, Eq)]
struct Violations {
    /// Untagged (implicit latest) or tag `latest`, without a digest: never repaired.
    tag: bool,
    /// The effective pull policy is not `Always`: repaired by mutation.
    policy: bool,
}

impl Violations {
    fn count(&self) -> usize {
        usize::from(self.tag) + usize::from(self.policy)
    }

    fn any(&self) -> bool {
        self.tag || self.policy
    }
}

fn violations(slot: &Slot) -> Violations {
    let reference = slot
        .reference
        .as_ref()
        .expect("expectations are only computed for generated references");
    let tag = reference.tag.as_deref();
    let pinned = reference.digest.is_some();
    // The API server's default: Always for `latest` or for neither tag nor digest.
    let defaulted = if tag == Some("latest") || (tag.is_none() && !pinned) {
        "Always"
    } else {
        "IfNotPresent"
    };
    let effective = slot.policy.as_deref().unwrap_or(defaulted);
    Violations {
        tag: !pinned && matches!(tag, None | Some("latest")),
        policy: effective != "Always",
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(Kind::ALL.to_vec())
}

fn registry() -> impl Strategy<Value = String> {
    let port = 1u16..=65535;
    prop_oneof![
        3 => Just(String::new()),
        1 => Just("docker.io/".to_owned()),
        1 => Just("index.docker.io/".to_owned()),
        1 => Just("localhost/".to_owned()),
        1 => port.clone().prop_map(|p| format!("localhost:{p}/")),
        1 => Just("registry.example.com/".to_owned()),
        1 => port.clone().prop_map(|p| format!("registry.example.com:{p}/")),
        1 => port.clone().prop_map(|p| format!("[::1]:{p}/")),
        1 => Just("[2001:db8::1]/".to_owned()),
        1 => port.prop_map(|p| format!("10.0.0.1:{p}/")),
        1 => Just("ghcr.io/".to_owned()),
    ]
}

/// `[a-z0-9]+` runs joined by the grammar's separators: `.`, `_`, `__`, `-`, `--`.
fn path_component() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,6}(([._]|__|-|--)[a-z0-9]{1,4}){0,2}"
}

fn tag() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just("latest".to_owned()),
        1 => Just("LATEST".to_owned()),
        2 => (0u8..30, 0u8..30, 0u8..30).prop_map(|(a, b, c)| format!("{a}.{b}.{c}")),
        3 => "[A-Za-z0-9_][A-Za-z0-9_.-]{0,15}",
    ]
}

fn digest() -> impl Strategy<Value = String> {
    "[0-9a-f]{64}".prop_map(|hex| format!("sha256:{hex}"))
}

/// A reference the distribution grammar accepts, with or without registry, port, tag, digest.
fn reference() -> impl Strategy<Value = Reference> {
    (
        registry(),
        prop::collection::vec(path_component(), 1..=3),
        prop::option::weighted(0.7, tag()),
        prop::option::weighted(0.3, digest()),
    )
        .prop_map(|(registry, path, tag, digest)| {
            let mut text = format!("{registry}{}", path.join("/"));
            if let Some(tag) = &tag {
                text.push(':');
                text.push_str(tag);
            }
            if let Some(digest) = &digest {
                text.push('@');
                text.push_str(digest);
            }
            Reference { text, tag, digest }
        })
}

fn policy() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        0.75,
        prop::sample::select(vec!["Always", "IfNotPresent", "Never"]).prop_map(str::to_owned),
    )
}

/// Marks a string that stands for a number literal, written into the request text as it is
/// (the crate's `serde_json` keeps numbers as `f64`, so a `Value` cannot hold `1.10` or a
/// 30-digit integer).
const NUMBER_MARK: &str = "\u{1}number:";

fn literal(text: impl Into<String>) -> Value {
    Value::String(format!("{NUMBER_MARK}{}", text.into()))
}

/// Any JSON value: integers beyond 64 bits, floats written in several ways, Unicode text.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        "-?[1-9][0-9]{19,40}".prop_map(literal),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            "1.10",
            "-0.0",
            "1e300",
            "2.50E-3",
            "0.000000000000000000001"
        ])
        .prop_map(literal),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,6}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Every number literal in `value`, as written into the request.
fn literals(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.extend(text.strip_prefix(NUMBER_MARK).map(str::to_owned)),
        Value::Array(items) => items.iter().for_each(|item| literals(item, out)),
        Value::Object(map) => map.values().for_each(|item| literals(item, out)),
        _ => {}
    }
}

/// Unknown keys (all starting with `x-`, so never one the policy reads) with random values.
fn extras() -> impl Strategy<Value = Extras> {
    prop::collection::btree_map("x-[a-z]{1,6}", json_value(), 0..3)
        .prop_map(|map| map.into_iter().collect())
}

fn dns_label() -> impl Strategy<Value = String> {
    "[a-z]([a-z0-9-]{0,6}[a-z0-9])?"
}

fn slot() -> impl Strategy<Value = Slot> {
    (dns_label(), reference(), policy(), extras()).prop_map(|(name, reference, policy, extras)| {
        Slot {
            name,
            image: reference.text.clone(),
            reference: Some(reference),
            policy,
            extras,
        }
    })
}

fn volume() -> impl Strategy<Value = VolumeEntry> {
    prop_oneof![
        3 => (slot(), extras()).prop_map(|(slot, extras)| VolumeEntry::Image(slot, extras)),
        1 => dns_label().prop_map(VolumeEntry::EmptyDir),
    ]
}

fn pod_spec() -> impl Strategy<Value = PodSpec> {
    let list = || prop::collection::vec(slot(), 0..4);
    (
        prop::collection::vec(slot(), 1..4),
        list(),
        list(),
        prop::collection::vec(volume(), 0..4),
        extras(),
    )
        .prop_map(|(containers, init, ephemeral, volumes, extras)| {
            let mut spec = PodSpec {
                containers,
                init_containers: init,
                ephemeral_containers: ephemeral,
                volumes,
                extras,
            };
            // Names are unique among all the containers of a pod and among its volumes, as the
            // API server requires.
            for (i, slot) in spec.slots_mut().enumerate() {
                slot.name = format!("{}-{i}", slot.name);
            }
            for (i, entry) in spec.volumes.iter_mut().enumerate() {
                match entry {
                    VolumeEntry::Image(slot, _) => slot.name = format!("{}-v{i}", slot.name),
                    VolumeEntry::EmptyDir(name) => *name = format!("{name}-v{i}"),
                }
            }
            spec
        })
}

fn workload() -> impl Strategy<Value = Workload> {
    (
        kind(),
        pod_spec(),
        prop::collection::btree_map("[a-z]{1,8}", "[a-z0-9]{0,8}", 0..3),
        prop::collection::vec("example.com/[a-z]{1,8}", 0..2),
        prop::sample::select(vec![Owner::None, Owner::NotController, Owner::Controller]),
        (extras(), extras(), extras()),
    )
        .prop_map(
            |(
                kind,
                spec,
                labels,
                finalizers,
                owner,
                (top_extras, metadata_extras, outer_extras),
            )| {
                Workload {
                    kind,
                    spec,
                    labels,
                    finalizers,
                    owner,
                    top_extras,
                    metadata_extras,
                    outer_extras,
                }
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Building the request
// ---------------------------------------------------------------------------------------------

/// The order unknown fields are written in: as generated and before the known fields, or
/// reversed and after them. Both give the same object, as a Kubernetes client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    AsGenerated,
    Permuted,
}

/// JSON that keeps its keys in the order they are written, so a request's text can be
/// permuted without changing what it says.
#[derive(Debug, Clone)]
enum J {
    Object(Vec<(String, J)>),
    Array(Vec<J>),
    /// A scalar, as JSON text.
    Text(String),
}

impl J {
    fn text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Self::Text(text) => out.push_str(text),
            Self::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Self::Object(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

impl From<&Value> for J {
    fn from(value: &Value) -> Self {
        match value {
            Value::Object(map) => {
                Self::Object(map.iter().map(|(k, v)| (k.clone(), v.into())).collect())
            }
            Value::Array(items) => Self::Array(items.iter().map(Self::from).collect()),
            Value::String(text) => match text.strip_prefix(NUMBER_MARK) {
                Some(number) => Self::Text(number.to_owned()),
                None => Self::Text(value.to_string()),
            },
            other => Self::Text(other.to_string()),
        }
    }
}

impl From<Value> for J {
    fn from(value: Value) -> Self {
        Self::from(&value)
    }
}

fn with_extras(known: Vec<(&str, J)>, extras: &Extras, order: Order) -> J {
    let known = known.into_iter().map(|(k, v)| (k.to_owned(), v));
    let extras = extras.iter().map(|(k, v)| (k.clone(), J::from(v)));
    J::Object(match order {
        Order::AsGenerated => extras.chain(known).collect(),
        Order::Permuted => known.rev().chain(extras.rev()).collect(),
    })
}

fn slot_json(slot: &Slot, order: Order) -> J {
    let mut known = vec![
        ("name", json!(slot.name).into()),
        ("image", json!(slot.image).into()),
        ("resources", json!({}).into()),
    ];
    if let Some(policy) = &slot.policy {
        known.push(("imagePullPolicy", json!(policy).into()));
    }
    with_extras(known, &slot.extras, order)
}

fn volume_json(entry: &VolumeEntry, order: Order) -> J {
    match entry {
        VolumeEntry::EmptyDir(name) => json!({"name": name, "emptyDir": {}}).into(),
        VolumeEntry::Image(slot, volume_extras) => {
            let mut image = vec![("reference", json!(slot.image).into())];
            if let Some(policy) = &slot.policy {
                image.push(("pullPolicy", json!(policy).into()));
            }
            let image = with_extras(image, &slot.extras, order);
            with_extras(
                vec![("name", json!(slot.name).into()), ("image", image)],
                volume_extras,
                order,
            )
        }
    }
}

fn pod_spec_json(spec: &PodSpec, order: Order) -> J {
    let list = |slots: &[Slot]| J::Array(slots.iter().map(|s| slot_json(s, order)).collect());
    let mut known = vec![("containers", list(&spec.containers))];
    if !spec.init_containers.is_empty() {
        known.push(("initContainers", list(&spec.init_containers)));
    }
    if !spec.ephemeral_containers.is_empty() {
        known.push(("ephemeralContainers", list(&spec.ephemeral_containers)));
    }
    if !spec.volumes.is_empty() {
        let volumes = spec.volumes.iter().map(|v| volume_json(v, order)).collect();
        known.push(("volumes", J::Array(volumes)));
    }
    known.push(("restartPolicy", json!("Always").into()));
    with_extras(known, &spec.extras, order)
}

fn object_json(workload: &Workload, order: Order) -> J {
    let (group, kind) = workload.kind.group_and_name();
    let api_version = if group.is_empty() {
        "v1".to_owned()
    } else {
        format!("{group}/v1")
    };
    let mut metadata = vec![
        ("name", json!("w").into()),
        ("labels", json!(workload.labels).into()),
    ];
    if !workload.finalizers.is_empty() {
        metadata.push(("finalizers", json!(workload.finalizers).into()));
    }
    if workload.owner != Owner::None {
        let owner = json!([{
            "apiVersion": "apps/v1", "kind": "Deployment", "name": "w",
            "uid": "6c6f7b0e-1c2d-4a57-9d0e-0f3b5a1c2d3e",
            "controller": workload.owner == Owner::Controller, "blockOwnerDeletion": true,
        }]);
        metadata.push(("ownerReferences", owner.into()));
    }
    let metadata = with_extras(metadata, &workload.metadata_extras, order);
    let pod_spec = pod_spec_json(&workload.spec, order);
    let template = J::Object(vec![
        ("metadata".into(), json!({"labels": {"app": "w"}}).into()),
        ("spec".into(), pod_spec.clone()),
    ]);
    let spec = match workload.kind {
        Kind::Pod => pod_spec,
        Kind::CronJob => with_extras(
            vec![
                ("schedule", json!("*/5 * * * *").into()),
                (
                    "jobTemplate",
                    J::Object(vec![(
                        "spec".into(),
                        J::Object(vec![("template".into(), template)]),
                    )]),
                ),
            ],
            &workload.outer_extras,
            order,
        ),
        _ => with_extras(
            vec![
                ("selector", json!({"matchLabels": {"app": "w"}}).into()),
                ("template", template),
            ],
            &workload.outer_extras,
            order,
        ),
    };
    with_extras(
        vec![
            ("apiVersion", json!(api_version).into()),
            ("kind", json!(kind).into()),
            ("metadata", metadata),
            ("spec", spec),
        ],
        &workload.top_extras,
        order,
    )
}

fn request_json(workload: &Workload, operation: &str, old: Option<&Workload>, order: Order) -> J {
    let (group, kind) = workload.kind.group_and_name();
    let mut request = vec![
        (
            "uid".to_owned(),
            json!("705ab4f5-6393-11e8-b7cc-42010a800002").into(),
        ),
        (
            "kind".to_owned(),
            json!({"group": group, "version": "v1", "kind": kind}).into(),
        ),
        ("operation".to_owned(), json!(operation).into()),
        ("object".to_owned(), object_json(workload, order)),
    ];
    if let Some(old) = old {
        request.push(("oldObject".to_owned(), object_json(old, order)));
    }
    J::Object(request)
}

/// `request` as the audit scanner would send it (the object's uid as the request's, the kind
/// as the resource, an empty userInfo), but with `resource` as the resource and `username`, when
/// given, as the user.
fn audit_shaped(request: J, resource: &str, username: Option<&str>) -> J {
    const UID: &str = "\"0d4c6b2a-8e1f-4a7b-9c3d-5e6f7a8b9c0d\"";
    let J::Object(mut entries) = request else {
        return request;
    };
    for (key, value) in entries.iter_mut() {
        match (key.as_str(), value) {
            ("uid", value) => *value = J::Text(UID.to_owned()),
            ("object", J::Object(object)) => {
                for (key, metadata) in object.iter_mut() {
                    if let ("metadata", J::Object(metadata)) = (key.as_str(), metadata) {
                        metadata.push(("uid".to_owned(), J::Text(UID.to_owned())));
                    }
                }
            }
            _ => {}
        }
    }
    entries.push((
        "resource".to_owned(),
        json!({"group": "", "version": "v1", "resource": resource}).into(),
    ));
    let user_info = match username {
        Some(name) => json!({"username": name, "groups": ["system:authenticated"]}),
        None => json!({}),
    };
    entries.push(("userInfo".to_owned(), user_info.into()));
    J::Object(entries)
}

fn payload(request: &J, settings: &Value) -> String {
    format!(r#"{{"request":{},"settings":{settings}}}"#, request.text())
}

#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow, default)]
    mutated_object: Option<&'a RawValue>,
}

/// What the policy answers to `request`, and the mutated object's text when there is one.
/// The object and the mutated object are compared after the same parsing, so a float that
/// does not survive `serde_json`'s parsing exactly cannot pass for a change.
fn run(request: &J, settings: &Value) -> (Outcome, Option<String>) {
    let payload = payload(request, settings);
    let response =
        serde_json::to_string(&validate(payload.as_bytes(), &mut TestRegistry::default()))
            .expect("serializes");
    let value: Value = serde_json::from_str(&response).expect("the response is JSON");
    let mutated = serde_json::from_str::<Response<'_>>(&response)
        .expect("the response is JSON")
        .mutated_object
        .filter(|raw| raw.get() != "null")
        .map(|raw| raw.get().to_owned());
    let mut changed = Vec::new();
    if let Some(mutated) = &mutated {
        let sent: Value = serde_json::from_str(&payload).expect("the payload is JSON");
        let mutated: Value = serde_json::from_str(mutated).expect("the mutated object is JSON");
        differences("", &sent["request"]["object"], &mutated, &mut changed);
    }
    let outcome = Outcome {
        accepted: value["accepted"].as_bool().expect("accepted is a bool"),
        message: value["message"].as_str().map(str::to_owned),
        warnings: serde_json::from_value(value["warnings"].clone()).unwrap_or_default(),
        changed,
    };
    (outcome, mutated)
}

fn mode_settings(mode: &str) -> Value {
    json!({ "mode": mode })
}

/// On an UPDATE, how the old object's slot differs from the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OldSlot {
    Same,
    OtherImage,
    OtherPolicy,
    Absent,
}

fn old_slot() -> impl Strategy<Value = OldSlot> {
    prop::sample::select(vec![
        OldSlot::Same,
        OldSlot::OtherImage,
        OldSlot::OtherPolicy,
        OldSlot::Absent,
    ])
}

/// The old object of an UPDATE, each slot changed as `changes` says (cycled); slots that are
/// absent from the old object are renamed there, so the new slot is a new container.
fn old_workload(new: &Workload, changes: &[OldSlot]) -> Workload {
    let mut old = new.clone();
    for (i, slot) in old.spec.slots_mut().enumerate() {
        match changes
            .get(i % changes.len().max(1))
            .copied()
            .unwrap_or(OldSlot::Same)
        {
            OldSlot::Same => {}
            OldSlot::OtherImage => slot.image = "old.example.com/team/old:0.9".to_owned(),
            OldSlot::OtherPolicy => {
                slot.policy = match slot.policy.as_deref() {
                    Some("Always") => Some("IfNotPresent".to_owned()),
                    _ => Some("Always".to_owned()),
                };
            }
            OldSlot::Absent => slot.name = format!("gone-{i}"),
        }
    }
    old
}

fn changed_in_update(new: &Workload, changes: &[OldSlot]) -> Vec<bool> {
    (0..new.spec.views().len())
        .map(|i| changes.get(i % changes.len().max(1)).copied() != Some(OldSlot::Same))
        .collect()
}

/// Gives most slots with a tag violation (untagged, or `latest` without a digest) the tag
/// `1.0`, so that the properties reach the mutation path more often than the refusal one.
fn repair_tags(workload: &mut Workload, repairs: &[bool]) {
    for (i, slot) in workload.spec.slots_mut().enumerate() {
        let Some(reference) = slot.reference.as_mut() else {
            continue;
        };
        let floating =
            reference.digest.is_none() && matches!(reference.tag.as_deref(), None | Some("latest"));
        if floating
            && repairs
                .get(i % repairs.len().max(1))
                .copied()
                .unwrap_or(false)
        {
            if reference.tag.take().is_some() {
                reference
                    .text
                    .truncate(reference.text.len() - ":latest".len());
            }
            reference.text.push_str(":1.0");
            reference.tag = Some("1.0".to_owned());
            slot.image = reference.text.clone();
        }
    }
}

fn repairs() -> impl Strategy<Value = Vec<bool>> {
    prop::collection::vec(prop::bool::weighted(0.9), 1..8)
}

fn sorted(mut pointers: Vec<String>) -> Vec<String> {
    pointers.sort();
    pointers
}

/// SPEC: warnings survive the API server. Each is at most 256 characters and all of them at
/// most 4,000; when some are left out, the last says how many, and `items` are accounted for.
fn check_warning_limits(warnings: &[String], items: usize) -> Result<(), TestCaseError> {
    let lengths: Vec<usize> = warnings.iter().map(|w| w.chars().count()).collect();
    prop_assert!(lengths.iter().all(|&length| length <= 256), "{warnings:?}");
    prop_assert!(lengths.iter().sum::<usize>() <= 4000, "{warnings:?}");
    let left_out = warnings
        .last()
        .and_then(|w| w.strip_prefix("and "))
        .and_then(|w| w.strip_suffix(" more warnings"))
        .map(|n| n.parse::<usize>().unwrap_or(usize::MAX));
    match left_out {
        Some(left_out) => {
            prop_assert!(warnings.len() - 1 <= 20, "{warnings:?}");
            prop_assert_eq!(warnings.len() - 1 + left_out, items, "{:?}", warnings);
        }
        None => prop_assert_eq!(warnings.len(), items, "{:?}", warnings),
    }
    Ok(())
}

fn describe(outcome: &Outcome) -> String {
    format!("{outcome:?}")
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// (a) Default settings: a request with a tag violation is refused; otherwise exactly the
    /// pull-policy keys of the slots whose effective policy is not Always are set to Always,
    /// and nothing else in the object changes (unknown fields and numbers included).
    #[test]
    fn mutation_changes_exactly_the_offending_pull_policies(
        mut workload in workload(),
        repairs in repairs(),
    ) {
        repair_tags(&mut workload, &repairs);
        let kind = workload.kind;
        let request = request_json(&workload, "CREATE", None, Order::AsGenerated);
        let (outcome, mutated) = run(&request, &json!({}));
        let views = workload.spec.views();
        let any_tag_violation = views.iter().any(|v| violations(v.slot).tag);
        let offending: Vec<String> = views
            .iter()
            .filter(|v| violations(v.slot).policy)
            .map(|v| v.policy_pointer(kind))
            .collect();
        let expected = if workload.mutable() { offending.clone() } else { Vec::new() };
        if any_tag_violation {
            prop_assert!(!outcome.accepted, "{}", describe(&outcome));
            prop_assert!(outcome.changed.is_empty());
        } else {
            prop_assert!(outcome.accepted, "{}", describe(&outcome));
            prop_assert_eq!(sorted(outcome.changed.clone()), sorted(expected.clone()));
            prop_assert_eq!(mutated.is_some(), !expected.is_empty());
            // One warning per offending slot: mutated, or left to its controller.
            check_warning_limits(&outcome.warnings, offending.len())?;
            // Every number of the unknown fields comes back written exactly as it was sent.
            if let Some(mutated) = &mutated {
                let object = match &request {
                    J::Object(entries) => entries
                        .iter()
                        .find(|(key, _)| key == "object")
                        .map(|(_, object)| object.text())
                        .unwrap_or_default(),
                    _ => String::new(),
                };
                let mut numbers = Vec::new();
                for (_, value) in workload.all_extras() {
                    literals(value, &mut numbers);
                }
                for number in numbers {
                    prop_assert_eq!(
                        mutated.matches(number.as_str()).count(),
                        object.matches(number.as_str()).count(),
                        "{} is not given back as written", number
                    );
                }
            }
        }
    }

    /// (b) The same payload gives byte-identical responses, and writing the unknown fields in
    /// another order (before or after the known ones, reversed) changes nothing in the decision.
    #[test]
    fn evaluation_is_deterministic_and_ignores_field_order(
        mut workload in workload(),
        repairs in repairs(),
        mode in prop::sample::select(vec!["mutate", "reject", "warn"]),
    ) {
        repair_tags(&mut workload, &repairs);
        let settings = mode_settings(mode);
        let request = request_json(&workload, "CREATE", None, Order::AsGenerated);
        let payload = payload(&request, &settings);
        let first = serde_json::to_vec(&validate(payload.as_bytes(), &mut TestRegistry::default())).expect("serializes");
        let second = serde_json::to_vec(&validate(payload.as_bytes(), &mut TestRegistry::default())).expect("serializes");
        prop_assert_eq!(&first, &second);

        let permuted = request_json(&workload, "CREATE", None, Order::Permuted);
        prop_assert_ne!(permuted.text(), request.text());
        let (a, _) = run(&request, &settings);
        let (b, _) = run(&permuted, &settings);
        prop_assert_eq!(a.accepted, b.accepted);
        prop_assert_eq!(&a.message, &b.message);
        prop_assert_eq!(&a.warnings, &b.warnings);
        prop_assert_eq!(sorted(a.changed), sorted(b.changed));
    }

    /// (c) Reject mode: the message names every offending slot (path and quoted name), in slot
    /// order, and no other slot; with more than 20 violations it lists 20 and counts the rest.
    #[test]
    fn reject_message_names_exactly_the_offenders(workload in workload()) {
        let kind = workload.kind;
        let request = request_json(&workload, "CREATE", None, Order::AsGenerated);
        let (outcome, _) = run(&request, &mode_settings("reject"));
        let views = workload.spec.views();
        let total: usize = views.iter().map(|v| violations(v.slot).count()).sum();
        prop_assert!(outcome.changed.is_empty());
        if total == 0 {
            prop_assert!(outcome.accepted && outcome.warnings.is_empty(), "{}", describe(&outcome));
            return Ok(());
        }
        prop_assert!(!outcome.accepted);
        let message = outcome.message.clone().unwrap_or_default();
        if total > 20 {
            let tail = format!("; and {} more violations", total - 20);
            prop_assert!(message.ends_with(&tail), "{message}");
            return Ok(());
        }
        let mut last_position = 0;
        for view in &views {
            let named = view.subject(kind);
            let offends = violations(view.slot);
            match message.find(&named) {
                Some(position) => {
                    prop_assert!(offends.any(), "{named} does not offend: {message}");
                    prop_assert!(position >= last_position, "{named} out of order: {message}");
                    let item = message[position..].split("; spec.").next().unwrap_or_default();
                    prop_assert!(item.ends_with(&view.image_tail()), "{item}");
                    prop_assert_eq!(message.matches(&named).count(), offends.count(), "{}", message);
                    last_position = position;
                }
                None => prop_assert!(!offends.any(), "{named} is missing: {message}"),
            }
        }
    }

    /// (d) No bypass: whatever the request the API server would accept (CREATE, or an UPDATE
    /// against a random old object), no slot that breaks a rule and is new or changed is
    /// accepted as it is in mutate or reject mode, and in warn mode every such slot is warned.
    #[test]
    fn no_offending_container_slips_through(
        mut workload in workload(),
        repairs in repairs(),
        update in any::<bool>(),
        changes in prop::collection::vec(old_slot(), 1..4),
        mode in prop::sample::select(vec!["mutate", "reject", "warn"]),
    ) {
        repair_tags(&mut workload, &repairs);
        let kind = workload.kind;
        let old = update.then(|| old_workload(&workload, &changes));
        let operation = if update { "UPDATE" } else { "CREATE" };
        let request = request_json(&workload, operation, old.as_ref(), Order::AsGenerated);
        let (outcome, _) = run(&request, &mode_settings(mode));
        let views = workload.spec.views();
        let evaluated = if update {
            changed_in_update(&workload, &changes)
        } else {
            vec![true; views.len()]
        };
        let warned = !outcome.warnings.last().is_some_and(|w| w.starts_with("and "));
        for (view, evaluated) in views.iter().zip(evaluated) {
            let broken = violations(view.slot);
            if !evaluated || !broken.any() {
                continue;
            }
            let subject = view.subject(kind);
            match mode {
                "warn" => {
                    prop_assert!(outcome.accepted, "{}", describe(&outcome));
                    prop_assert!(
                        !warned || outcome.warnings.iter().any(|w| w.starts_with(&subject)),
                        "{subject} is not warned: {}", describe(&outcome)
                    );
                }
                "reject" => prop_assert!(!outcome.accepted, "{subject}: {}", describe(&outcome)),
                _ if workload.mutable() => {
                    let fixed = outcome.changed.contains(&view.policy_pointer(kind));
                    prop_assert!(
                        !outcome.accepted || (!broken.tag && fixed),
                        "{subject} is accepted as it is: {}", describe(&outcome)
                    );
                }
                _ => {
                    // Left to its controller: never changed, but never silently either.
                    let fixed = outcome.changed.contains(&view.policy_pointer(kind));
                    let told = !warned || outcome.warnings.iter().any(|w| w.starts_with(&subject));
                    prop_assert!(
                        !outcome.accepted || (!broken.tag && !fixed && told),
                        "{subject} of a controlled {kind:?}: {}", describe(&outcome)
                    );
                }
            }
        }
    }

    /// (g) A request that names a user is never taken for an audit: shaped as the audit
    /// scanner's in every other way, it is answered exactly as when its resource is the plural
    /// an API server sends; without the user, it gets reject mode's verdict whatever the mode.
    #[test]
    fn a_request_with_a_user_is_never_an_audit(
        mut workload in workload(),
        repairs in repairs(),
        username in prop_oneof![
            Just("kubernetes-admin".to_owned()),
            Just("system:serviceaccount:kubewarden:audit-scanner".to_owned()),
            Just(" ".to_owned()),
            "\\PC{1,24}",
        ],
        mode in prop::sample::select(vec!["mutate", "reject", "warn"]),
        mutate_templates in any::<bool>(),
    ) {
        repair_tags(&mut workload, &repairs);
        let kind = workload.kind.group_and_name().1;
        let settings = json!({"mode": mode, "mutateTemplates": mutate_templates});
        let request = || request_json(&workload, "CREATE", None, Order::AsGenerated);
        let with_user = audit_shaped(request(), kind, Some(&username));
        let plural = format!("{}s", kind.to_lowercase());
        let from_api_server = audit_shaped(request(), &plural, Some(&username));
        let (a, _) = run(&with_user, &settings);
        let (b, _) = run(&from_api_server, &settings);
        prop_assert_eq!(a.accepted, b.accepted);
        prop_assert_eq!(&a.message, &b.message);
        prop_assert_eq!(&a.warnings, &b.warnings);
        prop_assert_eq!(sorted(a.changed), sorted(b.changed));

        let (audit, _) = run(&audit_shaped(request(), kind, None), &settings);
        let (reject, _) = run(&from_api_server, &mode_settings("reject"));
        prop_assert_eq!(audit.accepted, reject.accepted);
        prop_assert_eq!(&audit.message, &reject.message);
        prop_assert!(audit.changed.is_empty() && audit.warnings.is_empty(), "{}", describe(&audit));
    }

    /// (f) In warn mode every violation is one warning, in slot order, each and all within the
    /// API server's limits, however long the names and images.
    #[test]
    fn warnings_survive_the_api_server(
        mut workload in workload(),
        long_names in any::<bool>(),
        padding in 0usize..180,
    ) {
        let kind = workload.kind;
        for slot in workload.spec.slots_mut() {
            if long_names {
                // Still a DNS label: at most 63 characters, as the API server allows.
                slot.name.push_str(&"n".repeat(padding));
                slot.name.truncate(63);
            }
            if let Some(reference) = slot.reference.as_mut() {
                // One more path component before the last leaves the rules as they were.
                let at = reference.text.rfind('/').map_or(0, |slash| slash + 1);
                reference.text.insert_str(at, &format!("{}/", "p".repeat(padding + 1)));
                slot.image = reference.text.clone();
            }
        }
        let request = request_json(&workload, "CREATE", None, Order::AsGenerated);
        let (outcome, _) = run(&request, &mode_settings("warn"));
        prop_assert!(outcome.accepted, "{}", describe(&outcome));
        let views = workload.spec.views();
        let items: usize = views.iter().map(|v| violations(v.slot).count()).sum();
        check_warning_limits(&outcome.warnings, items)?;
        let mut position = 0;
        for warning in outcome.warnings.iter().filter(|w| !w.starts_with("and ")) {
            let next = views[position..]
                .iter()
                .position(|v| warning.starts_with(&v.subject(kind)));
            prop_assert!(next.is_some(), "{warning} names no slot in order");
            position += next.unwrap_or_default();
        }
    }

    /// (e) An UPDATE that only changes metadata (labels, finalizers) is accepted untouched,
    /// whatever the images are: untagged, `latest`, any pull policy, even invalid references.
    #[test]
    fn metadata_only_updates_are_accepted_untouched(
        mut old in workload(),
        invalid_images in prop::collection::vec(prop::option::weighted(0.3, "\\PC{0,16}"), 1..6),
        weird_policy in prop::option::weighted(0.2, "\\PC{0,8}"),
        label in ("[a-z]{1,8}", "[a-z0-9]{0,8}"),
        drop_finalizers in any::<bool>(),
        mode in prop::sample::select(vec!["mutate", "reject", "warn"]),
        mutate_templates in any::<bool>(),
    ) {
        for (i, slot) in old.spec.slots_mut().enumerate() {
            if let Some(Some(image)) = invalid_images.get(i % invalid_images.len()) {
                slot.image = image.clone();
                slot.reference = None;
            }
            if i == 0 {
                if let Some(policy) = &weird_policy {
                    slot.policy = Some(policy.clone());
                }
            }
        }
        let mut new = old.clone();
        new.labels.insert(label.0, label.1);
        if drop_finalizers {
            new.finalizers.clear();
        } else {
            new.finalizers.push("example.com/added".to_owned());
        }
        let request = request_json(&new, "UPDATE", Some(&old), Order::AsGenerated);
        let settings = json!({"mode": mode, "mutateTemplates": mutate_templates});
        let (outcome, _) = run(&request, &settings);
        prop_assert!(outcome.accepted, "{}", describe(&outcome));
        prop_assert!(outcome.changed.is_empty() && outcome.warnings.is_empty(), "{}", describe(&outcome));
        prop_assert!(outcome.message.is_none(), "{}", describe(&outcome));
    }
}

// ---------------------------------------------------------------------------------------------
// Floating tags (`requireFullVersion`, `deniedTags` patterns)
// ---------------------------------------------------------------------------------------------

/// The tag grammar as the distribution reference writes it, `[\w][\w.-]{0,127}`, ASCII.
fn is_tag(tag: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    tag.len() <= 128
        && tag.starts_with(word)
        && tag.chars().all(|c| word(c) || c == '.' || c == '-')
}

/// How many numbers a tag that reads `[vV]NUM(.NUM)*[(-|_)SUFFIX]` gives (the first NUM at
/// most 4 digits), character by character; `None` when it is no version.
fn version_numbers(tag: &str) -> Option<usize> {
    let mut chars = tag.chars().peekable();
    chars.next_if(|c| *c == 'v' || *c == 'V');
    let mut numbers = 0;
    loop {
        let mut digits = 0;
        while chars.next_if(char::is_ascii_digit).is_some() {
            digits += 1;
        }
        if digits == 0 || (numbers == 0 && digits > 4) {
            return None;
        }
        numbers += 1;
        match chars.next() {
            None | Some('-' | '_') => return Some(numbers),
            Some('.') => continue,
            Some(_) => return None,
        }
    }
}

/// Tags near the version grammar and off it: versions of every length with suffixes, dates,
/// hashes, characters no tag may hold, any text.
fn version_like_tag() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[vV]?[0-9]{1,6}(\\.[0-9]{1,3}){0,4}([-_][A-Za-z0-9._-]{0,8})?",
        2 => "[vV]?[0-9a-f]{0,8}([.a-z_-][0-9a-f]{0,4}){0,3}",
        1 => "[vV]?[0-9]{1,3}(\\.[0-9]{0,2}){0,3}[A-Za-z0-9._+:@/ -]{0,6}",
        1 => "\\PC{0,12}",
    ]
}

/// A registry host with a dot, and maybe a port, in lower case.
fn host() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,5}[a-z0-9](\\.[a-z][a-z0-9]{0,5}){1,2}(:[0-9]{2,5})?"
}

/// `pod-compliant.json` with its one container's image and pull policy replaced.
fn pod_with_image(image: &str, policy: &str) -> Value {
    let mut request = crate::tests::fixture("pod-compliant.json");
    let container = &mut request["object"]["spec"]["containers"][0];
    container["image"] = json!(image);
    container["imagePullPolicy"] = json!(policy);
    request
}

fn lowered(outcome: &Outcome) -> (bool, Option<String>, Vec<String>, Vec<String>) {
    (
        outcome.accepted,
        outcome.message.as_ref().map(|m| m.to_lowercase()),
        outcome.warnings.iter().map(|w| w.to_lowercase()).collect(),
        outcome.changed.clone(),
    )
}

proptest! {
    #![proptest_config(Config { cases: 1024, ..config() })]

    /// (g) Any tag `requireFullVersion` accepts is one the reference parser accepts, as the
    /// image's tag; and the rule refuses exactly the valid tags that read as versions of one or
    /// two numbers, as the version grammar computed here says.
    #[test]
    fn a_tag_require_full_version_accepts_is_a_tag_the_parser_accepts(
        tag in version_like_tag(),
        host in host(),
    ) {
        let image = format!("{host}/team/app:{tag}");
        let settings = json!({"mode": "reject", "requireFullVersion": true, "deniedTags": []});
        let outcome = crate::tests::evaluate(&pod_with_image(&image, "Always"), &settings);
        if outcome.accepted {
            let parsed = crate::reference::ImageReference::parse(&image);
            prop_assert!(parsed.is_ok(), "{image:?} accepted but not a reference: {parsed:?}");
            prop_assert_eq!(parsed.unwrap().tag(), Some(tag.as_str()));
            prop_assert!(is_tag(&tag), "{tag:?} accepted but not a tag");
        }
        let floats = is_tag(&tag) && version_numbers(&tag).is_some_and(|n| n < 3);
        prop_assert_eq!(outcome.accepted, is_tag(&tag) && !floats, "{}", describe(&outcome));
        if floats {
            let message = outcome.message.unwrap_or_default();
            prop_assert!(message.contains("is a floating version"), "{message}");
        }
    }

    /// (h) Under the tag rules, the verdict does not depend on the case of the registry host:
    /// the same answer, in the same words but for the image as written.
    #[test]
    fn the_verdict_does_not_depend_on_the_case_of_the_registry_host(
        host in host(),
        upper in prop::collection::vec(any::<bool>(), 24),
        tag in version_like_tag(),
        policy in prop::sample::select(vec!["Always", "IfNotPresent", "Never"]),
        mode in prop::sample::select(vec!["mutate", "reject", "warn"]),
        require_full_version in any::<bool>(),
        denied in prop::sample::select(vec![
            vec![], vec!["latest"], vec!["*-SNAPSHOT", "v?"], vec!["1.*", "2???????", "*alpine*"],
        ]),
    ) {
        let cased: String = host
            .chars()
            .zip(upper.iter().cycle())
            .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c })
            .collect();
        let settings = json!({
            "mode": mode, "requireFullVersion": require_full_version, "deniedTags": denied,
        });
        let verdict = |host: &str| {
            let request = pod_with_image(&format!("{host}/team/app:{tag}"), policy);
            lowered(&crate::tests::evaluate(&request, &settings))
        };
        prop_assert_eq!(verdict(&cased), verdict(&host), "host {:?}", cased);
    }
}

#[test]
fn the_version_model_reads_the_readme_table() {
    for (tag, numbers) in [
        ("1.2.3", Some(3)),
        ("v1.2.3", Some(3)),
        ("1.2.3-alpine", Some(3)),
        ("1.2.3.4", Some(4)),
        ("1", Some(1)),
        ("v3", Some(1)),
        ("3-alpine", Some(1)),
        ("1.2", Some(2)),
        ("v1.2", Some(2)),
        ("1.2-alpine", Some(2)),
        ("2024.01", Some(2)),
        ("20240101", None),
        ("1234567", None),
        ("3f2a9c1", None),
        ("1.2alpine", None),
        ("bookworm", None),
        ("stable", None),
    ] {
        assert_eq!(version_numbers(tag), numbers, "{tag}");
    }
}
