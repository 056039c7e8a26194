//! The data the host exchanges with a Kubewarden waPC policy, and what it prints.
//!
//! Everything here mirrors what `kwctl run` does through policy-evaluator:
//!
//! * the request file is either a whole `AdmissionReview` (its `request` is used) or a bare
//!   `AdmissionRequest` (kwctl `src/command/run/evaluator.rs`, `build_validate_request`);
//! * the request is read into a typed `AdmissionRequest` and written back out: unknown keys are
//!   dropped, missing required ones are an error, and objects come out with their keys sorted,
//!   because policy-evaluator's serde_json keeps maps in a `BTreeMap`
//!   (policy-evaluator `src/admission_request.rs`);
//! * the `validate` payload is `{"request": <AdmissionRequest>, "settings": <settings>}`
//!   (policy-evaluator `src/runtimes/wapc/runtime.rs`);
//! * the module's `ValidationResponse` becomes an `AdmissionResponse` as in policy-evaluator
//!   `src/admission_response.rs` (`from_policy_validation_response`).

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Message policy-evaluator uses when a policy mutates the object of a DELETE request.
pub const MUTATION_ON_NULL_OBJECT: &str = "Incoming object is null, which happens only with DELETE operations, but the policy is attempting a mutation. This is not allowed";

/// `admission/v1` GroupVersionKind: all three members are required, as in policy-evaluator.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupVersionKind {
    pub group: String,
    pub version: String,
    pub kind: String,
}

/// `admission/v1` GroupVersionResource.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupVersionResource {
    pub group: String,
    pub version: String,
    pub resource: String,
}

/// `authentication/v1` UserInfo, written like k8s-openapi does: keys in alphabetical order,
/// absent members left out.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// `admission/v1` AdmissionRequest, with the members (and their order) of policy-evaluator's
/// own type.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub resource: GroupVersionResource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_kind: Option<GroupVersionKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_resource: Option<GroupVersionResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_sub_resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub operation: String,
    pub user_info: UserInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_object: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
}

/// Where the AdmissionRequest came from in the request file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestSource {
    /// The file held a whole `AdmissionReview`; its `request` was used.
    AdmissionReview,
    /// The file held the AdmissionRequest itself.
    Bare,
}

/// Reads a request file's JSON the way kwctl does: an object whose `kind` is `AdmissionReview`
/// contributes its `request`, any other object is the AdmissionRequest itself.
pub fn parse_request(input: &Value) -> Result<(AdmissionRequest, RequestSource)> {
    let object = input
        .as_object()
        .ok_or_else(|| anyhow!("Invalid request object"))?;
    let (raw, source) = if object.get("kind").and_then(Value::as_str) == Some("AdmissionReview") {
        let request = object
            .get("request")
            .ok_or_else(|| anyhow!("invalid AdmissionReview object"))?;
        (request, RequestSource::AdmissionReview)
    } else {
        (input, RequestSource::Bare)
    };
    let mut request = AdmissionRequest::deserialize(raw)
        .map_err(|e| anyhow!("cannot build AdmissionRequest object from given input: {e}"))?;
    // policy-evaluator keeps JSON objects in a BTreeMap: the policy receives every object with
    // its keys sorted. Sorting here gives the same bytes whatever serde_json features the
    // workspace enables for this build.
    for value in [
        request.object.as_mut(),
        request.old_object.as_mut(),
        request.options.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        value.sort_all_objects();
    }
    Ok((request, source))
}

/// Reads a request from the text of a request file. A file that is not JSON is reported with
/// serde_json's message alone, as kwctl reports it.
pub fn parse_request_str(text: &str) -> Result<(AdmissionRequest, RequestSource)> {
    let value: Value = serde_json::from_str(text).map_err(|e| anyhow!(e))?;
    parse_request(&value)
}

/// Settings must be a JSON object; `null` means no settings (kwctl `PolicySettings::try_from`).
pub fn settings_from_value(value: Value) -> Result<Map<String, Value>> {
    match value {
        Value::Null => Ok(Map::new()),
        Value::Object(mut map) => {
            sort_map(&mut map);
            Ok(map)
        }
        _ => bail!("Invalid settings in CRD, not an object"),
    }
}

/// Parses `--settings-json`.
pub fn settings_from_json(text: &str) -> Result<Map<String, Value>> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| anyhow!("Cannot parse settings JSON: {e}"))?;
    settings_from_value(value)
}

/// Parses the contents of `--settings-path`: YAML, and therefore JSON too.
pub fn settings_from_yaml(text: &str, path: &str) -> Result<Map<String, Value>> {
    let value: Value = serde_saphyr::from_str(text)
        .map_err(|e| anyhow!("Cannot parse settings file {path}: {e}"))?;
    settings_from_value(value)
}

