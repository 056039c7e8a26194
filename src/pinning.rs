//! Pinning tags to the digests they point to at admission: the one place the policy asks the
//! outside world something. It runs after the decision, so the rules and the decision stay
//! pure, and only for a request that is not refused anyway.

#[cfg(target_arch = "wasm32")]
use std::borrow::Cow;

use crate::decision::{pin_refusal, pinned_warning, unpinned_warning, Decision};
use crate::mutation::Fix;
use crate::reference::{validate_digest, EngineMisreading};
#[cfg(target_arch = "wasm32")]
use crate::request::Entries;
use crate::rules::resolvable;
use crate::settings::{RegistryFailure, Settings};
use crate::slots::ImageSlot;

/// Resolves tags: the policy server's host capability `oci/v1/manifest_digest` in the module.
pub trait Registry {
    /// The digest `image`'s tag points to now, or why it cannot be told, in the host's words.
    fn manifest_digest(&mut self, image: &str) -> Result<String, String>;

    /// Hands the policy server's log the whole reason `image` could not be resolved: the
    /// response only names its category, as the host's text can tell a Pod's author what the
    /// policy server found on the network.
    fn log_failure(&mut self, image: &str, cause: &str);
}

/// At most this many distinct images are resolved per request. An uncached call through
/// policy-server takes about 140 ms against a registry on loopback (docs/pinning.md); the
/// engine runs them one after another and stops the policy at `--policy-timeout` (2 s by
/// default) with a 500 answer, which `registryFailure` cannot turn into its own: 8 calls take
/// about 1.1 s, leaving room for a registry farther away than loopback.
pub(crate) const MAX_RESOLVED_IMAGES: usize = 8;

/// Why an image is not pinned. The registry's answers are told by category only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PinFailure {
    NotFound,
    Unauthorized,
    Unreachable,
    NoAnswer,
    InvalidAnswer,
    /// An answer of no category above.
    Failed,
    /// The policy server did not grant the capability.
    NotGranted,
    /// Known before any call: the image's registry is not in `pinRegistries` ...
    OutsideRegistries,
    /// ... the request names more than `MAX_RESOLVED_IMAGES` distinct images ...
    OverBound,
    /// ... or the engine would read the reference as another one, or not at all.
    Misread(EngineMisreading),
}

impl PinFailure {
    /// The category of the engine's error text (docs/pinning-engine.md has the texts). Only
    /// phrases with a space or a capital letter are matched, which no repository path or tag in
    /// the URL that the text quotes can contain.
    fn of_host_error(error: &str) -> Self {
        const CATEGORIES: &[(PinFailure, &[&str])] = &[
            (
                PinFailure::NotGranted,
                &["has not been granted access to the 'oci/v1/manifest_digest'"],
            ),
            (
                PinFailure::NotFound,
                &[
                    "manifest unknown",
                    "name unknown",
                    "MANIFEST_UNKNOWN",
                    "NAME_UNKNOWN",
                ],
            ),
            (
                PinFailure::Unauthorized,
                &[
                    "Not authorized",
                    "UNAUTHORIZED",
                    "DENIED",
                    "authentication required",
                ],
            ),
            (
                PinFailure::Unreachable,
                &[
                    "Connection refused",
                    "tcp connect error",
                    "dns error",
                    "No route to host",
                    "Network is unreachable",
                    "failed to lookup address",
                ],
            ),
            (
                PinFailure::NoAnswer,
                &[
                    "timed out",
                    "Connection reset",
                    "connection closed",
                    "IncompleteMessage",
                    "Broken pipe",
                    "unexpected EOF",
                ],
            ),
            (
                PinFailure::InvalidAnswer,
                &[
                    "corrupt message",
                    "invalid peer certificate",
                    "InvalidCertificate",
                    "HandshakeFailure",
                    "the host's answer is not",
                ],
            ),
        ];
        CATEGORIES
            .iter()
            .find(|(_, phrases)| phrases.iter().any(|phrase| error.contains(phrase)))
            .map_or(Self::Failed, |(category, _)| *category)
    }

    /// An answer from the registry, whose whole text is in the policy server's log.
    pub(crate) fn is_logged(self) -> bool {
        !matches!(
            self,
            Self::OutsideRegistries | Self::OverBound | Self::Misread(_)
        )
    }
}

