//! From broken rules, the mode and the operation to one decision, and every text a user
//! reads about a violation.
//!
//! Every text about a slot reads `PATH "NAME": WHAT (image IMAGE)`: the path and the rule come
//! first and the image last, so that when the API server's limits bite (a warning is cut at 256
//! characters, warnings stop at 4,096 in all) the image is what gets shortened.

use std::fmt::{self, Write as _};

use crate::mutation::Fix;
use crate::pinning::{PinFailure, MAX_RESOLVED_IMAGES};
use crate::reference::EngineMisreading;
use crate::rules::{PullPolicy, Rule, VersionParts};
use crate::settings::{Mode, PinScope};
use crate::slots::{ImageSlot, SlotList};
use crate::text::{fit_chars, middle_cut, Shown, ShownUpTo};

/// Messages and warnings list this many violations, then say how many more there are.
pub(crate) const MAX_LISTED: usize = 20;

/// The API server cuts a warning longer than this many characters ...
pub(crate) const MAX_WARNING_CHARS: usize = 256;

/// ... and keeps warnings only while they add up to 4,096 characters, across every webhook of
/// the request; this leaves room for one more (a deprecation notice, say).
pub(crate) const MAX_WARNINGS_TOTAL_CHARS: usize = 4000;

/// A container name longer than a DNS label (63) is cut in warnings.
const MAX_WARNING_NAME_CHARS: usize = 63;

/// What to do with a request: the fixes to apply, the refusals, and what to tell the user.
/// Nothing is capped or joined yet; `verdict` does that, once.
#[derive(Debug, Default)]
pub(crate) struct Decision<'a> {
    pub(crate) fixes: Vec<Fix<'a>>,
    /// Message items, in slot order.
    pub(crate) refusals: Vec<String>,
    pub(crate) warnings: Vec<Warning>,
}

#[derive(Debug)]
pub(crate) struct Warning {
    pub(crate) text: String,
    /// Reports a fix: dropped when the request is refused, as the fix is.
    pub(crate) reports_fix: bool,
}

/// The decision as the response states it.
#[derive(Debug)]
pub(crate) enum Verdict<'a> {
    Accept {
        warnings: Vec<String>,
    },
    Mutate {
        fixes: Vec<Fix<'a>>,
        warnings: Vec<String>,
    },
    Reject {
        message: String,
        warnings: Vec<String>,
    },
}

impl<'a> Decision<'a> {
    /// Refused if anything is refused (with the warn-type findings, never the would-be fixes),
    /// else mutated if anything is fixed, else accepted; messages and warnings capped.
    pub(crate) fn verdict(self) -> Verdict<'a> {
        if !self.refusals.is_empty() {
            let kept = self
                .warnings
                .into_iter()
                .filter(|warning| !warning.reports_fix)
                .map(|warning| warning.text)
                .collect();
            return Verdict::Reject {
                message: capped_message(self.refusals),
                warnings: capped_warnings(kept),
            };
        }
        let warnings = capped_warnings(self.warnings.into_iter().map(|w| w.text).collect());
        if self.fixes.is_empty() {
            Verdict::Accept { warnings }
        } else {
            Verdict::Mutate {
                fixes: self.fixes,
                warnings,
            }
        }
    }

    pub(crate) fn warn(&mut self, text: String, reports_fix: bool) {
        self.warnings.push(Warning { text, reports_fix });
    }
}

/// What the request is, as far as handling a violation depends on it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context {
    pub(crate) mode: Mode,
    pub(crate) mutate_templates: bool,
    pub(crate) is_pod: bool,
    /// A workload whose controller owns it (a Deployment's ReplicaSet, a CronJob's Job): its
    /// template is a copy of the owner's, and the owner replaces a copy that differs.
    pub(crate) has_controller: bool,
    /// An UPDATE of a Pod (its containers' pull policies are immutable) ...
    pub(crate) updates_existing_pod: bool,
    /// ... except ephemeral containers added through `pods/ephemeralcontainers`.
    pub(crate) adds_ephemeral_containers: bool,
    pub(crate) pin_digests: PinScope,
    /// A request of the audit scanner: it files any allowed answer as a pass, so whatever the
    /// mode, it gets the compliance verdict (every violation refused, as in reject mode).
    pub(crate) audit: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handling {
    Fix,
    Refuse,
    /// Mutate mode, but the API server would refuse the change.
    RefuseImmutable,
    /// Mutate mode, an ephemeral container written into the Pod itself, which the API server
    /// only takes through the subresource.
    RefuseEphemeralInPod,
    Warn,
    /// Mutate mode with `mutateTemplates: false`.
    WarnTemplate,
    /// Mutate mode, a workload that a controller owns.
    WarnOwned,
}

