//! The one walker over every place a pod spec names an image: containers, init containers
//! (sidecars included), ephemeral containers and image volumes.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::RequestError;
use crate::request::{field, is_object};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SlotList {
    Containers,
    InitContainers,
    EphemeralContainers,
    ImageVolumes,
}

impl SlotList {
    const ALL: [Self; 4] = [
        Self::Containers,
        Self::InitContainers,
        Self::EphemeralContainers,
        Self::ImageVolumes,
    ];

    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::Containers => "containers",
            Self::InitContainers => "initContainers",
            Self::EphemeralContainers => "ephemeralContainers",
            Self::ImageVolumes => "volumes",
        }
    }

    /// The field that holds the pull policy, relative to the list entry.
    pub(crate) fn policy_field(self) -> &'static str {
        match self {
            Self::ImageVolumes => "image.pullPolicy",
            _ => "imagePullPolicy",
        }
    }

    pub(crate) fn is_container(self) -> bool {
        self != Self::ImageVolumes
    }
}

/// One place an image is named, with where it is and how it is pulled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageSlot<'a> {
    pub(crate) location: Location,
    pub(crate) name: Cow<'a, str>,
    pub(crate) image: Cow<'a, str>,
    pub(crate) pull_policy: Option<Cow<'a, str>>,
}

/// Where a slot sits in the object: the pod spec's path, the list and the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) pod_spec_path: &'static [&'static str],
    pub(crate) list: SlotList,
    pub(crate) index: usize,
}

impl Location {
    /// JSON Pointer of the object that holds the pull policy key.
    pub(crate) fn policy_holder_pointer(&self) -> String {
        let mut pointer = String::new();
        for key in self.pod_spec_path {
            pointer.push('/');
            pointer.push_str(key);
        }
        pointer.push('/');
        pointer.push_str(self.list.key());
        pointer.push('/');
        pointer.push_str(&self.index.to_string());
        if self.list == SlotList::ImageVolumes {
            pointer.push_str("/image");
        }
        pointer
    }

    pub(crate) fn policy_key(&self) -> &'static str {
        match self.list {
            SlotList::ImageVolumes => "pullPolicy",
            _ => "imagePullPolicy",
        }
    }
}

/// `spec.template.spec.initContainers[0]`, as messages name it.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for key in self.pod_spec_path {
            write!(f, "{key}.")?;
        }
        write!(f, "{}[{}]", self.list.key(), self.index)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpecLists<'a> {
    #[serde(borrow, default)]
    containers: Option<&'a RawValue>,
    #[serde(borrow, default)]
    init_containers: Option<&'a RawValue>,
    #[serde(borrow, default)]
    ephemeral_containers: Option<&'a RawValue>,
    #[serde(borrow, default)]
    volumes: Option<&'a RawValue>,
}

impl<'a> PodSpecLists<'a> {
    fn list(&self, list: SlotList) -> Option<&'a RawValue> {
        match list {
            SlotList::Containers => self.containers,
            SlotList::InitContainers => self.init_containers,
            SlotList::EphemeralContainers => self.ephemeral_containers,
            SlotList::ImageVolumes => self.volumes,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry<'a> {
    #[serde(borrow, default)]
    name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    image: Option<&'a RawValue>,
    #[serde(borrow, default)]
    image_pull_policy: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// Every image slot of `pod_spec` (the object at `pod_spec_path`), in list then index order.
pub(crate) fn image_slots<'a>(
    pod_spec: &'a RawValue,
    pod_spec_path: &'static [&'static str],
) -> Result<Vec<ImageSlot<'a>>, RequestError> {
    let lists: PodSpecLists<'a> = serde_json::from_str(pod_spec.get()).map_err(|error| {
        let path = pod_spec_path.join(".");
        if is_object(pod_spec) {
            RequestError::Malformed {
                path,
                reason: error.to_string(),
            }
        } else {
            RequestError::NotAnObject(path)
        }
    })?;
    let mut slots = Vec::new();
    for list in SlotList::ALL {
        let Some(raw_list) = lists.list(list).filter(|raw| raw.get() != "null") else {
            continue;
        };
        let entries: Vec<&'a RawValue> = serde_json::from_str(raw_list.get()).map_err(|_| {
            RequestError::NotAList(format!("{}.{}", pod_spec_path.join("."), list.key()))
        })?;
        slots.reserve(entries.len());
        for (index, raw_entry) in entries.into_iter().enumerate() {
            let location = Location {
                pod_spec_path,
                list,
                index,
            };
            if let Some(slot) = read_slot(raw_entry, location)? {
                slots.push(slot);
            }
        }
    }
    Ok(slots)
}

