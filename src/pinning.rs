//! Pinning tags to the digests they point to at admission: the one place the policy asks the
//! outside world something. It runs after the decision, so the rules and the decision stay
//! pure, and only for a request that is not refused anyway.

#[cfg(target_arch = "wasm32")]
use std::borrow::Cow;

use crate::decision::{pin_refusal, pinned_warning, unpinned_warning, Decision};
use crate::mutation::Fix;
use crate::reference::validate_digest;
#[cfg(target_arch = "wasm32")]
use crate::request::Entries;
use crate::settings::RegistryFailure;
use crate::slots::ImageSlot;
use crate::text::middle_cut;

/// Resolves tags: the policy server's host capability `oci/v1/manifest_digest` in the module.
pub trait Registry {
    /// The digest `image`'s tag points to now, or why it cannot be told, in the host's words.
    fn manifest_digest(&mut self, image: &str) -> Result<String, String>;
}

/// The registry's answer for each slot of `candidates` (evaluated, tagged, not exempt, in an
/// object the policy may change): the digest its tag points to, or why it cannot be told. The
/// registry is asked once per distinct image, in slot order, so that a recorded session
/// replays.
pub(crate) fn resolve<'s, 'a>(
    candidates: &[&'s ImageSlot<'a>],
    registry: &mut impl Registry,
) -> Vec<(&'s ImageSlot<'a>, Result<String, String>)> {
    let mut resolved: Vec<(&'s ImageSlot<'a>, Result<String, String>)> = Vec::new();
    for &slot in candidates {
        let known = resolved
            .iter()
            .find(|(known, _)| known.image == slot.image)
            .map(|(_, answer)| answer.clone());
        let answer = known.unwrap_or_else(|| match registry.manifest_digest(&slot.image) {
            Ok(digest) => match validate_digest(&digest) {
                Ok(()) => Ok(digest),
                Err(error) => Err(format!("the host answered an invalid digest: {error}")),
            },
            Err(error) => Err(host_error_summary(&error)),
        });
        resolved.push((slot, answer));
    }
    resolved
}

