//! From broken rules, the mode and the operation to one decision, and every text a user
//! reads about a violation.

use std::fmt::{self, Write as _};

use crate::mutation::Fix;
use crate::rules::{PullPolicy, Rule};
use crate::settings::Mode;
use crate::slots::{ImageSlot, SlotList};

/// Messages and warnings list this many violations, then say how many more there are.
pub(crate) const MAX_LISTED: usize = 20;

/// Longer names and images are cut in messages, so a huge field cannot blow up a response.
const MAX_SHOWN_CHARS: usize = 200;

#[derive(Debug)]
pub(crate) enum Decision<'a> {
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

/// What the request is, as far as handling a violation depends on it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context {
    pub(crate) mode: Mode,
    pub(crate) mutate_templates: bool,
    pub(crate) is_pod: bool,
    /// An UPDATE of a Pod (its containers' pull policies are immutable) ...
    pub(crate) updates_existing_pod: bool,
    /// ... except ephemeral containers added through `pods/ephemeralcontainers`.
    pub(crate) adds_ephemeral_containers: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handling {
    Fix,
    Refuse,
    /// Mutate mode, but the API server would refuse the change.
    RefuseImmutable,
    Warn,
    /// Mutate mode with `mutateTemplates: false`.
    WarnTemplate,
}

impl Context {
    fn handling(&self, slot: &ImageSlot<'_>, rule: &Rule) -> Handling {
        match (self.mode, rule) {
            (_, Rule::InvalidReference(_)) => Handling::Refuse,
            (Mode::Warn, _) => Handling::Warn,
            (Mode::Reject, _) => Handling::Refuse,
            (Mode::Mutate, rule) if !rule.is_fixable() => Handling::Refuse,
            (Mode::Mutate, _) if self.updates_existing_pod => {
                let new_ephemeral = self.adds_ephemeral_containers
                    && slot.location.list == SlotList::EphemeralContainers;
                if new_ephemeral {
                    Handling::Fix
                } else {
                    Handling::RefuseImmutable
                }
            }
            (Mode::Mutate, _) if !self.is_pod && !self.mutate_templates => Handling::WarnTemplate,
            (Mode::Mutate, _) => Handling::Fix,
        }
    }
}

/// One decision from the broken rules of each evaluated slot, in slot order.
pub(crate) fn decide<'a>(
    context: &Context,
    checked: &[(ImageSlot<'a>, Vec<Rule>)],
) -> Decision<'a> {
    let mut refusals = Vec::new();
    let mut fixes = Vec::new();
    // (text, whether it reports a fix) — fix reports are dropped when the request is refused.
    let mut warnings: Vec<(String, bool)> = Vec::new();
    for (slot, rules) in checked {
        for rule in rules {
            let subject = Subject(slot);
            match context.handling(slot, rule) {
                Handling::Fix => {
                    if fixes.last().map(|fix: &Fix<'a>| fix.location) != Some(slot.location) {
                        fixes.push(Fix::of(slot));
                    }
                    warnings.push((fixed_text(slot, rule), true));
                }
                Handling::Refuse => refusals.push(format!("{subject}: {}", RuleText(slot, rule))),
                Handling::RefuseImmutable => refusals.push(format!(
                    "{subject}: {}; the pull policy of an existing Pod's container cannot be \
                     changed, so recreate the Pod with {} Always",
                    RuleText(slot, rule),
                    slot.location.list.policy_field()
                )),
                Handling::Warn => warnings.push((format!("{subject}: {}", RuleText(slot, rule)), false)),
                Handling::WarnTemplate => warnings.push((
                    format!(
                        "{subject}: {}; not changed in the template, the Pods it creates get {} Always",
                        RuleText(slot, rule),
                        slot.location.list.policy_field()
                    ),
                    false,
                )),
            }
        }
    }
    if !refusals.is_empty() {
        let kept = warnings
            .into_iter()
            .filter(|(_, fix)| !fix)
            .map(|(text, _)| text)
            .collect();
        return Decision::Reject {
            message: capped_message(refusals),
            warnings: capped_warnings(kept),
        };
    }
    let warnings = capped_warnings(warnings.into_iter().map(|(text, _)| text).collect());
    if fixes.is_empty() {
        Decision::Accept { warnings }
    } else {
        Decision::Mutate { fixes, warnings }
    }
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

fn capped_warnings(mut warnings: Vec<String>) -> Vec<String> {
    let total = warnings.len();
    if total > MAX_LISTED {
        warnings.truncate(MAX_LISTED);
        warnings.push(format!("and {} more warnings", total - MAX_LISTED));
    }
    warnings
}

fn fixed_text(slot: &ImageSlot<'_>, rule: &Rule) -> String {
    let was = match rule {
        Rule::PullPolicy(PullPolicy::Written(policy)) => format!("was {}", Policy(policy)),
        Rule::PullPolicy(PullPolicy::Defaulted(policy)) => {
            format!("was unset, defaulting to {policy}")
        }
        _ => String::new(),
    };
    format!(
        "{}: {} set to Always ({was})",
        Subject(slot),
        slot.location.list.policy_field()
    )
}

/// `spec.containers[0] "app" (nginx:1.27)`
struct Subject<'s, 'a>(&'s ImageSlot<'a>);

impl fmt::Display for Subject<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slot = self.0;
        write!(
            f,
            "{} \"{}\" ({})",
            slot.location,
            Shown(&slot.name),
            Shown(&slot.image)
        )
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
            other => write!(f, "\"{}\"", Shown(other)),
        }
    }
}

