//! For every object of the fixture tree, scan under a ClusterAdmissionPolicy with
//! `mode: monitor` or `mutating: false` answers as the real policy-server does with
//! `policyMode: monitor` or without `allowedToMutate`: allowed, the message, the warnings, and
//! whether there is a patch. (Selectors are the API server's part, tested in
//! `cli/src/admission.rs` against the Kubernetes semantics.)
//!
//! policy-server and kwctl (to annotate the module) are found as `$POLICY_SERVER` / `$KWCTL`,
//! then in `../shared/kubewarden/bin` beside the repository. Without them the test says so and
//! passes, except under `CI=true`, where it fails.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{fixture_texts, policy_module, scratch, workspace_root};
use image_pull_policy_cli::manifest;
use image_pull_policy_cli::policy::Evaluator;
use image_pull_policy_cli::scan::{admission_request, scan_text, ScanRequest};
use image_pull_policy_cli::settings::PolicyConfig;
use serde_json::{json, Value};

/// The policies: their ClusterAdmissionPolicy for scan, and their entry in policies.yml.
const POLICIES: [(&str, &str, &str); 3] = [
    (
        "no-mutation",
        "mutating: false",
        "no-mutation:\n  module: file://MODULE\n",
    ),
    (
        "monitor",
        "mutating: true\n  mode: monitor",
        "monitor:\n  module: file://MODULE\n  allowedToMutate: true\n  policyMode: monitor\n",
    ),
    (
        "monitor-reject",
        "mutating: true\n  mode: monitor\n  settings: {mode: reject}",
        "monitor-reject:\n  module: file://MODULE\n  allowedToMutate: true\n  policyMode: monitor\n  settings: {mode: reject}\n",
    ),
];

fn find(variable: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        return Some(PathBuf::from(path));
    }
    let shared = workspace_root().join("../shared/kubewarden/bin").join(name);
    shared.is_file().then_some(shared)
}

fn verdict(response: &Value) -> Value {
    json!({
        "allowed": response["allowed"],
        "patch": response["patch"].is_string(),
        "message": response["status"]["message"],
        "warnings": response["warnings"],
    })
}

#[test]
fn scan_answers_as_policy_server_for_monitor_mode_and_no_mutation() {
    let (Some(server), Some(kwctl)) = (
        find("POLICY_SERVER", "policy-server"),
        find("KWCTL", "kwctl"),
    ) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: policy-server and kwctl are needed"
        );
        eprintln!("policy-server or kwctl not found: not compared");
        return;
    };
    let dir = scratch("policy-server");
    let module = dir.join("annotated.wasm");
    let status = Command::new(&kwctl)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .current_dir(workspace_root())
        .args(["annotate", "-m", "metadata.yml", "-u", "README.md"])
        .arg(policy_module())
        .arg("-o")
        .arg(&module)
        .status()
        .unwrap();
    assert!(status.success(), "kwctl annotate failed");
    let policies: String = POLICIES
        .iter()
        .map(|(_, _, entry)| entry.replace("MODULE", &module.display().to_string()))
        .collect();
    std::fs::write(dir.join("policies.yml"), policies).unwrap();

    // Every request of every fixture object, with scan's verdict under each policy.
    let requests = dir.join("requests");
    std::fs::create_dir_all(&requests).unwrap();
    let mut expected = Vec::new();
    for (id, spec, _) in POLICIES {
        let manifest = format!(
            "apiVersion: policies.kubewarden.io/v1\nkind: ClusterAdmissionPolicy\nmetadata:\n  name: {id}\nspec:\n  module: registry://example/p:v1\n  {spec}\n"
        );
        let mut config = PolicyConfig::from_text(&manifest, "policy.yaml").unwrap();
        // policy-server names a policy of policies.yml by its key.
        config.admission.policy = id.to_owned();
        let evaluator = Evaluator::new(
            Some(&policy_module()),
            config.settings.clone(),
            "policy.yaml",
        )
        .unwrap();
        let request = ScanRequest {
            evaluator: &evaluator,
            rules: &config.rules,
            admission: &config.admission,
            namespaces: &Default::default(),
            fix: false,
        };
        for (name, text) in fixture_texts() {
            let report = scan_text(name.clone(), &text, &request, None);
            let Ok(documents) = manifest::parse(&text) else {
                continue;
            };
            let contents = manifest::objects(&documents).unwrap();
            for (index, (object, reported)) in
                contents.objects.iter().zip(&report.objects).enumerate()
            {
                let Some(evaluation) = reported.evaluation() else {
                    continue;
                };
                let file = requests.join(format!("{id}.{}.json", expected.len()));
                let review = json!({
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "request": admission_request(&name, index, object),
                });
                std::fs::write(&file, review.to_string()).unwrap();
                let scanned = serde_json::to_value(&evaluation.response).unwrap();
                expected.push((format!("{id} {name}#{index}"), file, verdict(&scanned)));
            }
        }
    }
    assert!(expected.len() > 20, "{} requests", expected.len());

    let script = r#"
        source "$1/tests/lib/kubewarden.bash"
        POLICY_SERVER_START_SECONDS=120
        policy_server_start "$2" "$2/policies.yml" || { cat "$POLICY_SERVER_LOG" >&2; exit 1; }
        for request in "$2"/requests/*.json; do
          id=$(basename "$request"); id=${id%%.*}
          policy_server_validate "$id" "$request" "$request.answer" >/dev/null
        done
        policy_server_stop
    "#;
    let output = Command::new("bash")
        .args(["-c", script, "bash"])
        .arg(workspace_root())
        .arg(&dir)
        .env("POLICY_SERVER", &server)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "policy-server: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut differences = Vec::new();
    let mut refused = 0;
    for (case, file, scanned) in &expected {
        let answer = std::fs::read_to_string(file.with_extension("json.answer")).unwrap();
        let answer: Value = serde_json::from_str(&answer).unwrap();
        let served = verdict(&answer["response"]);
        refused += usize::from(served["allowed"] == false);
        if served != *scanned {
            differences.push(format!(
                "{case}:\n  scan:          {scanned}\n  policy-server: {served}"
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    assert!(refused > 0, "no mutation was refused");
}
