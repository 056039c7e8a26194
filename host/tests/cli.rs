//! The `policy-host` binary end to end: command line, output line, exit statuses, and the
//! baseline-accept module built from this workspace.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{baseline_accept, write_wat, Validate, VALID_SETTINGS};
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

fn scratch(name: &str, contents: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
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
fn settings_are_passed_and_invalid_settings_exit_3() {
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
    assert_eq!(out.status.code(), Some(3));
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

#[test]
fn trap_and_garbage_answers_exit_4_with_a_message() {
    let trap = write_wat("trap", VALID_SETTINGS, &Validate::Trap);
    let out = policy_host(&["run", "--request-path", s(&bare_request()), s(&trap)]);
    assert_eq!(out.status.code(), Some(4));
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains("the policy failed while running `validate`"),
        "{}",
        stderr(&out)
    );

    let garbage = write_wat(
        "garbage",
        VALID_SETTINGS,
        &Validate::Respond("{oops".into()),
    );
    let out = policy_host(&["run", "--request-path", s(&bare_request()), s(&garbage)]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr(&out).contains("not a ValidationResponse"),
        "{}",
        stderr(&out)
    );

    let out = policy_host(&["bench", "--request-path", s(&bare_request()), s(&trap)]);
    assert_eq!(out.status.code(), Some(4));
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
