//! The borrowed, partial view of a validation request: only what the policy reads is decoded,
//! everything else is skipped without being built.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::RequestError;

/// What the policy server sends to `validate`.
#[derive(Deserialize)]
pub(crate) struct Payload<'a> {
    #[serde(borrow)]
    pub(crate) request: AdmissionRequest<'a>,
    #[serde(borrow, default)]
    pub(crate) settings: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AdmissionRequest<'a> {
    #[serde(borrow)]
    pub(crate) kind: GroupVersionKind<'a>,
    #[serde(borrow)]
    pub(crate) operation: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(crate) sub_resource: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(crate) old_object: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(crate) struct GroupVersionKind<'a> {
    #[serde(borrow, default)]
    pub(crate) group: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) kind: Cow<'a, str>,
}

impl<'a> Payload<'a> {
    pub(crate) fn parse(payload: &'a [u8]) -> Result<Self, RequestError> {
        serde_json::from_slice(payload).map_err(|error| RequestError::Unreadable(error.to_string()))
    }
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
}

/// A kind the policy evaluates and where its pod spec lives.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Workload {
    group: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) pod_spec_path: &'static [&'static str],
}

const TEMPLATE: &[&str] = &["spec", "template", "spec"];

const WORKLOADS: &[Workload] = &[
    Workload {
        group: "",
        kind: "Pod",
        pod_spec_path: &["spec"],
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
        pod_spec_path: &["spec", "jobTemplate", "spec", "template", "spec"],
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
    pub(crate) fn pod_spec<'a>(&self, object: &'a RawValue) -> Result<&'a RawValue, RequestError> {
        if !is_object(object) {
            return Err(RequestError::ObjectNotAnObject);
        }
        let mut current = object;
        for (depth, key) in self.pod_spec_path.iter().enumerate() {
            let path = || {
                self.pod_spec_path
                    .get(..=depth)
                    .unwrap_or_default()
                    .join(".")
            };
            current = match field(current, key) {
                Ok(Some(value)) => value,
                Ok(None) => return Err(RequestError::Missing(path())),
                Err(NotAnObject) => return Err(RequestError::NotAnObject(path())),
            };
            if !is_object(current) {
                return Err(RequestError::NotAnObject(path()));
            }
        }
        Ok(current)
    }
}

/// A raw value holds exactly the value's text, so its first byte tells its type.
pub(crate) fn is_object(raw: &RawValue) -> bool {
    raw.get().starts_with('{')
}

#[derive(Debug)]
pub(crate) struct NotAnObject;

/// The value of `key` in the JSON object `raw`, skipping every other entry undecoded;
/// `null` counts as absent.
pub(crate) fn field<'a>(raw: &'a RawValue, key: &str) -> Result<Option<&'a RawValue>, NotAnObject> {
    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
    let found = FieldSeed { key }
        .deserialize(&mut deserializer)
        .map_err(|_| NotAnObject)?;
    Ok(found.filter(|value| value.get() != "null"))
}

struct FieldSeed<'k> {
    key: &'k str,
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Option<&'de RawValue>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if key.0 == self.key {
                found = Some(map.next_value::<&'de RawValue>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn raw(json: &str) -> &RawValue {
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
            Workload::of(group, kind).unwrap().pod_spec_path.join("."),
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
        let object = raw(
            r#"{"metadata":{"name":"x","spec":1},"spec":{"schedule":"* * * * *",
                "jobTemplate":{"spec":{"template":{"metadata":{},"spec":{"containers":[]}}}}}}"#,
        );
        let cronjob = Workload::of(Some("batch"), "CronJob").unwrap();
        assert_eq!(
            cronjob.pod_spec(object).unwrap().get(),
            r#"{"containers":[]}"#
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
    fn unreadable_pod_specs_are_named(#[case] json: &str, #[case] expected: &str) {
        let deployment = Workload::of(Some("apps"), "Deployment").unwrap();
        let error = deployment.pod_spec(raw(json)).unwrap_err().to_string();
        assert!(error.contains(expected), "{error:?} lacks {expected:?}");
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
        assert_eq!(payload.settings.unwrap().get(), r#"{"mode":"warn"}"#);
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

    #[test]
    fn unreadable_payload_is_an_error() {
        let error = Payload::parse(b"{\"request\":{}}")
            .err()
            .unwrap()
            .to_string();
        assert!(error.starts_with("the request cannot be read"), "{error}");
    }
}
