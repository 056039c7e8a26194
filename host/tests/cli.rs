//! The `policy-host` binary end to end: command line, output line, exit statuses, and the
//! baseline-accept module built from this workspace.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{baseline_accept, wat_guest, write_wat, Validate, VALID_SETTINGS};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_policy-host");

const REQUEST: &str = r#"{
  "uid": "1299d386-525b-4032-98ae-1949f69f9cfc",
  "kind": {"group": "", "version": "v1", "kind": "Pod"},
  "resource": {"group": "", "version": "v1", "resource": "pods"},
  "namespace": "default",
  "operation": "CREATE",
  "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
  "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": "default"},
             "spec": {"containers": [{"name": "app", "image": "registry.example.com/team/app:1.4.2",
                                      "imagePullPolicy": "IfNotPresent"}]}}
}"#;

/// Writes a scratch file. Tests run in parallel and several write the same file: each writes its
/// own copy and renames it into place, so that no test reads a file another one is rewriting.
fn scratch(name: &str, contents: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let thread = format!("{:?}", std::thread::current().id());
    let draft = dir.join(format!(
        "{name}.{}.draft",
        thread.trim_start_matches("ThreadId(").trim_end_matches(')')
    ));
    std::fs::write(&draft, contents).unwrap();
    std::fs::rename(&draft, &path).unwrap();
    path
}

fn bare_request() -> PathBuf {
    scratch("request.json", REQUEST)
}

fn review_request() -> PathBuf {
    let review = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{REQUEST}}}"#
    );
    scratch("review.json", &review)
}