fn sort_map(map: &mut Map<String, Value>) {
    map.sort_keys();
    for value in map.values_mut() {
        value.sort_all_objects();
    }
}

#[derive(Serialize)]
struct ValidatePayload<'a> {
    request: &'a AdmissionRequest,
    settings: &'a Map<String, Value>,
}

/// The bytes given to the module's `validate` function.
pub fn validate_payload(request: &AdmissionRequest, settings: &Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec(&ValidatePayload { request, settings })
        .expect("a JSON value always serializes")
}

/// The bytes given to the module's `validate_settings` function.
pub fn settings_payload(settings: &Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec(settings).expect("a JSON value always serializes")
}

/// What a policy answers to `validate_settings`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct SettingsValidationResponse {
    pub valid: bool,
    #[serde(default)]
    pub message: Option<String>,
}

/// What a policy answers to `validate`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ValidationResponse {
    pub accepted: bool,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub code: Option<u16>,
    #[serde(default)]
    pub mutated_object: Option<Value>,
    #[serde(default)]
    pub audit_annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
}

/// `status` of an AdmissionResponse: only the members a policy can set are modelled.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdmissionResponseStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
}

/// `admission/v1` AdmissionResponse, serialized with the members and the order of
/// policy-evaluator's type, so that the printed line matches `kwctl run`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<AdmissionResponseStatus>,
    pub audit_annotations: Option<BTreeMap<String, String>>,
    pub warnings: Option<Vec<String>>,
}

impl AdmissionResponse {
    /// Builds the AdmissionResponse for a policy's answer.
    ///
    /// `object` is the request's `object` (`None` for DELETE). As in policy-evaluator:
    /// a mutation of a null object is refused; a `mutated_object` equal to `object` gives no
    /// patch; `status` is present when the policy gave a message or a code, and carries only
    /// what the policy gave (no code is made up).
    pub fn from_validation_response(
        uid: &str,
        object: Option<&Value>,
        response: ValidationResponse,
    ) -> Result<AdmissionResponse> {
        let patch = match (&response.mutated_object, object) {
            (Some(_), None) => {
                return Ok(AdmissionResponse {
                    uid: uid.to_owned(),
                    allowed: false,
                    status: Some(AdmissionResponseStatus {
                        message: Some(MUTATION_ON_NULL_OBJECT.to_owned()),
                        code: None,
                    }),
                    ..Default::default()
                });
            }
            (Some(mutated), Some(original)) => json_patch_base64(original, mutated)?,
            (None, _) => None,
        };
        let status = if response.message.is_some() || response.code.is_some() {
            Some(AdmissionResponseStatus {
                message: response.message,
                code: response.code,
            })
        } else {
            None
        };
        Ok(AdmissionResponse {
            uid: uid.to_owned(),
            allowed: response.accepted,
            patch_type: patch.as_ref().map(|_| "JSONPatch".to_owned()),
            patch,
            status,
            audit_annotations: response.audit_annotations,
            warnings: response.warnings,
        })
    }

    /// The rejection policy-evaluator gives when the policy fails to answer `validate` (a trap, a
    /// waPC error, an answer it cannot read): kwctl prints it, and policy-server sends it.
    pub fn internal_server_error(uid: &str, message: &str) -> AdmissionResponse {
        AdmissionResponse {
            uid: uid.to_owned(),
            allowed: false,
            status: Some(AdmissionResponseStatus {
                message: Some(format!("internal server error: {message}")),
                code: Some(500),
            }),
            ..Default::default()
        }
    }

    /// The single line `kwctl run` prints.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("an AdmissionResponse always serializes")
    }
}

/// The RFC 6902 patch turning `original` into `mutated`, as JSON text; `None` when they are
/// equal.
pub fn json_patch(original: &Value, mutated: &Value) -> Result<Option<String>> {
    let patch = json_patch::diff(original, mutated);
    if patch.0.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        serde_json::to_string(&patch).context("cannot serialize the JSON patch")?,
    ))
}

/// [`json_patch`], base64-encoded (standard alphabet, padded) as in an AdmissionResponse.
pub fn json_patch_base64(original: &Value, mutated: &Value) -> Result<Option<String>> {
    Ok(json_patch(original, mutated)?.map(|text| STANDARD.encode(text)))
}

