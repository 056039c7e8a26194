//! Arbitrary bytes as the `validate_settings` payload: valid exactly when there is no message,
//! and `validate` agrees with `validate_settings` on the same settings.
#![no_main]

use image_pull_policy::fuzzing::{validate, validate_settings};
use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;

// For its registry; this target checks settings, not responses.
#[allow(dead_code)]
mod common;

/// A compliant Pod: with valid settings of any kind it is never refused for its settings.
const POD: &str = r#"{"kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE",
"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},
"spec":{"containers":[{"name":"app","image":"nginx:1.27","imagePullPolicy":"Always"}]}}}"#;

const REFUSED_SETTINGS: &str = "the policy settings are not valid: ";

fuzz_target!(|payload: &[u8]| {
    let response = validate_settings(payload);
    assert_eq!(
        response.valid,
        response.message.is_none(),
        "valid must be exactly 'no message': {response:?}"
    );
    if let Some(message) = &response.message {
        assert!(!message.is_empty(), "an empty message");
    }
    // The same settings inside a validate payload: only when they are one JSON value.
    let Ok(text) = std::str::from_utf8(payload) else {
        assert!(!response.valid, "non-UTF-8 settings are valid");
        return;
    };
    if serde_json::from_str::<IgnoredAny>(text).is_err() {
        assert!(
            !response.valid,
            "settings that are not JSON are valid: {text:?}"
        );
        return;
    }
    let request = format!(r#"{{"request":{POD},"settings":{text}}}"#);
    let verdict = validate(request.as_bytes(), &mut common::FuzzRegistry);
    let refused_for_settings = verdict
        .message
        .as_deref()
        .is_some_and(|m| m.starts_with(REFUSED_SETTINGS));
    assert_eq!(
        refused_for_settings, !response.valid,
        "validate_settings says {:?} but validate says {:?}",
        response, verdict
    );
    if response.valid {
        // A compliant, Always-pulling, tagged image: nothing any setting can object to,
        // except requireDigest.
        assert!(
            verdict.accepted
                || verdict
                    .message
                    .as_deref()
                    .is_some_and(|m| m.contains("digest")),
            "{verdict:?}"
        );
    } else {
        // The same words; only a JSON error's position may differ (the payload's settings
        // start at their first non-blank character).
        let words = |m: &str| m.split(" at line ").next().unwrap_or_default().to_owned();
        let expected = format!(
            "{REFUSED_SETTINGS}{}",
            response.message.as_deref().unwrap_or_default()
        );
        assert_eq!(
            words(verdict.message.as_deref().unwrap_or_default()),
            words(&expected),
            "the two entry points word a settings error differently"
        );
    }
});