fn policy_host(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

const ACCEPTED_LINE: &str = r#"{"uid":"1299d386-525b-4032-98ae-1949f69f9cfc","allowed":true,"auditAnnotations":null,"warnings":null}"#;

#[test]
fn run_baseline_accept_on_bare_request_and_admission_review() {
    let Some(module) = baseline_accept() else {
        return;
    };
    for request in [bare_request(), review_request()] {
        let out = policy_host(&["run", "--request-path", s(&request), s(&module)]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(stdout(&out), format!("{ACCEPTED_LINE}\n"));
    }
}

#[test]
fn bench_baseline_accept_json_lines() {
    let Some(module) = baseline_accept() else {
        return;
    };
    let out = policy_host(&[
        "bench",
        "--request-path",
        s(&bare_request()),
        "--iterations",
        "20",
        "--warmup",
        "2",
        "--json",
        s(&module),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["mode"], "warm");
    assert_eq!(lines[1]["mode"], "fresh");
    let size = std::fs::metadata(&module).unwrap().len();
    for line in &lines {
        assert_eq!(line["request"], "request.json");
        assert_eq!(line["module"], "baseline_accept.wasm");
        assert_eq!(line["module_bytes"].as_u64(), Some(size));
        assert_eq!(line["iterations"], 20);
        assert_eq!(line["allowed"], true);
        let (min, median, max) = (
            line["min_us"].as_f64().unwrap(),
            line["median_us"].as_f64().unwrap(),
            line["max_us"].as_f64().unwrap(),
        );
        assert!(0.0 < min && min <= median && median <= max, "{line}");
    }
}

#[test]
fn bench_times_baselines_in_turn_and_reports_each_in_order() {
    let accepting = write_wat(
        "accepting",
        VALID_SETTINGS,
        &Validate::Respond(r#"{"accepted":true}"#.into()),
    );
    let rejecting = write_wat(
        "rejecting",
        VALID_SETTINGS,
        &Validate::Respond(r#"{"accepted":false,"message":"no"}"#.into()),
    );
    let out = policy_host(&[
        "bench",
        "--request-path",
        s(&bare_request()),
        "--iterations",
        "7",
        "--warmup",
        "1",
        "--json",
        s(&accepting),
        "--baseline",
        s(&rejecting),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(&str, &str, bool)> = lines
        .iter()
        .map(|l| {
            (
                l["mode"].as_str().unwrap(),
                l["module"].as_str().unwrap(),
                l["allowed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("warm", "accepting.wat", true),
            ("warm", "rejecting.wat", false),
            ("fresh", "accepting.wat", true),
            ("fresh", "rejecting.wat", false),
        ]
    );
    for line in &lines {
        assert_eq!(line["iterations"], 7);
        let phases = [
            "instantiate_median_us",
            "call_median_us",
            "teardown_median_us",
        ];
        if line["mode"] == "fresh" {
            // every part took time, and no part took longer than the slowest whole call
            let parts: Vec<f64> = phases.iter().map(|p| line[p].as_f64().unwrap()).collect();
            let max = line["max_us"].as_f64().unwrap();
            assert!(parts.iter().all(|p| 0.0 < *p && *p <= max), "{line}");
        } else {
            assert!(phases.iter().all(|p| line.get(p).is_none()), "{line}");
        }
    }

    // A baseline that cannot be loaded is unusable input, named in the error.
    let missing = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-module.wasm");
    let out = policy_host(&[
        "bench",
        "--request-path",
        s(&bare_request()),
        s(&accepting),
        "--baseline",
        s(&missing),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no-such-module.wasm"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bench_readable_output_names_request_and_module() {
    let module = write_wat(
        "accept",
        VALID_SETTINGS,
        &Validate::Respond(r#"{"accepted":true}"#.into()),
    );
    let out = policy_host(&[
        "bench",
        "--request-path",
        s(&bare_request()),
        "--mode",
        "fresh",
        "--iterations",
        "5",
        "--warmup",
        "0",
        s(&module),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("accept.wat: "), "{text}");
    assert!(
        lines[1].starts_with("fresh request.json | accept.wat ("),
        "{text}"
    );
    assert!(lines[1].contains("median "), "{text}");
    let rss = lines[2]
        .strip_prefix("peak RSS of this process: ")
        .and_then(|rest| rest.strip_suffix(" KiB"))
        .and_then(|kib| kib.parse::<u64>().ok());
    assert!(rss.is_some_and(|kib| kib > 0), "{text}");
}

#[test]
fn settings_are_passed_and_invalid_settings_exit_1_as_in_kwctl() {
    let module = write_wat(
        "invalid-settings",
        r#"{"valid":false,"message":"allowLatest must be a boolean"}"#,
        &Validate::Respond(r#"{"accepted":true}"#.into()),
    );
    let out = policy_host(&[
        "run",
        "--request-path",
        s(&bare_request()),
        "--settings-json",
        r#"{"allowLatest":1}"#,
        s(&module),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains("Provided settings are not valid: allowLatest must be a boolean"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn settings_path_accepts_yaml_and_rejects_non_objects() {
    let module = write_wat(
        "accept2",
        VALID_SETTINGS,
        &Validate::Respond(r#"{"accepted":true}"#.into()),
    );
    let yaml = scratch("settings.yaml", "allowLatest: false\n");
    let out = policy_host(&[
        "run",
        "-r",
        s(&bare_request()),
        "--settings-path",
        s(&yaml),
        s(&module),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list = scratch("settings-list.yaml", "- a\n");
    let out = policy_host(&[
        "run",
        "-r",
        s(&bare_request()),
        "--settings-path",
        s(&list),
        s(&module),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not an object"), "{}", stderr(&out));
}

#[test]
fn rejection_is_printed_and_exits_0() {
    let module = write_wat(
        "reject",
        VALID_SETTINGS,
        &Validate::Respond(
            r#"{"accepted":false,"message":"image tag latest is not allowed","code":null}"#.into(),
        ),
    );
    let out = policy_host(&["run", "--request-path", s(&bare_request()), s(&module)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "{\"uid\":\"1299d386-525b-4032-98ae-1949f69f9cfc\",\"allowed\":false,\"status\":{\"message\":\"image tag latest is not allowed\"},\"auditAnnotations\":null,\"warnings\":null}\n"
    );
}

/// The AdmissionResponse line printed for a module that fails to answer `validate`, as kwctl
/// 1.35 prints it (checked against kwctl with the same guests).
fn internal_server_error_line(message: &str) -> String {
    format!(
        "{{\"uid\":\"1299d386-525b-4032-98ae-1949f69f9cfc\",\"allowed\":false,\"status\":{{\"message\":{},\"code\":500}},\"auditAnnotations\":null,\"warnings\":null}}\n",
        serde_json::to_string(&format!("internal server error: {message}")).unwrap()
    )
}

#[test]
fn a_module_failing_validate_is_a_rejection_as_in_kwctl() {
    let request = bare_request();
    let garbage = write_wat(
        "garbage",
        VALID_SETTINGS,
        &Validate::Respond("{oops".into()),
    );
    let out = policy_host(&["run", "--request-path", s(&request), s(&garbage)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        internal_server_error_line(
            "invalid response from policy: key must be a string at line 1 column 2"
        )
    );

    let guest_error = write_wat(
        "guest-error",
        VALID_SETTINGS,
        &Validate::GuestError("boom".into()),
    );
    let out = policy_host(&["run", "--request-path", s(&request), s(&guest_error)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        internal_server_error_line("Guest call failure: boom")
    );

    let trap = write_wat("trap", VALID_SETTINGS, &Validate::Trap);
    let out = policy_host(&["run", "--request-path", s(&request), s(&trap)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let response: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 500);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "internal server error: Guest call failure: error while executing at wasm backtrace:"
        ),
        "{message}"
    );

    // bench has nothing to time: it fails.
    let out = policy_host(&["bench", "--request-path", s(&request), s(&trap)]);
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn a_module_failing_validate_settings_has_invalid_settings_as_in_kwctl() {
    let garbage = write_wat(
        "settings-garbage",
        "{oops",
        &Validate::Respond(r#"{"accepted":true}"#.into()),
    );
    let out = policy_host(&["run", "--request-path", s(&bare_request()), s(&garbage)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr(&out),
        "Error: Provided settings are not valid: error: InvalidResponseWithError(Error(\"key must be a string\", line: 1, column: 2))\n"
    );

    // The guest answers validate_settings in the `then` branch of its dispatch.
    let wat = wat_guest(
        VALID_SETTINGS,
        &Validate::Respond(r#"{"accepted":true}"#.into()),
    );
    let trapping = wat.replace(
        "(then (call $guest_response (i32.const 0)",
        "(then unreachable (call $guest_response (i32.const 0)",
    );
    assert_ne!(trapping, wat);
    let trap = scratch("settings-trap.wat", &trapping);
    let out = policy_host(&["run", "--request-path", s(&bare_request()), s(&trap)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(
            "Error: Provided settings are not valid: Error invoking settings validation callback: GuestCallFailure(\"error while executing at wasm backtrace:"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_module_failing_wapc_init_exits_1_as_in_kwctl() {
    let wat = wat_guest(
        VALID_SETTINGS,
        &Validate::Respond(r#"{"accepted":true}"#.into()),
    );
    let trapping = wat.replace(
        r#"(func (export "wapc_init"))"#,
        r#"(func (export "wapc_init") unreachable)"#,
    );
    assert_ne!(trapping, wat);
    let module = scratch("init-trap.wat", &trapping);
    let out = policy_host(&["run", "--request-path", s(&bare_request()), s(&module)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).starts_with(
            "Error: unable to rehydrate wapc module: cannot build Wapc host: Initialization failed: "
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unusable_input_exits_1() {
    let module = write_wat(
        "accept3",
        VALID_SETTINGS,
        &Validate::Respond(r#"{"accepted":true}"#.into()),
    );
    let out = policy_host(&[
        "run",
        "--request-path",
        "/nonexistent/request.json",
        s(&module),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Error opening request file"),
        "{}",
        stderr(&out)
    );
    // kwctl prints serde_json's message alone for a request file that is not JSON.
    let not_json = scratch("not-json.json", "not json");
    let out = policy_host(&["run", "--request-path", s(&not_json), s(&module)]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "Error: expected ident at line 1 column 2\n");
    let not_a_request = scratch("not-a-request.json", r#"{"kind": "Pod"}"#);
    let out = policy_host(&["run", "--request-path", s(&not_a_request), s(&module)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot build AdmissionRequest"),
        "{}",
        stderr(&out)
    );
    let not_wasm = scratch("not-wasm.wasm", "hello");
    let out = policy_host(&["run", "--request-path", s(&bare_request()), s(&not_wasm)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot load the policy module"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn request_from_stdin() {
    use std::io::Write as _;
    let module = write_wat(
        "accept4",
        VALID_SETTINGS,
        &Validate::Respond(r#"{"accepted":true}"#.into()),
    );
    let mut child = Command::new(BIN)
        .args(["run", "--request-path", "-", s(&module)])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(REQUEST.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), format!("{ACCEPTED_LINE}\n"));
}
