//! A scan: every input read, every object the policy server would send to the policy evaluated
//! in a fresh instance, findings placed on their lines, and (with `--fix`) the pull policies
//! written into the files. Files are scanned in parallel, one worker per core.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use policy_admission::{AdmissionRequest, AdmissionResponse};
use serde_json::Value;

use crate::admission::{Admission, Namespaces, Reach};
use crate::findings::{findings, Finding};
use crate::fix::{self, FixError};
use crate::manifest::{self, InputError, ManifestObject, Origin};
use crate::policy::Evaluator;
use crate::request::{create_request, ObjectType, WebhookRules};

/// What a scan reports.
#[derive(Debug, Default)]
pub struct Report {
    pub files: Vec<FileReport>,
}

#[derive(Debug)]
pub struct FileReport {
    /// The path as given or found; `-` for standard input.
    pub name: String,
    /// Why the file could not be scanned; its objects are then not reported.
    pub error: Option<InputError>,
    pub objects: Vec<ObjectReport>,
    /// Documents that are not Kubernetes objects.
    pub other_documents: usize,
    /// What `--fix` did to the file, when it had something to do.
    pub fix: Option<Result<usize, FixError>>,
}

#[derive(Debug)]
pub struct ObjectReport {
    pub line: usize,
    pub column: usize,
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub outcome: Outcome,
}

#[derive(Debug)]
pub enum Outcome {
    /// The policy's rules do not select this kind: admission never asks the policy.
    Skipped,
    Evaluated(Evaluation),
    /// The policy manifest's selectors or namespace leave it out: admission never asks the policy.
    Unselected,
    /// Whether admission sends it to the policy depends on what the input does not say.
    Undecided(String),
    /// The module failed (trap, waPC error, unusable answer).
    Failed(String),
}

#[derive(Debug)]
pub struct Evaluation {
    /// The AdmissionResponse the policy server would send.
    pub response: AdmissionResponse,
    /// The decoded JSON Patch of a mutation (RFC 6902 operations).
    pub patch: Vec<Value>,
    pub findings: Vec<Finding>,
    /// `--fix` wrote every change of the patch into the file.
    pub fixed: bool,
}

/// What admission would do with an object, worst first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Accepted,
    Warned,
    Changed,
    Refused,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Warned => "warned",
            Verdict::Changed => "changed",
            Verdict::Refused => "refused",
        }
    }
}

impl Evaluation {
    pub fn verdict(&self) -> Verdict {
        if !self.response.allowed {
            Verdict::Refused
        } else if !self.patch.is_empty() {
            Verdict::Changed
        } else if self
            .response
            .warnings
            .as_ref()
            .is_some_and(|w| !w.is_empty())
        {
            Verdict::Warned
        } else {
            Verdict::Accepted
        }
    }
}

impl ObjectReport {
    /// `Kind namespace/name`, or `Kind name` for an object without a namespace.
    pub fn display_name(&self) -> String {
        let name = self.name.as_deref().unwrap_or("(unnamed)");
        match &self.namespace {
            Some(namespace) => format!("{} {namespace}/{name}", self.kind),
            None => format!("{} {name}", self.kind),
        }
    }

    pub fn evaluation(&self) -> Option<&Evaluation> {
        match &self.outcome {
            Outcome::Evaluated(evaluation) => Some(evaluation),
            _ => None,
        }
    }
}

/// Counts over a report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub files: usize,
    pub objects: usize,
    pub evaluated: usize,
    pub skipped: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub unselected: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub undecided: usize,
    pub other_documents: usize,
    pub refused: usize,
    pub changed: usize,
    pub warned: usize,
    pub accepted: usize,
    pub errors: usize,
    pub fixed_files: usize,
    pub fixed_pull_policies: usize,
}

impl Report {
    pub fn summary(&self) -> Summary {
        let mut summary = Summary {
            files: self.files.len(),
            ..Summary::default()
        };
        for file in &self.files {
            summary.errors += usize::from(file.error.is_some());
            summary.other_documents += file.other_documents;
            match &file.fix {
                Some(Ok(changes)) => {
                    summary.fixed_files += 1;
                    summary.fixed_pull_policies += changes;
                }
                Some(Err(_)) => summary.errors += 1,
                None => {}
            }
            for object in &file.objects {
                summary.objects += 1;
                match &object.outcome {
                    Outcome::Skipped => summary.skipped += 1,
                    Outcome::Unselected => summary.unselected += 1,
                    Outcome::Undecided(_) => summary.undecided += 1,
                    Outcome::Failed(_) => {
                        summary.evaluated += 1;
                        summary.errors += 1;
                    }
                    Outcome::Evaluated(evaluation) => {
                        summary.evaluated += 1;
                        match evaluation.verdict() {
                            Verdict::Refused => summary.refused += 1,
                            Verdict::Changed => summary.changed += 1,
                            Verdict::Warned => summary.warned += 1,
                            Verdict::Accepted => summary.accepted += 1,
                        }
                    }
                }
            }
        }
        summary
    }

