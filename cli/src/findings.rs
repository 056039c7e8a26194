//! The module's answer, cut into findings: each item of a refusal message and each warning,
//! with the text the module wrote, placed on a line of the manifest by the pod-spec path it
//! starts with, and sorted into one of the rules of [`FINDING_KINDS`].
//!
//! Nothing here judges a container: what is wrong comes from the module alone. The table only
//! names the kinds of item the module writes, for SARIF rules and for `--fix`.

use policy_admission::AdmissionResponse;

use crate::yaml::{Node, Position};

/// Where a finding points in a container (or image volume) the item's path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// The `image` field (`image.reference` of an image volume).
    Image,
    /// The pull policy field, or `image` when there is none.
    PullPolicy,
    /// The field the path names, as deep as it exists.
    Path,
}

/// A kind of item the module writes: one SARIF rule.
#[derive(Debug, PartialEq, Eq)]
pub struct FindingKind {
    /// SARIF `ruleId`.
    pub id: &'static str,
    /// SARIF `name` (PascalCase, as code scanning expects).
    pub name: &'static str,
    pub summary: &'static str,
    pub help: &'static str,
    /// Phrases that mark an item of this kind; the first kind with a match wins.
    phrases: &'static [&'static str],
    pub anchor: Anchor,
}

/// Every kind of item the module writes, most specific first. A test runs the module over
/// every fixture and fails on an item that none of them matches.
pub static FINDING_KINDS: [FindingKind; 9] = [
    FindingKind {
        id: "more-findings",
        name: "MoreFindings",
        summary: "The module lists 20 items and counts the rest",
        help: "Fix the listed items and scan again to see the others.",
        phrases: &[],
        anchor: Anchor::Path,
    },
    FindingKind {
        id: "invalid-image-reference",
        name: "InvalidImageReference",
        summary: "The image is not a valid image reference",
        help: "Write the image as the container runtime reads it: [registry/]repository[:tag][@digest], lower-case repository.",
        phrases: &["invalid image reference"],
        anchor: Anchor::Image,
    },
    FindingKind {
        id: "missing-tag",
        name: "MissingTag",
        summary: "The image has neither tag nor digest, so it pulls the implicit latest",
        help: "Give the image a tag or a digest.",
        phrases: &["neither tag nor digest"],
        anchor: Anchor::Image,
    },
    FindingKind {
        id: "denied-tag",
        name: "DeniedTag",
        summary: "The image's tag is one the settings deny",
        help: "Use another tag, or pin the image by digest.",
        phrases: &["is denied"],
        anchor: Anchor::Image,
    },
    FindingKind {
        id: "floating-version",
        name: "FloatingVersion",
        summary: "The image's tag is a floating version, which moves to every new release",
        help: "Use a full version tag (major.minor.patch), or pin the image by digest.",
        phrases: &["is a floating version"],
        anchor: Anchor::Image,
    },
    FindingKind {
        id: "missing-digest",
        name: "MissingDigest",
        summary: "The image is not pinned by a digest",
        help: "Pin the image: name:tag@sha256:<digest>.",
        phrases: &["not pinned by a digest"],
        anchor: Anchor::Image,
    },
    FindingKind {
        id: "pull-policy-changed",
        name: "PullPolicyChanged",
        summary: "Admission sets the pull policy to Always",
        help: "Write imagePullPolicy: Always (image volumes: pullPolicy: Always) in the manifest; `image-pull-policy scan --fix` does it.",
        phrases: &["set to Always"],
        anchor: Anchor::PullPolicy,
    },
    FindingKind {
        id: "pull-policy",
        name: "PullPolicyNotAlways",
        summary: "The pull policy is not Always",
        help: "Write imagePullPolicy: Always (image volumes: pullPolicy: Always).",
        phrases: &["must be Always"],
        anchor: Anchor::PullPolicy,
    },
    FindingKind {
        id: "unreadable-object",
        name: "UnreadableObject",
        summary: "The module cannot read the object where it looks for images",
        help: "Give the pod spec the shape Kubernetes expects: lists of containers, each with a string image.",
        phrases: &[
            "is not a list",
            "is not a string",
            "is not an object",
            "the object has no",
            "has no image",
            "duplicate field",
            "the object is not",
            "the request",
        ],
        anchor: Anchor::Path,
    },
];

/// An item no kind matches: reported as it is, and a test fails on it.
pub static UNCLASSIFIED: FindingKind = FindingKind {
    id: "unclassified",
    name: "Unclassified",
    summary: "An item of the module's answer this version of scan does not know",
    help: "Read the item's text; update image-pull-policy.",
    phrases: &[],
    anchor: Anchor::Path,
};

