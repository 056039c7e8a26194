//! Helpers shared by the integration tests: hand-written waPC guests in WAT, and the
//! baseline-accept module built from this workspace.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// What the test guest does when `validate` is called.
#[derive(Clone, Debug)]
pub enum Validate {
    /// Answer these bytes.
    Respond(String),
    /// Trap (`unreachable`).
    Trap,
    /// Return a waPC guest error with this message.
    GuestError(String),
    /// Call the host with this binding/namespace/operation; answer `on_success` when the call
    /// succeeds, or return the host's error message as the guest error when it fails.
    HostCall {
        binding: String,
        namespace: String,
        operation: String,
        on_success: String,
    },
    /// Ask the host for the manifest digest of each image in turn (`kubewarden/oci/
    /// v1/manifest_digest`, the payload a JSON string, as the SDK sends it), then reject with a
    /// message that holds every answer: see [`host_answers`].
    ManifestDigests(Vec<String>),
}

/// Where the `ManifestDigests` guest collects the host's answers, and where it writes its
/// response.
const ANSWERS_AT: usize = 0x40000;
const RESPONSE_AT: usize = 0x80000;
const ANSWER_OK: &str = "ok ";
const ANSWER_ERROR: &str = "error ";
/// Ends each answer in the guest's message (ASCII record separator).
const ANSWER_END: char = '\u{1e}';

