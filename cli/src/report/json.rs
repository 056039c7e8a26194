//! One JSON document: every file, every object with its verdict, the module's answer and the
//! findings, and the summary.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;

use crate::findings::{Finding, Origin};
use crate::report::Context;
use crate::scan::{FileReport, ObjectReport, Outcome, Report, Summary};

#[derive(Serialize)]
struct JsonReport<'a> {
    notes: &'a [String],
    files: Vec<JsonFile<'a>>,
    summary: Summary,
    exit_status: u8,
}

#[derive(Serialize)]
struct JsonFile<'a> {
    file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<JsonError>,
    objects: Vec<JsonObject<'a>>,
    other_documents: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<JsonFix>,
}

#[derive(Serialize)]
struct JsonError {
    line: Option<usize>,
    message: String,
}

#[derive(Serialize)]
struct JsonFix {
    #[serde(skip_serializing_if = "Option::is_none")]
    pull_policies: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct JsonObject<'a> {
    line: usize,
    api_version: &'a str,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: Option<&'a str>,
    /// skipped | failed | accepted | warned | changed | refused
    verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<&'a [String]>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    patch: &'a [Value],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    fixed: bool,
    findings: Vec<JsonFinding<'a>>,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    rule: &'static str,
    /// refusal | warning
    origin: &'static str,
    line: usize,
    column: usize,
    path: Option<&'a str>,
    text: &'a str,
}

pub fn write(report: &Report, context: &Context<'_>, out: &mut dyn Write) -> io::Result<()> {
    let document = JsonReport {
        notes: context.notes,
        files: report.files.iter().map(file).collect(),
        summary: report.summary(),
        exit_status: report.exit_status(context.strict),
    };
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)
}

fn file(file: &FileReport) -> JsonFile<'_> {
    JsonFile {
        file: &file.name,
        error: file.error.as_ref().map(|error| JsonError {
            line: error.line(),
            message: error.to_string(),
        }),
        objects: file.objects.iter().map(object).collect(),
        other_documents: file.other_documents,
        fix: file.fix.as_ref().map(|fix| match fix {
            Ok(changes) => JsonFix {
                pull_policies: Some(*changes),
                error: None,
            },
            Err(error) => JsonFix {
                pull_policies: None,
                error: Some(error.to_string()),
            },
        }),
    }
}

fn object(object: &ObjectReport) -> JsonObject<'_> {
    let mut json = JsonObject {
        line: object.line,
        api_version: &object.api_version,
        kind: &object.kind,
        namespace: object.namespace.as_deref(),
        name: object.name.as_deref(),
        verdict: "skipped",
        error: None,
        message: None,
        warnings: None,
        patch: &[],
        fixed: false,
        findings: Vec::new(),
    };
    match &object.outcome {
        Outcome::Skipped => {}
        Outcome::Unselected => json.verdict = "unselected",
        Outcome::Undecided(why) => (json.verdict, json.error) = ("undecided", Some(why.as_str())),
        Outcome::Failed(message) => {
            json.verdict = "failed";
            json.error = Some(message);
        }
        Outcome::Evaluated(evaluation) => {
            json.verdict = evaluation.verdict().name();
            json.message = evaluation
                .response
                .status
                .as_ref()
                .and_then(|status| status.message.as_deref());
            json.warnings = evaluation.response.warnings.as_deref();
            json.patch = &evaluation.patch;
            json.fixed = evaluation.fixed;
            json.findings = evaluation.findings.iter().map(finding).collect();
        }
    }
    json
}

fn finding(finding: &Finding) -> JsonFinding<'_> {
    JsonFinding {
        rule: finding.kind.id,
        origin: match finding.origin {
            Origin::Refusal => "refusal",
            Origin::Warning => "warning",
        },
        line: finding.position.line,
        column: finding.position.column,
        path: finding.path.as_deref(),
        text: &finding.text,
    }
}
