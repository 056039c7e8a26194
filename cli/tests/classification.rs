//! Every item the module writes, over the fixture tree under every settings file and over the
//! real admission requests of `test_data/`, falls into one kind of the findings table, and
//! every kind of the table is written at least once: a reworded message fails here first.

mod common;

use std::collections::BTreeSet;

use common::{fixture_evaluators, fixture_texts, policy_module, workspace_root};
use image_pull_policy_cli::findings::{classify, split_refusal, FINDING_KINDS};
use image_pull_policy_cli::policy::Evaluator;
use image_pull_policy_cli::scan::{scan_text, ScanRequest};
use policy_admission::{parse_request_str, settings_from_json, AdmissionResponse};

fn items(response: &AdmissionResponse) -> Vec<String> {
    let mut items: Vec<String> = response.warnings.clone().unwrap_or_default();
    if !response.allowed {
        if let Some(message) = response.status.as_ref().and_then(|s| s.message.as_deref()) {
            items.extend(split_refusal(message).into_iter().map(str::to_owned));
        }
    }
    items
}

#[test]
fn every_item_the_module_writes_has_a_kind() {
    let mut seen = BTreeSet::new();
    let mut unclassified = Vec::new();
    let mut record = |item: String, origin: &str| match classify(&item) {
        Some(kind) => {
            seen.insert(kind.id);
        }
        None => unclassified.push(format!("{origin}: {item}")),
    };
    for (config, evaluator) in fixture_evaluators() {
        let request = ScanRequest {
            evaluator: &evaluator,
            rules: &config.rules,
            admission: &config.admission,
            namespaces: &Default::default(),
            fix: false,
        };
        for (name, text) in fixture_texts() {
            let report = scan_text(name.clone(), &text, &request, None);
            for evaluation in report.objects.iter().filter_map(|o| o.evaluation()) {
                for item in items(&evaluation.response) {
                    record(item, &name);
                }
            }
        }
    }
    // The admission requests of test_data/ (UPDATE ones too), under their settings files.
    let test_data = workspace_root().join("test_data");
    let mut requests: Vec<_> = std::fs::read_dir(&test_data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    requests.sort();
    for settings in [
        "{}",
        r#"{"mode":"reject"}"#,
        r#"{"mode":"warn","requireDigest":true}"#,
    ] {
        let evaluator = Evaluator::new(
            Some(policy_module().as_path()),
            settings_from_json(settings).unwrap(),
            settings,
        )
        .unwrap();
        for path in &requests {
            let Ok((request, _)) = parse_request_str(&std::fs::read_to_string(path).unwrap())
            else {
                continue;
            };
            let response = evaluator.evaluate(&request).unwrap();
            for item in items(&response) {
                record(item, &path.display().to_string());
            }
        }
    }
    assert!(
        unclassified.is_empty(),
        "items no kind matches:\n{}",
        unclassified.join("\n")
    );
    let never: Vec<_> = FINDING_KINDS
        .iter()
        .map(|k| k.id)
        .filter(|id| !seen.contains(id))
        .collect();
    assert!(
        never.is_empty(),
        "kinds the module never wrote over the fixtures: {never:?}"
    );
}

/// A scan judges what the manifest decides: with pinning on it asks no registry and answers as
/// with pinning off, while settings that admission refuses are still refused.
#[test]
fn scans_leave_pinning_to_admission() {
    let evaluator = |settings: &str| {
        Evaluator::new(
            Some(policy_module().as_path()),
            settings_from_json(settings).unwrap(),
            settings,
        )
    };
    let pinning = evaluator(
        r#"{"pinDigests":"all","registryFailure":"reject","pinRegistries":["docker.io/*"]}"#,
    )
    .unwrap();
    let plain = evaluator("{}").unwrap();
    let text =
        std::fs::read_to_string(workspace_root().join("test_data/pod-ifnotpresent.json")).unwrap();
    let (request, _) = parse_request_str(&text).unwrap();
    let pinned = pinning.evaluate(&request).unwrap();
    assert!(pinned.allowed && pinned.patch.is_some(), "{pinned:?}");
    assert_eq!(pinned, plain.evaluate(&request).unwrap());
    let refused =
        evaluator(r#"{"mode":"reject","pinDigests":"pods","pinRegistries":["docker.io/*"]}"#)
            .err()
            .unwrap();
    assert!(refused.to_string().contains("pinDigests"), "{refused}");
}
