//! Benchmark floor: the cheapest possible Kubewarden waPC policy.
//!
//! `validate` never looks at its payload and answers with a constant accepted
//! `ValidationResponse`; `validate_settings` always says the settings are valid.
//! What remains is the cost of the waPC round trip (copying the payload into the
//! guest, the call, copying the answer out) plus, in fresh mode, the instance set-up.

use kubewarden_policy_sdk::protocol_version_guest;
use wapc_guest::{register_function, CallResult};

/// A `ValidationResponse` with `accepted: true` and every optional field null,
/// byte for byte what `kubewarden_policy_sdk::accept_request()` serializes.
const ACCEPTED: &[u8] = br#"{"accepted":true,"message":null,"code":null,"mutated_object":null,"audit_annotations":null,"warnings":null}"#;

/// A `SettingsValidationResponse` saying the settings are valid.
const VALID_SETTINGS: &[u8] = br#"{"valid":true,"message":null}"#;

#[no_mangle]
pub extern "C" fn wapc_init() {
    register_function("validate", validate);
    register_function("validate_settings", validate_settings);
    register_function("protocol_version", protocol_version_guest);
}

fn validate(_payload: &[u8]) -> CallResult {
    Ok(ACCEPTED.to_vec())
}

fn validate_settings(_payload: &[u8]) -> CallResult {
    Ok(VALID_SETTINGS.to_vec())
}
