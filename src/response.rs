//! The one place a decision becomes the `ValidationResponse` the policy server reads.

use kubewarden_policy_sdk::response::ValidationResponse;
use serde_json::value::RawValue;

use crate::decision::Decision;
use crate::error::RequestError;
use crate::mutation::apply_fixes;

/// The response to an evaluated request; only a mutation builds the object as a JSON value.
pub(crate) fn respond(
    decision: Result<Decision, RequestError>,
    object: Option<&RawValue>,
) -> ValidationResponse {
    match decision {
        Ok(Decision::Accept { warnings }) => response(true, None, None, warnings),
        Ok(Decision::Reject { message, warnings }) => {
            response(false, Some(message), None, warnings)
        }
        Ok(Decision::Mutate { fixes, warnings }) => {
            let mutated = object
                .ok_or(RequestError::NoObject)
                .and_then(|object| apply_fixes(object, &fixes));
            match mutated {
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
    mutated_object: Option<serde_json::Value>,
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
