//! The binary over the fixture tree: golden outputs for every format and settings file, exit
//! statuses, SARIF checked against the 2.1.0 schema, JUnit read back.
//!
//! `UPDATE_GOLDEN=1 cargo test -p image-pull-policy-cli --test golden` rewrites the goldens
//! (after a change of the module's texts, say); review the diff before committing it.

mod common;

use std::path::PathBuf;

use common::{scan, stderr, stdout, tests_dir, BIN};
use serde_json::Value;

fn golden_path(name: &str) -> PathBuf {
    tests_dir().join("golden").join(name)
}

fn check_golden(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (UPDATE_GOLDEN=1 writes it)",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from the golden output, first at line {}:\n expected: {:?}\n actual:   {:?}\n(UPDATE_GOLDEN=1 rewrites it)",
            first + 1,
            expected.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}

/// Scans the whole fixture tree: exit 2, as it holds a file with a YAML syntax error.
fn scan_tree(extra: &[&str]) -> String {
    let mut args = vec!["fixtures/manifests"];
    args.extend_from_slice(extra);
    let output = scan(&args);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    stdout(&output)
}

#[test]
fn text_report_matches_the_golden() {
    check_golden("default.txt", &scan_tree(&[]));
}

#[test]
fn json_report_matches_the_golden() {
    let report = scan_tree(&["--format", "json"]);
    let parsed: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(parsed["exit_status"], 2);
    assert_eq!(parsed["summary"]["errors"], 1);
    check_golden("default.json", &report);
}

/// The `language` patterns of the published schema have a stray `]` that a Unicode-mode
/// regex engine refuses (`^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$`); they are escaped here, in
/// memory, so each pattern means what it says. Nothing else is touched.
const LANGUAGE_PATTERN: &str = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$";

fn escape_language_patterns(value: &mut Value) -> usize {
    match value {
        Value::String(text) if text == LANGUAGE_PATTERN => {
            *text = LANGUAGE_PATTERN.replace("}]?", "}\\]?");
            1
        }
        Value::Array(items) => items.iter_mut().map(escape_language_patterns).sum(),
        Value::Object(members) => members.values_mut().map(escape_language_patterns).sum(),
        _ => 0,
    }
}

fn sarif_validator() -> jsonschema::Validator {
    let schema_path = tests_dir().join("schema/sarif-schema-2.1.0.json");
    let mut schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    assert_eq!(
        escape_language_patterns(&mut schema),
        2,
        "the schema file changed"
    );
    jsonschema::validator_for(&schema).expect("the SARIF schema compiles")
}

fn assert_valid_sarif(report: &str) -> Value {
    let log: Value = serde_json::from_str(report).unwrap();
    let validator = sarif_validator();
    let errors: Vec<String> = validator
        .iter_errors(&log)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "the SARIF log breaks the schema: {errors:#?}"
    );
    log
}