/// The kind of an item.
pub fn classify(item: &str) -> Option<&'static FindingKind> {
    if is_count_of_more(item) {
        return Some(&FINDING_KINDS[0]);
    }
    FINDING_KINDS
        .iter()
        .find(|kind| kind.phrases.iter().any(|phrase| item.contains(phrase)))
}

/// Whether an item came from the refusal message (admission refuses the object) or is an
/// admission warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Refusal,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub kind: &'static FindingKind,
    pub origin: Origin,
    /// The item as the module wrote it.
    pub text: String,
    /// The pod-spec path the item starts with, when it starts with one.
    pub path: Option<String>,
    pub position: Position,
}

/// The findings of one answer about `object`.
pub fn findings(response: &AdmissionResponse, object: &Node) -> Vec<Finding> {
    let refusal = response
        .status
        .as_ref()
        .and_then(|status| status.message.as_deref())
        .filter(|_| !response.allowed);
    let refusal_items = refusal.into_iter().flat_map(split_refusal);
    let warnings = response.warnings.iter().flatten().map(String::as_str);
    refusal_items
        .map(|item| (item, Origin::Refusal))
        .chain(warnings.map(|item| (item, Origin::Warning)))
        .map(|(item, origin)| {
            let kind = classify(item).unwrap_or(&UNCLASSIFIED);
            let path = leading_path(item);
            Finding {
                kind,
                origin,
                text: item.to_owned(),
                path: path.map(str::to_owned),
                position: locate(object, path, kind.anchor),
            }
        })
        .collect()
}

/// The items of a refusal message: it joins them with `"; "`, and an item may hold `"; "`
/// itself, so a new item starts only where a pod-spec path or the count of more follows.
pub fn split_refusal(message: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut start = 0;
    let mut search = 0;
    while let Some(found) = message[search..].find("; ") {
        let separator = search + found;
        let rest = &message[separator + 2..];
        if leading_path(rest).is_some_and(|path| path.contains('[')) || is_count_of_more(rest) {
            items.push(&message[start..separator]);
            start = separator + 2;
        }
        search = separator + 2;
    }
    items.push(&message[start..]);
    items
}

/// `and 12 more ...`
fn is_count_of_more(text: &str) -> bool {
    text.strip_prefix("and ")
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

/// The path an item starts with (`spec.template.spec.containers[0]`): dotted field names
/// and `[N]` indexes, up to a space, a colon or the end.
fn leading_path(item: &str) -> Option<&str> {
    let end = item
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '[' | ']' | '_')))
        .unwrap_or(item.len());
    let path = &item[..end];
    let ends_well = item[end..].is_empty() || item[end..].starts_with([' ', ':']);
    (ends_well && path.contains('.') && segments(path).is_some()).then_some(path)
}

#[derive(Debug, PartialEq, Eq)]
enum Segment<'a> {
    Field(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Option<Vec<Segment<'_>>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (field, mut indexes) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if field.is_empty() || !field.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return None;
        }
        out.push(Segment::Field(field));
        while !indexes.is_empty() {
            let close = indexes.find(']')?;
            out.push(Segment::Index(indexes.get(1..close)?.parse().ok()?));
            indexes = &indexes[close + 1..];
        }
    }
    Some(out)
}

