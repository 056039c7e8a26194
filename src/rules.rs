//! The rules, as pure functions of the settings and one image slot.

use std::cell::OnceCell;

use crate::reference::{ImageReference, ReferenceError};
use crate::settings::{Pattern, Settings};
use crate::slots::ImageSlot;

pub(crate) const ALWAYS: &str = "Always";

/// One rule an image slot breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rule {
    InvalidReference(ReferenceError),
    /// Neither tag nor digest: the runtime pulls the implicit `latest`.
    MissingTag,
    DeniedTag(String),
    /// `requireFullVersion`: a version tag without its patch (or minor) part, which moves to
    /// each new release of that line.
    FloatingVersion {
        tag: String,
        given: VersionParts,
    },
    MissingDigest,
    /// The effective pull policy is not `Always`.
    PullPolicy(PullPolicy),
}

impl Rule {
    /// Only the pull policy can be repaired by setting a field.
    pub(crate) fn is_fixable(&self) -> bool {
        matches!(self, Self::PullPolicy(_))
    }
}

/// What a floating version tag gives of major, minor and patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VersionParts {
    Major,
    MajorAndMinor,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PullPolicy {
    Written(String),
    /// Absent from the request: what the API server would default it to.
    Defaulted(&'static str),
}

/// Every rule `slot` breaks under `settings`, in a fixed order; empty when it complies.
/// `pinned`: the image gets its tag's digest written in, so it is judged as carrying one.
pub(crate) fn check(settings: &Settings, slot: &ImageSlot<'_>, pinned: bool) -> Vec<Rule> {
    let parsed = ImageReference::parse(&slot.image);
    if is_exempt(
        settings,
        slot,
        &ExemptionSubject::new(&slot.image, parsed.as_ref().ok()),
    ) {
        return Vec::new();
    }
    let reference = match parsed {
        Ok(reference) => reference,
        Err(error) => return vec![Rule::InvalidReference(error)],
    };
    let mut broken = Vec::new();
    match (reference.tag(), reference.digest()) {
        (None, None) if settings.require_tag => broken.push(Rule::MissingTag),
        (Some(tag), None) => {
            if settings
                .denied_tags
                .iter()
                .any(|denied| denied.matches(tag))
            {
                broken.push(Rule::DeniedTag(tag.to_owned()));
            }
            let floating = settings
                .require_full_version
                .then(|| floating_version(tag))
                .flatten();
            if let Some(given) = floating {
                broken.push(Rule::FloatingVersion {
                    tag: tag.to_owned(),
                    given,
                });
            }
        }
        _ => {}
    }
    let has_digest = pinned || reference.digest().is_some();
    if settings.require_digest && !has_digest {
        broken.push(Rule::MissingDigest);
    }
    let pinned_may_stay = has_digest && !settings.require_always_for_digests;
    if !pinned_may_stay && effective_pull_policy(slot, &reference) != ALWAYS {
        broken.push(Rule::PullPolicy(match &slot.pull_policy {
            Some(written) => PullPolicy::Written(written.to_string()),
            None => PullPolicy::Defaulted(default_pull_policy(&reference)),
        }));
    }
    broken
}

/// The major version's digits at most: a longer number is a date or a build (`20240101`).
const MAX_MAJOR_DIGITS: usize = 4;

/// What `tag` gives when it is a version short of major, minor and patch; `None` for a full
/// version and for a tag that is not a version. A version is `[vV]NUM(.NUM)*[(-|_)SUFFIX]`,
/// NUM one or more ASCII digits, the first at most `MAX_MAJOR_DIGITS` long, SUFFIX any rest.
pub(crate) fn floating_version(tag: &str) -> Option<VersionParts> {
    let unprefixed = tag.strip_prefix(['v', 'V']).unwrap_or(tag);
    let numbers = unprefixed
        .as_bytes()
        .split(|&b| b == b'-' || b == b'_')
        .next()
        .unwrap_or_default();
    let mut components = 0;
    for number in numbers.split(|&b| b == b'.') {
        let digits_only = !number.is_empty() && number.iter().all(u8::is_ascii_digit);
        if !digits_only || (components == 0 && number.len() > MAX_MAJOR_DIGITS) {
            return None;
        }
        components += 1;
    }
    match components {
        1 => Some(VersionParts::Major),
        2 => Some(VersionParts::MajorAndMinor),
        _ => None,
    }
}

/// The reference pinning may resolve in `slot`: a valid one without a digest, not exempt.
pub(crate) fn resolvable<'s>(
    settings: &Settings,
    slot: &'s ImageSlot<'_>,
) -> Option<ImageReference<'s>> {
    let reference = ImageReference::parse(&slot.image).ok()?;
    let exempt = is_exempt(
        settings,
        slot,
        &ExemptionSubject::new(&slot.image, Some(&reference)),
    );
    (reference.digest().is_none() && !exempt).then_some(reference)
}