/// Builds the WAT text of a waPC guest: `validate_settings` answers `settings_answer`,
/// `protocol_version` answers `"v1"` (what `kwctl annotate` asks), any other function behaves
/// as `validate` says.
pub fn wat_guest(settings_answer: &str, validate: &Validate) -> String {
    let mut data = Vec::<(usize, String)>::new();
    let mut next = 0usize;
    let mut place = |text: &str| -> (usize, usize) {
        let offset = next;
        data.push((offset, text.to_owned()));
        next += text.len() + 8;
        (offset, text.len())
    };
    let (settings_off, settings_len) = place(settings_answer);
    let (version_off, version_len) = place(r#""v1""#);
    let body = match validate {
        Validate::Respond(text) => {
            let (o, l) = place(text);
            format!("(call $guest_response (i32.const {o}) (i32.const {l})) (i32.const 1)")
        }
        Validate::Trap => "unreachable".to_owned(),
        Validate::GuestError(text) => {
            let (o, l) = place(text);
            format!("(call $guest_error (i32.const {o}) (i32.const {l})) (i32.const 0)")
        }
        Validate::HostCall {
            binding,
            namespace,
            operation,
            on_success,
        } => {
            let (bo, bl) = place(binding);
            let (no, nl) = place(namespace);
            let (oo, ol) = place(operation);
            let (so, sl) = place(on_success);
            format!(
                "(if (result i32)
                   (call $host_call (i32.const {bo}) (i32.const {bl}) (i32.const {no}) (i32.const {nl})
                                    (i32.const {oo}) (i32.const {ol}) (i32.const 8192) (local.get $msg_len))
                   (then (call $guest_response (i32.const {so}) (i32.const {sl})) (i32.const 1))
                   (else
                     (call $host_error (i32.const 60000))
                     (call $guest_error (i32.const 60000) (call $host_error_len))
                     (i32.const 0)))"
            )
        }
        Validate::ManifestDigests(images) => {
            let (bo, bl) = place("kubewarden");
            let (no, nl) = place("oci");
            let (oo, ol) = place("v1/manifest_digest");
            let (ok_o, ok_l) = place(ANSWER_OK);
            let (err_o, err_l) = place(ANSWER_ERROR);
            let (pre_o, pre_l) = place(r#"{"accepted":false,"message":""#);
            let (suf_o, suf_l) = place(r#""}"#);
            let calls: String = images
                .iter()
                .map(|image| {
                    let (po, pl) = place(&serde_json::to_string(image).unwrap());
                    format!(
                        "(if (call $host_call (i32.const {bo}) (i32.const {bl}) (i32.const {no}) (i32.const {nl})
                                            (i32.const {oo}) (i32.const {ol}) (i32.const {po}) (i32.const {pl}))
                           (then (call $append (i32.const {ok_o}) (i32.const {ok_l}))
                                 (call $host_response (global.get $answers_end))
                                 (global.set $answers_end (i32.add (global.get $answers_end) (call $host_response_len))))
                           (else (call $append (i32.const {err_o}) (i32.const {err_l}))
                                 (call $host_error (global.get $answers_end))
                                 (global.set $answers_end (i32.add (global.get $answers_end) (call $host_error_len)))))
                         (call $append_byte (i32.const {end}))\n",
                        end = ANSWER_END as u32
                    )
                })
                .collect();
            format!(
                "(global.set $answers_end (i32.const {ANSWERS_AT}))
                 {calls}
                 (call $respond_escaped (i32.const {pre_o}) (i32.const {pre_l}) (i32.const {suf_o}) (i32.const {suf_l}))
                 (i32.const 1)"
            )
        }
    };
    assert!(next < 4096, "test guest constants overflow");
    let segments: String = data
        .iter()
        .map(|(offset, text)| {
            let escaped: String = text
                .bytes()
                .map(|b| match b {
                    b'"' | b'\\' => format!("\\{}", b as char),
                    0x20..=0x7e => (b as char).to_string(),
                    _ => format!("\\{b:02x}"),
                })
                .collect();
            format!("  (data (i32.const {offset}) \"{escaped}\")\n")
        })
        .collect();
    format!(
        r#"(module
  (import "wapc" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wapc" "__guest_response" (func $guest_response (param i32 i32)))
  (import "wapc" "__guest_error" (func $guest_error (param i32 i32)))
  (import "wapc" "__host_call" (func $host_call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wapc" "__host_error_len" (func $host_error_len (result i32)))
  (import "wapc" "__host_error" (func $host_error (param i32)))
  (import "wapc" "__host_response_len" (func $host_response_len (result i32)))
  (import "wapc" "__host_response" (func $host_response (param i32)))
  (memory (export "memory") 16)
{segments}  (global $answers_end (mut i32) (i32.const {ANSWERS_AT}))
  (global $response_end (mut i32) (i32.const {RESPONSE_AT}))
  (func $append_byte (param $byte i32)
    (i32.store8 (global.get $answers_end) (local.get $byte))
    (global.set $answers_end (i32.add (global.get $answers_end) (i32.const 1))))
  (func $append (param $at i32) (param $len i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $len)))
      (call $append_byte (i32.load8_u (local.get $at)))
      (local.set $at (i32.add (local.get $at) (i32.const 1)))
      (local.set $len (i32.sub (local.get $len) (i32.const 1)))
      (br $next))))
  (func $put (param $byte i32)
    (i32.store8 (global.get $response_end) (local.get $byte))
    (global.set $response_end (i32.add (global.get $response_end) (i32.const 1))))
  (func $put_all (param $at i32) (param $len i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $len)))
      (call $put (i32.load8_u (local.get $at)))
      (local.set $at (i32.add (local.get $at) (i32.const 1)))
      (local.set $len (i32.sub (local.get $len) (i32.const 1)))
      (br $next))))
  (func $hex_digit (param $value i32) (result i32)
    (i32.add (local.get $value)
      (select (i32.const 48) (i32.const 87) (i32.lt_u (local.get $value) (i32.const 10)))))
  ;; Responds prefix, the answers as the body of a JSON string, suffix.
  (func $respond_escaped (param $prefix i32) (param $prefix_len i32) (param $suffix i32) (param $suffix_len i32)
    (local $at i32) (local $byte i32)
    (global.set $response_end (i32.const {RESPONSE_AT}))
    (call $put_all (local.get $prefix) (local.get $prefix_len))
    (local.set $at (i32.const {ANSWERS_AT}))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $at) (global.get $answers_end)))
      (local.set $byte (i32.load8_u (local.get $at)))
      (if (i32.or (i32.eq (local.get $byte) (i32.const 34)) (i32.eq (local.get $byte) (i32.const 92)))
        (then (call $put (i32.const 92)) (call $put (local.get $byte)))
        (else (if (i32.lt_u (local.get $byte) (i32.const 32))
          (then (call $put (i32.const 92)) (call $put (i32.const 117))
                (call $put (i32.const 48)) (call $put (i32.const 48))
                (call $put (call $hex_digit (i32.shr_u (local.get $byte) (i32.const 4))))
                (call $put (call $hex_digit (i32.and (local.get $byte) (i32.const 15)))))
          (else (call $put (local.get $byte))))))
      (local.set $at (i32.add (local.get $at) (i32.const 1)))
      (br $next)))
    (call $put_all (local.get $suffix) (local.get $suffix_len))
    (call $guest_response (i32.const {RESPONSE_AT})
      (i32.sub (global.get $response_end) (i32.const {RESPONSE_AT}))))
  (func (export "wapc_init"))
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    ;; operation name at 4096, payload at 8192
    (call $guest_request (i32.const 4096) (i32.const 8192))
    (if (result i32) (i32.eq (local.get $op_len) (i32.const 17))
      (then (call $guest_response (i32.const {settings_off}) (i32.const {settings_len})) (i32.const 1))
      (else (if (result i32) (i32.eq (local.get $op_len) (i32.const 16))
        (then (call $guest_response (i32.const {version_off}) (i32.const {version_len})) (i32.const 1))
        (else {body}))))))