impl Context {
    /// Whether this object's evaluated images get pinned to their tags' digests: the objects
    /// mutate mode changes, as `pinDigests` scopes them.
    pub(crate) fn pins(&self) -> bool {
        let changes_template = !self.has_controller && self.mutate_templates;
        self.mode == Mode::Mutate
            && match self.pin_digests {
                PinScope::Off => false,
                PinScope::Pods => self.is_pod,
                PinScope::All => self.is_pod || changes_template,
            }
    }

    fn handling(&self, slot: &ImageSlot<'_>, rule: &Rule) -> Handling {
        match (self.mode, rule) {
            _ if self.audit => Handling::Refuse,
            (_, Rule::InvalidReference(_)) => Handling::Refuse,
            (Mode::Warn, _) => Handling::Warn,
            (Mode::Reject, _) => Handling::Refuse,
            (Mode::Mutate, rule) if !rule.is_fixable() => Handling::Refuse,
            (Mode::Mutate, _) if self.updates_existing_pod => {
                match (slot.location.list, self.adds_ephemeral_containers) {
                    (SlotList::EphemeralContainers, true) => Handling::Fix,
                    (SlotList::EphemeralContainers, false) => Handling::RefuseEphemeralInPod,
                    _ => Handling::RefuseImmutable,
                }
            }
            (Mode::Mutate, _) if self.is_pod => Handling::Fix,
            (Mode::Mutate, _) if self.has_controller => Handling::WarnOwned,
            (Mode::Mutate, _) if !self.mutate_templates => Handling::WarnTemplate,
            (Mode::Mutate, _) => Handling::Fix,
        }
    }
}

/// One decision from the broken rules of each evaluated slot, in slot order.
pub(crate) fn decide<'a>(
    context: &Context,
    checked: &[(&ImageSlot<'a>, Vec<Rule>)],
) -> Decision<'a> {
    let mut decision = Decision::default();
    for (slot, rules) in checked {
        for rule in rules {
            let rule_text = RuleText(slot, rule);
            let policy_field = slot.location.list.policy_field();
            match context.handling(slot, rule) {
                Handling::Fix => {
                    let fixes = &mut decision.fixes;
                    if fixes.last().map(|fix: &Fix<'a>| fix.location) != Some(slot.location) {
                        fixes.push(Fix::pull_policy(slot));
                    }
                    decision.warn(warning(slot, FixedText(slot, rule)), true);
                }
                Handling::Refuse => decision.refusals.push(message_item(slot, rule_text)),
                Handling::RefuseImmutable => decision.refusals.push(message_item(
                    slot,
                    format_args!(
                        "{rule_text}; the pull policy of an existing Pod's container cannot be \
                         changed, so recreate the Pod with {policy_field} Always"
                    ),
                )),
                Handling::RefuseEphemeralInPod => decision.refusals.push(message_item(
                    slot,
                    format_args!(
                        "{rule_text}; ephemeral containers are added through the \
                         pods/ephemeralcontainers subresource (kubectl debug), not by updating \
                         the Pod"
                    ),
                )),
                Handling::Warn => decision.warn(warning(slot, rule_text), false),
                Handling::WarnTemplate => decision.warn(
                    warning(
                        slot,
                        format_args!(
                            "{rule_text}; not changed in the template, the Pods it creates get \
                             {policy_field} Always"
                        ),
                    ),
                    false,
                ),
                Handling::WarnOwned => decision.warn(
                    warning(
                        slot,
                        format_args!(
                            "{rule_text}; left to its controller: fix the owner's template \
                             (its Pods get {policy_field} Always)"
                        ),
                    ),
                    false,
                ),
            }
        }
    }
    decision
}

fn capped_message(refusals: Vec<String>) -> String {
    let total = refusals.len();
    let mut message = String::new();
    for (i, refusal) in refusals.iter().take(MAX_LISTED).enumerate() {
        if i > 0 {
            message.push_str("; ");
        }
        message.push_str(refusal);
    }
    if total > MAX_LISTED {
        let _ = write!(message, "; and {} more violations", total - MAX_LISTED);
    }
    message
}

