//! Tests of the whole path, payload bytes to response, and what they share: the real
//! admission requests of `test_data/` (`fixtures`), and requests generated from the SPEC's
//! rules (`properties`).

mod fixtures;
mod properties;

use serde_json::{json, Value};

use crate::diff::differences;
use crate::evaluation::validate;
use crate::pinning::Registry;

/// A registry for tests: the answers it is given, in the host's shape, and what it was asked.
#[derive(Default)]
pub(crate) struct TestRegistry {
    pub(crate) answers: Vec<(&'static str, Result<&'static str, &'static str>)>,
    pub(crate) asked: Vec<String>,
    /// What went to the policy server's log: (image, cause).
    pub(crate) logged: Vec<(String, String)>,
}

impl Registry for TestRegistry {
    fn manifest_digest(&mut self, image: &str) -> Result<String, String> {
        self.asked.push(image.to_owned());
        match self.answers.iter().find(|(known, _)| *known == image) {
            Some((_, answer)) => answer.map(str::to_owned).map_err(str::to_owned),
            None => Err(format!(
                "Fail to interact with OCI registry: Registry error: url \
                 https://registry.test/v2/{image}, envelope: OCI API errors: [OCI API error: \
                 manifest unknown]"
            )),
        }
    }

    fn log_failure(&mut self, image: &str, cause: &str) {
        self.logged.push((image.to_owned(), cause.to_owned()));
    }
}

pub(crate) fn fixture(name: &str) -> Value {
    let path = format!("{}/test_data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let value: Value = serde_json::from_str(&text).unwrap();
    match value.get("request") {
        Some(request) => request.clone(),
        None => value,
    }
}

/// What a response says, in a shape tests can compare.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) accepted: bool,
    pub(crate) message: Option<String>,
    pub(crate) warnings: Vec<String>,
    /// JSON Pointers at which the mutated object differs from the request's object.
    pub(crate) changed: Vec<String>,
}

pub(crate) fn evaluate(request: &Value, settings: &Value) -> Outcome {
    let (outcome, mutated) = evaluate_with(request, settings, &mut TestRegistry::default());
    assert!(
        mutated.is_none() || !outcome.changed.is_empty(),
        "a mutation that changes nothing"
    );
    outcome
}

/// `evaluate` with the given registry; also returns the mutated object.
pub(crate) fn evaluate_with(
    request: &Value,
    settings: &Value,
    registry: &mut TestRegistry,
) -> (Outcome, Option<Value>) {
    let payload = serde_json::to_vec(&json!({ "request": request, "settings": settings })).unwrap();
    let response = validate(&payload, registry);
    let mutated = response
        .mutated_object
        .as_deref()
        .map(|text| serde_json::from_str::<Value>(text).unwrap());
    let response = serde_json::to_value(&response).unwrap();
    let mut changed = Vec::new();
    if let Some(mutated) = &mutated {
        differences("", &request["object"], mutated, &mut changed);
    }
    let outcome = Outcome {
        accepted: response["accepted"].as_bool().unwrap(),
        message: response["message"].as_str().map(str::to_owned),
        warnings: serde_json::from_value(response["warnings"].clone()).unwrap_or_default(),
        changed,
    };
    (outcome, mutated)
}
