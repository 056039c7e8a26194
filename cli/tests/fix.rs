//! `--fix` round trips over a copy of the fixture tree: the fixed files read as exactly the
//! objects the module returns, only pull-policy lines change, and a second scan has nothing
//! left to fix.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{copy_tree, policy_module, scratch, stdout, tests_dir, BIN};
use image_pull_policy_cli::manifest;
use serde_json::Value;

fn scan_in(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(BIN)
        .current_dir(dir)
        .arg("scan")
        .arg("--policy")
        .arg(policy_module())
        .args(args)
        .output()
        .unwrap();
    (output.status.code(), stdout(&output))
}

fn read_tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    common::fixture_files()
        .into_iter()
        .map(|path| {
            let relative = path
                .strip_prefix(tests_dir().join("fixtures/manifests"))
                .unwrap()
                .to_path_buf();
            let text = std::fs::read_to_string(dir.join(&relative)).unwrap();
            (relative, text)
        })
        .collect()
}

/// The JSON of every object of a text, in order.
fn objects_of(text: &str) -> Vec<Value> {
    let documents = manifest::parse(text).unwrap();
    manifest::objects(&documents)
        .unwrap()
        .objects
        .iter()
        .map(manifest::object_json)
        .collect()
}

fn without_pull_policy_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|line| !line.contains("ullPolicy"))
        .collect()
}

fn round_trip(settings: Option<&str>) {
    let dir = scratch(&format!(
        "fix-{}",
        settings.unwrap_or("default").replace('/', "-")
    ));
    copy_tree(&tests_dir().join("fixtures/manifests"), &dir);
    let settings_path = settings.map(|s| tests_dir().join(s).display().to_string());
    let mut base: Vec<&str> = Vec::new();
    if let Some(path) = &settings_path {
        base.extend(["--settings", path.as_str()]);
    }
    let before = read_tree(&dir);
    let (_, report) = scan_in(
        &dir,
        &[base.as_slice(), &["--format", "json", "."]].concat(),
    );
    let report: Value = serde_json::from_str(&report).unwrap();

    let (status, fix_report) = scan_in(
        &dir,
        &[base.as_slice(), &["--fix", "--format", "json", "."]].concat(),
    );
    assert_eq!(status, Some(2), "the syntax error stays: {fix_report}");
    let fix_report: Value = serde_json::from_str(&fix_report).unwrap();
    assert_eq!(
        fix_report["summary"]["errors"], 1,
        "only the syntax error: {fix_report:#}"
    );
    let after = read_tree(&dir);

    let mut fixed_files = 0;
    for file in report["files"].as_array().unwrap() {
        let relative = PathBuf::from(file["file"].as_str().unwrap().trim_start_matches("./"));
        if file.get("error").is_some() {
            assert_eq!(
                before[&relative], after[&relative],
                "an unreadable file is not touched"
            );
            continue;
        }
        let original = objects_of(&before[&relative]);
        let fixed = objects_of(&after[&relative]);
        assert_eq!(original.len(), fixed.len());
        let mut changed = false;
        for ((object, original), fixed) in file["objects"]
            .as_array()
            .unwrap()
            .iter()
            .zip(original)
            .zip(fixed)
        {
            let mut expected = original.clone();
            if let Some(patch) = object.get("patch") {
                // The object the module returns: the whole patch applied (scan never pins, so
                // every operation is a pull policy).
                let patch: json_patch::Patch = serde_json::from_value(patch.clone()).unwrap();
                json_patch::patch(&mut expected, &patch).unwrap();
                changed = true;
            }
            assert_eq!(
                fixed,
                expected,
                "{}: {}",
                relative.display(),
                object["name"]
            );
        }
        if changed {
            fixed_files += 1;
            let name = relative.to_string_lossy();
            if !name.ends_with(".json") {
                assert_eq!(
                    without_pull_policy_lines(&before[&relative]),
                    without_pull_policy_lines(&after[&relative]),
                    "{name}: only pull-policy lines change"
                );
            }
        } else {
            assert_eq!(
                before[&relative],
                after[&relative],
                "{} is not touched",
                relative.display()
            );
        }
    }
    assert!(fixed_files > 0);
    assert_eq!(fix_report["summary"]["fixed_files"], fixed_files);

    // Nothing left to fix: no change, and a second --fix leaves every file as it is.
    let (_, again) = scan_in(
        &dir,
        &[base.as_slice(), &["--fix", "--format", "json", "."]].concat(),
    );
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["summary"]["changed"], 0, "{again:#}");
    assert_eq!(again["summary"]["fixed_files"], 0);
    assert_eq!(read_tree(&dir), after);
}

#[test]
fn fix_round_trips_with_default_settings() {
    round_trip(None);
}

#[test]
fn fix_round_trips_when_only_pods_are_mutated() {
    round_trip(Some("fixtures/settings/gitops-policy.yaml"));
}

#[test]
fn strict_passes_once_fixed_changes_are_all_there_is() {
    let dir = scratch("fix-strict");
    std::fs::copy(
        tests_dir().join("fixtures/manifests/cronjobs.yaml"),
        dir.join("cronjobs.yaml"),
    )
    .unwrap();
    assert_eq!(scan_in(&dir, &["--strict", "cronjobs.yaml"]).0, Some(1));
    let (status, text) = scan_in(&dir, &["--strict", "--fix", "cronjobs.yaml"]);
    assert_eq!(status, Some(0), "{text}");
    assert!(
        text.contains("cronjobs.yaml: fixed 1 pull policy"),
        "{text}"
    );
    assert_eq!(scan_in(&dir, &["--strict", "cronjobs.yaml"]).0, Some(0));
}
