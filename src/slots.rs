//! The one walker over every place a pod spec names an image: containers, init containers
//! (sidecars included), ephemeral containers and image volumes.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;

use crate::error::{RequestError, SlotProblem};
use crate::request::{dotted, Entries, Entry, Json, List, Node, Obj, Shaped, Step};

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

    /// The field that names the image, relative to the list entry, as messages name it.
    pub(crate) fn image_field(self) -> &'static str {
        match self {
            Self::ImageVolumes => "image.reference",
            _ => "image",
        }
    }

    /// The field that holds the pull policy, relative to the list entry, as messages name it.
    pub(crate) fn policy_field(self) -> &'static str {
        match self {
            Self::ImageVolumes => "image.pullPolicy",
            _ => "imagePullPolicy",
        }
    }

    /// The pull policy's key in the object that holds it.
    pub(crate) fn policy_key(self) -> &'static str {
        match self {
            Self::ImageVolumes => "pullPolicy",
            _ => "imagePullPolicy",
        }
    }

    pub(crate) fn is_container(self) -> bool {
        self != Self::ImageVolumes
    }

    fn of<'n, 'a>(self, pod_spec: &'n Node<'a>) -> Option<&'n List<Obj<Entry<'a>>>> {
        match self {
            Self::Containers => pod_spec.containers.as_ref(),
            Self::InitContainers => pod_spec.init_containers.as_ref(),
            Self::EphemeralContainers => pod_spec.ephemeral_containers.as_ref(),
            Self::ImageVolumes => pod_spec.volumes.as_ref(),
        }
    }
}

/// One place an image is named, with where it is and how it is pulled.
#[derive(Debug, Clone)]
pub(crate) struct ImageSlot<'a> {
    pub(crate) location: Location,
    pub(crate) name: Cow<'a, str>,
    pub(crate) image: Cow<'a, str>,
    pub(crate) pull_policy: Option<Cow<'a, str>>,
    pub(crate) anchor: Anchor<'a>,
}

/// Where a slot's fields sit in the request text, so a mutation can edit them in place.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Anchor<'a> {
    /// The image string (a container's `image`, an image volume's `image.reference`).
    pub(crate) image: Json<'a>,
    /// The pull policy's value, `null` included: a mutation replaces it rather than adding
    /// the key a second time.
    pub(crate) pull_policy: Option<Json<'a>>,
}

/// Where a slot sits in the object: the pod spec's path, the list and the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) pod_spec_path: &'static [Step],
    pub(crate) list: SlotList,
    pub(crate) index: usize,
}

/// `spec.template.spec.initContainers[0]`, as messages name it.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in self.pod_spec_path {
            write!(f, "{}.", step.key())?;
        }
        write!(f, "{}[{}]", self.list.key(), self.index)
    }
}

#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// Every image slot of `pod_spec` (the object at `pod_spec_path`), in list then index order.
pub(crate) fn image_slots<'a>(
    pod_spec: &Node<'a>,
    pod_spec_path: &'static [Step],
) -> Result<Vec<ImageSlot<'a>>, RequestError> {
    let mut slots = Vec::new();
    for list in SlotList::ALL {
        let entries = match list.of(pod_spec) {
            None => continue,
            Some(List(Shaped::Mismatch)) => {
                return Err(RequestError::NotAList(format!(
                    "{}.{}",
                    dotted(pod_spec_path),
                    list.key()
                )))
            }
            Some(List(Shaped::Fits(entries))) => entries,
        };
        slots.reserve(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let location = Location {
                pod_spec_path,
                list,
                index,
            };
            let Obj(Shaped::Fits(entry)) = entry else {
                return Err(RequestError::NotAnObject(location.to_string()));
            };
            if let Some(slot) = read_slot(entry, location)? {
                slots.push(slot);
            }
        }
    }
    Ok(slots)
}

fn read_slot<'a>(
    entry: &Entry<'a>,
    location: Location,
) -> Result<Option<ImageSlot<'a>>, RequestError> {
    let name = match present(entry.name) {
        None => Cow::Borrowed(""),
        Some(raw) => {
            string_value(raw).ok_or_else(|| RequestError::NotAString(format!("{location}.name")))?
        }
    };
    let problem = |problem| RequestError::Slot {
        location: location.to_string(),
        name: name.to_string(),
        problem,
    };
    // A container names its image and policy itself; an image volume inside its `image`,
    // where the reference may be left for a controller to fill in: nothing to pull yet.
    let (raw_image, raw_policy) = if location.list.is_container() {
        let raw_image = present(entry.image).ok_or_else(|| problem(SlotProblem::NoImage))?;
        (raw_image, entry.image_pull_policy)
    } else {
        let Some(raw_volume_image) = present(entry.image) else {
            return Ok(None);
        };
        let VolumeImage {
            reference,
            pull_policy,
        } = VolumeImage::read(raw_volume_image).map_err(problem)?;
        match present(reference) {
            Some(reference) if reference.get() != "\"\"" => (reference, pull_policy),
            _ => return Ok(None),
        }
    };
    let image_field = location.list.image_field();
    let image =
        string_value(raw_image).ok_or_else(|| problem(SlotProblem::NotAString(image_field)))?;
    let pull_policy = match present(raw_policy) {
        None => None,
        Some(raw) => Some(
            string_value(raw)
                .ok_or_else(|| problem(SlotProblem::NotAString(location.list.policy_field())))?,
        ),
    };
    Ok(Some(ImageSlot {
        location,
        name,
        image,
        pull_policy,
        anchor: Anchor {
            image: raw_image,
            pull_policy: raw_policy,
        },
    }))
}

