//! The policy module and its settings: loaded once, then one fresh instance per object, as the
//! policy server evaluates every request.

use std::path::{Path, PathBuf};

use crate::engine::{Policy, PolicyError};
use policy_admission::{AdmissionRequest, AdmissionResponse};
use serde_json::{Map, Value};

use crate::settings::PIN_DIGESTS;

/// The module `make policy.wasm` built, when there was one at build time.
#[cfg(embedded_policy)]
const EMBEDDED_MODULE: Option<&[u8]> =
    Some(include_bytes!(concat!(env!("OUT_DIR"), "/policy.wasm")));
#[cfg(not(embedded_policy))]
const EMBEDDED_MODULE: Option<&[u8]> = None;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("this image-pull-policy was built without a policy module (policy.wasm did not exist at build time): pass --policy PATH, or run `make install` to build both")]
    NoEmbeddedModule,
    #[error("cannot read the policy module {path}: {reason}")]
    UnreadableModule { path: PathBuf, reason: String },
    #[error("{0}")]
    Module(PolicyError),
    #[error("the settings from {origin} are not valid: {message}")]
    InvalidSettings { origin: String, message: String },
}

/// Whether the binary carries a module.
pub fn has_embedded_module() -> bool {
    EMBEDDED_MODULE.is_some()
}

/// A loaded module and valid settings.
pub struct Evaluator {
    policy: Policy,
    settings: Map<String, Value>,
}

impl Evaluator {
    /// Loads the module (`--policy`, or the embedded one) and checks the settings with the
    /// module's own `validate_settings`.
    pub fn new(
        module: Option<&Path>,
        settings: Map<String, Value>,
        settings_source: &str,
    ) -> Result<Evaluator, SetupError> {
        let bytes = match module {
            Some(path) => std::fs::read(path).map_err(|e| SetupError::UnreadableModule {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?,
            None => EMBEDDED_MODULE
                .ok_or(SetupError::NoEmbeddedModule)?
                .to_vec(),
        };
        let policy = Policy::new(&bytes).map_err(SetupError::Module)?;
        let answer = policy
            .instantiate()
            .and_then(|mut instance| instance.validate_settings(&settings))
            .map_err(SetupError::Module)?;
        if !answer.valid {
            return Err(SetupError::InvalidSettings {
                origin: settings_source.to_owned(),
                message: answer.message.unwrap_or_default(),
            });
        }
        Ok(Evaluator {
            policy,
            settings: without_pinning(settings),
        })
    }

    /// The module's answer to one request, in a fresh instance.
    pub fn evaluate(&self, request: &AdmissionRequest) -> Result<AdmissionResponse, PolicyError> {
        self.policy.instantiate()?.validate(request, &self.settings)
    }

    pub fn settings(&self) -> &Map<String, Value> {
        &self.settings
    }
}

/// The settings with `pinDigests` off: a manifest does not decide the digest a tag has at
/// admission, and a scan never asks a registry. Everything else is judged as admission judges it.
fn without_pinning(mut settings: Map<String, Value>) -> Map<String, Value> {
    if settings.contains_key(PIN_DIGESTS) {
        settings.insert(PIN_DIGESTS.to_owned(), Value::String("off".to_owned()));
    }
    settings
}
