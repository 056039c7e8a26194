//! The borrowed, partial view of a validation request: only what the policy reads is decoded,
//! everything else is skipped without being built.
//!
//! For example, of
//!
//! ```text
//! {"request": {"kind": {"group": "apps", "kind": "Deployment"}, "operation": "CREATE",
//!   "userInfo": {...}, "object": {"metadata": {...}, "spec": {"replicas": 3,
//!     "template": {"metadata": {...}, "spec": {"containers": [
//!       {"name": "web", "image": "nginx:1.27", "ports": [...]}]}}}}}}
//! ```
//!
//! the view keeps the kind and the operation, and `object` as a `Node` (any object on the way
//! to a pod spec) whose `spec` is a `Node` whose `template` is a `Node` whose `spec` holds
//! `containers`: one `Entry` (a list item that names an image) with the JSON texts `"web"`
//! and `"nginx:1.27"`, borrowed from the payload, so a mutation knows where they sit. The
//! object's `metadata` is kept as text, read only when a controller matters, and so is
//! `userInfo`, read only to tell the audit scanner's requests. `replicas` and `ports` are
//! skipped unread. `Obj` and `List` are values that should be an
//! object or an array; any other JSON type is kept as `Shaped::Mismatch`, so that the walker
//! can name the path of a malformed field.

use std::borrow::Cow;
use std::fmt;

use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::RequestError;

mod scan;

/// What the policy server sends to `validate`, read in one pass: only the kind, the operation
/// and the image-bearing parts of the object and old object are kept; the rest is skipped.
#[derive(Deserialize, Debug)]
pub(crate) struct Payload<'a> {
    #[serde(borrow)]
    pub(crate) request: AdmissionRequest<'a>,
    #[serde(borrow, default, deserialize_with = "raw_or_null")]
    pub(crate) settings: Option<Json<'a>>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AdmissionRequest<'a> {
    #[serde(borrow)]
    pub(crate) kind: GroupVersionKind<'a>,
    #[serde(borrow)]
    pub(crate) operation: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(crate) sub_resource: Option<Cow<'a, str>>,
    // Boxed: the parse's outermost frames then hold a pointer, not two nodes, and every
    // request's parse stays within the first page of a fresh instance's stack (each page a
    // fresh instance touches is a page fault).
    #[serde(borrow, default)]
    pub(crate) object: Option<Obj<Box<Node<'a>>>>,
    #[serde(borrow, default)]
    pub(crate) old_object: Option<Obj<Box<Node<'a>>>>,
    // Kept as text, read only to tell the audit scanner's requests (`is_audit`).
    #[serde(borrow, default, deserialize_with = "raw_text")]
    uid: Option<Json<'a>>,
    #[serde(borrow, default, deserialize_with = "raw_text")]
    resource: Option<Json<'a>>,
    #[serde(borrow, default, deserialize_with = "raw_text")]
    user_info: Option<Json<'a>>,
}

#[derive(Deserialize, Debug)]
pub(crate) struct GroupVersionKind<'a> {
    #[serde(borrow, default)]
    pub(crate) group: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) kind: Cow<'a, str>,
}

impl<'a> Payload<'a> {
    /// The view of a payload: read by `scan` where it can, else by serde, which also names
    /// what makes a payload unreadable.
    pub(crate) fn parse(payload: &'a [u8]) -> Result<Self, RequestError> {
        let text = utf8(payload)?;
        scan::payload(text).map_or_else(|| Self::parse_with_serde(text), Ok)
    }

    // Out of the way of the requests the reader reads (every one the policy server sends).
    #[cold]
    #[inline(never)]
    fn parse_with_serde(text: &'a str) -> Result<Self, RequestError> {
        serde_json::from_str(text).map_err(|error| RequestError::Unreadable(error.to_string()))
    }
}

/// The request view of `text` as `scan` and as serde read it, written out (`None` where `scan`
/// leaves it to serde), for the fuzz target that compares them.
#[cfg(feature = "fuzzing")]
pub fn views(text: &str) -> (Option<String>, Result<String, String>) {
    (
        scan::payload(text).map(|view| format!("{view:?}")),
        Payload::parse_with_serde(text)
            .map(|view| format!("{view:?}"))
            .map_err(|error| error.to_string()),
    )
}

