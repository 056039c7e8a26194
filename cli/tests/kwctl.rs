//! For every object of the fixture tree and every settings file, the verdict of `scan` equals
//! the verdict of the real `kwctl run` on the same request: allowed, the JSON Patch, the
//! message and the warnings.
//!
//! kwctl is found as `$KWCTL`, then on `PATH`, then in `../shared/kubewarden/bin` beside the
//! repository. Without it the test says so and passes, except under `CI=true`, where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use common::{fixture_evaluators, fixture_texts, policy_module, scratch};
use image_pull_policy_cli::manifest;
use image_pull_policy_cli::scan::{admission_request, scan_text, Outcome, ScanRequest};
use serde_json::Value;

const KWCTL_TIMEOUT: Duration = Duration::from_secs(120);
/// kwctl spends most of a run waiting (it tries to reach the Sigstore trust root first).
const PARALLEL_RUNS: usize = 4;

fn find_kwctl() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KWCTL") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("kwctl"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        let shared = common::workspace_root().join("../shared/kubewarden/bin/kwctl");
        shared.is_file().then_some(shared)
    })
}

/// What makes two answers the same verdict; the patch decoded, so that its text is compared
/// as JSON.
fn verdict(response: &Value) -> Value {
    let patch = response["patch"].as_str().map(|encoded| {
        serde_json::from_slice::<Value>(&STANDARD.decode(encoded).unwrap()).unwrap()
    });
    serde_json::json!({
        "uid": response["uid"],
        "allowed": response["allowed"],
        "patchType": response["patchType"],
        "patch": patch,
        "message": response["status"]["message"],
        "warnings": response["warnings"],
    })
}

struct Case {
    name: String,
    request: Value,
    settings: String,
    scan_verdict: Value,
}

fn run_kwctl(kwctl: &Path, case: &Case, scratch_dir: &Path, index: usize) -> Value {
    let request_path = scratch_dir.join(format!("request-{index}.json"));
    std::fs::write(&request_path, case.request.to_string()).unwrap();
    let mut child = Command::new(kwctl)
        .env("XDG_CACHE_HOME", scratch_dir.join("cache"))
        .env("XDG_CONFIG_HOME", scratch_dir.join("config"))
        .args(["run", "--request-path"])
        .arg(&request_path)
        .args(["--settings-json", &case.settings])
        .arg(policy_module())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start kwctl");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > KWCTL_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "kwctl run took more than {KWCTL_TIMEOUT:?} on {}",
                case.name
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "kwctl run gave no AdmissionResponse for {} ({e}): {}\n{}",
            case.name,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (config, evaluator) in fixture_evaluators() {
        let request = ScanRequest {
            evaluator: &evaluator,
            rules: &config.rules,
            admission: &config.admission,
            namespaces: &Default::default(),
            fix: false,
        };
        let settings = Value::Object(evaluator.settings().clone()).to_string();
        for (name, text) in fixture_texts() {
            let Ok(documents) = manifest::parse(&text) else {
                continue;
            };
            let contents = manifest::objects(&documents).unwrap();
            let report = scan_text(name.clone(), &text, &request, None);
            for (index, (object, reported)) in
                contents.objects.iter().zip(&report.objects).enumerate()
            {
                let Outcome::Evaluated(evaluation) = &reported.outcome else {
                    continue;
                };
                cases.push(Case {
                    name: format!("{name} object {index} with {}", config.source),
                    request: serde_json::to_value(admission_request(&name, index, object)).unwrap(),
                    settings: settings.clone(),
                    scan_verdict: verdict(&serde_json::to_value(&evaluation.response).unwrap()),
                });
            }
        }
    }
    cases
}

#[test]
fn scan_verdicts_equal_kwctl_run_verdicts() {
    let Some(kwctl) = find_kwctl() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "kwctl is required under CI=true: set KWCTL, put it on PATH or in ../shared/kubewarden/bin"
        );
        eprintln!("SKIPPED: kwctl not found (KWCTL, PATH, ../shared/kubewarden/bin)");
        return;
    };
    let cases = cases();
    assert!(
        cases.len() >= 40,
        "every fixture object under every settings file: {}",
        cases.len()
    );
    let scratch_dir = scratch("kwctl");
    let next = Mutex::new(0usize);
    let mismatches = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_RUNS {
            scope.spawn(|| loop {
                let index = {
                    let mut next = next.lock().unwrap();
                    *next += 1;
                    *next - 1
                };
                let Some(case) = cases.get(index) else { break };
                let kwctl_verdict = verdict(&run_kwctl(&kwctl, case, &scratch_dir, index));
                if kwctl_verdict != case.scan_verdict {
                    mismatches.lock().unwrap().push(format!(
                        "{}:\n  scan:  {}\n  kwctl: {}",
                        case.name, case.scan_verdict, kwctl_verdict
                    ));
                }
            });
        }
    });
    let mismatches = mismatches.into_inner().unwrap();
    assert!(
        mismatches.is_empty(),
        "{} of {} verdicts differ:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
    eprintln!("{} verdicts equal kwctl run's", cases.len());
}
