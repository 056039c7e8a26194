//! image-pull-policy: a Kubewarden policy that makes every container pull its image with
//! `imagePullPolicy: Always` and refuses missing or floating tags.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

use kubewarden_policy_sdk::protocol_version_guest;
use wapc_guest::{register_function, CallResult};

#[cfg(any(test, target_arch = "wasm32"))]
mod arena;
mod decision;
#[cfg(any(test, feature = "fuzzing"))]
mod diff;
mod error;
mod evaluation;
mod mutation;
mod pinning;
mod reference;
mod request;
mod response;
mod rules;
mod settings;
mod slots;
mod text;
mod update;

#[cfg(test)]
mod tests;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();

#[no_mangle]
pub extern "C" fn wapc_init() {
    register_function("validate", validate);
    register_function("validate_settings", validate_settings);
    register_function("protocol_version", protocol_version_guest);
    // The registry lives as long as the instance; everything after is a call's own.
    #[cfg(target_arch = "wasm32")]
    ALLOCATOR.settle();
}

fn validate(payload: &[u8]) -> CallResult {
    Ok(evaluation::validate(payload, &mut pinning::HostCapability).to_json()?)
}

fn validate_settings(payload: &[u8]) -> CallResult {
    Ok(serde_json::to_vec(&evaluation::validate_settings(payload))?)
}

/// Native entry points for the fuzz targets; not part of the module.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    pub use crate::diff::differences;
    pub use crate::evaluation::{validate, validate_settings};
    pub use crate::pinning::Registry;
    pub use crate::request::views as request_views;

    /// Parses an image reference: `(name, tag, digest, fully qualified)`, or the error text.
    pub fn parse_reference(
        written: &str,
    ) -> Result<(String, Option<String>, Option<String>, String), String> {
        crate::reference::ImageReference::parse(written)
            .map(|r| {
                let owned = |s: Option<&str>| s.map(str::to_owned);
                (
                    r.name().to_owned(),
                    owned(r.tag()),
                    owned(r.digest()),
                    r.fully_qualified(),
                )
            })
            .map_err(|error| error.to_string())
    }
}