/// At most `MAX_LISTED` warnings and `MAX_WARNINGS_TOTAL_CHARS` characters in all, the last
/// one saying how many were left out.
fn capped_warnings(mut warnings: Vec<String>) -> Vec<String> {
    // Room for the closing "and N more warnings".
    const TAIL_CHARS: usize = 32;
    let lengths: Vec<usize> = warnings.iter().map(|w| w.chars().count()).collect();
    if warnings.len() <= MAX_LISTED && lengths.iter().sum::<usize>() <= MAX_WARNINGS_TOTAL_CHARS {
        return warnings;
    }
    let mut total = TAIL_CHARS;
    let kept = lengths
        .iter()
        .take(MAX_LISTED)
        .take_while(|&&length| {
            total += length;
            total <= MAX_WARNINGS_TOTAL_CHARS
        })
        .count();
    let left_out = warnings.len() - kept;
    warnings.truncate(kept);
    warnings.push(format!("and {left_out} more warnings"));
    warnings
}

/// An item of a refusal's message: `PATH "NAME": WHAT (image IMAGE)`, request text cut at
/// `MAX_SHOWN_CHARS`; an empty image is not shown.
fn message_item(slot: &ImageSlot<'_>, what: impl fmt::Display) -> String {
    let mut item = format!("{} \"{}\": {what}", slot.location, Shown(&slot.name));
    if !slot.image.is_empty() {
        let _ = write!(item, " (image {})", Shown(&slot.image));
    }
    item
}

/// A warning: the same shape as a message item, at most `MAX_WARNING_CHARS` characters. The
/// image is shortened first; only when path, name and rule alone are too long is the end cut.
fn warning(slot: &ImageSlot<'_>, what: impl fmt::Display) -> String {
    let head = format!(
        "{} \"{}\": {what}",
        slot.location,
        ShownUpTo(&slot.name, MAX_WARNING_NAME_CHARS)
    );
    const IMAGE_OPEN: &str = " (image ";
    // The shortest useful middle-cut image, e.g. "quay.io/…ver:1.2".
    const MIN_IMAGE_CHARS: usize = 16;
    let head_chars = head.chars().count();
    let room = MAX_WARNING_CHARS.saturating_sub(head_chars + IMAGE_OPEN.len() + 1);
    if room < MIN_IMAGE_CHARS || slot.image.is_empty() {
        return fit_chars(&head, MAX_WARNING_CHARS);
    }
    let image = middle_cut(&slot.image, room);
    let warning = format!("{head}{IMAGE_OPEN}{})", ShownUpTo(&image, room));
    // Only an image that needed escapes can still be too long here.
    fit_chars(&warning, MAX_WARNING_CHARS)
}

/// A pinned image: `pinned to sha256:3b1c0d2e9f4a…, the tag's digest at admission`.
pub(crate) fn pinned_warning(slot: &ImageSlot<'_>, digest: &str) -> String {
    // The whole digest is in the object; twelve hex digits tell it apart.
    let short = digest
        .char_indices()
        .nth(digest.find(':').map_or(0, |colon| colon + 13))
        .map_or(digest, |(end, _)| &digest[..end]);
    let ellipsis = if short.len() < digest.len() {
        "…"
    } else {
        ""
    };
    warning(
        slot,
        format_args!("pinned to {short}{ellipsis}, the tag's digest at admission"),
    )
}

/// A tag that could not be resolved, with `registryFailure: reject`.
pub(crate) fn pin_refusal(slot: &ImageSlot<'_>, failure: PinFailure) -> String {
    message_item(
        slot,
        format_args!(
            "cannot pin the tag to its digest: {failure}; registryFailure \"accept\" would admit \
             it unpinned"
        ),
    )
}

/// A tag that could not be resolved, with `registryFailure: accept`.
pub(crate) fn unpinned_warning(slot: &ImageSlot<'_>, failure: PinFailure) -> String {
    warning(
        slot,
        format_args!("not pinned, accepted as it is: {failure}"),
    )
}

impl fmt::Display for PinFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotFound => "not found: the registry has no such repository or tag",
            Self::Unauthorized => "unauthorized: the policy server may not pull it",
            Self::Unreachable => "unreachable: the policy server cannot connect to the registry",
            Self::NoAnswer => "no answer: the registry closed or dropped the connection",
            Self::InvalidAnswer => "invalid answer: the registry's answer is not a manifest digest",
            Self::Failed => "the registry call failed",
            Self::NotGranted => {
                "the policy server has not granted this policy the host capability \
                 oci/v1/manifest_digest"
            }
            Self::OutsideRegistries => "its registry is not in pinRegistries",
            Self::OverBound => {
                return write!(
                    f,
                    "the request names more than {MAX_RESOLVED_IMAGES} distinct images to pin"
                )
            }
            Self::Misread(EngineMisreading::BracketedHost) => {
                "the policy server cannot read a registry host in brackets (IPv6); name the \
                 registry by a host name, or write the digest"
            }
            Self::Misread(EngineMisreading::UppercaseHost) => {
                "the policy server reads an upper-case first element as a Docker Hub namespace, \
                 the kubelet as a registry host; write the digest"
            }
        })?;
        if self.is_logged() {
            f.write_str(" (the policy server's log has the details)")?;
        }
        Ok(())
    }
}

