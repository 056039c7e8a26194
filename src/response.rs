//! The one place a decision becomes the response the policy server reads.

use serde::ser::{Error as _, SerializeStruct, Serializer};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::decision::{Decision, Verdict};
use crate::error::RequestError;
use crate::mutation::{apply_fixes, Fix};
use crate::request::object_text;

/// Kubewarden's validation response. The SDK's type holds the mutated object as a
/// `serde_json::Value`; this one carries the edited JSON text as it is.
#[derive(Debug)]
pub struct ValidationResponse {
    pub accepted: bool,
    pub message: Option<String>,
    pub code: Option<u16>,
    /// The mutated object's JSON text.
    pub mutated_object: Option<String>,
    pub warnings: Option<Vec<String>>,
}

/// The most common answer, written once.
const ACCEPTED: &[u8] = br#"{"accepted":true,"message":null,"code":null,"mutated_object":null,"audit_annotations":null,"warnings":null}"#;

impl ValidationResponse {
    /// The response as the policy server reads it: the fields of the SDK's
    /// `ValidationResponse`, with the mutated object written as it is (it is JSON by
    /// construction: a string value replaced, or a member added after a value).
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        if self.accepted
            && self.message.is_none()
            && self.mutated_object.is_none()
            && self.warnings.is_none()
        {
            return Ok(ACCEPTED.to_vec());
        }
        self.written()
    }

    /// Any other response, written field by field; apart from the accepted one's path, which
    /// is every request's.
    #[inline(never)]
    fn written(&self) -> serde_json::Result<Vec<u8>> {
        let object_len = self.mutated_object.as_ref().map_or(0, String::len);
        let mut out = Vec::with_capacity(128 + object_len);
        out.extend_from_slice(b"{\"accepted\":");
        serde_json::to_writer(&mut out, &self.accepted)?;
        out.extend_from_slice(b",\"message\":");
        serde_json::to_writer(&mut out, &self.message)?;
        out.extend_from_slice(b",\"code\":");
        serde_json::to_writer(&mut out, &self.code)?;
        out.extend_from_slice(b",\"mutated_object\":");
        match &self.mutated_object {
            Some(object) => out.extend_from_slice(object.as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"audit_annotations\":null,\"warnings\":");
        serde_json::to_writer(&mut out, &self.warnings)?;
        out.push(b'}');
        Ok(out)
    }
}

/// The same fields through serde, for the fuzz targets and tests; here the mutated object is
/// checked to be JSON.
impl Serialize for ValidationResponse {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mutated = match &self.mutated_object {
            Some(text) => Some(RawValue::from_string(text.clone()).map_err(S::Error::custom)?),
            None => None,
        };
        let mut response = serializer.serialize_struct("ValidationResponse", 6)?;
        response.serialize_field("accepted", &self.accepted)?;
        response.serialize_field("message", &self.message)?;
        response.serialize_field("code", &self.code)?;
        response.serialize_field("mutated_object", &mutated)?;
        response.serialize_field("audit_annotations", &None::<()>)?;
        response.serialize_field("warnings", &self.warnings)?;
        response.end()
    }
}

/// The response to an evaluated request; `payload` is read again only to mutate its object.
pub(crate) fn respond(
    decision: Result<Decision<'_>, RequestError>,
    payload: &[u8],
) -> ValidationResponse {
    match decision.map(Decision::verdict) {
        Ok(Verdict::Accept { warnings }) => response(true, None, None, warnings),
        Ok(Verdict::Reject { message, warnings }) => response(false, Some(message), None, warnings),
        Ok(Verdict::Mutate { fixes, warnings }) => mutated(payload, &fixes, warnings),
        Err(error) => refusal(&error),
    }
}

/// The response with the mutated object: apart, so that the code every accepted request runs
/// stays together.
#[inline(never)]
fn mutated(payload: &[u8], fixes: &[Fix<'_>], warnings: Vec<String>) -> ValidationResponse {
    match object_text(payload).and_then(|object| apply_fixes(object, fixes)) {
        Ok(mutated) => response(true, None, Some(mutated), warnings),
        Err(error) => refusal(&error),
    }
}

#[cold]
#[inline(never)]
pub(crate) fn refusal(error: &RequestError) -> ValidationResponse {
    response(false, Some(error.to_string()), None, Vec::new())
}

fn response(
    accepted: bool,
    message: Option<String>,
    mutated_object: Option<String>,
    warnings: Vec<String>,
) -> ValidationResponse {
    ValidationResponse {
        accepted,
        message,
        code: None,
        mutated_object,
        warnings: if warnings.is_empty() {
            None
        } else {
            Some(warnings)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(mutated_object: Option<&str>, warnings: Option<Vec<&str>>) -> ValidationResponse {
        ValidationResponse {
            accepted: mutated_object.is_some(),
            message: mutated_object
                .is_none()
                .then(|| "spec \"x\"\u{7f}: é".to_owned()),
            code: None,
            mutated_object: mutated_object.map(str::to_owned),
            warnings: warnings.map(|w| w.into_iter().map(str::to_owned).collect()),
        }
    }

    #[test]
    fn hand_written_json_is_what_serde_writes() {
        let accepted = ValidationResponse {
            accepted: true,
            message: None,
            code: None,
            mutated_object: None,
            warnings: None,
        };
        for response in [
            accepted,
            response(None, None),
            response(
                Some(r#"{"a": [1, 2.50, "\u00e9"] , "b":{}}"#),
                Some(vec!["w1", "w\"2"]),
            ),
            response(Some("{}"), Some(vec![])),
        ] {
            let by_hand = String::from_utf8(response.to_json().unwrap()).unwrap();
            assert_eq!(by_hand, serde_json::to_string(&response).unwrap());
            serde_json::from_str::<serde_json::Value>(&by_hand).unwrap();
        }
    }

    #[test]
    fn serde_refuses_a_mutated_object_that_is_not_json() {
        assert!(serde_json::to_string(&response(Some(r#"{"a":}"#), None)).is_err());
    }
}