    /// 0: admission would refuse nothing; 1: it would refuse something (with `strict`, also
    /// change or warn about something `--fix` did not fix); 2: an input could not be read or
    /// evaluated, or a fix could not be written.
    pub fn exit_status(&self, strict: bool) -> u8 {
        let summary = self.summary();
        if summary.errors > 0 {
            return 2;
        }
        let evaluations = self
            .files
            .iter()
            .flat_map(|file| &file.objects)
            .filter_map(ObjectReport::evaluation);
        let mut status = 0;
        for evaluation in evaluations {
            match evaluation.verdict() {
                Verdict::Refused => return 1,
                Verdict::Changed | Verdict::Warned if strict && !evaluation.fixed => status = 1,
                _ => {}
            }
        }
        status
    }
}

/// The scan's inputs and what to do.
pub struct ScanRequest<'a> {
    pub evaluator: &'a Evaluator,
    pub rules: &'a WebhookRules,
    pub admission: &'a Admission,
    /// Namespace labels given on the command line.
    pub namespaces: &'a Namespaces,
    pub fix: bool,
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

/// Scans the inputs (paths as given on the command line).
pub fn scan(inputs: &[String], request: &ScanRequest<'_>) -> Report {
    let found = manifest::find_inputs(inputs);
    let texts = parallel_map(&found, |found| match found {
        Ok(origin) => (origin.name(), manifest::read(origin)),
        Err((name, error)) => (name.clone(), Err(error.clone())),
    });
    // A namespaceSelector is matched against the labels of the Namespace objects of every input.
    let mut namespaces = request.namespaces.clone();
    if request.admission.namespace_selector.is_some() {
        for (_, text) in &texts {
            let documents = text.as_deref().ok().and_then(|t| manifest::parse(t).ok());
            if let Some(contents) = documents.as_deref().and_then(|d| manifest::objects(d).ok()) {
                namespaces.add_objects(&contents.objects);
            }
        }
    }
    let jobs: Vec<_> = found.iter().zip(texts).collect();
    let files = parallel_map(&jobs, |(found, (name, text))| match text {
        Ok(text) => {
            let fix_path = match found {
                Ok(Origin::File(path)) if request.fix => Some(path.as_path()),
                _ => None,
            };
            scan_in(name.clone(), text, request, fix_path, &namespaces)
        }
        Err(error) => FileReport::failed(name.clone(), error.clone()),
    });
    Report { files }
}

impl FileReport {
    fn failed(name: String, error: InputError) -> FileReport {
        FileReport {
            name,
            error: Some(error),
            objects: Vec::new(),
            other_documents: 0,
            fix: None,
        }
    }
}

/// Scans one file's text; with `fix_path`, writes the fixed text there.
pub fn scan_text(
    name: String,
    text: &str,
    request: &ScanRequest<'_>,
    fix_path: Option<&Path>,
) -> FileReport {
    scan_in(name, text, request, fix_path, request.namespaces)
}

/// Scans one file's text, with the namespace labels of the whole input.
fn scan_in(
    name: String,
    text: &str,
    request: &ScanRequest<'_>,
    fix_path: Option<&Path>,
    namespaces: &Namespaces,
) -> FileReport {
    let documents = match manifest::parse(text) {
        Ok(documents) => documents,
        Err(error) => return FileReport::failed(name, error),
    };
    let contents = match manifest::objects(&documents) {
        Ok(contents) => contents,
        Err(error) => return FileReport::failed(name, error),
    };
    let mut own_namespaces;
    let namespaces = if request.admission.namespace_selector.is_some() {
        own_namespaces = namespaces.clone();
        own_namespaces.add_objects(&contents.objects);
        &own_namespaces
    } else {
        namespaces
    };
    let mut objects: Vec<ObjectReport> = contents
        .objects
        .iter()
        .enumerate()
        .map(|(index, object)| evaluate(&name, index, object, request, namespaces))
        .collect();
    let fix = fix_path.and_then(|path| {
        let patches: Vec<&[Value]> = objects
            .iter()
            .map(|o| o.evaluation().map_or(&[][..], |e| e.patch.as_slice()))
            .collect();
        let fixed = fix::fix_text(text, &contents.objects, &patches).transpose()?;
        Some(fixed.and_then(|fixed| {
            std::fs::write(path, &fixed.text).map_err(|e| FixError::Write(e.to_string()))?;
            for (object, complete) in objects.iter_mut().zip(&fixed.complete) {
                if let Outcome::Evaluated(evaluation) = &mut object.outcome {
                    evaluation.fixed = *complete && !evaluation.patch.is_empty();
                }
            }
            Ok(fixed.changes)
        }))
    });
    FileReport {
        name,
        error: None,
        objects,
        other_documents: contents.other_documents,
        fix,
    }
}