/// An image as exemption patterns see it: as written, and, when it is a valid reference, in
/// its fully qualified form (made only when a pattern needs it).
struct ExemptionSubject<'s> {
    written: &'s str,
    reference: Option<&'s ImageReference<'s>>,
    qualified: OnceCell<String>,
}

impl<'s> ExemptionSubject<'s> {
    fn new(written: &'s str, reference: Option<&'s ImageReference<'s>>) -> Self {
        Self {
            written,
            reference,
            qualified: OnceCell::new(),
        }
    }

    fn matches(&self, pattern: &Pattern) -> bool {
        pattern.matches(self.written)
            || self.reference.is_some_and(|reference| {
                pattern.matches(self.qualified.get_or_init(|| reference.fully_qualified()))
            })
    }
}

/// `exemptImages` skips an image; `exemptContainers` a container whose name and image both
/// match one entry (image volumes are not containers).
fn is_exempt(settings: &Settings, slot: &ImageSlot<'_>, image: &ExemptionSubject<'_>) -> bool {
    settings.exempt_images.iter().any(|p| image.matches(p))
        || (slot.location.list.is_container()
            && settings
                .exempt_containers
                .iter()
                .any(|e| e.name.matches(&slot.name) && image.matches(&e.image)))
}

/// The pull policy the kubelet will use: the written one, or the API server's default.
pub(crate) fn effective_pull_policy<'s>(
    slot: &'s ImageSlot<'_>,
    reference: &ImageReference<'_>,
) -> &'s str {
    match &slot.pull_policy {
        Some(written) => written,
        None => default_pull_policy(reference),
    }
}

