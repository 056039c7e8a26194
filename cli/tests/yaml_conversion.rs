//! A container written `image: nginx:1.27`, `imagePullPolicy: Always` and then merged with
//! defaults (`<<: *base`) reaches admission with the defaults, as kubectl and Helm send it.

mod common;

use common::{scan, stdout};

#[test]
fn a_later_merge_key_decides_what_admission_sees() {
    let output = scan(&["fixtures/yaml-conversion/reproducer.yaml"]);
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(report.contains("refused"), "{report}");
    assert!(report.contains("(image nginx:latest)"), "{report}");
    assert!(!report.contains("nginx:1.27"), "{report}");
}
