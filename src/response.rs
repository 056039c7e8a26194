//! The one place a decision becomes the response the policy server reads.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::decision::Decision;
use crate::error::RequestError;
use crate::mutation::apply_fixes;
use crate::request::object_text;

/// Kubewarden's validation response. The SDK's type holds the mutated object as a
/// `serde_json::Value`; this one carries the edited JSON text as it is.
#[derive(Debug, Serialize)]
pub struct ValidationResponse {
    pub accepted: bool,
    pub message: Option<String>,
    pub code: Option<u16>,
    pub mutated_object: Option<Box<RawValue>>,
    pub audit_annotations: Option<std::collections::BTreeMap<String, String>>,
    pub warnings: Option<Vec<String>>,
}

/// The response to an evaluated request; `payload` is read again only to mutate its object.
pub(crate) fn respond(
    decision: Result<Decision<'_>, RequestError>,
    payload: &[u8],
) -> ValidationResponse {
    match decision {
        Ok(Decision::Accept { warnings }) => response(true, None, None, warnings),
        Ok(Decision::Reject { message, warnings }) => {
            response(false, Some(message), None, warnings)
        }
        Ok(Decision::Mutate { fixes, warnings }) => {
            match object_text(payload).and_then(|object| apply_fixes(object, &fixes)) {
                Ok(mutated) => response(true, None, Some(mutated), warnings),
                Err(error) => refusal(&error),
            }
        }
        Err(error) => refusal(&error),
    }
}

pub(crate) fn refusal(error: &RequestError) -> ValidationResponse {
    response(false, Some(error.to_string()), None, Vec::new())
}

fn response(
    accepted: bool,
    message: Option<String>,
    mutated_object: Option<Box<RawValue>>,
    warnings: Vec<String>,
) -> ValidationResponse {
    ValidationResponse {
        accepted,
        message,
        code: None,
        mutated_object,
        audit_annotations: None,
        warnings: if warnings.is_empty() {
            None
        } else {
            Some(warnings)
        },
    }
}
