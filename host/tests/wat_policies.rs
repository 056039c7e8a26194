//! The host against hand-written waPC guests: every way a module can answer or fail.

mod common;

use common::{wat_guest, Validate, VALID_SETTINGS};
use policy_host::admission::{parse_request, AdmissionResponse};
use policy_host::engine::{EngineOptions, Policy, PolicyError};
use serde_json::{json, Map, Value};

fn policy(validate: Validate) -> Policy {
    Policy::new(
        wat_guest(VALID_SETTINGS, &validate).as_bytes(),
        EngineOptions::default(),
    )
    .unwrap()
}

fn request(object: Value) -> policy_host::admission::AdmissionRequest {
    parse_request(&json!({
        "uid": "uid-1",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "operation": "CREATE",
        "userInfo": {"username": "alice"},
        "object": object,
    }))
    .unwrap()
    .0
}

fn validate(policy: &Policy, object: Value) -> Result<AdmissionResponse, PolicyError> {
    policy
        .instantiate()?
        .validate(&request(object), &Map::new())
}

#[test]
fn accepted_answer() {
    let p = policy(Validate::Respond(r#"{"accepted":true}"#.into()));
    let out = validate(&p, json!({"a": 1})).unwrap();
    assert_eq!(
        out.to_line(),
        r#"{"uid":"uid-1","allowed":true,"auditAnnotations":null,"warnings":null}"#
    );
}

#[test]
fn mutation_becomes_a_patch() {
    let p = policy(Validate::Respond(
        r#"{"accepted":true,"mutated_object":{"b":{"x":2},"a":1}}"#.into(),
    ));
    let out = validate(&p, json!({"a": 1, "b": {"x": 1}})).unwrap();
    assert_eq!(out.patch_type.as_deref(), Some("JSONPatch"));
    use base64::Engine as _;
    let patch = base64::engine::general_purpose::STANDARD
        .decode(out.patch.unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(patch).unwrap(),
        r#"[{"op":"replace","path":"/b/x","value":2}]"#
    );
}

#[test]
fn trap_is_a_call_failure() {
    let err = validate(&policy(Validate::Trap), json!({})).err().unwrap();
    match &err {
        PolicyError::Call { function, .. } => {
            assert_eq!(function, "validate");
            let message = err.to_string();
            assert!(
                message
                    .starts_with("the policy failed while running `validate`: the module trapped"),
                "{message}"
            );
            assert!(message.contains("wasm backtrace"), "{message}");
            assert!(
                err.evaluator_message()
                    .starts_with("Guest call failure: error while executing at wasm backtrace:"),
                "{}",
                err.evaluator_message()
            );
        }
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn guest_error_is_a_call_failure_with_its_message() {
    let err = validate(&policy(Validate::GuestError("boom".into())), json!({}))
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "the policy failed while running `validate`: boom"
    );
}

#[test]
fn answer_that_is_not_json_is_reported() {
    let err = validate(&policy(Validate::Respond("not json".into())), json!({}))
        .err()
        .unwrap();
    assert!(matches!(err, PolicyError::InvalidAnswer(_)), "{err:?}");
    assert!(
        err.to_string().contains("not a ValidationResponse"),
        "{err}"
    );
}

#[test]
fn log_host_call_succeeds() {
    let p = policy(Validate::HostCall {
        binding: "kubewarden".into(),
        namespace: "tracing".into(),
        operation: "log".into(),
        on_success: r#"{"accepted":true}"#.into(),
    });
    assert!(validate(&p, json!({})).unwrap().allowed);
}

#[test]
fn other_host_calls_fail_with_a_clear_message_given_to_the_guest() {
    let p = policy(Validate::HostCall {
        binding: "kubewarden".into(),
        namespace: "oci".into(),
        operation: "v1/verify".into(),
        on_success: r#"{"accepted":true}"#.into(),
    });
    let err = validate(&p, json!({})).err().unwrap();
    assert_eq!(
        err.to_string(),
        "the policy failed while running `validate`: policy-host does not provide the host capability kubewarden/oci/v1/verify"
    );
}

#[test]
fn settings_answer_is_decoded() {
    let p = Policy::new(
        wat_guest(
            r#"{"valid":false,"message":"nope"}"#,
            &Validate::Respond("{}".into()),
        )
        .as_bytes(),
        EngineOptions::default(),
    )
    .unwrap();
    let answer = p
        .instantiate()
        .unwrap()
        .validate_settings(&Map::new())
        .unwrap();
    assert!(!answer.valid);
    assert_eq!(answer.message.as_deref(), Some("nope"));
}

#[test]
fn a_module_that_is_not_wasm_is_a_load_error() {
    let err = Policy::new(b"definitely not wasm", EngineOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, PolicyError::Load(_)), "{err:?}");
}

#[test]
fn policy_timeout_enables_epoch_interruption_without_breaking_calls() {
    let p = Policy::new(
        wat_guest(
            VALID_SETTINGS,
            &Validate::Respond(r#"{"accepted":true}"#.into()),
        )
        .as_bytes(),
        EngineOptions {
            policy_timeout_secs: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(validate(&p, json!({})).unwrap().allowed);
}
