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
}

/// Builds the WAT text of a waPC guest: `validate_settings` answers `settings_answer`,
/// any other function behaves as `validate` says.
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
  (memory (export "memory") 16)
{segments}  (func (export "wapc_init"))
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    ;; operation name at 4096, payload at 8192
    (call $guest_request (i32.const 4096) (i32.const 8192))
    (if (result i32) (i32.eq (local.get $op_len) (i32.const 17))
      (then (call $guest_response (i32.const {settings_off}) (i32.const {settings_len})) (i32.const 1))
      (else {body}))))
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
