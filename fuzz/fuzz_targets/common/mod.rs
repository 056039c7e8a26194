//! Invariants every `validate` response keeps, shared by the request fuzz targets.

use image_pull_policy::fuzzing::{differences, Registry};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// Warnings list 20 violations, then one line saying how many more there are.
pub const MAX_WARNINGS: usize = 21;

/// A registry that answers every tag with a digest made from the image, except images whose
/// length is a multiple of 4, which it cannot reach: both ways of pinning get exercised.
pub struct FuzzRegistry;

impl Registry for FuzzRegistry {
    fn manifest_digest(&mut self, image: &str) -> Result<String, String> {
        if image.len() % 4 == 0 {
            // An engine-shaped error chain made of fuzzed text, for the policy to summarize.
            return Err(format!(
                "Host error: Callback evaluation failure: {image}\n\nCaused by:\n    0: \
                 {image}\n    1: {}\n\nStack backtrace:\n   0: {image}",
                image.chars().rev().collect::<String>()
            ));
        }
        let hash = image.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
        });
        Ok(format!(
            "sha256:{hash:016x}{:016x}{:016x}{:016x}",
            hash.rotate_left(13),
            hash.rotate_left(29),
            hash.rotate_left(47)
        ))
    }

    fn log_failure(&mut self, image: &str, cause: &str) {
        assert!(!image.is_empty() && !cause.is_empty(), "an empty log event");
    }
}

/// The response as the policy server reads it (the wire form, whatever type built it).
#[derive(Deserialize)]
struct Response<'a> {
    accepted: bool,
    message: Option<String>,
    #[serde(borrow, default)]
    mutated_object: Option<&'a RawValue>,
    warnings: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Sent<'a> {
    #[serde(borrow)]
    request: SentRequest<'a>,
}

#[derive(Deserialize)]
struct SentRequest<'a> {
    #[serde(borrow, default)]
    object: Option<&'a RawValue>,
}

/// Checks `response`, the answer to `payload`, against the response invariants; panics on a
/// breach so libFuzzer records the input.
pub fn check_response(payload: &[u8], response: &impl Serialize) {
    let wire = serde_json::to_string(response).expect("the response serializes");
    let response: Response<'_> = serde_json::from_str(&wire).expect("the response reads back");
    if !response.accepted {
        assert!(
            response.message.as_deref().is_some_and(|m| !m.is_empty()),
            "refused without a message: {wire}"
        );
    }
    if response.mutated_object.is_some() {
        assert!(response.accepted, "a mutation in a refusal: {wire}");
    }
    if let Some(warnings) = &response.warnings {
        assert!(
            !warnings.is_empty(),
            "an empty warning list is sent as null: {wire}"
        );
        assert!(
            warnings.len() <= MAX_WARNINGS,
            "{} warnings: {wire}",
            warnings.len()
        );
    }
    for text in response
        .message
        .iter()
        .chain(response.warnings.iter().flatten())
    {
        assert!(
            !text.chars().any(|c| c == '\n' || c == '\r'),
            "a line break reaches a message: {text:?}"
        );
    }
    if let Some(mutated) = response.mutated_object {
        check_mutation(payload, mutated.get());
    }
}

/// A mutation changes only pull-policy keys of pod-spec list entries, each to "Always", and
/// images, each to itself with a digest appended.
fn check_mutation(payload: &[u8], mutated: &str) {
    assert!(
        serde_json::from_str::<IgnoredAny>(mutated).is_ok(),
        "the mutated object is not JSON: {mutated}"
    );
    // serde_json skips the fields it ignores without checking their UTF-8 or their escapes, so
    // a payload that is not strictly JSON outside the object can still be evaluated: compare
    // with the object alone, read as the policy reads it.
    let sent: Sent<'_> = serde_json::from_slice(payload).expect("a mutated payload is readable");
    let object = sent
        .request
        .object
        .expect("a mutated request has an object");
    let texts = format!("object: {}\nmutated: {mutated}", object.get());
    // Numbers beyond f64 (1e400) cannot be compared as values; the text check above stands.
    let (Ok(object), Ok(mutated)) = (
        serde_json::from_str::<Value>(object.get()),
        serde_json::from_str::<Value>(mutated),
    ) else {
        return;
    };
    let mut changed = Vec::new();
    differences("", &object, &mutated, &mut changed);
    assert!(
        !changed.is_empty(),
        "a mutation that changes nothing\n{texts}"
    );
    for pointer in &changed {
        if is_image_pointer(pointer) {
            let before = object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default();
            let after = mutated
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default();
            assert!(
                after
                    .strip_prefix(before)
                    .is_some_and(|digest| digest.starts_with("@sha256:")),
                "{pointer} is not its image pinned: {before:?} became {after:?}\n{texts}"
            );
            continue;
        }
        assert!(
            is_policy_pointer(pointer),
            "the mutation changes {pointer}, not a pull policy or an image\n{texts}"
        );
        assert_eq!(
            mutated.pointer(pointer),
            Some(&Value::String("Always".into())),
            "{pointer} is not set to Always"
        );
    }
}

/// `…/(containers|initContainers|ephemeralContainers)/N/image` or `…/volumes/N/image/reference`.
fn is_image_pointer(pointer: &str) -> bool {
    let parts: Vec<&str> = pointer.rsplit('/').collect();
    let is_index = |s: &&str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        ["image", index, list, ..] => {
            is_index(index)
                && matches!(
                    *list,
                    "containers" | "initContainers" | "ephemeralContainers"
                )
        }
        ["reference", "image", index, "volumes", ..] => is_index(index),
        _ => false,
    }
}

/// `…/(containers|initContainers|ephemeralContainers)/N/imagePullPolicy` or
/// `…/volumes/N/image/pullPolicy`.
fn is_policy_pointer(pointer: &str) -> bool {
    let parts: Vec<&str> = pointer.rsplit('/').collect();
    let is_index = |s: &&str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        ["imagePullPolicy", index, list, ..] => {
            is_index(index)
                && matches!(
                    *list,
                    "containers" | "initContainers" | "ephemeralContainers"
                )
        }
        ["pullPolicy", "image", index, "volumes", ..] => is_index(index),
        _ => false,
    }
}