/// Kubernetes' defaulting rule: `Always` for `latest` or no tag and no digest.
fn default_pull_policy(reference: &ImageReference<'_>) -> &'static str {
    match (reference.tag(), reference.digest()) {
        (Some("latest"), _) | (None, None) => ALWAYS,
        _ => "IfNotPresent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Step;
    use crate::slots::{test_slot, SlotList};
    use rstest::rstest;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn slot(
        list: SlotList,
        name: &'static str,
        image: &str,
        policy: Option<&'static str>,
    ) -> ImageSlot<'static> {
        let image: &'static str = Box::leak(image.to_owned().into_boxed_str());
        test_slot(&[Step::Spec], list, 0, name, image, policy)
    }

    fn check_with(settings: &str, image: &str, policy: Option<&str>) -> Vec<Rule> {
        let policy = policy.map(|p| &*Box::leak(p.to_owned().into_boxed_str()));
        let settings = Settings::from_json(settings).unwrap();
        check(
            &settings,
            &slot(SlotList::Containers, "app", image, policy),
            false,
        )
    }

    #[test]
    fn a_pinned_image_is_judged_with_its_digest() {
        let settings = Settings::from_json(
            r#"{"requireDigest":true,"requireAlwaysForDigests":false,"deniedTags":["edge"]}"#,
        )
        .unwrap();
        let judged = |image, pinned| {
            check(
                &settings,
                &slot(SlotList::Containers, "app", image, Some("IfNotPresent")),
                pinned,
            )
        };
        assert_eq!(
            judged("app:1.0", false),
            vec![Rule::MissingDigest, written("IfNotPresent")]
        );
        assert_eq!(judged("app:1.0", true), vec![]);
        assert_eq!(
            judged("app:edge", true),
            vec![Rule::DeniedTag("edge".into())],
            "the tag stays in the image"
        );
    }

    fn written(policy: &str) -> Rule {
        Rule::PullPolicy(PullPolicy::Written(policy.to_owned()))
    }

    #[rstest]
    #[case::compliant("nginx:1.27", Some("Always"), vec![])]
    #[case::if_not_present("nginx:1.27", Some("IfNotPresent"), vec![written("IfNotPresent")])]
    #[case::never("nginx:1.27", Some("Never"), vec![written("Never")])]
    #[case::wrong_case_policy("nginx:1.27", Some("always"), vec![written("always")])]
    #[case::defaulted_if_not_present("nginx:1.27", None, vec![Rule::PullPolicy(PullPolicy::Defaulted("IfNotPresent"))])]
    #[case::latest_defaults_to_always("nginx:latest", None, vec![Rule::DeniedTag("latest".into())])]
    #[case::untagged_defaults_to_always("nginx", None, vec![Rule::MissingTag])]
    #[case::untagged_if_not_present("nginx", Some("IfNotPresent"), vec![Rule::MissingTag, written("IfNotPresent")])]
    #[case::port_is_not_a_tag("localhost:5000/app", Some("Always"), vec![Rule::MissingTag])]
    #[case::port_and_tag("localhost:5000/app:2.0", Some("Always"), vec![])]
    #[case::digest_satisfies_tag_rules(&format!("nginx@{DIGEST}"), Some("Always"), vec![])]
    #[case::latest_with_digest(&format!("nginx:latest@{DIGEST}"), Some("Always"), vec![])]
    #[case::digest_still_needs_always(&format!("nginx@{DIGEST}"), Some("IfNotPresent"), vec![written("IfNotPresent")])]
    #[case::digest_defaults_to_if_not_present(&format!("nginx@{DIGEST}"), None, vec![Rule::PullPolicy(PullPolicy::Defaulted("IfNotPresent"))])]
    #[case::latest_tag_and_digest_defaults_to_always(&format!("nginx:latest@{DIGEST}"), None, vec![])]
    #[case::tag_is_case_sensitive("nginx:LATEST", Some("Always"), vec![])]
    fn default_settings(
        #[case] image: &str,
        #[case] policy: Option<&str>,
        #[case] expected: Vec<Rule>,
    ) {
        assert_eq!(check_with("{}", image, policy), expected);
    }

    #[rstest]
    #[case::empty("")]
    #[case::uppercase("NGINX:1.27")]
    #[case::bad_digest("nginx@sha256:abc")]
    #[case::spaces(" nginx:1")]
    fn invalid_references_are_violations_alone(#[case] image: &str) {
        let rules = check_with("{}", image, Some("IfNotPresent"));
        assert!(
            matches!(rules.as_slice(), [Rule::InvalidReference(_)]),
            "{rules:?}"
        );
    }

    #[test]
    fn require_tag_off_allows_untagged() {
        assert_eq!(check_with(r#"{"requireTag":false}"#, "nginx", None), vec![]);
    }

    #[test]
    fn denied_tags_replace_the_default_list() {
        let settings = r#"{"deniedTags":["dev","edge"]}"#;
        assert_eq!(
            check_with(settings, "app:dev", Some("Always")),
            vec![Rule::DeniedTag("dev".into())]
        );
        assert_eq!(check_with(settings, "app:latest", Some("Always")), vec![]);
        assert_eq!(check_with(settings, "app:Dev", Some("Always")), vec![]);
    }

    #[rstest]
    #[case::plain_entry_is_exact("main", "main", true)]
    #[case::plain_entry_is_not_a_prefix("main", "main-1", false)]
    #[case::star_suffix("*-SNAPSHOT", "1.4-SNAPSHOT", true)]
    #[case::star_matches_an_empty_run("v*", "v", true)]
    #[case::star_is_case_sensitive("*-SNAPSHOT", "1.4-snapshot", false)]
    #[case::star_anywhere("*latest*", "py3-latest-slim", true)]
    #[case::question_mark_is_one_character("v?", "v1", true)]
    #[case::question_mark_not_two("v?", "v10", false)]
    #[case::question_mark_not_none("v?", "v", false)]
    #[case::dot_is_literal("1.2", "1x2", false)]
    fn denied_tag_patterns(#[case] pattern: &str, #[case] tag: &str, #[case] denied: bool) {
        let settings = format!(r#"{{"deniedTags":["{pattern}"]}}"#);
        let rules = check_with(&settings, &format!("app:{tag}"), Some("Always"));
        let expected = if denied {
            vec![Rule::DeniedTag(tag.into())]
        } else {
            vec![]
        };
        assert_eq!(rules, expected);
    }

    #[test]
    fn denied_tag_patterns_spare_digests() {
        let rules = check_with(
            r#"{"deniedTags":["*"]}"#,
            &format!("app:edge@{DIGEST}"),
            Some("Always"),
        );
        assert_eq!(rules, vec![]);
    }

    #[rstest]
    #[case::full("1.2.3", None)]
    #[case::v_full("v1.2.3", None)]
    #[case::capital_v_full("V1.2.3", None)]
    #[case::full_with_suffix("1.2.3-alpine", None)]
    #[case::full_with_underscore_suffix("1.2.3_rc1", None)]
    #[case::four_components("1.2.3.4", None)]
    #[case::major("1", Some(VersionParts::Major))]
    #[case::v_major("v1", Some(VersionParts::Major))]
    #[case::major_with_suffix("3-alpine", Some(VersionParts::Major))]
    #[case::four_digit_major("2024", Some(VersionParts::Major))]
    #[case::minor("1.2", Some(VersionParts::MajorAndMinor))]
    #[case::v_minor("v1.2", Some(VersionParts::MajorAndMinor))]
    #[case::minor_with_suffix("1.2-alpine", Some(VersionParts::MajorAndMinor))]
    #[case::minor_with_version_like_suffix("1.2-3.4.5", Some(VersionParts::MajorAndMinor))]
    #[case::minor_with_empty_suffix("1.2-", Some(VersionParts::MajorAndMinor))]
    #[case::v_minor_with_suffix("v1.2_beta", Some(VersionParts::MajorAndMinor))]
    #[case::date("20240101", None)]
    #[case::five_digits("12345", None)]
    #[case::sha_like("3f2a9c1", None)]
    #[case::sha_like_digits_only("1234567", None)]
    #[case::name("bookworm", None)]
    #[case::word_with_digit("stable", None)]
    #[case::v_alone("v", None)]
    #[case::letters_after_number("1.2alpine", None)]
    #[case::empty_component("1..2", None)]
    #[case::trailing_dot("1.2.", None)]
    #[case::leading_dot_after_v("v.1", None)]
    #[case::underscore_first("_1", None)]
    #[case::latest("latest", None)]
    fn version_grammar(#[case] tag: &str, #[case] expected: Option<VersionParts>) {
        assert_eq!(floating_version(tag), expected);
    }

    fn floating(tag: &str, given: VersionParts) -> Rule {
        Rule::FloatingVersion {
            tag: tag.into(),
            given,
        }
    }

    #[rstest]
    #[case::major("app:1", vec![floating("1", VersionParts::Major)])]
    #[case::minor("registry.example.com:5000/team/app:v1.2", vec![floating("v1.2", VersionParts::MajorAndMinor)])]
    #[case::full("app:1.2.3", vec![])]
    #[case::not_a_version("app:bookworm", vec![])]
    #[case::digest_does_not_float(&format!("app:1.2@{DIGEST}"), vec![])]
    #[case::untagged_is_left_to_require_tag("app", vec![Rule::MissingTag])]
    fn require_full_version(#[case] image: &str, #[case] expected: Vec<Rule>) {
        let rules = check_with(r#"{"requireFullVersion":true}"#, image, Some("Always"));
        assert_eq!(rules, expected);
    }

    #[test]
    fn require_full_version_is_off_by_default() {
        assert_eq!(check_with("{}", "app:1.2", Some("Always")), vec![]);
    }

    #[test]
    fn a_tag_can_be_denied_and_float() {
        let rules = check_with(
            r#"{"requireFullVersion":true,"deniedTags":["1.*"]}"#,
            "app:1.2",
            Some("IfNotPresent"),
        );
        assert_eq!(
            rules,
            vec![
                Rule::DeniedTag("1.2".into()),
                floating("1.2", VersionParts::MajorAndMinor),
                written("IfNotPresent"),
            ]
        );
    }

    #[test]
    fn require_digest() {
        let settings = r#"{"requireDigest":true}"#;
        assert_eq!(
            check_with(settings, "app:1.0", Some("Always")),
            vec![Rule::MissingDigest]
        );
        assert_eq!(
            check_with(settings, &format!("app@{DIGEST}"), Some("Always")),
            vec![]
        );
        assert_eq!(
            check_with(settings, "app", Some("Never")),
            vec![Rule::MissingTag, Rule::MissingDigest, written("Never")]
        );
    }

    #[rstest]
    #[case::digest_may_keep_if_not_present(&format!("app@{DIGEST}"), Some("IfNotPresent"), vec![])]
    #[case::digest_may_keep_never(&format!("app:1@{DIGEST}"), Some("Never"), vec![])]
    #[case::digest_defaulted(&format!("app@{DIGEST}"), None, vec![])]
    #[case::tag_still_needs_always("app:1", Some("IfNotPresent"), vec![written("IfNotPresent")])]
    fn digests_without_always(
        #[case] image: &str,
        #[case] policy: Option<&str>,
        #[case] expected: Vec<Rule>,
    ) {
        assert_eq!(
            check_with(r#"{"requireAlwaysForDigests":false}"#, image, policy),
            expected
        );
    }

    #[rstest]
    #[case::written_form("nginx", true)]
    #[case::short_pattern_is_not_a_prefix("docker.io/library/nginx:latest", false)]
    #[case::qualified_with_tag("docker.io/library/busybox:1.36", true)]
    #[case::prefix_pattern("registry.example.com/trusted/app:1", true)]
    #[case::lookalike_host("registry.example.com.evil.io/trusted/app:1", false)]
    #[case::other_repo("registry.example.com/untrusted/app:1", false)]
    #[case::invalid_but_written_match("registry.example.com/trusted/APP", true)]
    fn exempt_images(#[case] image: &str, #[case] exempt: bool) {
        let settings = r#"{"exemptImages":["nginx","docker.io/library/busybox:*","registry.example.com/trusted/*"]}"#;
        let rules = check_with(settings, image, Some("IfNotPresent"));
        assert_eq!(rules.is_empty(), exempt, "{rules:?}");
    }

    #[test]
    fn qualified_pattern_matches_short_name() {
        let rules = check_with(
            r#"{"exemptImages":["docker.io/library/nginx:*"]}"#,
            "nginx:1.27",
            Some("Never"),
        );
        assert_eq!(rules, vec![]);
    }

    #[rstest]
    #[case::container(SlotList::Containers, true)]
    #[case::init(SlotList::InitContainers, true)]
    #[case::ephemeral(SlotList::EphemeralContainers, true)]
    #[case::volume_named_alike(SlotList::ImageVolumes, false)]
    fn exempt_containers(#[case] list: SlotList, #[case] exempt: bool) {
        let settings = Settings::from_json(
            r#"{"exemptContainers":[{"name":"istio-*","image":"docker.io/istio/proxyv2:*"}]}"#,
        )
        .unwrap();
        let sidecar = check(
            &settings,
            &slot(list, "istio-proxy", "istio/proxyv2:1.24.0", Some("Never")),
            false,
        );
        assert_eq!(sidecar.is_empty(), exempt, "{sidecar:?}");
        let other_name = check(
            &settings,
            &slot(list, "app", "istio/proxyv2:1.24.0", Some("Never")),
            false,
        );
        assert!(!other_name.is_empty());
    }

    #[rstest]
    #[case::name_and_image("istio-proxy", "docker.io/istio/proxyv2:1.24.0", true)]
    #[case::image_written_short("istio-proxy", "istio/proxyv2:1.24.0", true)]
    #[case::claimed_name_other_image("istio-proxy", "evil.example/miner:latest", false)]
    #[case::right_image_other_name("miner", "docker.io/istio/proxyv2:1.24.0", false)]
    #[case::lookalike_registry("istio-proxy", "docker.io.evil.example/istio/proxyv2:1", false)]
    fn a_container_exemption_needs_name_and_image(
        #[case] name: &'static str,
        #[case] image: &str,
        #[case] exempt: bool,
    ) {
        let settings = Settings::from_json(
            r#"{"exemptContainers":[{"name":"istio-proxy","image":"docker.io/istio/proxyv2:*"}]}"#,
        )
        .unwrap();
        let rules = check(
            &settings,
            &slot(SlotList::Containers, name, image, Some("Never")),
            false,
        );
        assert_eq!(rules.is_empty(), exempt, "{rules:?}");
    }

    #[test]
    fn only_pull_policy_is_fixable() {
        assert!(written("Never").is_fixable());
        assert!(!Rule::MissingTag.is_fixable());
        assert!(!Rule::DeniedTag("x".into()).is_fixable());
        assert!(!floating("1", VersionParts::Major).is_fixable());
        assert!(!Rule::MissingDigest.is_fixable());
    }
}