/// The payload as text: checked once, so no string read from it is checked again.
fn utf8(payload: &[u8]) -> Result<&str, RequestError> {
    std::str::from_utf8(payload).map_err(|error| RequestError::Unreadable(error.to_string()))
}

/// The request's object as JSON text; read again only when the policy mutates it.
pub(crate) fn object_text(payload: &[u8]) -> Result<&RawValue, RequestError> {
    #[derive(Deserialize)]
    struct Outer<'a> {
        #[serde(borrow)]
        request: Inner<'a>,
    }
    #[derive(Deserialize)]
    struct Inner<'a> {
        #[serde(borrow, default)]
        object: Option<&'a RawValue>,
    }
    serde_json::from_str::<Outer<'_>>(utf8(payload)?)
        .map_err(|error| RequestError::Unreadable(error.to_string()))?
        .request
        .object
        .ok_or(RequestError::NoObject)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Create,
    Update,
}

impl AdmissionRequest<'_> {
    /// The operations the policy evaluates; any other is accepted as it is.
    pub(crate) fn evaluated_operation(&self) -> Option<Operation> {
        match self.operation.as_ref() {
            "CREATE" => Some(Operation::Create),
            "UPDATE" => Some(Operation::Update),
            _ => None,
        }
    }

    pub(crate) fn workload(&self) -> Option<&'static Workload> {
        Workload::of(self.kind.group.as_deref(), &self.kind.kind)
    }

    pub(crate) fn is_ephemeral_containers_update(&self) -> bool {
        self.sub_resource.as_deref() == Some("ephemeralcontainers")
    }

    /// Whether Kubewarden's audit scanner sent this request, replaying an object that exists:
    /// it sends a CREATE with no user, the kind as `resource.resource` (an API server sends the
    /// plural, `deployments`) and the object's own `metadata.uid` as the request's `uid`. An API
    /// server always names the user, so a request with one is never taken for an audit.
    pub(crate) fn is_audit(&self) -> bool {
        self.operation == "CREATE"
            && !self.has_user()
            && self
                .resource
                .and_then(|resource| field(resource, "resource"))
                .and_then(string)
                .is_some_and(|resource| resource == self.kind.kind)
            && self.uid.and_then(string).is_some_and(|uid| {
                !uid.is_empty()
                    && matches!(&self.object, Some(Obj(Shaped::Fits(object)))
                        if object.uid().is_some_and(|own| own == uid))
            })
    }

    /// Whether `userInfo` names a user; one that cannot be read counts as a user.
    fn has_user(&self) -> bool {
        let Some(user_info) = self.user_info.filter(|raw| raw.get() != "null") else {
            return false;
        };
        if let Some(named) = scan::names_a_user(user_info.get()) {
            return named;
        }
        let Ok(Entries(entries)) = serde_json::from_str(user_info.get()) else {
            return true;
        };
        entries
            .iter()
            .filter(|(key, _)| key == "username")
            .any(|(_, name)| names_someone(Json::of(name)))
    }
}

/// Whether a `username` value names a user: anything but `null` and the empty string. The one
/// empty string is `""`, as an escape always decodes to a character.
fn names_someone(name: Json<'_>) -> bool {
    !matches!(name.get(), "null" | r#""""#)
}

/// The value of `key` in a JSON object's text; `None` for a missing key or a value that is
/// not an object.
fn field<'a>(raw: Json<'a>, key: &str) -> Option<Json<'a>> {
    let Entries(entries) = serde_json::from_str(raw.get()).ok()?;
    entries
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| Json::of(v))
}

/// A JSON string's value; `None` for any other JSON type.
fn string(raw: Json<'_>) -> Option<Cow<'_, str>> {
    serde_json::from_str(raw.get()).ok()
}

/// One key on the way from an object to its pod spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Spec,
    Template,
    JobTemplate,
}

impl Step {
    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::Spec => "spec",
            Self::Template => "template",
            Self::JobTemplate => "jobTemplate",
        }
    }
}

