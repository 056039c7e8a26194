//! JUnit XML: a test suite per file, a test case per evaluated object. A refusal fails its
//! case (with `--strict`, a change or a warning `--fix` did not fix too); an input that could
//! not be scanned, or an object the module failed on, is an error.

use std::io::{self, Write};

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

use crate::report::Context;
use crate::scan::{Evaluation, Outcome, Report, Verdict};

pub fn write(report: &Report, context: &Context<'_>, out: &mut dyn Write) -> io::Result<()> {
    let mut junit = quick_junit::Report::new("image-pull-policy scan");
    for file in &report.files {
        let mut suite = TestSuite::new(file.name.as_str());
        if let Some(error) = &file.error {
            suite.add_test_case(error_case("read", &file.name, &error.to_string()));
        }
        if let Some(Err(error)) = &file.fix {
            suite.add_test_case(error_case("fix", &file.name, &error.to_string()));
        }
        for object in &file.objects {
            let name = format!("{} (line {})", object.display_name(), object.line);
            match &object.outcome {
                Outcome::Skipped | Outcome::Unselected | Outcome::Undecided(_) => continue,
                Outcome::Failed(message) => suite.add_test_case(error_case(
                    &name,
                    &file.name,
                    &format!("the policy failed: {message}"),
                )),
                Outcome::Evaluated(evaluation) => {
                    suite.add_test_case(object_case(&name, &file.name, evaluation, context.strict))
                }
            };
        }
        junit.add_test_suite(suite);
    }
    junit.serialize(&mut *out).map_err(io::Error::other)?;
    writeln!(out)
}

fn error_case(name: &str, file: &str, message: &str) -> TestCase {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
    status.set_message(message);
    let mut case = TestCase::new(name, status);
    case.set_classname(file);
    case
}

fn object_case(name: &str, file: &str, evaluation: &Evaluation, strict: bool) -> TestCase {
    let verdict = evaluation.verdict();
    let lines: Vec<String> = evaluation
        .findings
        .iter()
        .map(|finding| format!("{file}:{}: {}", finding.position.line, finding.text))
        .collect();
    let fails = match verdict {
        Verdict::Refused => true,
        Verdict::Changed | Verdict::Warned => strict && !evaluation.fixed,
        Verdict::Accepted => false,
    };
    let status = if fails {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status.set_message(format!(
            "admission {} ({} findings)",
            match verdict {
                Verdict::Refused => "refuses the object",
                Verdict::Changed => "changes the object",
                _ => "warns about the object",
            },
            lines.len()
        ));
        status.set_type(verdict.name());
        status.set_description(lines.join("\n"));
        status
    } else {
        TestCaseStatus::success()
    };
    let mut case = TestCase::new(name, status);
    case.set_classname(file);
    if !fails && !lines.is_empty() {
        case.set_system_out(format!("{}: {}", verdict.name(), lines.join("\n")));
    }
    case
}
