//! From command-line paths to Kubernetes objects: files found in directories, the documents of
//! each file, and the items of `kind: List` objects.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::yaml::{self, Document, Node, Position, YamlError};

/// File name endings read from a directory.
const MANIFEST_EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// Where a manifest text comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Stdin,
}

impl Origin {
    /// The name reports use: the path as given or found, `-` for standard input.
    pub fn name(&self) -> String {
        match self {
            Origin::File(path) => path.display().to_string(),
            Origin::Stdin => "-".to_owned(),
        }
    }
}

/// Why an input cannot be scanned; the line is 0 when the problem is the whole file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("cannot read: {0}")]
    Unreadable(String),
    #[error("{0}")]
    Yaml(YamlError),
    #[error("line {line}: {problem}")]
    NotAnObject { line: usize, problem: ObjectProblem },
}

impl InputError {
    /// The line the problem is on, when it is on one.
    pub fn line(&self) -> Option<usize> {
        match self {
            InputError::Unreadable(_) => None,
            InputError::Yaml(error) => Some(error.line),
            InputError::NotAnObject { line, .. } => Some(*line),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ObjectProblem {
    #[error("a Kubernetes object needs both apiVersion and kind as strings")]
    IncompleteType,
    #[error("the items of a list must be Kubernetes objects")]
    ListItemNotAnObject,
}

/// The files named on the command line, directories searched recursively for `*.yaml`,
/// `*.yml` and `*.json` in name order (hidden directories and symbolic links to directories
/// are not entered). `-` is standard input.
pub fn find_inputs(args: &[String]) -> Vec<Result<Origin, (String, InputError)>> {
    let mut found = Vec::new();
    for arg in args {
        if arg == "-" {
            found.push(Ok(Origin::Stdin));
            continue;
        }
        let path = Path::new(arg);
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => walk(path, &mut found),
            Ok(_) => found.push(Ok(Origin::File(path.to_path_buf()))),
            Err(error) => found.push(Err((
                arg.clone(),
                InputError::Unreadable(error.to_string()),
            ))),
        }
    }
    found
}

fn walk(dir: &Path, found: &mut Vec<Result<Origin, (String, InputError)>>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            found.push(Err((
                dir.display().to_string(),
                InputError::Unreadable(error.to_string()),
            )));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let hidden = path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with('.'));
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if !hidden {
                walk(&path, found);
            }
        } else if is_manifest_name(&path) && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            found.push(Ok(Origin::File(path)));
        }
    }
}

fn is_manifest_name(path: &Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| MANIFEST_EXTENSIONS.contains(&ext))
}

/// The text of an input.
pub fn read(origin: &Origin) -> Result<String, InputError> {
    match origin {
        Origin::File(path) => {
            std::fs::read_to_string(path).map_err(|e| InputError::Unreadable(e.to_string()))
        }
        Origin::Stdin => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| InputError::Unreadable(e.to_string()))?;
            Ok(text)
        }
    }
}

/// One Kubernetes object of a file.
#[derive(Debug)]
pub struct ManifestObject<'d> {
    /// Index of its document in the file.
    pub document: usize,
    /// Index in the `items` of the list object it came in, if it came in one.
    pub item: Option<usize>,
    pub node: &'d Node,
    pub api_version: String,
    pub kind: String,
    pub name: Option<String>,
    pub namespace: Option<String>,
}

impl ManifestObject<'_> {
    pub fn position(&self) -> Position {
        self.node.span.start
    }
}

/// What the documents of a file hold.
#[derive(Debug, Default)]
pub struct Contents<'d> {
    pub objects: Vec<ManifestObject<'d>>,
    /// Documents that are not Kubernetes objects (no apiVersion and no kind), e.g. a Helm
    /// values file or a CI workflow found in a directory.
    pub other_documents: usize,
}

/// Reads a text into documents.
pub fn parse(text: &str) -> Result<Vec<Document>, InputError> {
    yaml::load(text).map_err(InputError::Yaml)
}

/// The Kubernetes objects of the documents, list items one by one.
pub fn objects(documents: &[Document]) -> Result<Contents<'_>, InputError> {
    let mut contents = Contents::default();
    for (index, document) in documents.iter().enumerate() {
        // A document of comments only, or `---` alone, is empty, not an object.
        let Some(root) = document.root.as_ref().filter(|root| !is_null(root)) else {
            continue;
        };
        match object_type(root)? {
            None => contents.other_documents += 1,
            Some((api_version, kind)) => {
                let items = root.get("items").filter(|_| kind.ends_with("List"));
                match items.map(|items| &items.content) {
                    Some(yaml::Content::Sequence(items)) => {
                        for (item_index, item) in items.iter().enumerate() {
                            let Some((api_version, kind)) = object_type(item)? else {
                                return Err(InputError::NotAnObject {
                                    line: item.span.start.line,
                                    problem: ObjectProblem::ListItemNotAnObject,
                                });
                            };
                            contents.objects.push(object(
                                index,
                                Some(item_index),
                                item,
                                api_version,
                                kind,
                            ));
                        }
                    }
                    _ => contents
                        .objects
                        .push(object(index, None, root, api_version, kind)),
                }
            }
        }
    }
    Ok(contents)
}