/// A pod spec's path, as messages write it: `spec.template.spec`.
pub(crate) fn dotted(path: &[Step]) -> String {
    path.iter()
        .map(|step| step.key())
        .collect::<Vec<_>>()
        .join(".")
}

/// A kind the policy evaluates and where its pod spec lives.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Workload {
    group: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) pod_spec_path: &'static [Step],
}

const TEMPLATE: &[Step] = &[Step::Spec, Step::Template, Step::Spec];

const WORKLOADS: &[Workload] = &[
    Workload {
        group: "",
        kind: "Pod",
        pod_spec_path: &[Step::Spec],
    },
    Workload {
        group: "apps",
        kind: "Deployment",
        pod_spec_path: TEMPLATE,
    },
    Workload {
        group: "apps",
        kind: "ReplicaSet",
        pod_spec_path: TEMPLATE,
    },
    Workload {
        group: "apps",
        kind: "StatefulSet",
        pod_spec_path: TEMPLATE,
    },
    Workload {
        group: "apps",
        kind: "DaemonSet",
        pod_spec_path: TEMPLATE,
    },
    Workload {
        group: "",
        kind: "ReplicationController",
        pod_spec_path: TEMPLATE,
    },
    Workload {
        group: "batch",
        kind: "Job",
        pod_spec_path: TEMPLATE,
    },
    Workload {
        group: "batch",
        kind: "CronJob",
        pod_spec_path: &[
            Step::Spec,
            Step::JobTemplate,
            Step::Spec,
            Step::Template,
            Step::Spec,
        ],
    },
];

impl Workload {
    /// A request without a group (hand-written ones) is matched on the kind alone.
    fn of(group: Option<&str>, kind: &str) -> Option<&'static Self> {
        WORKLOADS
            .iter()
            .find(|w| w.kind == kind && group.is_none_or(|g| g == w.group))
    }

    pub(crate) fn is_pod(&self) -> bool {
        self.kind == "Pod"
    }

    /// The pod spec of `object`, or why it cannot be read.
    pub(crate) fn pod_spec<'n, 'a>(
        &self,
        object: &'n Obj<Box<Node<'a>>>,
    ) -> Result<&'n Node<'a>, RequestError> {
        let Shaped::Fits(object) = &object.0 else {
            return Err(RequestError::ObjectNotAnObject);
        };
        let mut node: &Node<'a> = object;
        for depth in 0..self.pod_spec_path.len() {
            let path = self.pod_spec_path.get(..=depth).unwrap_or_default();
            let child = path.last().and_then(|step| node.child(*step));
            node = match child {
                None => return Err(RequestError::Missing(dotted(path))),
                Some(Obj(Shaped::Mismatch)) => return Err(RequestError::NotAnObject(dotted(path))),
                Some(Obj(Shaped::Fits(child))) => child.as_ref(),
            };
        }
        Ok(node)
    }
}

/// Any object on the way to a pod spec, and the pod spec itself: the keys this policy follows
/// or reads, every other key skipped undecoded. One shape serves every level, so one pass over
/// the request reads every kind.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[derive(Debug)]
pub(crate) struct Node<'a> {
    // Kept as text: only a mutation of a workload reads it (for its controller), and parsing it
    // here would put its visitor into every request's parse.
    #[serde(borrow, default, deserialize_with = "raw_text")]
    metadata: Option<Json<'a>>,
    #[serde(borrow, default)]
    spec: Option<Obj<Box<Node<'a>>>>,
    #[serde(borrow, default)]
    template: Option<Obj<Box<Node<'a>>>>,
    #[serde(borrow, default)]
    job_template: Option<Obj<Box<Node<'a>>>>,
    #[serde(borrow, default)]
    pub(crate) containers: Option<List<Obj<Entry<'a>>>>,
    #[serde(borrow, default)]
    pub(crate) init_containers: Option<List<Obj<Entry<'a>>>>,
    #[serde(borrow, default)]
    pub(crate) ephemeral_containers: Option<List<Obj<Entry<'a>>>>,
    #[serde(borrow, default)]
    pub(crate) volumes: Option<List<Obj<Entry<'a>>>>,
}