#[test]
fn sarif_report_is_valid_sarif_2_1_0_and_matches_the_golden() {
    let report = scan_tree(&["--format", "sarif"]);
    let log = assert_valid_sarif(&report);
    let run = &log["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    for result in run["results"].as_array().unwrap() {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], result["ruleId"]);
        let location = &result["locations"][0]["physicalLocation"];
        assert!(location["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .starts_with("fixtures/manifests/"));
        assert!(location["region"]["startLine"].as_u64().unwrap() >= 1);
    }
    let notifications = run["invocations"][0]["toolExecutionNotifications"]
        .as_array()
        .unwrap();
    assert_eq!(notifications.len(), 1, "the syntax error");
    check_golden("default.sarif", &report);
}

#[test]
fn the_schema_check_catches_a_broken_log() {
    let mut log: Value = serde_json::from_str(&scan_tree(&["--format", "sarif"])).unwrap();
    log["runs"][0]["results"][0]["level"] = Value::from("fatal");
    assert!(!sarif_validator().is_valid(&log));
}

#[test]
fn junit_report_reads_back_and_matches_the_golden() {
    let report = scan_tree(&["--format", "junit"]);
    let junit = quick_junit::Report::deserialize_from_str(&report).unwrap();
    // One case per evaluated object (19) and one for the unreadable file.
    assert_eq!(junit.tests, 20);
    assert_eq!((junit.failures, junit.errors), (6, 1));
    check_golden("default.xml", &report);
    let strict = scan_tree(&["--format", "junit", "--strict"]);
    let junit = quick_junit::Report::deserialize_from_str(&strict).unwrap();
    assert_eq!((junit.failures, junit.errors), (6 + 9, 1));
}

#[test]
fn every_settings_file_has_its_golden_text_report() {
    for name in ["reject", "warn", "gitops-policy", "full-version"] {
        let settings = format!("fixtures/settings/{name}.yaml");
        check_golden(
            &format!("{name}.txt"),
            &scan_tree(&["--settings", &settings]),
        );
    }
}

#[test]
fn sarif_of_every_settings_file_is_valid() {
    for name in ["reject", "warn", "gitops-policy", "full-version"] {
        let settings = format!("fixtures/settings/{name}.yaml");
        assert_valid_sarif(&scan_tree(&["--settings", &settings, "--format", "sarif"]));
    }
}

#[test]
fn exit_status_follows_the_worst_verdict() {
    let status = |args: &[&str]| scan(args).status.code();
    assert_eq!(status(&["fixtures/manifests/compliant.yaml"]), Some(0));
    // Only changes: admission refuses nothing.
    assert_eq!(status(&["fixtures/manifests/cronjobs.yaml"]), Some(0));
    assert_eq!(
        status(&["--strict", "fixtures/manifests/cronjobs.yaml"]),
        Some(1)
    );
    assert_eq!(status(&["fixtures/manifests/helm"]), Some(1));
    assert_eq!(
        status(&["fixtures/manifests/broken/syntax-error.yaml"]),
        Some(2)
    );
    assert_eq!(status(&["fixtures/manifests/values"]), Some(0));
    assert_eq!(status(&["fixtures/missing.yaml"]), Some(2));
}

#[test]
fn warn_mode_refuses_only_what_it_cannot_read() {
    // Warn mode turns every rule into a warning, but a container list that is not a list is
    // still refused.
    let output = scan(&[
        "--settings",
        "fixtures/settings/warn.yaml",
        "--strict",
        "fixtures/manifests/list.yaml",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("Pod default/broken-shape: refused: spec.containers is not a list"),
        "{text}"
    );
    let output = scan(&[
        "--settings",
        "fixtures/settings/warn.yaml",
        "fixtures/manifests/cronjobs.yaml",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

#[test]
fn invalid_settings_get_the_modules_message_and_exit_2() {
    let output = scan(&[
        "--settings",
        "fixtures/settings/invalid.yaml",
        "fixtures/manifests",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("fixtures/settings/invalid.yaml"),
        "{message}"
    );
    assert!(
        message.contains("mode"),
        "the module names the key: {message}"
    );
    assert!(stdout(&output).is_empty());
}

#[test]
fn standard_input_is_scanned() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let manifest =
        std::fs::read(tests_dir().join("fixtures/manifests/helm/shop-rendered.yaml")).unwrap();
    let mut child = Command::new(BIN)
        .args(["scan", "--policy"])
        .arg(common::policy_module())
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&manifest).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("-:117: StatefulSet shop-redis: refused:"),
        "{text}"
    );
    let fix = Command::new(BIN)
        .args(["scan", "--fix", "-"])
        .output()
        .unwrap();
    assert_eq!(fix.status.code(), Some(2));
    assert!(stderr(&fix).contains("--fix"));
}

#[test]
fn the_built_in_module_is_the_built_policy() {
    let output = std::process::Command::new(BIN)
        .current_dir(tests_dir())
        .args(["scan", "fixtures/manifests/helm"])
        .output()
        .unwrap();
    let built = common::workspace_root().join("policy.wasm");
    if built.is_file() {
        // build.rs embedded the policy.wasm that exists now (it reruns when the file changes).
        assert_eq!(stdout(&output), stdout(&scan(&["fixtures/manifests/helm"])));
        assert_eq!(output.status.code(), Some(1));
    } else {
        assert_eq!(output.status.code(), Some(2));
        assert!(
            stderr(&output).contains("built without a policy module"),
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn output_file_holds_the_report() {
    let dir = common::scratch("output-file");
    let path = dir.join("report.sarif");
    let output = scan(&[
        "--format",
        "sarif",
        "--output",
        path.to_str().unwrap(),
        "fixtures/manifests/helm",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).is_empty());
    assert_valid_sarif(&std::fs::read_to_string(path).unwrap());
}

/// The README's first scan: `examples/` holds manifests that the policy refuses and changes,
/// besides the ClusterAdmissionPolicies (a kind it does not evaluate).
#[test]
fn the_examples_folder_has_findings() {
    let examples = common::workspace_root().join("examples");
    let output = scan(&[examples.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stdout(&output);
    for expected in [
        "manifests/shop.yaml:32: Deployment shop/web: changed:",
        "manifests/shop.yaml:52: CronJob shop/nightly-report: refused:",
        "manifests/debug-pod.yaml:11: Pod debug: refused:",
        "2 refused, 1 would be changed",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
}