/// What pinning does with each slot that could be pinned (evaluated, a valid reference with a
/// tag and no digest, not exempt, in an object the policy changes), in slot order: ask the
/// registry (`None`), or not, and why.
pub(crate) type PinPlan<'s, 'a> = Vec<(&'s ImageSlot<'a>, Option<PinFailure>)>;

/// Decided before any call, from the settings and the images alone: no image outside
/// `pinRegistries` or past the bound reaches the engine.
pub(crate) fn plan<'s, 'a>(settings: &Settings, slots: &'s [ImageSlot<'a>]) -> PinPlan<'s, 'a> {
    let mut asked: Vec<&str> = Vec::new();
    let mut plan = Vec::new();
    for slot in slots {
        let Some(reference) = resolvable(settings, slot) else {
            continue;
        };
        let qualified = reference.fully_qualified();
        let failure = if let Some(misreading) = reference.engine_misreading() {
            Some(PinFailure::Misread(misreading))
        } else if !settings
            .pin_registries
            .iter()
            .any(|pattern| pattern.matches(&qualified))
        {
            Some(PinFailure::OutsideRegistries)
        } else if asked.contains(&&*slot.image) {
            None
        } else if asked.len() == MAX_RESOLVED_IMAGES {
            Some(PinFailure::OverBound)
        } else {
            asked.push(&slot.image);
            None
        };
        plan.push((slot, failure));
    }
    plan
}

/// The digest or the failure of each planned slot: the registry is asked once per distinct
/// image, in slot order, so that a recorded session replays.
pub(crate) fn resolve<'s, 'a>(
    plan: PinPlan<'s, 'a>,
    registry: &mut impl Registry,
) -> Vec<(&'s ImageSlot<'a>, Result<String, PinFailure>)> {
    let mut resolved: Vec<(&'s ImageSlot<'a>, Result<String, PinFailure>)> = Vec::new();
    for (slot, failure) in plan {
        let answer = match failure {
            Some(failure) => Err(failure),
            None => resolved
                .iter()
                .find(|(known, _)| known.image == slot.image)
                .map(|(_, answer)| answer.clone())
                .unwrap_or_else(|| ask(&slot.image, registry)),
        };
        resolved.push((slot, answer));
    }
    resolved
}

/// The failures of `plan` known before any call, without asking about the rest.
pub(crate) fn known_failures<'s, 'a>(
    plan: PinPlan<'s, 'a>,
) -> Vec<(&'s ImageSlot<'a>, Result<String, PinFailure>)> {
    plan.into_iter()
        .filter_map(|(slot, failure)| failure.map(|failure| (slot, Err(failure))))
        .collect()
}

fn ask(image: &str, registry: &mut impl Registry) -> Result<String, PinFailure> {
    let error = match registry.manifest_digest(image) {
        Ok(digest) => match validate_digest(&digest) {
            Ok(()) => return Ok(digest),
            Err(error) => {
                registry.log_failure(
                    image,
                    &format!("the host answered the digest {digest:?}: {error}"),
                );
                return Err(PinFailure::InvalidAnswer);
            }
        },
        Err(error) => error,
    };
    registry.log_failure(image, &error);
    Err(PinFailure::of_host_error(&error))
}