fn evaluate(
    file: &str,
    index: usize,
    object: &ManifestObject<'_>,
    request: &ScanRequest<'_>,
    namespaces: &Namespaces,
) -> ObjectReport {
    let position = object.position();
    let reach = if request.rules.selects_create(&ObjectType::of(object)) {
        Some(request.admission.reach(object, namespaces))
    } else {
        None
    };
    let outcome = match reach {
        None => Outcome::Skipped,
        Some(Reach::NotSent) => Outcome::Unselected,
        Some(Reach::Undecided(why)) => Outcome::Undecided(why),
        Some(Reach::Sent) => match request
            .evaluator
            .evaluate(&admission_request(file, index, object))
        {
            Ok(mut response) => match decode_patch(&response) {
                Ok(mut patch) => {
                    let mut findings = findings(&response, object.node);
                    request
                        .admission
                        .answer(&mut response, &mut patch, &mut findings);
                    Outcome::Evaluated(Evaluation {
                        findings: in_line_order(findings),
                        response,
                        patch,
                        fixed: false,
                    })
                }
                Err(message) => Outcome::Failed(message),
            },
            Err(error) => Outcome::Failed(error.to_string()),
        },
    };
    ObjectReport {
        line: position.line,
        column: position.column,
        api_version: object.api_version.clone(),
        kind: object.kind.clone(),
        namespace: object.namespace.clone(),
        name: object.name.clone(),
        outcome,
    }
}

/// Findings by line and column, as the report is read; the module's order among equals.
fn in_line_order(mut findings: Vec<Finding>) -> Vec<Finding> {
    findings.sort_by_key(|finding| (finding.position.line, finding.position.column));
    findings
}

/// The CREATE request scan sends for the `index`th object of a file.
pub fn admission_request(
    file: &str,
    index: usize,
    object: &ManifestObject<'_>,
) -> AdmissionRequest {
    create_request(
        format!("{file}#{index}"),
        object,
        manifest::object_json(object),
    )
}

fn decode_patch(response: &AdmissionResponse) -> Result<Vec<Value>, String> {
    let Some(encoded) = &response.patch else {
        return Ok(Vec::new());
    };
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|e| format!("the patch is not base64: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("the patch is not a JSON Patch: {e}"))
}

/// `f` over `items` on one worker per core, results in the order of `items`.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(items.len());
    if workers <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(index) else { break };
                let result = f(item);
                *results[index].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every item is mapped")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::{Origin as FindingOrigin, FINDING_KINDS};
    use crate::yaml::Position;

    fn finding(text: &str, line: usize, column: usize) -> Finding {
        Finding {
            kind: &FINDING_KINDS[0],
            origin: FindingOrigin::Warning,
            text: text.to_owned(),
            path: None,
            position: Position {
                line,
                column,
                offset: 0,
            },
        }
    }

    #[test]
    fn findings_are_in_numeric_line_order() {
        let sorted = in_line_order(vec![
            finding("containers[0]", 80, 9),
            finding("initContainers[0]", 73, 9),
            finding("volumes[0]", 100, 11),
            finding("same line, later column", 73, 20),
            finding("same place, module order", 73, 20),
        ]);
        let texts: Vec<_> = sorted.iter().map(|f| f.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "initContainers[0]",
                "same line, later column",
                "same place, module order",
                "containers[0]",
                "volumes[0]",
            ]
        );
    }

    fn object(kind: &str, namespace: Option<&str>, name: Option<&str>) -> ObjectReport {
        ObjectReport {
            line: 1,
            column: 1,
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            outcome: Outcome::Skipped,
        }
    }

    #[test]
    fn names_read_as_kind_then_namespace_and_name() {
        assert_eq!(
            object("Deployment", Some("shop"), Some("web")).display_name(),
            "Deployment shop/web"
        );
        assert_eq!(
            object("Deployment", None, Some("shop")).display_name(),
            "Deployment shop"
        );
        assert_eq!(
            object("Namespace", None, Some("payments")).display_name(),
            "Namespace payments"
        );
        assert_eq!(
            object("Pod", Some("default"), None).display_name(),
            "Pod default/(unnamed)"
        );
    }
}