/// A module's answer that is not the JSON document the waPC protocol asks for.
#[derive(Debug, thiserror::Error)]
#[error(
    "the policy answered `{function}` with something that is not a {expected} ({cause}): {preview}"
)]
pub struct InvalidAnswer {
    pub function: &'static str,
    pub expected: &'static str,
    /// Why the answer could not be read; policy-evaluator's messages quote it.
    pub cause: serde_json::Error,
    /// The start of the answer.
    pub preview: String,
}

impl InvalidAnswer {
    fn new(
        function: &'static str,
        expected: &'static str,
        cause: serde_json::Error,
        bytes: &[u8],
    ) -> Self {
        InvalidAnswer {
            function,
            expected,
            cause,
            preview: preview(bytes),
        }
    }
}

/// Decodes a module's `validate` answer.
pub fn decode_validation_response(bytes: &[u8]) -> Result<ValidationResponse, InvalidAnswer> {
    let mut response: ValidationResponse = serde_json::from_slice(bytes)
        .map_err(|e| InvalidAnswer::new("validate", "ValidationResponse", e, bytes))?;
    if let Some(mutated) = response.mutated_object.as_mut() {
        mutated.sort_all_objects();
    }
    Ok(response)
}

/// Decodes a module's `validate_settings` answer.
pub fn decode_settings_response(bytes: &[u8]) -> Result<SettingsValidationResponse, InvalidAnswer> {
    serde_json::from_slice(bytes).map_err(|e| {
        InvalidAnswer::new("validate_settings", "SettingsValidationResponse", e, bytes)
    })
}