/// Text from the request, escaped (no line breaks or control characters reach a message)
/// and cut to `MAX_SHOWN_CHARS`.
struct Shown<'s>(&'s str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = |b: u8| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\';
        if self.0.len() <= MAX_SHOWN_CHARS && self.0.bytes().all(plain) {
            return f.write_str(self.0);
        }
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(MAX_SHOWN_CHARS) {
            match c {
                '"' => f.write_str("\\\"")?,
                '\'' => f.write_str("'")?,
                c => write!(f, "{}", c.escape_debug())?,
            }
        }
        if chars.next().is_some() {
            f.write_str("...")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Step;
    use crate::slots::test_slot;
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

    fn context(mode: Mode) -> Context {
        Context {
            mode,
            mutate_templates: true,
            is_pod: false,
            updates_existing_pod: false,
            adds_ephemeral_containers: false,
        }
    }

    fn if_not_present() -> Rule {
        Rule::PullPolicy(PullPolicy::Written("IfNotPresent".into()))
    }

    const SPEC_EXAMPLE: &str = "spec.template.spec.initContainers[0] \"setup\" (busybox:1.36): \
                                imagePullPolicy is IfNotPresent, must be Always";

    #[test]
    fn reject_mode_message_is_the_spec_example() {
        let checked = vec![(
            slot(SlotList::InitContainers, 0, "setup", "busybox:1.36"),
            vec![if_not_present()],
        )];
        let Decision::Reject { message, warnings } = decide(&context(Mode::Reject), &checked)
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
        let Decision::Accept { warnings } = decide(&context(Mode::Warn), &checked) else {
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
        let Decision::Mutate { fixes, warnings } = decide(&context(Mode::Mutate), &checked) else {
            panic!("not mutated")
        };
        let locations: Vec<_> = fixes.iter().map(|fix| fix.location).collect();
        assert_eq!(locations, vec![first.location, volume.location]);
        assert_eq!(
            warnings,
            vec![
                "spec.template.spec.containers[0] \"app\" (nginx:1.27): imagePullPolicy set to Always (was IfNotPresent)",
                "spec.template.spec.volumes[1] \"models\" (models:v3): image.pullPolicy set to Always (was IfNotPresent)",
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
        let Decision::Reject { message, warnings } = decide(&context(mode), &checked) else {
            panic!("not rejected")
        };
        assert!(
            message.contains("containers[1] \"side\" (envoy): image has neither tag nor digest"),
            "{message}"
        );
        assert!(
            message.contains("containers[2] \"web\" (web:latest): tag \"latest\" is denied"),
            "{message}"
        );
        assert_eq!(
            message.contains("containers[0]"),
            mode == Mode::Reject,
            "{message}"
        );
        assert!(warnings.is_empty());
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
            decide(&context(Mode::Warn), &checked),
            Decision::Reject { .. }
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
        let Decision::Reject { message, .. } = decide(&context, &checked) else {
            panic!("not rejected")
        };
        assert!(
            message.ends_with("cannot be changed, so recreate the Pod with imagePullPolicy Always"),
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
            decide(&context, &checked),
            Decision::Mutate { .. }
        ));
    }

    #[test]
    fn templates_only_warned_when_mutate_templates_is_off() {
        let mut context = context(Mode::Mutate);
        context.mutate_templates = false;
        let checked = vec![(
            slot(SlotList::Containers, 0, "app", "nginx:1.27"),
            vec![if_not_present()],
        )];
        let Decision::Accept { warnings } = decide(&context, &checked) else {
            panic!("not accepted")
        };
        assert!(
            warnings[0].contains("the Pods it creates get imagePullPolicy Always"),
            "{warnings:?}"
        );
        context.is_pod = true;
        assert!(matches!(
            decide(&context, &checked),
            Decision::Mutate { .. }
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
        let Decision::Reject { message, .. } = decide(&context(Mode::Mutate), &checked) else {
            panic!()
        };
        assert_eq!(message.matches("is denied").count(), MAX_LISTED);
        assert!(message.contains("containers[19]") && !message.contains("containers[20]"));
        assert!(message.ends_with("; and 5 more violations"), "{message}");

        let Decision::Accept { warnings } = decide(&context(Mode::Warn), &checked) else {
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
        let Decision::Reject { message, .. } = decide(&context(Mode::Reject), &[(odd, vec![rule])])
        else {
            panic!()
        };
        assert!(message.contains(r#""x\"\ny""#), "{message}");
        assert!(
            message.contains(&format!("({}...)", "a".repeat(MAX_SHOWN_CHARS))),
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
        let Decision::Reject { message, .. } = decide(
            &context(Mode::Reject),
            &[(unset.clone(), vec![rule.clone()])],
        ) else {
            panic!()
        };
        assert!(message
            .ends_with("imagePullPolicy is not set (defaults to IfNotPresent), must be Always"));
        let Decision::Mutate { warnings, .. } =
            decide(&context(Mode::Mutate), &[(unset, vec![rule])])
        else {
            panic!()
        };
        assert!(warnings[0].ends_with("set to Always (was unset, defaulting to IfNotPresent)"));
    }
}