impl<'a> Node<'a> {
    /// Whether a controller owns this object: an entry of `metadata.ownerReferences` with
    /// `controller: true`. A malformed list counts as no owner (the API server refuses one).
    pub(crate) fn has_controller(&self) -> bool {
        // Read with the generic readers the request already uses: no parser of its own.
        let Some(owners) = self.metadata.and_then(|m| field(m, "ownerReferences")) else {
            return false;
        };
        let Ok(owners) = serde_json::from_str::<Vec<&RawValue>>(owners.get()) else {
            return false;
        };
        owners.into_iter().any(|owner| {
            field(Json::of(owner), "controller").is_some_and(|flag| flag.get() == "true")
        })
    }

    /// The object's `metadata.uid`, when it is a string.
    fn uid(&self) -> Option<Cow<'a, str>> {
        self.metadata.and_then(|m| field(m, "uid")).and_then(string)
    }

    fn child(&self, step: Step) -> Option<&Obj<Box<Node<'a>>>> {
        match step {
            Step::Spec => self.spec.as_ref(),
            Step::Template => self.template.as_ref(),
            Step::JobTemplate => self.job_template.as_ref(),
        }
    }
}

/// A container, or a volume: the fields that name and pull an image, as JSON text, so that
/// a wrong type is named by its path and a mutation knows where each one sits.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[derive(Debug)]
pub(crate) struct Entry<'a> {
    #[serde(borrow, default, deserialize_with = "raw_text")]
    pub(crate) name: Option<Json<'a>>,
    #[serde(borrow, default, deserialize_with = "raw_text")]
    pub(crate) image: Option<Json<'a>>,
    #[serde(borrow, default, deserialize_with = "raw_text")]
    pub(crate) image_pull_policy: Option<Json<'a>>,
}

/// A present field as its JSON text, `null` included (`Option`'s own rule would drop it,
/// and a mutation must replace a `null` rather than add the key a second time).
pub(crate) fn raw_text<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Json<'de>>, D::Error> {
    <&'de RawValue>::deserialize(deserializer).map(|raw| Some(Json::of(raw)))
}

/// A present field as its JSON text, `null` read as absent.
fn raw_or_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Json<'de>>, D::Error> {
    <Option<&'de RawValue>>::deserialize(deserializer).map(|raw| raw.map(Json::of))
}

/// A JSON value's text, borrowed from the payload where it was read, so that a mutation
/// knows where it sits. Only text the payload's reader has checked is ever held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Json<'a>(&'a str);

impl<'a> Json<'a> {
    /// The text of a value serde has read.
    pub(crate) fn of(raw: &'a RawValue) -> Self {
        Json(raw.get())
    }

    pub(crate) fn get(self) -> &'a str {
        self.0
    }
}

/// The top-level entries of a JSON object in document order, duplicates kept, values unparsed.
pub(crate) struct Entries<'a>(pub(crate) Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<BorrowedKey<'de>>()? {
                    entries.push((key.0, map.next_value::<&'de RawValue>()?));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

#[derive(Deserialize)]
struct BorrowedKey<'a>(#[serde(borrow)] Cow<'a, str>);

/// A value that should have one JSON type; any other type is kept as `Mismatch` (and skipped),
/// so the walker can name the path instead of failing the whole request with a column number.
#[derive(Debug)]
pub(crate) enum Shaped<T> {
    Fits(T),
    Mismatch,
}

/// A value that should be a JSON object.
#[derive(Debug)]
pub(crate) struct Obj<T>(pub(crate) Shaped<T>);

/// A value that should be a JSON array.
#[derive(Debug)]
pub(crate) struct List<T>(pub(crate) Shaped<Vec<T>>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ShapeVisitor::<Obj<T>>(PhantomData))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ShapeVisitor::<List<T>>(PhantomData))
    }
}

struct ShapeVisitor<S>(PhantomData<S>);

/// What a shape does with the JSON type it expects; every other type is a mismatch.
trait Shape<'de>: Sized {
    const EXPECTING: &'static str;
    fn mismatch() -> Self;
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        drain_map(map).map(|()| Self::mismatch())
    }
    fn from_seq<A: SeqAccess<'de>>(seq: A) -> Result<Self, A::Error> {
        drain_seq(seq).map(|()| Self::mismatch())
    }
}