/// Where a finding points: the anchor field of the node the path names, as far as the path
/// exists; the object itself without a path.
fn locate(object: &Node, path: Option<&str>, anchor: Anchor) -> Position {
    let mut node = object;
    for segment in path.and_then(segments).unwrap_or_default() {
        let next = match segment {
            Segment::Field(field) => node.get(field),
            Segment::Index(index) => node.item(index),
        };
        match next {
            Some(next) => node = next,
            None => return node.span.start,
        }
    }
    let image = || {
        let image = node.entry("image")?;
        Some(match image.value.entry("reference") {
            Some(reference) => reference.key_span.start,
            None => image.key_span.start,
        })
    };
    let pull_policy = || {
        node.entry("imagePullPolicy")
            .or_else(|| node.get("image")?.entry("pullPolicy"))
            .map(|entry| entry.key_span.start)
    };
    let anchored = match anchor {
        Anchor::Image => image(),
        Anchor::PullPolicy => pull_policy().or_else(image),
        Anchor::Path => None,
    };
    anchored.unwrap_or(node.span.start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;
    use policy_admission::AdmissionResponseStatus;

    #[test]
    fn refusals_split_only_before_a_path_or_the_count() {
        let message = "spec.containers[0] \"a\" (x:1): tag \"x; y\" is denied; use another tag or a digest; \
                       spec.initContainers[1] \"b\" (y): imagePullPolicy is Never, must be Always; \
                       the pull policy of an existing Pod's container cannot be changed; \
                       spec.volumes[0] \"v\" (z:1): invalid image reference: bad; and 3 more violations";
        assert_eq!(
            split_refusal(message),
            [
                "spec.containers[0] \"a\" (x:1): tag \"x; y\" is denied; use another tag or a digest",
                "spec.initContainers[1] \"b\" (y): imagePullPolicy is Never, must be Always; \
                 the pull policy of an existing Pod's container cannot be changed",
                "spec.volumes[0] \"v\" (z:1): invalid image reference: bad",
                "and 3 more violations",
            ]
        );
        assert_eq!(
            split_refusal("the object has no spec"),
            ["the object has no spec"]
        );
    }

    #[test]
    fn paths_are_read_from_the_start_of_an_item() {
        assert_eq!(
            leading_path("spec.jobTemplate.spec.template.spec.containers[10] \"a\": x"),
            Some("spec.jobTemplate.spec.template.spec.containers[10]")
        );
        assert_eq!(
            leading_path("spec.containers[0].image is not a string"),
            Some("spec.containers[0].image")
        );
        assert_eq!(leading_path("and 3 more warnings"), None);
        assert_eq!(leading_path("the object has no spec"), None);
        assert_eq!(leading_path("spec.containers[x] \"a\""), None);
    }

    const POD: &str = "\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - name: a
      image: nginx:1.27
      imagePullPolicy: IfNotPresent
    - name: b
      image: busybox
  volumes:
    - name: v
      image:
        reference: registry.example/data:1
";

    #[test]
    fn findings_point_at_the_field_their_kind_is_about() {
        let documents = yaml::load(POD).unwrap();
        let pod = documents[0].root.as_ref().unwrap();
        let response = AdmissionResponse {
            allowed: false,
            status: Some(AdmissionResponseStatus {
                message: Some(
                    "spec.containers[0] \"a\" (nginx:1.27): imagePullPolicy is IfNotPresent, must be Always; \
                     spec.containers[1] \"b\" (busybox): image has neither tag nor digest, so it pulls the implicit \"latest\"; \
                     spec.volumes[0] \"v\" (registry.example/data:1): pullPolicy is not set (defaults to IfNotPresent), must be Always; \
                     spec.containers[7] \"gone\" (x): image is not pinned by a digest (name@sha256:...); \
                     spec.containers[0] \"a\" (nginx:1.27): tag \"1.27\" is a floating version: it gives major and minor, \
                     not the patch version, so it moves to every new release; use a full version (major.minor.patch) or a digest; \
                     and 2 more violations"
                        .into(),
                ),
                code: None,
            }),
            warnings: Some(vec!["something new the module says".into()]),
            ..AdmissionResponse::default()
        };
        let found: Vec<_> = findings(&response, pod)
            .iter()
            .map(|f| (f.kind.id, f.origin, f.path.clone(), f.position.line))
            .collect();
        let path = |p: &str| Some(p.to_owned());
        assert_eq!(
            found,
            [
                (
                    "pull-policy",
                    Origin::Refusal,
                    path("spec.containers[0]"),
                    8
                ),
                (
                    "missing-tag",
                    Origin::Refusal,
                    path("spec.containers[1]"),
                    10
                ),
                ("pull-policy", Origin::Refusal, path("spec.volumes[0]"), 14),
                (
                    "missing-digest",
                    Origin::Refusal,
                    path("spec.containers[7]"),
                    6
                ),
                (
                    "floating-version",
                    Origin::Refusal,
                    path("spec.containers[0]"),
                    7
                ),
                ("more-findings", Origin::Refusal, None, 1),
                ("unclassified", Origin::Warning, None, 1),
            ]
        );
    }

    #[test]
    fn an_accepted_answer_has_only_its_warnings() {
        let documents = yaml::load(POD).unwrap();
        let pod = documents[0].root.as_ref().unwrap();
        let response = AdmissionResponse {
            allowed: true,
            status: Some(AdmissionResponseStatus {
                message: Some("ignored".into()),
                code: None,
            }),
            warnings: Some(vec![
                "spec.containers[0] \"a\" (nginx:1.27): imagePullPolicy set to Always (was IfNotPresent)".into(),
            ]),
            ..AdmissionResponse::default()
        };
        let found = findings(&response, pod);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind.id, "pull-policy-changed");
        assert_eq!(found[0].origin, Origin::Warning);
    }
}
