//! Benchmark reference: what every SDK-based policy pays before its own logic runs.
//!
//! `validate` parses the whole payload into the SDK's
//! `ValidationRequest<serde_json::Value>` (settings kept as a generic JSON value,
//! the request into `KubernetesAdmissionRequest` with its `object` as a
//! `serde_json::Value`), then accepts with the SDK's `accept_request()`.
//! `validate_settings` parses the settings as JSON and says they are valid.

use kubewarden_policy_sdk::{
    accept_request, protocol_version_guest, request::ValidationRequest,
    settings::SettingsValidationResponse,
};
use wapc_guest::{register_function, CallResult};

#[no_mangle]
pub extern "C" fn wapc_init() {
    register_function("validate", validate);
    register_function("validate_settings", validate_settings);
    register_function("protocol_version", protocol_version_guest);
}

fn validate(payload: &[u8]) -> CallResult {
    let request = ValidationRequest::<serde_json::Value>::new(payload)?;
    // Keep the parse observable so the optimizer cannot drop it.
    std::hint::black_box(&request);
    accept_request()
}

fn validate_settings(payload: &[u8]) -> CallResult {
    let settings: serde_json::Value = serde_json::from_slice(payload)?;
    std::hint::black_box(&settings);
    Ok(serde_json::to_vec(&SettingsValidationResponse {
        valid: true,
        message: None,
    })?)
}