"#
    )
}

pub const VALID_SETTINGS: &str = r#"{"valid":true,"message":null}"#;

/// Writes a WAT guest into the test scratch directory and returns its path.
pub fn write_wat(name: &str, settings_answer: &str, validate: &Validate) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wat-guests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.wat"));
    std::fs::write(&path, wat_guest(settings_answer, validate)).unwrap();
    path
}

/// The workspace root (the parent of `host/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds `bench/baseline-accept` for wasm32-wasip1 and returns the module's path.
pub fn baseline_accept() -> Option<PathBuf> {
    static MODULE: OnceLock<Option<PathBuf>> = OnceLock::new();
    MODULE
        .get_or_init(|| build_module("baseline-accept", "baseline_accept.wasm"))
        .clone()
}

/// Builds the policy module (release profile, before `wasm-opt`) and returns its path.
pub fn policy_module() -> Option<PathBuf> {
    static MODULE: OnceLock<Option<PathBuf>> = OnceLock::new();
    MODULE
        .get_or_init(|| build_module("image-pull-policy", "image_pull_policy.wasm"))
        .clone()
}

/// Builds a package of the workspace for wasm32-wasip1 (release profile).
///
/// The build uses its own target directory under the test scratch directory, so that it never
/// waits on the lock of the `cargo test` that runs it. Returns `None` (and says why) when the
/// module cannot be built here, e.g. without the wasm32-wasip1 target.
fn build_module(package: &str, file: &str) -> Option<PathBuf> {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-build");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "build",
            "--quiet",
            "--target",
            "wasm32-wasip1",
            "--release",
            "-p",
            package,
            "--target-dir",
        ])
        .arg(&target_dir)
        .status();
    let module = target_dir.join("wasm32-wasip1/release").join(file);
    match status {
        Ok(s) if s.success() && module.exists() => Some(module),
        other => {
            eprintln!(
                "SKIPPED: cannot build {package} for wasm32-wasip1 ({other:?}); \
                 is the wasm32-wasip1 target installed?"
            );
            None
        }
    }
}

/// One answer of the host to a `ManifestDigests` guest: the answer's JSON, or the host's error
/// as the guest received it.
pub type HostAnswer = Result<serde_json::Value, String>;

/// Decodes the message of a `ManifestDigests` guest's rejection into the host's answers, in
/// the order of the calls.
pub fn host_answers(message: &str) -> Vec<HostAnswer> {
    let mut answers: Vec<&str> = message.split(ANSWER_END).collect();
    assert_eq!(
        answers.pop(),
        Some(""),
        "unterminated answer in {message:?}"
    );
    answers
        .into_iter()
        .map(|answer| {
            if let Some(json) = answer.strip_prefix(ANSWER_OK) {
                Ok(serde_json::from_str(json)
                    .unwrap_or_else(|e| panic!("answer {json:?} is not JSON: {e}")))
            } else if let Some(error) = answer.strip_prefix(ANSWER_ERROR) {
                Err(error.to_owned())
            } else {
                panic!("unexpected answer {answer:?}")
            }
        })
        .collect()
}

/// Writes a waPC guest as a binary module (what kwctl and the policy server load) into the
/// test scratch directory and returns its path.
pub fn write_wasm(name: &str, settings_answer: &str, validate: &Validate) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-guests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.wasm"));
    let module = wat::parse_str(wat_guest(settings_answer, validate)).unwrap();
    std::fs::write(&path, module).unwrap();
    path
}
