//! `scan --settings` with a ClusterAdmissionPolicy whose namespaceSelector decides which Pods
//! reach the policy, through the command as a user runs it.

mod common;

use common::{scan, stdout};

const OBJECTS: &str = "fixtures/policy-manifest/objects.yaml";
const POLICY: &str = "fixtures/policy-manifest/team-namespaces.yaml";

#[test]
fn a_namespace_selector_sends_what_it_selects_and_says_what_it_cannot_decide() {
    let output = scan(&["--settings", POLICY, OBJECTS]);
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(report.contains("Pod shop/web: refused:"), "{report}");
    assert!(!report.contains("Pod kube-system/dns"), "{report}");
    assert!(
        report.contains("Pod payments/api: not decided: the namespaceSelector"),
        "{report}"
    );
    assert!(
        report.contains("1 left out by the policy's selectors or namespace; 1 not decided"),
        "{report}"
    );

    let output = scan(&[
        "--settings",
        POLICY,
        "--namespace-labels",
        "payments=team=payments",
        OBJECTS,
    ]);
    let report = stdout(&output);
    assert!(report.contains("Pod payments/api: refused:"), "{report}");
    assert!(!report.contains("not decided"), "{report}");

    let output = scan(&[
        "--settings",
        POLICY,
        "--namespace-labels",
        "payments=",
        OBJECTS,
    ]);
    let report = stdout(&output);
    assert!(
        report.contains("2 left out by the policy's selectors"),
        "{report}"
    );

    let output = scan(&[
        "--settings",
        POLICY,
        "--namespace-labels",
        "payments",
        OBJECTS,
    ]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn monitor_mode_refuses_nothing_and_says_so() {
    let output = scan(&[
        "--settings",
        "fixtures/policy-manifest/team-namespaces-monitor.yaml",
        OBJECTS,
    ]);
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert!(
        report.starts_with("note: policy clusterwide-image-pull-policy is in monitor mode"),
        "{report}"
    );
    assert!(report.contains("Pod shop/web: warning: spec.containers[0] \"web\": imagePullPolicy is IfNotPresent, must be Always"), "{report}");
    assert!(report.contains("0 refused"), "{report}");
}