/// What a fix did: `imagePullPolicy set to Always, was IfNotPresent`.
struct FixedText<'s, 'a>(&'s ImageSlot<'a>, &'s Rule);

impl fmt::Display for FixedText<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let FixedText(slot, rule) = self;
        write!(f, "{} set to Always", slot.location.list.policy_field())?;
        match rule {
            Rule::PullPolicy(PullPolicy::Written(policy)) => write!(f, ", was {}", Policy(policy)),
            Rule::PullPolicy(PullPolicy::Defaulted(policy)) => {
                write!(f, ", was unset and defaulting to {policy}")
            }
            _ => Ok(()),
        }
    }
}

struct RuleText<'s, 'a>(&'s ImageSlot<'a>, &'s Rule);

impl fmt::Display for RuleText<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let RuleText(slot, rule) = self;
        match rule {
            Rule::InvalidReference(error) => write!(f, "invalid image reference: {error}"),
            Rule::MissingTag => f.write_str(
                "image has neither tag nor digest, so it pulls the implicit \"latest\"; give it a tag or a digest",
            ),
            Rule::DeniedTag(tag) => write!(f, "tag \"{}\" is denied; use another tag or a digest", Shown(tag)),
            Rule::FloatingVersion { tag, given } => write!(
                f,
                "tag \"{}\" is a floating version: it gives {}, so it moves to every new release; \
                 use a full version (major.minor.patch) or a digest",
                Shown(tag),
                match given {
                    VersionParts::Major => "the major version only, not the minor and patch versions",
                    VersionParts::MajorAndMinor => "major and minor, not the patch version",
                }
            ),
            Rule::MissingDigest => f.write_str("image is not pinned by a digest (name@sha256:...)"),
            Rule::PullPolicy(PullPolicy::Written(policy)) => {
                write!(f, "{} is {}, must be Always", slot.location.list.policy_field(), Policy(policy))
            }
            Rule::PullPolicy(PullPolicy::Defaulted(policy)) => write!(
                f,
                "{} is not set (defaults to {policy}), must be Always",
                slot.location.list.policy_field()
            ),
        }
    }
}

/// A pull policy as written: bare when it is a known one, quoted and escaped otherwise.
struct Policy<'s>(&'s str);

