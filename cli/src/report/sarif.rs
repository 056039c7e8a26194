//! SARIF 2.1.0: one rule per kind of finding, one result per finding with the file and line
//! GitHub code scanning shows on a pull request, and the inputs that could not be scanned as
//! tool execution notifications.

use std::io::{self, Write};

use serde_json::{json, Value};

use crate::findings::{FindingKind, Origin, FINDING_KINDS, UNCLASSIFIED};
use crate::report::Context;
use crate::scan::{Outcome, Report};

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
const INFORMATION_URI: &str = "https://github.com/example/image-pull-policy";

fn rule_kinds() -> impl Iterator<Item = &'static FindingKind> {
    FINDING_KINDS.iter().chain(std::iter::once(&UNCLASSIFIED))
}

pub fn write(report: &Report, context: &Context<'_>, out: &mut dyn Write) -> io::Result<()> {
    let rules: Vec<Value> = rule_kinds()
        .map(|kind| {
            json!({
                "id": kind.id,
                "name": kind.name,
                "shortDescription": {"text": kind.summary},
                "help": {"text": kind.help},
                "defaultConfiguration": {"level": "error"},
            })
        })
        .collect();
    let mut results = Vec::new();
    let mut notifications = Vec::new();
    for file in &report.files {
        let uri = uri_reference(&file.name);
        if let Some(error) = &file.error {
            notifications.push(notification(&error.to_string(), &uri, error.line()));
        }
        if let Some(Err(error)) = &file.fix {
            notifications.push(notification(&format!("cannot fix: {error}"), &uri, None));
        }
        for object in &file.objects {
            match &object.outcome {
                Outcome::Skipped | Outcome::Unselected | Outcome::Undecided(_) => {}
                Outcome::Failed(message) => notifications.push(notification(
                    &format!("{}: the policy failed: {message}", object.display_name()),
                    &uri,
                    Some(object.line),
                )),
                Outcome::Evaluated(evaluation) => {
                    for finding in &evaluation.findings {
                        let rule_index = rule_kinds()
                            .position(|kind| kind.id == finding.kind.id)
                            .expect("every finding kind is a rule");
                        results.push(json!({
                            "ruleId": finding.kind.id,
                            "ruleIndex": rule_index,
                            "level": match finding.origin {
                                Origin::Refusal => "error",
                                Origin::Warning => "warning",
                            },
                            "message": {"text": format!("{}: {}", object.display_name(), finding.text)},
                            "locations": [location(&uri, Some(finding.position.line), Some(finding.position.column))],
                        }));
                    }
                }
            }
        }
    }
    let notes: Vec<Value> = context
        .notes
        .iter()
        .map(|note| json!({"level": "note", "message": {"text": note}}))
        .collect();
    let log = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "image-pull-policy",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": notifications.is_empty(),
                "exitCode": report.exit_status(context.strict),
                "toolExecutionNotifications": notifications,
                "toolConfigurationNotifications": notes,
            }],
            "results": results,
        }],
    });
    serde_json::to_writer_pretty(&mut *out, &log)?;
    writeln!(out)
}

fn notification(text: &str, uri: &str, line: Option<usize>) -> Value {
    json!({
        "level": "error",
        "message": {"text": text},
        "locations": [location(uri, line, None)],
    })
}

fn location(uri: &str, line: Option<usize>, column: Option<usize>) -> Value {
    let mut physical = json!({"artifactLocation": {"uri": uri}});
    if let Some(line) = line.filter(|&line| line > 0) {
        let mut region = json!({"startLine": line});
        if let Some(column) = column {
            region["startColumn"] = json!(column);
        }
        physical["region"] = region;
    }
    json!({"physicalLocation": physical})
}

/// A path as a relative URI reference: `/` kept, anything but unreserved characters
/// percent-encoded. Code scanning matches it against the repository's paths.
pub fn uri_reference(path: &str) -> String {
    let path = path.strip_prefix("./").unwrap_or(path);
    let mut uri = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            uri.push(byte as char);
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_relative_uri_references() {
        assert_eq!(uri_reference("./k8s/web app.yaml"), "k8s/web%20app.yaml");
        assert_eq!(uri_reference("k8s/é.yml"), "k8s/%C3%A9.yml");
    }
}