fn read_slot<'a>(
    raw: &'a RawValue,
    location: Location,
) -> Result<Option<ImageSlot<'a>>, RequestError> {
    let entry: Entry<'a> = match serde_json::from_str(raw.get()) {
        Ok(entry) if is_object(raw) => entry,
        _ => return Err(RequestError::NotAnObject(location.to_string())),
    };
    let name = text(entry.name, &location, "name")?.unwrap_or_default();
    if location.list.is_container() {
        let image = text(entry.image, &location, "image")?
            .ok_or_else(|| RequestError::Missing(format!("{location}.image")))?;
        let pull_policy = text(entry.image_pull_policy, &location, "imagePullPolicy")?;
        return Ok(Some(ImageSlot {
            location,
            name,
            image,
            pull_policy,
        }));
    }
    let Some(volume_image) = entry.image.filter(|raw| raw.get() != "null") else {
        return Ok(None);
    };
    let not_an_object = || RequestError::NotAnObject(format!("{location}.image"));
    if !is_object(volume_image) {
        return Err(not_an_object());
    }
    let reference = field(volume_image, "reference").map_err(|_| not_an_object())?;
    let pull_policy = field(volume_image, "pullPolicy").map_err(|_| not_an_object())?;
    let image = text(reference, &location, "image.reference")?
        .ok_or_else(|| RequestError::Missing(format!("{location}.image.reference")))?;
    let pull_policy = text(pull_policy, &location, "image.pullPolicy")?;
    Ok(Some(ImageSlot {
        location,
        name,
        image,
        pull_policy,
    }))
}

