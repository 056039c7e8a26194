//! `file:line: Kind namespace/name: verdict: item`, one line a finding, then a summary.

use std::io::{self, Write};

use crate::findings::{Finding, Origin};
use crate::report::Context;
use crate::scan::{ObjectReport, Outcome, Report, Summary};

pub fn write(report: &Report, context: &Context<'_>, out: &mut dyn Write) -> io::Result<()> {
    for note in context.notes {
        writeln!(out, "note: {note}")?;
    }
    for file in &report.files {
        if let Some(error) = &file.error {
            writeln!(out, "{}: error: {error}", file.name)?;
        }
        for object in &file.objects {
            write_object(&file.name, object, out)?;
        }
        match &file.fix {
            Some(Ok(changes)) => writeln!(
                out,
                "{}: fixed {}",
                file.name,
                plural(*changes, "pull policy", "pull policies")
            )?,
            Some(Err(error)) => writeln!(out, "{}: error: cannot fix: {error}", file.name)?,
            None => {}
        }
    }
    writeln!(out, "{}", summary_line(&report.summary()))
}

fn write_object(file: &str, object: &ObjectReport, out: &mut dyn Write) -> io::Result<()> {
    match &object.outcome {
        Outcome::Skipped | Outcome::Unselected => Ok(()),
        Outcome::Undecided(why) => writeln!(
            out,
            "{file}:{}: {}: not decided: {why}",
            object.line,
            object.display_name()
        ),
        Outcome::Failed(message) => writeln!(
            out,
            "{file}:{}: {}: error: the policy failed: {message}",
            object.line,
            object.display_name()
        ),
        Outcome::Evaluated(evaluation) => {
            for finding in &evaluation.findings {
                writeln!(
                    out,
                    "{file}:{}: {}: {}: {}",
                    finding.position.line,
                    object.display_name(),
                    label(finding, evaluation.fixed),
                    finding.text
                )?;
            }
            Ok(())
        }
    }
}

/// What admission does with a finding.
fn label(finding: &Finding, fixed: bool) -> &'static str {
    match (finding.origin, finding.kind.id) {
        (Origin::Refusal, _) => "refused",
        (Origin::Warning, "pull-policy-changed") if fixed => "fixed",
        (Origin::Warning, "pull-policy-changed") => "changed",
        (Origin::Warning, _) => "warning",
    }
}

pub fn summary_line(summary: &Summary) -> String {
    let mut line = format!(
        "{} in {}: {} evaluated, {} skipped (kinds the policy does not evaluate); {} refused, {} would be changed, {} warned, {} accepted",
        plural(summary.objects, "object", "objects"),
        plural(summary.files, "file", "files"),
        summary.evaluated,
        summary.skipped,
        summary.refused,
        summary.changed,
        summary.warned,
        summary.accepted,
    );
    if summary.unselected > 0 {
        line.push_str(&format!(
            "; {} left out by the policy's selectors or namespace",
            summary.unselected
        ));
    }
    if summary.undecided > 0 {
        line.push_str(&format!("; {} not decided", summary.undecided));
    }
    if summary.other_documents > 0 {
        line.push_str(&format!(
            "; {}",
            plural(
                summary.other_documents,
                "document that is not a Kubernetes object",
                "documents that are not Kubernetes objects"
            )
        ));
    }
    if summary.fixed_files > 0 {
        line.push_str(&format!(
            "; fixed {} in {}",
            plural(summary.fixed_pull_policies, "pull policy", "pull policies"),
            plural(summary.fixed_files, "file", "files")
        ));
    }
    if summary.errors > 0 {
        line.push_str(&format!("; {}", plural(summary.errors, "error", "errors")));
    }
    line
}

fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}