/// Pins each resolved slot; a tag that could not be resolved refuses the request or is warned
/// about, as `failure` says.
pub(crate) fn apply_pins<'a>(
    decision: &mut Decision<'a>,
    resolved: &[(&ImageSlot<'a>, Result<String, String>)],
    failure: RegistryFailure,
) {
    for (slot, answer) in resolved {
        match (answer, failure) {
            (Ok(digest), _) => {
                decision.fixes.push(Fix::pin(slot, digest));
                decision.warn(pinned_warning(slot, digest), true);
            }
            (Err(error), RegistryFailure::Reject) => {
                decision.refusals.push(pin_refusal(slot, error));
            }
            (Err(error), RegistryFailure::Accept) => {
                decision.warn(unpinned_warning(slot, error), false);
            }
        }
    }
}

/// A host error cut to this many characters.
const MAX_HOST_ERROR_CHARS: usize = 120;

/// The host's error, as a user can act on it. The engine writes a chain (`Host error:
/// Callback evaluation failure: Fail to interact with OCI registry: …`, then `Caused by:` and one
/// cause a line, maybe a backtrace): keep the first line without its generic prefixes and
/// sentences, and the innermost cause (`Connection refused (os error 111)`) when the first line
/// lacks it, cut in the middle so that both ends stay.
pub(crate) fn host_error_summary(error: &str) -> String {
    const GENERIC_PREFIXES: [&str; 3] = [
        "Host error: ",
        "Callback evaluation failure: ",
        "Fail to interact with OCI registry: ",
    ];
    // After a capability the policy server did not grant.
    const GENERIC_SUFFIX: &str = " The violation has been reported.";
    let mut lines = error.lines();
    let mut first = lines.next().unwrap_or_default().trim();
    for prefix in GENERIC_PREFIXES {
        first = first.strip_prefix(prefix).unwrap_or(first);
    }
    first = first.strip_suffix(GENERIC_SUFFIX).unwrap_or(first);
    let innermost = lines
        .take_while(|line| !line.starts_with("Stack backtrace"))
        .map(str::trim)
        .filter(|line| !line.is_empty() && *line != "Caused by:")
        .last()
        .map(|cause| match cause.split_once(": ") {
            Some((number, rest)) if number.bytes().all(|b| b.is_ascii_digit()) => rest,
            _ => cause,
        });
    let text = match innermost {
        Some(cause) if !first.contains(cause) => format!("{first}: {cause}"),
        _ => first.to_owned(),
    };
    middle_cut(&text, MAX_HOST_ERROR_CHARS).into_owned()
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

    /// Built natively (tests, fuzzing), the library has no waPC host to ask.
    #[cfg(not(target_arch = "wasm32"))]
    fn manifest_digest(&mut self, _image: &str) -> Result<String, String> {
        Err("the host capability oci/v1/manifest_digest is only available in a waPC host".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Verdict;
    use crate::request::Step;
    use crate::slots::{test_slot, SlotList};
    use crate::tests::TestRegistry;

    #[test]
    fn host_errors_keep_what_a_user_can_act_on() {
        // Texts kwctl 1.35 hands the guest (docs/pinning-engine.md).
        let refused = "Host error: Callback evaluation failure: Fail to interact with OCI registry: error sending \
            request for url (http://127.0.0.1:42341/v2/app/manifests/1.0)\n\nCaused by:\n    0: \
            error sending request for url (http://127.0.0.1:42341/v2/app/manifests/1.0)\n    1: \
            client error (Connect)\n    2: tcp connect error\n    3: Connection refused (os error 111)\n\n\
            Stack backtrace:\n   0: anyhow::error::<impl anyhow::Error>::msg";
        assert_eq!(
            host_error_summary(refused),
            "error sending request for url (http://127.0.0.1:42341/v2/app/manifests/1.0): \
             Connection refused (os error 111)"
        );
        let unknown = "Callback evaluation failure: Fail to interact with OCI registry: Registry \
            error: url http://127.0.0.1:55183/v2/app/manifests/9.9, envelope: OCI API errors: \
            [OCI API error: manifest unknown]\n\nCaused by:\n    Registry error: url \
            http://127.0.0.1:55183/v2/app/manifests/9.9, envelope: OCI API errors: [OCI API \
            error: manifest unknown]";
        let summary = host_error_summary(unknown);
        assert!(summary.chars().count() <= MAX_HOST_ERROR_CHARS, "{summary}");
        assert!(
            summary.starts_with("Registry error: url http://127.0.0.1:55183/"),
            "{summary}"
        );
        assert!(
            summary.ends_with("[OCI API error: manifest unknown]"),
            "{summary}"
        );
        let denied = "Host error: Policy has not been granted access to the \
            'oci/v1/manifest_digest' host capability. The violation has been reported.";
        assert_eq!(
            host_error_summary(denied),
            "Policy has not been granted access to the 'oci/v1/manifest_digest' host capability."
        );
        assert_eq!(host_error_summary(""), "");
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

    fn pinned(
        decision: Decision<'static>,
        slots: &[ImageSlot<'static>],
        failure: RegistryFailure,
        registry: &mut TestRegistry,
    ) -> Verdict<'static> {
        let mut decision = decision;
        if decision.refusals.is_empty() {
            let candidates: Vec<_> = slots.iter().collect();
            apply_pins(&mut decision, &resolve(&candidates, registry), failure);
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
        let verdict = pinned(
            Decision::default(),
            &slots,
            RegistryFailure::Reject,
            &mut registry,
        );
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
            RegistryFailure::Reject,
            &mut registry,
        );
        assert!(registry.asked.is_empty());
        assert!(matches!(verdict, Verdict::Reject { .. }));
    }

    #[test]
    fn an_unresolved_tag_refuses_the_request_naming_the_error() {
        let mut registry = TestRegistry {
            answers: vec![
                ("nginx:1.27", Ok(DIGEST)),
                ("app:2", Err("connection refused")),
            ],
            ..TestRegistry::default()
        };
        let verdict = pinned(
            Decision::default(),
            &[slot(0, "web", "nginx:1.27"), slot(1, "app", "app:2")],
            RegistryFailure::Reject,
            &mut registry,
        );
        let Verdict::Reject { message, warnings } = verdict else {
            panic!("{verdict:?}")
        };
        assert_eq!(
            message,
            "spec.containers[1] \"app\": cannot pin the tag to its digest: connection refused; \
             registryFailure \"accept\" would admit it unpinned (image app:2)"
        );
        assert!(
            warnings.is_empty(),
            "the pin of web is not applied: {warnings:?}"
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
            RegistryFailure::Accept,
            &mut registry,
        );
        let Verdict::Mutate { fixes, warnings } = verdict else {
            panic!("{verdict:?}")
        };
        assert_eq!(fixes.len(), 1);
        assert_eq!(
            warnings[1],
            "spec.containers[1] \"app\": not pinned, accepted as it is: manifest unknown: app:2 \
             (image app:2)"
        );
    }

    #[test]
    fn a_digest_the_host_should_not_have_sent_is_a_failure() {
        let mut registry = TestRegistry {
            answers: vec![("nginx:1.27", Ok("sha256:abc"))],
            ..TestRegistry::default()
        };
        let verdict = pinned(
            Decision::default(),
            &[slot(0, "web", "nginx:1.27")],
            RegistryFailure::Reject,
            &mut registry,
        );
        let Verdict::Reject { message, .. } = verdict else {
            panic!("{verdict:?}")
        };
        assert!(
            message.contains("the host answered an invalid digest: invalid checksum digest length"),
            "{message}"
        );
    }
}