impl fmt::Display for Policy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            known @ ("Always" | "IfNotPresent" | "Never") => f.write_str(known),
            other => write!(f, "\"{}\"", ShownUpTo(other, 32)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Step;
    use crate::slots::test_slot;
    use crate::text::MAX_SHOWN_CHARS;
    use rstest::rstest;
    use std::borrow::Cow;

    fn slot(
        list: SlotList,
        index: usize,
        name: &'static str,
        image: &'static str,
    ) -> ImageSlot<'static> {
        test_slot(
            &[Step::Spec, Step::Template, Step::Spec],
            list,
            index,
            name,
            image,
            Some("IfNotPresent"),
        )
    }

    /// The verdict for slots and their broken rules.
    fn decided<'a>(context: &Context, checked: &[(ImageSlot<'a>, Vec<Rule>)]) -> Verdict<'a> {
        let checked: Vec<_> = checked
            .iter()
            .map(|(slot, rules)| (slot, rules.clone()))
            .collect();
        decide(context, &checked).verdict()
    }

    fn context(mode: Mode) -> Context {
        Context {
            mode,
            mutate_templates: true,
            is_pod: false,
            has_controller: false,
            updates_existing_pod: false,
            adds_ephemeral_containers: false,
            pin_digests: PinScope::Off,
            audit: false,
        }
    }

    fn if_not_present() -> Rule {
        Rule::PullPolicy(PullPolicy::Written("IfNotPresent".into()))
    }

    const SPEC_EXAMPLE: &str = "spec.template.spec.initContainers[0] \"setup\": \
                                imagePullPolicy is IfNotPresent, must be Always (image busybox:1.36)";

    #[test]
    fn reject_mode_message_is_the_spec_example() {
        let checked = vec![(
            slot(SlotList::InitContainers, 0, "setup", "busybox:1.36"),
            vec![if_not_present()],
        )];
        let Verdict::Reject { message, warnings } = decided(&context(Mode::Reject), &checked)
        else {
            panic!("not rejected")
        };
        assert_eq!(message, SPEC_EXAMPLE);
        assert!(warnings.is_empty());
    }

    #[test]
    fn warn_mode_gives_the_same_texts_as_warnings() {
        let checked = vec![(
            slot(SlotList::InitContainers, 0, "setup", "busybox:1.36"),
            vec![if_not_present()],
        )];
        let Verdict::Accept { warnings } = decided(&context(Mode::Warn), &checked) else {
            panic!("not accepted")
        };
        assert_eq!(warnings, vec![SPEC_EXAMPLE.to_owned()]);
    }

    #[test]
    fn mutate_mode_fixes_each_slot_once_and_warns() {
        let first = slot(SlotList::Containers, 0, "app", "nginx:1.27");
        let volume = slot(SlotList::ImageVolumes, 1, "models", "models:v3");
        let checked = vec![
            (first.clone(), vec![if_not_present()]),
            (volume.clone(), vec![if_not_present()]),
        ];
        let Verdict::Mutate { fixes, warnings } = decided(&context(Mode::Mutate), &checked) else {
            panic!("not mutated")
        };
        let locations: Vec<_> = fixes.iter().map(|fix| fix.location).collect();
        assert_eq!(locations, vec![first.location, volume.location]);
        assert_eq!(
            warnings,
            vec![
                "spec.template.spec.containers[0] \"app\": imagePullPolicy set to Always, was IfNotPresent (image nginx:1.27)",
                "spec.template.spec.volumes[1] \"models\": image.pullPolicy set to Always, was IfNotPresent (image models:v3)",
            ]
        );
    }

    #[rstest]
    #[case::mutate(Mode::Mutate)]
    #[case::reject(Mode::Reject)]
    fn tag_rules_refuse_and_drop_fixes(#[case] mode: Mode) {
        let checked = vec![
            (
                slot(SlotList::Containers, 0, "app", "nginx:1.27"),
                vec![if_not_present()],
            ),
            (
                slot(SlotList::Containers, 1, "side", "envoy"),
                vec![Rule::MissingTag],
            ),
            (
                slot(SlotList::Containers, 2, "web", "web:latest"),
                vec![Rule::DeniedTag("latest".into())],
            ),
        ];
        let Verdict::Reject { message, warnings } = decided(&context(mode), &checked) else {
            panic!("not rejected")
        };
        assert!(
            message.contains("containers[1] \"side\": image has neither tag nor digest"),
            "{message}"
        );
        assert!(
            message.contains("containers[2] \"web\": tag \"latest\" is denied; use another tag or a digest (image web:latest)"),
            "{message}"
        );
        assert_eq!(
            message.contains("containers[0]"),
            mode == Mode::Reject,
            "{message}"
        );
        assert!(warnings.is_empty());
    }

    #[rstest]
    #[case::major(
        "app:1",
        VersionParts::Major,
        "spec.template.spec.containers[0] \"app\": tag \"1\" is a floating version: it gives \
         the major version only, not the minor and patch versions, so it moves to every new \
         release; use a full version (major.minor.patch) or a digest (image app:1)"
    )]
    #[case::minor(
        "app:v1.2-alpine",
        VersionParts::MajorAndMinor,
        "spec.template.spec.containers[0] \"app\": tag \"v1.2-alpine\" is a floating version: \
         it gives major and minor, not the patch version, so it moves to every new release; use \
         a full version (major.minor.patch) or a digest (image app:v1.2-alpine)"
    )]
    fn floating_versions_are_refused_in_mutate_mode(
        #[case] image: &'static str,
        #[case] given: VersionParts,
        #[case] expected: &str,
    ) {
        let tag = image
            .split_once(':')
            .map(|(_, tag)| tag)
            .unwrap_or_default();
        let checked = vec![(
            slot(SlotList::Containers, 0, "app", image),
            vec![Rule::FloatingVersion {
                tag: tag.into(),
                given,
            }],
        )];
        let Verdict::Reject { message, .. } = decided(&context(Mode::Mutate), &checked) else {
            panic!("not rejected")
        };
        assert_eq!(message, expected);
    }

    #[test]
    fn invalid_references_refuse_even_in_warn_mode() {
        let error = crate::reference::ImageReference::parse("NGINX")
            .err()
            .unwrap();
        let checked = vec![(
            slot(SlotList::Containers, 0, "app", "NGINX"),
            vec![Rule::InvalidReference(error)],
        )];
        assert!(matches!(
            decided(&context(Mode::Warn), &checked),
            Verdict::Reject { .. }
        ));
    }

    #[test]
    fn existing_pod_containers_are_refused_with_the_reason() {
        let mut context = context(Mode::Mutate);
        context.is_pod = true;
        context.updates_existing_pod = true;
        let checked = vec![(
            slot(SlotList::Containers, 0, "app", "nginx:1.27"),
            vec![if_not_present()],
        )];
        let Verdict::Reject { message, .. } = decided(&context, &checked) else {
            panic!("not rejected")
        };
        assert!(
            message.ends_with(
                "cannot be changed, so recreate the Pod with imagePullPolicy Always (image nginx:1.27)"
            ),
            "{message}"
        );
    }

    #[test]
    fn new_ephemeral_containers_are_fixed_on_an_existing_pod() {
        let mut context = context(Mode::Mutate);
        context.is_pod = true;
        context.updates_existing_pod = true;
        context.adds_ephemeral_containers = true;
        let checked = vec![(
            slot(SlotList::EphemeralContainers, 0, "debug", "busybox:1"),
            vec![if_not_present()],
        )];
        assert!(matches!(
            decided(&context, &checked),
            Verdict::Mutate { .. }
        ));
    }

    #[rstest]
    #[case::mutate(Mode::Mutate, "accepted with a warning")]
    #[case::reject(Mode::Reject, "refused")]
    #[case::warn(Mode::Warn, "accepted with a warning")]
    fn a_controlled_workload_is_never_mutated(#[case] mode: Mode, #[case] expected: &str) {
        let mut context = context(mode);
        context.has_controller = true;
        let checked = vec![(
            slot(SlotList::Containers, 0, "app", "nginx:1.27"),
            vec![if_not_present()],
        )];
        let outcome = match decided(&context, &checked) {
            Verdict::Accept { warnings } if warnings.len() == 1 => {
                if mode == Mode::Mutate {
                    assert_eq!(
                        warnings[0],
                        "spec.template.spec.containers[0] \"app\": imagePullPolicy is \
                         IfNotPresent, must be Always; left to its controller: fix the owner's \
                         template (its Pods get imagePullPolicy Always) (image nginx:1.27)"
                    );
                }
                "accepted with a warning"
            }
            Verdict::Reject { .. } => "refused",
            other => panic!("{other:?}"),
        };
        assert_eq!(outcome, expected);
    }

    #[rstest]
    #[case::off(PinScope::Off, true, false, true, false)]
    #[case::pods_pod(PinScope::Pods, true, false, true, true)]
    #[case::pods_template(PinScope::Pods, false, false, true, false)]
    #[case::all_template(PinScope::All, false, false, true, true)]
    #[case::all_controlled(PinScope::All, false, true, true, false)]
    #[case::all_controlled_pod(PinScope::All, true, true, true, true)]
    #[case::all_templates_left_alone(PinScope::All, false, false, false, false)]
    fn pinning_follows_what_mutate_mode_changes(
        #[case] scope: PinScope,
        #[case] is_pod: bool,
        #[case] has_controller: bool,
        #[case] mutate_templates: bool,
        #[case] pins: bool,
    ) {
        let mut context = context(Mode::Mutate);
        context.pin_digests = scope;
        context.is_pod = is_pod;
        context.has_controller = has_controller;
        context.mutate_templates = mutate_templates;
        assert_eq!(context.pins(), pins);
    }

    #[rstest]
    #[case::mutate(Mode::Mutate, true, false)]
    #[case::warn(Mode::Warn, true, false)]
    #[case::reject(Mode::Reject, true, false)]
    #[case::templates_left_to_pods(Mode::Mutate, false, false)]
    #[case::controlled(Mode::Mutate, true, true)]
    fn an_audit_gets_the_reject_mode_message_whatever_the_mode(
        #[case] mode: Mode,
        #[case] mutate_templates: bool,
        #[case] has_controller: bool,
    ) {
        let mut context = context(mode);
        context.mutate_templates = mutate_templates;
        context.has_controller = has_controller;
        context.pin_digests = PinScope::All;
        context.audit = true;
        let checked = vec![(
            slot(SlotList::InitContainers, 0, "setup", "busybox:1.36"),
            vec![if_not_present()],
        )];
        let Verdict::Reject { message, warnings } = decided(&context, &checked) else {
            panic!("not rejected")
        };
        assert_eq!(message, SPEC_EXAMPLE);
        assert!(warnings.is_empty());
        assert!(
            matches!(decided(&context, &[]), Verdict::Accept { warnings } if warnings.is_empty())
        );
    }

    #[test]
    fn a_controlled_workload_is_still_refused_for_its_tags() {
        let mut context = context(Mode::Mutate);
        context.has_controller = true;
        let checked = vec![(
            slot(SlotList::Containers, 0, "app", "nginx:latest"),
            vec![Rule::DeniedTag("latest".into())],
        )];
        assert!(matches!(
            decided(&context, &checked),
            Verdict::Reject { .. }
        ));
    }

    #[test]
    fn a_controlled_pod_is_mutated() {
        let mut context = context(Mode::Mutate);
        context.is_pod = true;
        context.has_controller = true;
        let checked = vec![(
            slot(SlotList::Containers, 0, "app", "nginx:1.27"),
            vec![if_not_present()],
        )];
        assert!(matches!(
            decided(&context, &checked),
            Verdict::Mutate { .. }
        ));
    }

    #[test]
    fn an_ephemeral_container_written_into_the_pod_points_to_the_subresource() {
        let mut context = context(Mode::Mutate);
        context.is_pod = true;
        context.updates_existing_pod = true;
        let checked = vec![(
            slot(SlotList::EphemeralContainers, 0, "debug", "busybox:1.36"),
            vec![if_not_present()],
        )];
        let Verdict::Reject { message, .. } = decided(&context, &checked) else {
            panic!("not rejected")
        };
        assert!(
            message.contains(
                "; ephemeral containers are added through the pods/ephemeralcontainers \
                 subresource (kubectl debug), not by updating the Pod (image busybox:1.36)"
            ),
            "{message}"
        );
        assert!(!message.contains("existing Pod's container"), "{message}");
    }

    fn chars(text: &str) -> usize {
        text.chars().count()
    }

    #[test]
    fn a_long_image_is_cut_in_the_middle_and_the_rule_kept() {
        let image: &'static str = Box::leak(
            format!(
                "registry.example.com/{}/app:1.2.3@sha256:{}",
                "team/".repeat(40),
                "0".repeat(64)
            )
            .into_boxed_str(),
        );
        let checked = vec![(
            slot(SlotList::Containers, 0, "app", image),
            vec![if_not_present()],
        )];
        let Verdict::Accept { warnings } = decided(&context(Mode::Warn), &checked) else {
            panic!()
        };
        let warning = &warnings[0];
        assert_eq!(chars(warning), MAX_WARNING_CHARS, "{warning}");
        assert!(warning.starts_with(
            "spec.template.spec.containers[0] \"app\": imagePullPolicy is IfNotPresent, must be \
             Always (image registry.example.com/team/"
        ));
        assert!(warning.contains('…'), "{warning}");
        assert!(
            warning.ends_with(&format!(":1.2.3@sha256:{})", "0".repeat(64))),
            "{warning}"
        );
    }

    #[test]
    fn a_warning_too_long_even_without_its_image_is_cut_at_the_end() {
        let name: &'static str = Box::leak("n".repeat(300).into_boxed_str());
        let tag = "t".repeat(128);
        let image: &'static str = Box::leak(format!("app:{tag}").into_boxed_str());
        let checked = vec![(
            slot(SlotList::InitContainers, 0, name, image),
            vec![Rule::DeniedTag(tag.clone())],
        )];
        let Verdict::Accept { warnings } = decided(&context(Mode::Warn), &checked) else {
            panic!()
        };
        assert_eq!(chars(&warnings[0]), MAX_WARNING_CHARS, "{}", warnings[0]);
        assert!(warnings[0].starts_with(&format!(
            "spec.template.spec.initContainers[0] \"{}...\": tag \"{tag}\" is denied",
            "n".repeat(63)
        )));
        assert!(warnings[0].ends_with('…'), "{}", warnings[0]);
    }

    #[test]
    fn an_image_that_needs_escapes_stays_within_the_limit() {
        let image: &'static str = Box::leak("\n".repeat(300).into_boxed_str());
        let checked = vec![(
            slot(SlotList::Containers, 0, "app", image),
            vec![if_not_present()],
        )];
        let Verdict::Accept { warnings } = decided(&context(Mode::Warn), &checked) else {
            panic!()
        };
        assert_eq!(chars(&warnings[0]), MAX_WARNING_CHARS, "{}", warnings[0]);
        assert!(!warnings[0].contains('\n'));
    }

    /// 22 digest-pinned images of a workload under `mutateTemplates: false`: before, 21
    /// warnings of 312 characters (6,249 in all), cut by the API server where the rule was.
    #[test]
    fn many_long_warnings_stay_within_the_api_servers_total() {
        let mut context = context(Mode::Mutate);
        context.mutate_templates = false;
        let checked: Vec<_> = (0..22)
            .map(|i| {
                let image = format!(
                    "registry.example.com/platform/observability/collector-{i:02}@sha256:{}",
                    "a".repeat(64)
                );
                (
                    slot(
                        SlotList::Containers,
                        i,
                        Box::leak(format!("collector-{i:02}").into_boxed_str()),
                        Box::leak(image.into_boxed_str()),
                    ),
                    vec![if_not_present()],
                )
            })
            .collect();
        let Verdict::Accept { warnings } = decided(&context, &checked) else {
            panic!()
        };
        let total: usize = warnings.iter().map(|w| chars(w)).sum();
        assert!(total <= MAX_WARNINGS_TOTAL_CHARS, "{total}");
        assert!(warnings.iter().all(|w| chars(w) <= MAX_WARNING_CHARS));
        let listed = warnings.len() - 1;
        assert_eq!(
            warnings.last().unwrap(),
            &format!("and {} more warnings", 22 - listed)
        );
        for (i, warning) in warnings[..listed].iter().enumerate() {
            assert!(
                warning.starts_with(&format!(
                    "spec.template.spec.containers[{i}] \"collector-{i:02}\": imagePullPolicy is \
                     IfNotPresent, must be Always; not changed in the template"
                )),
                "{warning}"
            );
        }
    }

    #[test]
    fn templates_only_warned_when_mutate_templates_is_off() {
        let mut context = context(Mode::Mutate);
        context.mutate_templates = false;
        let checked = vec![(
            slot(SlotList::Containers, 0, "app", "nginx:1.27"),
            vec![if_not_present()],
        )];
        let Verdict::Accept { warnings } = decided(&context, &checked) else {
            panic!("not accepted")
        };
        assert!(
            warnings[0].contains("the Pods it creates get imagePullPolicy Always"),
            "{warnings:?}"
        );
        context.is_pod = true;
        assert!(matches!(
            decided(&context, &checked),
            Verdict::Mutate { .. }
        ));
    }

    #[test]
    fn more_than_twenty_violations_are_counted() {
        let checked: Vec<_> = (0..25)
            .map(|i| {
                (
                    slot(SlotList::Containers, i, "c", "app:latest"),
                    vec![Rule::DeniedTag("latest".into())],
                )
            })
            .collect();
        let Verdict::Reject { message, .. } = decided(&context(Mode::Mutate), &checked) else {
            panic!()
        };
        assert_eq!(message.matches("is denied").count(), MAX_LISTED);
        assert!(message.contains("containers[19]") && !message.contains("containers[20]"));
        assert!(message.ends_with("; and 5 more violations"), "{message}");

        let Verdict::Accept { warnings } = decided(&context(Mode::Warn), &checked) else {
            panic!()
        };
        assert_eq!(warnings.len(), MAX_LISTED + 1);
        assert_eq!(warnings.last().unwrap(), "and 5 more warnings");
    }

    #[test]
    fn request_text_is_escaped_and_cut() {
        let long: &'static str = Box::leak("a".repeat(500).into_boxed_str());
        let mut odd = slot(SlotList::Containers, 0, "x\"\ny", long);
        odd.pull_policy = Some(Cow::Borrowed("Sometimes\n"));
        let rule = Rule::PullPolicy(PullPolicy::Written("Sometimes\n".into()));
        let Verdict::Reject { message, .. } = decided(&context(Mode::Reject), &[(odd, vec![rule])])
        else {
            panic!()
        };
        assert!(message.contains(r#""x\"\ny""#), "{message}");
        assert!(
            message.contains(&format!("(image {}...)", "a".repeat(MAX_SHOWN_CHARS))),
            "{message}"
        );
        assert!(
            message.contains(r#"imagePullPolicy is "Sometimes\n", must be Always"#),
            "{message}"
        );
        assert!(!message.contains('\n'));
    }

    #[test]
    fn defaulted_policies_say_so() {
        let mut unset = slot(SlotList::Containers, 0, "app", "nginx:1.27");
        unset.pull_policy = None;
        let rule = Rule::PullPolicy(PullPolicy::Defaulted("IfNotPresent"));
        let Verdict::Reject { message, .. } = decided(
            &context(Mode::Reject),
            &[(unset.clone(), vec![rule.clone()])],
        ) else {
            panic!()
        };
        assert!(message.ends_with(
            "imagePullPolicy is not set (defaults to IfNotPresent), must be Always (image nginx:1.27)"
        ));
        let Verdict::Mutate { warnings, .. } =
            decided(&context(Mode::Mutate), &[(unset, vec![rule])])
        else {
            panic!()
        };
        assert!(warnings[0].ends_with(
            "set to Always, was unset and defaulting to IfNotPresent (image nginx:1.27)"
        ));
    }
}