/// An image volume's `image`: the two fields the policy reads, as JSON text.
struct VolumeImage<'a> {
    reference: Option<Json<'a>>,
    pull_policy: Option<Json<'a>>,
}

impl<'a> VolumeImage<'a> {
    fn read(raw: Json<'a>) -> Result<Self, SlotProblem> {
        let Ok(Entries(entries)) = serde_json::from_str::<Entries<'a>>(raw.get()) else {
            return Err(SlotProblem::ImageNotAnObject);
        };
        let mut image = Self {
            reference: None,
            pull_policy: None,
        };
        for (key, value) in entries {
            let field = match key.as_ref() {
                "reference" => &mut image.reference,
                "pullPolicy" => &mut image.pull_policy,
                _ => continue,
            };
            if field.replace(Json::of(value)).is_some() {
                return Err(SlotProblem::DuplicateField(key.into_owned()));
            }
        }
        Ok(image)
    }
}

/// `null` counts as absent.
fn present(raw: Option<Json<'_>>) -> Option<Json<'_>> {
    raw.filter(|raw| raw.get() != "null")
}

/// The value of a JSON string, borrowed when it holds no escape (the text was validated
/// when it was read); `None` for any other JSON type.
fn string_value(raw: Json<'_>) -> Option<Cow<'_, str>> {
    let quoted = raw.get();
    match quoted
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        Some(plain) if !plain.contains('\\') => Some(Cow::Borrowed(plain)),
        _ => serde_json::from_str::<Text<'_>>(quoted)
            .ok()
            .map(|text| text.0),
    }
}

/// A slot as the walker would make it, for other modules' tests.
#[cfg(test)]
pub(crate) fn test_slot(
    pod_spec_path: &'static [Step],
    list: SlotList,
    index: usize,
    name: &'static str,
    image: &'static str,
    pull_policy: Option<&'static str>,
) -> ImageSlot<'static> {
    let json = |text: &str| -> Json<'static> {
        let quoted: &'static str = Box::leak(
            serde_json::to_string(text)
                .unwrap_or_default()
                .into_boxed_str(),
        );
        Json::of(serde_json::from_str(quoted).unwrap_or_else(|_| unreachable!()))
    };
    ImageSlot {
        location: Location {
            pod_spec_path,
            list,
            index,
        },
        name: Cow::Borrowed(name),
        image: Cow::Borrowed(image),
        pull_policy: pull_policy.map(Cow::Borrowed),
        anchor: Anchor {
            image: json(image),
            pull_policy: pull_policy.map(json),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const POD: &[Step] = &[Step::Spec];
    const TEMPLATE: &[Step] = &[Step::Spec, Step::Template, Step::Spec];

    fn slots_of(
        json: &str,
        path: &'static [Step],
    ) -> Result<Vec<ImageSlot<'static>>, RequestError> {
        let json: &'static str = Box::leak(json.to_owned().into_boxed_str());
        let pod_spec: Node<'static> =
            serde_json::from_str(json).map_err(|e| RequestError::Unreadable(e.to_string()))?;
        image_slots(&pod_spec, path)
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

    #[test]
    fn anchors_point_at_the_fields_in_the_text() {
        let slots = slots_of(
            r#"{"containers":[{"image":"a:1","imagePullPolicy":"Never"},{"image":"b:1"}],
                "volumes":[{"name":"v","image":{"pullPolicy":"IfNotPresent","reference":"m:1"}}]}"#,
            POD,
        )
        .unwrap();
        let anchors: Vec<_> = slots
            .iter()
            .map(|s| (s.anchor.image.get(), s.anchor.pull_policy.map(Json::get)))
            .collect();
        assert_eq!(
            anchors,
            [
                (r#""a:1""#, Some(r#""Never""#)),
                (r#""b:1""#, None),
                (r#""m:1""#, Some(r#""IfNotPresent""#)),
            ]
        );
    }

    #[test]
    fn locations_name_the_list_entry() {
        let location = Location {
            pod_spec_path: TEMPLATE,
            list: SlotList::ImageVolumes,
            index: 2,
        };
        assert_eq!(location.to_string(), "spec.template.spec.volumes[2]");
        assert_eq!(SlotList::ImageVolumes.policy_key(), "pullPolicy");
        assert_eq!(SlotList::InitContainers.policy_key(), "imagePullPolicy");
    }

    #[rstest]
    #[case::plain(r#""nginx:1""#, Some("nginx:1"))]
    #[case::empty(r#""""#, Some(""))]
    #[case::escaped_quote(r#""a\"b""#, Some("a\"b"))]
    #[case::escaped_backslash_at_end(r#""a\\""#, Some("a\\"))]
    #[case::unicode_escape(r#""\u0041lways""#, Some("Always"))]
    #[case::number("42", None)]
    #[case::object(r#"{"a":"b"}"#, None)]
    #[case::list(r#"["a"]"#, None)]
    fn string_values(#[case] json: &str, #[case] expected: Option<&str>) {
        let raw: &serde_json::value::RawValue = serde_json::from_str(json).unwrap();
        assert_eq!(string_value(Json::of(raw)).as_deref(), expected);
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
    #[case::absent(r#"{"name":"v","image":{"pullPolicy":"IfNotPresent"}}"#)]
    #[case::null(r#"{"name":"v","image":{"reference":null,"pullPolicy":"Never"}}"#)]
    #[case::empty(r#"{"name":"v","image":{"reference":""}}"#)]
    fn an_image_volume_without_reference_is_not_a_slot(#[case] volume: &str) {
        let spec =
            format!(r#"{{"volumes":[{volume}],"containers":[{{"name":"a","image":"a:1"}}]}}"#);
        for path in [POD, TEMPLATE] {
            let slots = slots_of(&spec, path).unwrap();
            assert_eq!(slots.len(), 1);
            assert_eq!(slots[0].location.list, SlotList::Containers);
        }
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
    #[case::entry_number(r#"{"containers":[7]}"#, "spec.containers[0] is not an object")]
    #[case::containers_number(r#"{"containers":7}"#, "spec.containers is not a list")]
    #[case::containers_string(r#"{"containers":"[]"}"#, "spec.containers is not a list")]
    #[case::image_number(
        r#"{"containers":[{"name":"a","image":42}]}"#,
        "spec.containers[0] \"a\": image is not a string"
    )]
    #[case::image_missing(
        r#"{"containers":[{"name":"web"}]}"#,
        "spec.containers[0] \"web\": has no image"
    )]
    #[case::image_missing_without_name(
        r#"{"initContainers":[{}]}"#,
        "spec.initContainers[0] \"\": has no image"
    )]
    #[case::image_null(
        r#"{"ephemeralContainers":[{"name":"a","image":null}]}"#,
        "spec.ephemeralContainers[0] \"a\": has no image"
    )]
    #[case::name_number(
        r#"{"containers":[{"name":1,"image":"a:1"}]}"#,
        "spec.containers[0].name is not a string"
    )]
    #[case::policy_bool(
        r#"{"containers":[{"name":"a","image":"a:1","imagePullPolicy":true}]}"#,
        "spec.containers[0] \"a\": imagePullPolicy is not a string"
    )]
    #[case::volume_image_string(
        r#"{"volumes":[{"name":"v","image":"a:1"}]}"#,
        "spec.volumes[0] \"v\": image is not an object"
    )]
    #[case::volume_reference_list(
        r#"{"volumes":[{"name":"v","image":{"reference":[]}}]}"#,
        "spec.volumes[0] \"v\": image.reference is not a string"
    )]
    #[case::volume_policy_number(
        r#"{"volumes":[{"name":"v","image":{"reference":"m:1","pullPolicy":1}}]}"#,
        "spec.volumes[0] \"v\": image.pullPolicy is not a string"
    )]
    #[case::volume_duplicate_reference(
        r#"{"volumes":[{"name":"v","image":{"reference":"m:1","reference":"evil:latest"}}]}"#,
        "spec.volumes[0] \"v\": duplicate field `reference` in image"
    )]
    #[case::volume_duplicate_escaped_policy(
        r#"{"volumes":[{"name":"v","image":{"reference":"m:1","pullPolicy":"Always","pull\u0050olicy":"Never"}}]}"#,
        "spec.volumes[0] \"v\": duplicate field `pullPolicy` in image"
    )]
    #[case::spec_duplicate_list(
        r#"{"containers":[],"containers":[]}"#,
        "the request cannot be read: duplicate field `containers`"
    )]
    fn malformed_specs_are_named(#[case] spec: &str, #[case] expected: &str) {
        let error = slots_of(spec, POD).unwrap_err().to_string();
        assert!(error.starts_with(expected), "{error:?} is not {expected:?}");
    }
}