impl<'de, T: Deserialize<'de>> Shape<'de> for Obj<T> {
    const EXPECTING: &'static str = "an object";
    fn mismatch() -> Self {
        Obj(Shaped::Mismatch)
    }
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(|value| Obj(Shaped::Fits(value)))
    }
}

impl<'de, T: Deserialize<'de>> Shape<'de> for List<T> {
    const EXPECTING: &'static str = "an array";
    fn mismatch() -> Self {
        List(Shaped::Mismatch)
    }
    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(List(Shaped::Fits(items)))
    }
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

impl<'de, S: Shape<'de>> Visitor<'de> for ShapeVisitor<S> {
    type Value = S;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(S::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<S, A::Error> {
        S::from_map(map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<S, A::Error> {
        S::from_seq(seq)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<S, E> {
        Ok(S::mismatch())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<S, E> {
        Ok(S::mismatch())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<S, E> {
        Ok(S::mismatch())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<S, E> {
        Ok(S::mismatch())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<S, E> {
        Ok(S::mismatch())
    }

    fn visit_unit<E: de::Error>(self) -> Result<S, E> {
        Ok(S::mismatch())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn object(json: &str) -> Obj<Box<Node<'_>>> {
        serde_json::from_str(json).unwrap()
    }

    #[rstest]
    #[case::pod(Some(""), "Pod", "spec")]
    #[case::deployment(Some("apps"), "Deployment", "spec.template.spec")]
    #[case::replicaset(Some("apps"), "ReplicaSet", "spec.template.spec")]
    #[case::statefulset(Some("apps"), "StatefulSet", "spec.template.spec")]
    #[case::daemonset(Some("apps"), "DaemonSet", "spec.template.spec")]
    #[case::rc(Some(""), "ReplicationController", "spec.template.spec")]
    #[case::job(Some("batch"), "Job", "spec.template.spec")]
    #[case::cronjob(Some("batch"), "CronJob", "spec.jobTemplate.spec.template.spec")]
    #[case::no_group(None, "Deployment", "spec.template.spec")]
    fn every_kind_has_its_pod_spec(
        #[case] group: Option<&str>,
        #[case] kind: &str,
        #[case] path: &str,
    ) {
        assert_eq!(
            dotted(Workload::of(group, kind).unwrap().pod_spec_path),
            path
        );
    }

    #[rstest]
    #[case::configmap(Some(""), "ConfigMap")]
    #[case::crd_named_like_a_workload(Some("example.com"), "Deployment")]
    #[case::pod_in_wrong_group(Some("apps"), "Pod")]
    #[case::lower_case(Some(""), "pod")]
    fn other_kinds_are_not_workloads(#[case] group: Option<&str>, #[case] kind: &str) {
        assert!(Workload::of(group, kind).is_none());
    }

    #[test]
    fn pod_spec_of_a_cronjob_is_found_past_other_fields() {
        let object = object(
            r#"{"metadata":{"name":"x","spec":1},"spec":{"schedule":"* * * * *","containers":7,
                "jobTemplate":{"spec":{"template":{"metadata":{},"spec":{"containers":[{}]}}}}}}"#,
        );
        let cronjob = Workload::of(Some("batch"), "CronJob").unwrap();
        let pod_spec = cronjob.pod_spec(&object).unwrap();
        assert!(
            matches!(&pod_spec.containers, Some(List(Shaped::Fits(entries))) if entries.len() == 1),
            "{pod_spec:?}"
        );
    }

    #[rstest]
    #[case::no_spec(r#"{"metadata":{}}"#, "the object has no spec")]
    #[case::null_spec(r#"{"spec":null}"#, "the object has no spec")]
    #[case::no_template(r#"{"spec":{}}"#, "the object has no spec.template")]
    #[case::spec_not_object(r#"{"spec":[]}"#, "spec is not an object")]
    #[case::template_spec_not_object(
        r#"{"spec":{"template":{"spec":"x"}}}"#,
        "spec.template.spec is not an object"
    )]
    #[case::object_not_object("[1]", "the object is not a JSON object")]
    #[case::object_number("42", "the object is not a JSON object")]
    #[case::spec_number(r#"{"spec":42}"#, "spec is not an object")]
    #[case::spec_string(r#"{"spec":"x"}"#, "spec is not an object")]
    #[case::object_number("42", "the object is not a JSON object")]
    #[case::spec_number(r#"{"spec":42}"#, "spec is not an object")]
    #[case::spec_string(r#"{"spec":"x"}"#, "spec is not an object")]
    fn unreadable_pod_specs_are_named(#[case] json: &str, #[case] expected: &str) {
        let deployment = Workload::of(Some("apps"), "Deployment").unwrap();
        let error = deployment.pod_spec(&object(json)).unwrap_err().to_string();
        assert!(error.contains(expected), "{error:?} lacks {expected:?}");
    }

    #[rstest]
    #[case::controller(r#"[{"kind":"Deployment","name":"web","controller":true}]"#, true)]
    #[case::second_entry(
        r#"[{"kind":"ConfigMap","name":"c"},{"kind":"Rollout","controller":true}]"#,
        true
    )]
    #[case::owner_not_controller(r#"[{"kind":"Deployment","controller":false}]"#, false)]
    #[case::no_controller_field(r#"[{"kind":"Deployment","name":"web"}]"#, false)]
    #[case::controller_as_string(r#"[{"kind":"Deployment","controller":"true"}]"#, false)]
    #[case::empty(r#"[]"#, false)]
    #[case::null("null", false)]
    #[case::not_a_list(r#"{"controller":true}"#, false)]
    #[case::entry_not_an_object(r#"[true]"#, false)]
    fn a_controller_is_an_owner_reference_with_controller_true(
        #[case] owners: &str,
        #[case] controlled: bool,
    ) {
        let json =
            format!(r#"{{"metadata":{{"name":"x","ownerReferences":{owners}}},"spec":{{}}}}"#);
        let Obj(Shaped::Fits(node)) = object(&json) else {
            panic!()
        };
        assert_eq!(node.has_controller(), controlled);
    }

    #[test]
    fn only_the_objects_own_metadata_names_its_controller() {
        let json = r#"{"metadata":{"name":"x"},"spec":{"template":{"metadata":
            {"ownerReferences":[{"controller":true}]},"spec":{}}}}"#;
        let Obj(Shaped::Fits(node)) = object(json) else {
            panic!()
        };
        assert!(!node.has_controller());
        let no_metadata = object(r#"{"spec":{}}"#);
        let Obj(Shaped::Fits(node)) = no_metadata else {
            panic!()
        };
        assert!(!node.has_controller());
    }

    #[test]
    fn payload_borrows_and_skips_the_rest() {
        let payload = br#"{"request":{"uid":"1","kind":{"group":"","version":"v1","kind":"Pod"},
            "operation":"UPDATE","subResource":"ephemeralcontainers","object":{"spec":{}},
            "oldObject":null,"userInfo":{"username":"u"}},"settings":{"mode":"warn"}}"#;
        let payload = Payload::parse(payload).unwrap();
        assert_eq!(
            payload.request.evaluated_operation(),
            Some(Operation::Update)
        );
        assert!(payload.request.is_ephemeral_containers_update());
        assert!(payload.request.workload().unwrap().is_pod());
        assert!(payload.request.old_object.is_none());
        assert!(payload.request.object.is_some());
        assert_eq!(payload.settings.unwrap().get(), r#"{"mode":"warn"}"#);
    }

    #[test]
    fn object_text_is_the_object_as_sent() {
        let payload = br#"{"settings":{},"request":{"kind":{"kind":"Pod"},"operation":"CREATE",
            "object":{"spec":{"containers":[ {"image" :"a:1"} ]}}}}"#;
        let text = object_text(payload).unwrap().get();
        assert_eq!(text, r#"{"spec":{"containers":[ {"image" :"a:1"} ]}}"#);
    }

    #[rstest]
    #[case::delete("DELETE")]
    #[case::connect("CONNECT")]
    #[case::lower("create")]
    fn other_operations_are_not_evaluated(#[case] operation: &str) {
        let payload =
            format!(r#"{{"request":{{"kind":{{"kind":"Pod"}},"operation":"{operation}"}}}}"#);
        let payload = Payload::parse(payload.as_bytes()).unwrap();
        assert_eq!(payload.request.evaluated_operation(), None);
    }

    /// A request as the audit scanner sends it, with `edit` applied to its JSON first.
    fn audit_request(edit: impl FnOnce(&mut serde_json::Value)) -> bool {
        let mut request = serde_json::json!({
            "uid": "0d4c6b2a-8e1f-4a7b-9c3d-5e6f7a8b9c0d",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "Deployment"},
            "requestKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "name": "web", "namespace": "default", "operation": "CREATE", "userInfo": {},
            "object": {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "uid": "0d4c6b2a-8e1f-4a7b-9c3d-5e6f7a8b9c0d"},
                "spec": {"template": {"spec": {"containers": []}}}},
            "oldObject": null, "options": null,
        });
        edit(&mut request);
        let payload = serde_json::to_vec(&serde_json::json!({ "request": request })).unwrap();
        Payload::parse(&payload).unwrap().request.is_audit()
    }

    #[test]
    fn the_audit_scanners_request_is_an_audit() {
        assert!(audit_request(|_| {}));
    }

    #[rstest]
    #[case::user_info_absent(|r: &mut serde_json::Value| { r.as_object_mut().unwrap().remove("userInfo"); })]
    #[case::user_info_null(|r: &mut serde_json::Value| r["userInfo"] = serde_json::Value::Null)]
    #[case::username_empty(|r: &mut serde_json::Value| r["userInfo"] = serde_json::json!({"username": ""}))]
    #[case::username_null(|r: &mut serde_json::Value| r["userInfo"] = serde_json::json!({"username": null}))]
    #[case::groups_only(|r: &mut serde_json::Value| r["userInfo"] = serde_json::json!({"groups": ["system:authenticated"]}))]
    fn no_username_is_no_user(#[case] edit: fn(&mut serde_json::Value)) {
        assert!(audit_request(edit));
    }

    #[rstest]
    #[case::update(|r: &mut serde_json::Value| r["operation"] = "UPDATE".into())]
    #[case::lower_case_create(|r: &mut serde_json::Value| r["operation"] = "create".into())]
    #[case::a_user(|r: &mut serde_json::Value| r["userInfo"] = serde_json::json!({"username": "kubernetes-admin"}))]
    #[case::a_service_account(|r: &mut serde_json::Value| {
        r["userInfo"] = serde_json::json!({"username": "system:serviceaccount:kubewarden:audit-scanner"})
    })]
    #[case::unreadable_user_info(|r: &mut serde_json::Value| r["userInfo"] = "admin".into())]
    #[case::username_not_a_string(|r: &mut serde_json::Value| r["userInfo"] = serde_json::json!({"username": 7}))]
    #[case::plural_resource(|r: &mut serde_json::Value| r["resource"]["resource"] = "deployments".into())]
    #[case::no_resource(|r: &mut serde_json::Value| { r.as_object_mut().unwrap().remove("resource"); })]
    #[case::resource_not_an_object(|r: &mut serde_json::Value| r["resource"] = "Deployment".into())]
    #[case::another_uid(|r: &mut serde_json::Value| r["uid"] = "705ab4f5-6393-11e8-b7cc-42010a800002".into())]
    #[case::no_uid(|r: &mut serde_json::Value| { r.as_object_mut().unwrap().remove("uid"); })]
    #[case::empty_uids(|r: &mut serde_json::Value| {
        r["uid"] = "".into();
        r["object"]["metadata"]["uid"] = "".into();
    })]
    #[case::object_without_uid(|r: &mut serde_json::Value| {
        r["object"]["metadata"].as_object_mut().unwrap().remove("uid");
    })]
    #[case::no_object(|r: &mut serde_json::Value| r["object"] = serde_json::Value::Null)]
    fn any_condition_missing_is_not_an_audit(#[case] edit: fn(&mut serde_json::Value)) {
        assert!(!audit_request(edit));
    }

    #[test]
    fn unreadable_payload_is_an_error() {
        let error = Payload::parse(b"{\"request\":{}}")
            .err()
            .unwrap()
            .to_string();
        assert!(error.starts_with("the request cannot be read"), "{error}");
    }
}