/// The start of a module's answer, for error messages.
fn preview(bytes: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]).into_owned();
    if bytes.len() > MAX {
        format!("{text:?}… ({} bytes)", bytes.len())
    } else {
        format!("{text:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bare_request() -> Value {
        json!({
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "name": "nginx",
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "admin", "groups": ["system:authenticated"]},
            "object": {"metadata": {"name": "nginx"}, "apiVersion": "v1", "kind": "Pod"},
            "dryRun": false,
            "somethingUnknown": 1
        })
    }

    #[test]
    fn bare_request_is_used_as_is() {
        let (request, source) = parse_request(&bare_request()).unwrap();
        assert_eq!(source, RequestSource::Bare);
        assert_eq!(request.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(request.kind.kind, "Pod");
        assert_eq!(request.operation, "CREATE");
        assert_eq!(request.dry_run, Some(false));
    }

    #[test]
    fn admission_review_contributes_its_request() {
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": bare_request(),
        });
        let (request, source) = parse_request(&review).unwrap();
        assert_eq!(source, RequestSource::AdmissionReview);
        let (bare, _) = parse_request(&bare_request()).unwrap();
        assert_eq!(request, bare);
    }

    #[test]
    fn admission_review_without_request_is_an_error() {
        let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"});
        let err = parse_request(&review).unwrap_err().to_string();
        assert_eq!(err, "invalid AdmissionReview object");
    }

    #[test]
    fn non_object_and_incomplete_requests_are_errors() {
        assert_eq!(
            parse_request(&json!([1, 2])).unwrap_err().to_string(),
            "Invalid request object"
        );
        let mut missing_group = bare_request();
        missing_group["kind"] = json!({"version": "v1", "kind": "Pod"});
        let err = parse_request(&missing_group).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot build AdmissionRequest object from given input")
                && err.contains("group"),
            "{err}"
        );
    }

    #[test]
    fn payload_has_request_then_settings_with_sorted_object_keys() {
        let (request, _) = parse_request(&bare_request()).unwrap();
        let settings = settings_from_json(r#"{"b": 1, "a": {"y": 2, "x": 1}}"#).unwrap();
        let payload = String::from_utf8(validate_payload(&request, &settings)).unwrap();
        let expected = concat!(
            r#"{"request":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","#,
            r#""kind":{"group":"","version":"v1","kind":"Pod"},"#,
            r#""resource":{"group":"","version":"v1","resource":"pods"},"#,
            r#""requestKind":{"group":"","version":"v1","kind":"Pod"},"#,
            r#""name":"nginx","namespace":"default","operation":"CREATE","#,
            r#""userInfo":{"groups":["system:authenticated"],"username":"admin"},"#,
            r#""object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"nginx"}},"#,
            r#""dryRun":false},"#,
            r#""settings":{"a":{"x":1,"y":2},"b":1}}"#
        );
        assert_eq!(payload, expected);
    }

    #[test]
    fn settings_must_be_an_object_or_null() {
        assert!(settings_from_json("null").unwrap().is_empty());
        assert!(settings_from_json("[1]").is_err());
        let yaml = settings_from_yaml("allowLatest: false\nlist:\n  - a\n", "s.yaml").unwrap();
        assert_eq!(
            Value::Object(yaml),
            json!({"allowLatest": false, "list": ["a"]})
        );
        assert!(settings_from_yaml("- 1\n", "s.yaml").is_err());
    }

    #[test]
    fn patch_is_rfc6902_diff_in_base64() {
        let original = json!({"spec": {"containers": [
            {"name": "a", "imagePullPolicy": "IfNotPresent"},
            {"name": "b", "imagePullPolicy": "IfNotPresent"}
        ]}});
        let mut mutated = original.clone();
        mutated["spec"]["containers"][0]["imagePullPolicy"] = json!("Always");
        mutated["spec"]["containers"][1]["imagePullPolicy"] = json!("Always");
        let text = json_patch(&original, &mutated).unwrap().unwrap();
        assert_eq!(
            text,
            r#"[{"op":"replace","path":"/spec/containers/0/imagePullPolicy","value":"Always"},{"op":"replace","path":"/spec/containers/1/imagePullPolicy","value":"Always"}]"#
        );
        let encoded = json_patch_base64(&original, &mutated).unwrap().unwrap();
        assert_eq!(STANDARD.decode(&encoded).unwrap(), text.as_bytes());
        // Applying the patch gives back the mutated object.
        let patch: json_patch::Patch = serde_json::from_str(&text).unwrap();
        let mut patched = original.clone();
        json_patch::patch(&mut patched, &patch).unwrap();
        assert_eq!(patched, mutated);
    }

    #[test]
    fn identical_mutated_object_gives_no_patch() {
        let object = json!({"a": 1});
        let response = ValidationResponse {
            accepted: true,
            message: None,
            code: None,
            mutated_object: Some(object.clone()),
            audit_annotations: None,
            warnings: None,
        };
        let out =
            AdmissionResponse::from_validation_response("u", Some(&object), response).unwrap();
        assert_eq!(
            out.to_line(),
            r#"{"uid":"u","allowed":true,"auditAnnotations":null,"warnings":null}"#
        );
    }

    #[test]
    fn mutation_line_has_patch_type_then_patch() {
        let object = json!({"a": 1});
        let response = decode_validation_response(
            br#"{"accepted":true,"message":null,"code":null,"mutated_object":{"a":2},"audit_annotations":null,"warnings":null}"#,
        )
        .unwrap();
        let out =
            AdmissionResponse::from_validation_response("u", Some(&object), response).unwrap();
        let patch = STANDARD.encode(r#"[{"op":"replace","path":"/a","value":2}]"#);
        assert_eq!(
            out.to_line(),
            format!(
                r#"{{"uid":"u","allowed":true,"patchType":"JSONPatch","patch":"{patch}","auditAnnotations":null,"warnings":null}}"#
            )
        );
    }

    #[test]
    fn rejection_line_has_status_with_message_and_only_the_given_code() {
        let response =
            decode_validation_response(br#"{"accepted":false,"message":"no latest"}"#).unwrap();
        let out = AdmissionResponse::from_validation_response("u", None, response).unwrap();
        assert_eq!(
            out.to_line(),
            r#"{"uid":"u","allowed":false,"status":{"message":"no latest"},"auditAnnotations":null,"warnings":null}"#
        );
        let response = decode_validation_response(
            br#"{"accepted":false,"message":"m","code":403,"audit_annotations":{"z":"1","a":"2"},"warnings":["w"]}"#,
        )
        .unwrap();
        let out = AdmissionResponse::from_validation_response("u", None, response).unwrap();
        assert_eq!(
            out.to_line(),
            r#"{"uid":"u","allowed":false,"status":{"message":"m","code":403},"auditAnnotations":{"a":"2","z":"1"},"warnings":["w"]}"#
        );
    }

    #[test]
    fn mutating_a_null_object_is_refused() {
        let response =
            decode_validation_response(br#"{"accepted":true,"mutated_object":{"a":1}}"#).unwrap();
        let out = AdmissionResponse::from_validation_response("u", None, response).unwrap();
        assert!(!out.allowed);
        assert_eq!(out.patch, None);
        assert_eq!(
            out.status.unwrap().message.as_deref(),
            Some(MUTATION_ON_NULL_OBJECT)
        );
    }

    #[test]
    fn invalid_answers_are_reported() {
        let err = decode_validation_response(b"not json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a ValidationResponse"), "{err}");
        let err = decode_validation_response(br#"{"message":"x"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("accepted"), "{err}");
        let err = decode_settings_response(b"{}").unwrap_err().to_string();
        assert!(err.contains("valid"), "{err}");
    }
}