/// A string field; `null` counts as absent.
fn text<'a>(
    raw: Option<&'a RawValue>,
    location: &Location,
    key: &str,
) -> Result<Option<Cow<'a, str>>, RequestError> {
    match raw.filter(|raw| raw.get() != "null") {
        None => Ok(None),
        Some(raw) => serde_json::from_str::<Text<'a>>(raw.get())
            .map(|text| Some(text.0))
            .map_err(|_| RequestError::NotAString(format!("{location}.{key}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const POD: &[&str] = &["spec"];
    const TEMPLATE: &[&str] = &["spec", "template", "spec"];

    fn slots_of<'a>(
        json: &'a str,
        path: &'static [&'static str],
    ) -> Result<Vec<ImageSlot<'a>>, RequestError> {
        let raw: &RawValue = serde_json::from_str(json).unwrap();
        image_slots(raw, path)
    }

    #[test]
    fn every_list_is_walked_in_order() {
        let spec = r#"{
            "volumes": [{"name": "data", "emptyDir": {}},
                        {"name": "models", "image": {"reference": "m:1", "pullPolicy": "IfNotPresent"}}],
            "ephemeralContainers": [{"name": "debug", "image": "busybox:1.36"}],
            "initContainers": [{"name": "setup", "image": "busybox:1.36", "imagePullPolicy": "Never"},
                               {"name": "sidecar", "image": "envoy:1", "restartPolicy": "Always"}],
            "containers": [{"name": "app", "image": "nginx:1.27", "imagePullPolicy": "Always", "ports": []}]
        }"#;
        let slots = slots_of(spec, TEMPLATE).unwrap();
        let seen: Vec<_> = slots
            .iter()
            .map(|s| {
                (
                    s.location.to_string(),
                    s.name.as_ref(),
                    s.image.as_ref(),
                    s.pull_policy.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (
                    "spec.template.spec.containers[0]".to_owned(),
                    "app",
                    "nginx:1.27",
                    Some("Always")
                ),
                (
                    "spec.template.spec.initContainers[0]".to_owned(),
                    "setup",
                    "busybox:1.36",
                    Some("Never")
                ),
                (
                    "spec.template.spec.initContainers[1]".to_owned(),
                    "sidecar",
                    "envoy:1",
                    None
                ),
                (
                    "spec.template.spec.ephemeralContainers[0]".to_owned(),
                    "debug",
                    "busybox:1.36",
                    None
                ),
                (
                    "spec.template.spec.volumes[1]".to_owned(),
                    "models",
                    "m:1",
                    Some("IfNotPresent")
                ),
            ]
        );
    }

    #[rstest]
    #[case::container(
        SlotList::Containers,
        3,
        "/spec/template/spec/containers/3",
        "imagePullPolicy"
    )]
    #[case::init(
        SlotList::InitContainers,
        0,
        "/spec/template/spec/initContainers/0",
        "imagePullPolicy"
    )]
    #[case::ephemeral(
        SlotList::EphemeralContainers,
        1,
        "/spec/template/spec/ephemeralContainers/1",
        "imagePullPolicy"
    )]
    #[case::volume(
        SlotList::ImageVolumes,
        2,
        "/spec/template/spec/volumes/2/image",
        "pullPolicy"
    )]
    fn pointers_reach_the_pull_policy_holder(
        #[case] list: SlotList,
        #[case] index: usize,
        #[case] pointer: &str,
        #[case] key: &str,
    ) {
        let location = Location {
            pod_spec_path: TEMPLATE,
            list,
            index,
        };
        assert_eq!(location.policy_holder_pointer(), pointer);
        assert_eq!(location.policy_key(), key);
        assert!(list.policy_field().ends_with(key));
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let slots = slots_of(
            r#"{"containers":[{"name":"a\u0070p","image":"nginx\u003alatest"}]}"#,
            POD,
        )
        .unwrap();
        assert_eq!(slots[0].name, "app");
        assert_eq!(slots[0].image, "nginx:latest");
    }

    #[rstest]
    #[case::absent_lists(r#"{}"#)]
    #[case::null_lists(r#"{"containers":null,"initContainers":null,"volumes":null}"#)]
    #[case::empty_lists(r#"{"containers":[],"ephemeralContainers":[]}"#)]
    fn absent_or_null_lists_are_empty(#[case] spec: &str) {
        assert!(slots_of(spec, POD).unwrap().is_empty());
    }

    #[rstest]
    #[case::containers_object(r#"{"containers":{"name":"a"}}"#, "spec.containers is not a list")]
    #[case::init_string(r#"{"initContainers":"x"}"#, "spec.initContainers is not a list")]
    #[case::volumes_number(r#"{"volumes":1}"#, "spec.volumes is not a list")]
    #[case::entry_not_object(
        r#"{"containers":[{"name":"a","image":"b:1"},"c"]}"#,
        "spec.containers[1] is not an object"
    )]
    #[case::entry_null(r#"{"containers":[null]}"#, "spec.containers[0] is not an object")]
    #[case::image_number(
        r#"{"containers":[{"name":"a","image":42}]}"#,
        "spec.containers[0].image is not a string"
    )]
    #[case::image_missing(
        r#"{"containers":[{"name":"a"}]}"#,
        "the object has no spec.containers[0].image"
    )]
    #[case::image_null(
        r#"{"ephemeralContainers":[{"name":"a","image":null}]}"#,
        "the object has no spec.ephemeralContainers[0].image"
    )]
    #[case::name_number(
        r#"{"containers":[{"name":1,"image":"a:1"}]}"#,
        "spec.containers[0].name is not a string"
    )]
    #[case::policy_bool(
        r#"{"containers":[{"name":"a","image":"a:1","imagePullPolicy":true}]}"#,
        "spec.containers[0].imagePullPolicy is not a string"
    )]
    #[case::volume_image_string(
        r#"{"volumes":[{"name":"v","image":"a:1"}]}"#,
        "spec.volumes[0].image is not an object"
    )]
    #[case::volume_no_reference(
        r#"{"volumes":[{"name":"v","image":{}}]}"#,
        "the object has no spec.volumes[0].image.reference"
    )]
    #[case::volume_reference_list(
        r#"{"volumes":[{"name":"v","image":{"reference":[]}}]}"#,
        "spec.volumes[0].image.reference is not a string"
    )]
    #[case::spec_duplicate_list(
        r#"{"containers":[],"containers":[]}"#,
        "spec cannot be read: duplicate field `containers`"
    )]
    fn malformed_specs_are_named(#[case] spec: &str, #[case] expected: &str) {
        let error = slots_of(spec, POD).unwrap_err().to_string();
        assert!(error.starts_with(expected), "{error:?} is not {expected:?}");
    }
}