/// Pins each resolved slot; one that could not be resolved refuses the request or is warned
/// about, as `failure` says.
pub(crate) fn apply_pins<'a>(
    decision: &mut Decision<'a>,
    resolved: &[(&ImageSlot<'a>, Result<String, PinFailure>)],
    failure: RegistryFailure,
) {
    for (slot, answer) in resolved {
        match (answer, failure) {
            (Ok(digest), _) => {
                decision.fixes.push(Fix::pin(slot, digest));
                decision.warn(pinned_warning(slot, digest), true);
            }
            (Err(error), RegistryFailure::Reject) => {
                decision.refusals.push(pin_refusal(slot, *error));
            }
            (Err(error), RegistryFailure::Accept) => {
                decision.warn(unpinned_warning(slot, *error), false);
            }
        }
    }
}

/// The policy server's host capability, through waPC: the image as a JSON string in,
/// `{"digest": "…"}` out.
pub(crate) struct HostCapability;

impl Registry for HostCapability {
    #[cfg(target_arch = "wasm32")]
    fn manifest_digest(&mut self, image: &str) -> Result<String, String> {
        let request = serde_json::to_vec(image).map_err(|error| error.to_string())?;
        let answer = wapc_guest::host_call("kubewarden", "oci", "v1/manifest_digest", &request)
            .map_err(|error| error.to_string())?;
        // Read with the readers the request already uses: no JSON parser of its own.
        let digest = std::str::from_utf8(&answer)
            .ok()
            .and_then(|answer| serde_json::from_str::<Entries<'_>>(answer).ok())
            .and_then(|Entries(fields)| fields.into_iter().find(|(key, _)| key == "digest"))
            .and_then(|(_, digest)| serde_json::from_str::<Cow<'_, str>>(digest.get()).ok());
        match digest {
            Some(digest) => Ok(digest.into_owned()),
            None => Err(format!(
                "the host's answer is not {{\"digest\": \"...\"}}: {}",
                String::from_utf8_lossy(&answer)
            )),
        }
    }

    #[cfg(target_arch = "wasm32")]
    fn log_failure(&mut self, image: &str, cause: &str) {
        // The event the SDK's slog drain writes (level, message, then its key-values), without
        // slog and serde_json's maps, which would take 27 KB of the module.
        #[derive(serde::Serialize)]
        struct LogEvent<'e> {
            level: &'e str,
            message: &'e str,
            image: &'e str,
            cause: &'e str,
        }
        let event = LogEvent {
            level: "warning",
            message: "cannot pin the tag to its digest",
            image,
            cause,
        };
        // A log that fails changes no answer.
        if let Ok(payload) = serde_json::to_vec(&event) {
            let _ = wapc_guest::host_call("kubewarden", "tracing", "log", &payload);
        }
    }

    /// Built natively (tests, fuzzing), the library has no waPC host to ask.
    #[cfg(not(target_arch = "wasm32"))]
    fn manifest_digest(&mut self, _image: &str) -> Result<String, String> {
        Err("the host capability oci/v1/manifest_digest is only available in a waPC host".into())
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn log_failure(&mut self, _image: &str, _cause: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Verdict;
    use crate::request::Step;
    use crate::slots::{test_slot, SlotList};
    use crate::tests::TestRegistry;
    use rstest::rstest;

    // Texts kwctl and policy-server 1.35 hand the guest (docs/pinning-engine.md).
    #[rstest]
    #[case::refused(
        "Host error: Callback evaluation failure: Fail to interact with OCI registry: error \
         sending request for url (http://127.0.0.1:42341/v2/app/manifests/1.0)\n\nCaused by:\n    \
         0: error sending request for url (http://127.0.0.1:42341/v2/app/manifests/1.0)\n    1: \
         client error (Connect)\n    2: tcp connect error\n    3: Connection refused (os error \
         111)\n\nStack backtrace:\n   0: anyhow::error::<impl anyhow::Error>::msg",
        PinFailure::Unreachable
    )]
    #[case::unknown(
        "Callback evaluation failure: Fail to interact with OCI registry: Registry error: url \
         http://127.0.0.1:55183/v2/app/manifests/9.9, envelope: OCI API errors: [OCI API error: \
         manifest unknown]",
        PinFailure::NotFound
    )]
    #[case::unauthorized(
        "Callback evaluation failure: Fail to interact with OCI registry: Not authorized: url \
         http://127.0.0.1:43363/v2/private/app/manifests/1.0",
        PinFailure::Unauthorized
    )]
    #[case::tls_to_a_plain_port(
        "Callback evaluation failure: Fail to interact with OCI registry: error sending request \
         for url (https://127.0.0.1:22/v2/app/manifests/1.0)\n\nCaused by:\n    1: client error \
         (Connect)\n    2: received corrupt message of type InvalidContentType",
        PinFailure::InvalidAnswer
    )]
    #[case::closed_early(
        "Callback evaluation failure: error sending request for url \
         (http://127.0.0.1:9/v2/app/manifests/1.0)\n\nCaused by:\n    1: connection closed \
         before message completed",
        PinFailure::NoAnswer
    )]
    #[case::not_granted(
        "Host error: Policy has not been granted access to the 'oci/v1/manifest_digest' host \
         capability. The violation has been reported.",
        PinFailure::NotGranted
    )]
    // A repository named after a category is not that category: URLs are in lower case.
    #[case::path_words(
        "Callback evaluation failure: Registry error: url \
         http://r.test/v2/unauthorized/denied/manifests/timed, envelope: OCI API errors: \
         [OCI API error: something new]",
        PinFailure::Failed
    )]
    #[case::empty("", PinFailure::Failed)]
    fn host_errors_are_told_by_category(#[case] error: &str, #[case] expected: PinFailure) {
        assert_eq!(PinFailure::of_host_error(error), expected);
    }

    const DIGEST: &str = "sha256:3b1c0d2e9f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e";

    fn slot(index: usize, name: &'static str, image: &'static str) -> ImageSlot<'static> {
        test_slot(
            &[Step::Spec],
            SlotList::Containers,
            index,
            name,
            image,
            Some("Always"),
        )
    }

    fn settings(failure: &str) -> Settings {
        Settings::from_json(&format!(
            r#"{{"pinDigests":"pods","registryFailure":"{failure}",
                "pinRegistries":["docker.io/library/*","registry.example.com/*"]}}"#
        ))
        .unwrap()
    }

    fn pinned(
        decision: Decision<'static>,
        slots: &[ImageSlot<'static>],
        failure: &str,
        registry: &mut TestRegistry,
    ) -> Verdict<'static> {
        let mut decision = decision;
        let settings = settings(failure);
        if decision.refusals.is_empty() {
            let resolved = resolve(plan(&settings, slots), registry);
            apply_pins(&mut decision, &resolved, settings.registry_failure);
        }
        decision.verdict()
    }

    #[test]
    fn each_distinct_image_is_asked_once_in_slot_order() {
        let slots = [
            slot(0, "web", "nginx:1.27"),
            slot(1, "cache", "redis:7"),
            slot(2, "web-2", "nginx:1.27"),
        ];
        let mut registry = TestRegistry {
            answers: vec![("nginx:1.27", Ok(DIGEST)), ("redis:7", Ok(DIGEST))],
            ..TestRegistry::default()
        };
        let verdict = pinned(Decision::default(), &slots, "reject", &mut registry);
        assert_eq!(registry.asked, ["nginx:1.27", "redis:7"]);
        let Verdict::Mutate { fixes, warnings } = verdict else {
            panic!("{verdict:?}")
        };
        assert_eq!(fixes.len(), 3);
        assert_eq!(
            warnings[0],
            "spec.containers[0] \"web\": pinned to sha256:3b1c0d2e9f4a…, the tag's digest at \
             admission (image nginx:1.27)"
        );
        assert_eq!(warnings.len(), 3);
    }

    #[test]
    fn a_refused_request_asks_nothing() {
        let mut decision = Decision::default();
        decision.refusals.push("refused for a rule".into());
        let mut registry = TestRegistry::default();
        let verdict = pinned(
            decision,
            &[slot(0, "web", "nginx:1.27")],
            "reject",
            &mut registry,
        );
        assert!(registry.asked.is_empty());
        assert!(matches!(verdict, Verdict::Reject { .. }));
    }

    #[test]
    fn an_unresolved_tag_refuses_by_category_and_logs_the_whole_cause() {
        let cause = "Fail to interact with OCI registry: error sending request for url \
            (http://registry.example.com/v2/app/manifests/2)\n\nCaused by:\n    0: tcp connect \
            error\n    1: Connection refused (os error 111)";
        let mut registry = TestRegistry {
            answers: vec![
                ("nginx:1.27", Ok(DIGEST)),
                ("registry.example.com/app:2", Err(cause)),
            ],
            ..TestRegistry::default()
        };
        let verdict = pinned(
            Decision::default(),
            &[
                slot(0, "web", "nginx:1.27"),
                slot(1, "app", "registry.example.com/app:2"),
            ],
            "reject",
            &mut registry,
        );
        let Verdict::Reject { message, warnings } = verdict else {
            panic!("{verdict:?}")
        };
        assert_eq!(
            message,
            "spec.containers[1] \"app\": cannot pin the tag to its digest: unreachable: the policy \
             server cannot connect to the registry (the policy server's log has the details); \
             registryFailure \"accept\" would admit it unpinned (image registry.example.com/app:2)"
        );
        assert!(
            warnings.is_empty(),
            "the pin of web is not applied: {warnings:?}"
        );
        assert_eq!(
            registry.logged,
            [("registry.example.com/app:2".to_owned(), cause.to_owned())]
        );
    }

    #[test]
    fn an_unresolved_tag_is_accepted_unpinned_with_a_warning() {
        let mut registry = TestRegistry {
            answers: vec![("nginx:1.27", Ok(DIGEST))],
            ..TestRegistry::default()
        };
        let verdict = pinned(
            Decision::default(),
            &[slot(0, "web", "nginx:1.27"), slot(1, "app", "app:2")],
            "accept",
            &mut registry,
        );
        let Verdict::Mutate { fixes, warnings } = verdict else {
            panic!("{verdict:?}")
        };
        assert_eq!(fixes.len(), 1);
        assert_eq!(
            warnings[1],
            "spec.containers[1] \"app\": not pinned, accepted as it is: not found: the registry \
             has no such repository or tag (the policy server's log has the details) (image app:2)"
        );
    }

    #[test]
    fn a_digest_the_host_should_not_have_sent_is_an_invalid_answer() {
        let mut registry = TestRegistry {
            answers: vec![("nginx:1.27", Ok("sha256:abc"))],
            ..TestRegistry::default()
        };
        let verdict = pinned(
            Decision::default(),
            &[slot(0, "web", "nginx:1.27")],
            "reject",
            &mut registry,
        );
        let Verdict::Reject { message, .. } = verdict else {
            panic!("{verdict:?}")
        };
        assert!(message.contains("invalid answer: "), "{message}");
        assert!(registry.logged[0]
            .1
            .contains("invalid checksum digest length"));
    }

    #[rstest]
    #[case::outside("ghcr.io/evil/app:1.0", PinFailure::OutsideRegistries)]
    #[case::open_port_outside("127.0.0.1:22/evil/app:1.0", PinFailure::OutsideRegistries)]
    #[case::ipv6(
        "[fd00::1]:5000/team/app:1.0",
        PinFailure::Misread(EngineMisreading::BracketedHost)
    )]
    #[case::uppercase_host(
        "Registry/app:1.0",
        PinFailure::Misread(EngineMisreading::UppercaseHost)
    )]
    fn an_image_the_engine_may_not_be_asked_about_causes_no_call(
        #[case] image: &'static str,
        #[case] expected: PinFailure,
    ) {
        let slots = [slot(0, "app", image)];
        let planned = plan(&settings("reject"), &slots);
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].1, Some(expected));
        let mut registry = TestRegistry::default();
        let resolved = resolve(planned, &mut registry);
        assert!(registry.asked.is_empty());
        assert_eq!(resolved[0].1, Err(expected));
    }

    #[test]
    fn the_host_is_compared_case_insensitively() {
        let slots = [slot(0, "app", "REGISTRY.example.com/team/app:1.0")];
        let planned = plan(&settings("reject"), &slots);
        assert_eq!(planned[0].1, None);
    }

    #[test]
    fn past_the_bound_an_image_is_not_asked_about() {
        const IMAGES: [&str; 10] = [
            "i0:1", "i1:1", "i2:1", "i3:1", "i4:1", "i5:1", "i6:1", "i7:1", "i8:1", "i0:1",
        ];
        let slots: Vec<_> = IMAGES
            .iter()
            .enumerate()
            .map(|(i, image)| slot(i, "c", image))
            .collect();
        let planned = plan(&settings("accept"), &slots);
        let failures: Vec<_> = planned.iter().map(|(_, failure)| *failure).collect();
        let mut expected = vec![None; 10];
        expected[8] = Some(PinFailure::OverBound);
        assert_eq!(failures, expected, "i0 again is not a new image");
        let mut registry = TestRegistry::default();
        resolve(planned, &mut registry);
        assert_eq!(registry.asked.len(), MAX_RESOLVED_IMAGES);
    }
}