fn is_null(node: &Node) -> bool {
    matches!(
        node.content,
        yaml::Content::Scalar {
            value: Value::Null,
            ..
        }
    )
}

/// `apiVersion` and `kind` of a node; `None` when it has neither (not a Kubernetes object).
fn object_type(node: &Node) -> Result<Option<(String, String)>, InputError> {
    let incomplete = || InputError::NotAnObject {
        line: node.span.start.line,
        problem: ObjectProblem::IncompleteType,
    };
    if !matches!(node.content, yaml::Content::Mapping(_)) {
        return Ok(None);
    }
    match (node.get("apiVersion"), node.get("kind")) {
        (None, None) => Ok(None),
        (Some(api_version), Some(kind)) => match (api_version.as_str(), kind.as_str()) {
            (Some(api_version), Some(kind)) if !api_version.is_empty() && !kind.is_empty() => {
                Ok(Some((api_version.to_owned(), kind.to_owned())))
            }
            _ => Err(incomplete()),
        },
        _ => Err(incomplete()),
    }
}

fn object<'d>(
    document: usize,
    item: Option<usize>,
    node: &'d Node,
    api_version: String,
    kind: String,
) -> ManifestObject<'d> {
    let metadata = |key: &str| {
        node.get("metadata")
            .and_then(|metadata| metadata.get(key))
            .and_then(Node::as_str)
            .map(str::to_owned)
    };
    ManifestObject {
        document,
        item,
        node,
        name: metadata("name").or_else(|| metadata("generateName")),
        namespace: metadata("namespace"),
        api_version,
        kind,
    }
}

/// The object's JSON, as the API server would receive it.
pub fn object_json(object: &ManifestObject<'_>) -> Value {
    object.node.to_json()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_flattened_and_other_documents_counted() {
        let text = "\
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: a, namespace: ns}
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {generateName: b-}
---
replicaCount: 3
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
";
        let documents = parse(text).unwrap();
        let contents = objects(&documents).unwrap();
        let found: Vec<_> = contents
            .objects
            .iter()
            .map(|o| {
                (
                    o.document,
                    o.item,
                    o.kind.as_str(),
                    o.name.as_deref(),
                    o.namespace.as_deref(),
                    o.position().line,
                )
            })
            .collect();
        assert_eq!(
            found,
            vec![
                (0, Some(0), "Pod", Some("a"), Some("ns"), 4),
                (0, Some(1), "Deployment", Some("b-"), None, 7),
                (2, None, "ConfigMap", Some("c"), None, 13),
            ]
        );
        assert_eq!(contents.other_documents, 1);
    }

    #[test]
    fn half_typed_objects_are_errors() {
        let documents = parse("---\nkind: Pod\nspec: {}\n").unwrap();
        let error = objects(&documents).unwrap_err();
        assert_eq!(error.line(), Some(2));
        assert_eq!(
            error.to_string(),
            "line 2: a Kubernetes object needs both apiVersion and kind as strings"
        );
        let documents = parse("apiVersion: v1\nkind: List\nitems:\n  - 1\n").unwrap();
        assert_eq!(
            objects(&documents).unwrap_err().to_string(),
            "line 4: the items of a list must be Kubernetes objects"
        );
    }

    #[test]
    fn directories_are_searched_in_name_order() {
        let root = std::env::temp_dir().join(format!("manifest-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for file in [
            "b/2.yml",
            "b/1.json",
            "a.yaml",
            ".hidden/x.yaml",
            "c/readme.md",
        ] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let names: Vec<_> = find_inputs(&[root.display().to_string(), "-".into()])
            .into_iter()
            .map(|found| match found.unwrap() {
                Origin::File(path) => path.strip_prefix(&root).unwrap().display().to_string(),
                Origin::Stdin => "-".into(),
            })
            .collect();
        assert_eq!(names, ["a.yaml", "b/1.json", "b/2.yml", "-"]);
        let missing = find_inputs(&[root.join("missing").display().to_string()]);
        assert!(matches!(&missing[0], Err((_, InputError::Unreadable(_)))));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
