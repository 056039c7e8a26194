//! `--fix`: the pull-policy changes of the module's patches, written into the text of a file.
//!
//! Only pull-policy fields are touched: a value is replaced in place (keeping its quotes), a
//! missing field is added after `image:` (`reference:` in an image volume) with the same
//! indentation, or after it within a flow mapping (`{…}`, JSON). Comments, key order,
//! quoting, anchors and the other documents stay as they are. Any other operation of a patch
//! (a pinned digest) is never written. Before anything is written, the edited text is read
//! again: it must give exactly the objects admission would store, or the file is left alone.

use serde_json::Value;

use crate::manifest::{self, ManifestObject};
use crate::yaml::{Content, Entry, Node, Quoting};

const ALWAYS: &str = "Always";

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FixError {
    #[error("line {line}: cannot find {pointer} in the file")]
    NotFound { line: usize, pointer: String },
    #[error("line {line}: {pointer} is written in a way --fix does not edit (a block scalar, or no scalar field to add after)")]
    NotEditable { line: usize, pointer: String },
    #[error("two changes overlap at byte {0} (an anchor shared by two containers?)")]
    Overlap(usize),
    #[error("the edited file would not give the objects admission stores (line {line}: {kind}); nothing written")]
    WouldDiffer { line: usize, kind: String },
    #[error("cannot write the file: {0}")]
    Write(String),
}

/// A fixed text.
#[derive(Debug)]
pub struct Fixed {
    pub text: String,
    /// Pull policies written.
    pub changes: usize,
    /// For each object: every operation of its patch was written.
    pub complete: Vec<bool>,
}

/// One change to a text: `remove` bytes at `at` replaced with `insert`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Edit {
    at: usize,
    remove: usize,
    insert: String,
}

/// The fixed text of a file whose objects got these patches (one per object, empty when the
/// module did not mutate it); `None` when there is nothing to write.
pub fn fix_text(
    text: &str,
    objects: &[ManifestObject<'_>],
    patches: &[&[Value]],
) -> Result<Option<Fixed>, FixError> {
    let mut edits = Vec::new();
    let mut expected = Vec::new();
    let mut complete = Vec::new();
    for (object, patch) in objects.iter().zip(patches) {
        let mut written = Vec::new();
        for operation in patch.iter() {
            if let Some(pointer) = pull_policy_pointer(operation) {
                edits.push(edit(text, object.node, pointer, operation)?);
                written.push(operation.clone());
            }
        }
        complete.push(written.len() == patch.len());
        let mut value = manifest::object_json(object);
        if !written.is_empty() {
            let operations: json_patch::Patch = serde_json::from_value(Value::Array(written))
                .expect("add and replace operations are JSON Patch");
            json_patch::patch(&mut value, &operations).map_err(|_| FixError::NotFound {
                line: object.position().line,
                pointer: "the patched field".to_owned(),
            })?;
        }
        expected.push(value);
    }
    if edits.is_empty() {
        return Ok(None);
    }
    let changes = edits.len();
    let fixed = apply(text, edits)?;
    verify(&fixed, objects, &expected)?;
    Ok(Some(Fixed {
        text: fixed,
        changes,
        complete,
    }))
}

/// The pointer of an operation that sets a pull policy to `Always`.
fn pull_policy_pointer(operation: &Value) -> Option<&str> {
    let op = operation.get("op")?.as_str()?;
    let pointer = operation.get("path")?.as_str()?;
    let sets_policy =
        pointer.ends_with("/imagePullPolicy") || pointer.ends_with("/image/pullPolicy");
    let always = operation.get("value")?.as_str() == Some(ALWAYS);
    (matches!(op, "add" | "replace") && sets_policy && always).then_some(pointer)
}

fn tokens(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|token| token.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn node_at<'n>(node: &'n Node, tokens: &[String]) -> Option<&'n Node> {
    tokens
        .iter()
        .try_fold(node, |node, token| match &node.content {
            Content::Mapping(_) => node.get(token),
            Content::Sequence(_) => node.item(token.parse().ok()?),
            Content::Scalar { .. } => None,
        })
}

fn edit(text: &str, object: &Node, pointer: &str, operation: &Value) -> Result<Edit, FixError> {
    let tokens = tokens(pointer);
    let (key, parent_tokens) = tokens
        .split_last()
        .expect("a pull-policy pointer has tokens");
    let not_found = || FixError::NotFound {
        line: object.span.start.line,
        pointer: pointer.to_owned(),
    };
    let parent = node_at(object, parent_tokens).ok_or_else(not_found)?;
    let not_editable = || FixError::NotEditable {
        line: parent.span.start.line,
        pointer: pointer.to_owned(),
    };
    match (operation["op"].as_str(), parent.entry(key)) {
        (Some("replace"), Some(existing)) => replace(&existing.value).ok_or_else(not_editable),
        (Some("add"), None) => add(text, parent, key).ok_or_else(not_editable),
        _ => Err(not_found()),
    }
}

/// The scalar's text replaced by `Always`, in the same quotes.
fn replace(value: &Node) -> Option<Edit> {
    let quoted = match value.quoting()? {
        Quoting::Plain => ALWAYS.to_owned(),
        Quoting::Single => format!("'{ALWAYS}'"),
        Quoting::Double => format!("\"{ALWAYS}\""),
        Quoting::Block => return None,
    };
    let span = value.span;
    // An empty value (`imagePullPolicy:`) has no text to replace: a space keeps the colon an
    // indicator.
    let insert = if span.start.offset == span.end.offset {
        format!(" {quoted}")
    } else {
        quoted
    };
    Some(Edit {
        at: span.start.offset,
        remove: span.end.offset - span.start.offset,
        insert,
    })
}

/// A new `key: Always` entry in `mapping`, after the entry whose key the field belongs with.
fn add(text: &str, mapping: &Node, key: &str) -> Option<Edit> {
    let Content::Mapping(entries) = &mapping.content else {
        return None;
    };
    let scalar = |entry: &&Entry| matches!(entry.value.content, Content::Scalar { .. });
    let neighbour = ["image", "reference"]
        .iter()
        .find_map(|name| entries.iter().find(|e| e.key == *name).filter(scalar))
        .or_else(|| entries.iter().rev().find(scalar))?;
    if neighbour.value.quoting() == Some(Quoting::Block) {
        return None;
    }
    let end = neighbour.value.span.end.offset;
    if mapping.flow {
        let field = match neighbour.key_quoting {
            Quoting::Double => format!("\"{key}\": \"{ALWAYS}\""),
            Quoting::Single => format!("'{key}': '{ALWAYS}'"),
            _ => format!("{key}: {ALWAYS}"),
        };
        return Some(Edit {
            at: end,
            remove: 0,
            insert: format!(", {field}"),
        });
    }
    let indent = " ".repeat(neighbour.key_span.start.column - 1);
    let (at, newline) = match text[end..].find('\n') {
        Some(found) if text[..end + found].ends_with('\r') => (end + found - 1, "\r\n"),
        Some(found) => (end + found, "\n"),
        None if text.contains("\r\n") => (text.len(), "\r\n"),
        None => (text.len(), "\n"),
    };
    Some(Edit {
        at,
        remove: 0,
        insert: format!("{newline}{indent}{key}: {ALWAYS}"),
    })
}

fn apply(text: &str, mut edits: Vec<Edit>) -> Result<String, FixError> {
    edits.sort_by_key(|edit| (edit.at, edit.remove));
    edits.dedup();
    let mut out = String::with_capacity(text.len() + edits.len() * 32);
    let mut copied = 0;
    for edit in &edits {
        if edit.at < copied {
            return Err(FixError::Overlap(edit.at));
        }
        out.push_str(&text[copied..edit.at]);
        out.push_str(&edit.insert);
        copied = edit.at + edit.remove;
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

/// The fixed text must read as the same objects, each equal to what admission stores.
fn verify(fixed: &str, objects: &[ManifestObject<'_>], expected: &[Value]) -> Result<(), FixError> {
    let differ = |line: usize, kind: &str| FixError::WouldDiffer {
        line,
        kind: kind.to_owned(),
    };
    let first_line = objects.first().map_or(1, |o| o.position().line);
    let documents = manifest::parse(fixed).map_err(|_| differ(first_line, "unreadable"))?;
    let contents = manifest::objects(&documents).map_err(|_| differ(first_line, "unreadable"))?;
    if contents.objects.len() != objects.len() {
        return Err(differ(first_line, "another number of objects"));
    }
    for ((reread, object), value) in contents.objects.iter().zip(objects).zip(expected) {
        if manifest::object_json(reread) != *value {
            return Err(differ(object.position().line, &object.kind));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixed(text: &str, patches: &[Value]) -> Result<Option<Fixed>, FixError> {
        let documents = manifest::parse(text).unwrap();
        let contents = manifest::objects(&documents).unwrap();
        let patches: Vec<Vec<Value>> = patches
            .iter()
            .map(|p| p.as_array().unwrap().clone())
            .collect();
        let slices: Vec<&[Value]> = patches.iter().map(Vec::as_slice).collect();
        fix_text(text, &contents.objects, &slices)
    }

    fn set(op: &str, path: &str) -> Value {
        json!({"op": op, "path": path, "value": "Always"})
    }

    #[test]
    fn block_fields_are_replaced_in_place_or_added_after_the_image() {
        let text = "\
# web
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
    - image: nginx:1.27 # pinned by the release
      name: web
    - name: side
      imagePullPolicy: \"IfNotPresent\" # quoted
      image: busybox:1.36
  volumes:
    - name: data
      image:
        reference: registry.example/data:1
---
apiVersion: v1
kind: ConfigMap
metadata: {name: untouched}
";
        let patch = json!([
            set("add", "/spec/containers/0/imagePullPolicy"),
            set("replace", "/spec/containers/1/imagePullPolicy"),
            set("add", "/spec/volumes/0/image/pullPolicy"),
            {"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:1.27@sha256:aa"},
        ]);
        let fixed = fixed(text, &[patch, json!([])]).unwrap().unwrap();
        assert_eq!(
            fixed.text,
            text.replace(
                "    - image: nginx:1.27 # pinned by the release\n",
                "    - image: nginx:1.27 # pinned by the release\n      imagePullPolicy: Always\n"
            )
            .replace("\"IfNotPresent\"", "\"Always\"")
            .replace(
                "        reference: registry.example/data:1\n",
                "        reference: registry.example/data:1\n        pullPolicy: Always\n"
            )
        );
        assert_eq!(fixed.changes, 3);
        // The digest pin is not written, so the first object is not completely fixed.
        assert_eq!(fixed.complete, [false, true]);
    }

    #[test]
    fn flow_mappings_and_json_get_a_member_in_their_style() {
        let text = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j"},
 "spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1", "imagePullPolicy": "Never"}]}}"#;
        let patch = json!([
            set("add", "/spec/containers/0/imagePullPolicy"),
            set("replace", "/spec/containers/1/imagePullPolicy"),
        ]);
        let fixed = fixed(text, &[patch]).unwrap().unwrap();
        assert_eq!(
            fixed.text,
            text.replace(
                r#""image": "a:1""#,
                r#""image": "a:1", "imagePullPolicy": "Always""#
            )
            .replace(r#""Never""#, r#""Always""#)
        );
        let yaml = "apiVersion: v1\nkind: Pod\nspec:\n  containers: [{name: a, image: 'a:1'}]\n";
        let fixed = super::tests::fixed(
            yaml,
            &[json!([set("add", "/spec/containers/0/imagePullPolicy")])],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            fixed.text,
            "apiVersion: v1\nkind: Pod\nspec:\n  containers: [{name: a, image: 'a:1', imagePullPolicy: Always}]\n"
        );
    }

    #[test]
    fn crlf_and_missing_final_newline_are_kept() {
        let text = "apiVersion: v1\r\nkind: Pod\r\nspec:\r\n  containers:\r\n  - name: a\r\n    image: a:1";
        let fixed = fixed(
            text,
            &[json!([set("add", "/spec/containers/0/imagePullPolicy")])],
        )
        .unwrap()
        .unwrap();
        assert_eq!(fixed.text, format!("{text}\r\n    imagePullPolicy: Always"));
    }

    #[test]
    fn an_anchor_shared_with_an_unchanged_object_is_not_edited() {
        let text = "\
apiVersion: v1
kind: Pod
metadata: {name: a}
spec:
  containers:
    - &app {name: app, image: app:1}
  initContainers:
    - *app
";
        // Only the container is patched; editing the anchor would change the init container too.
        let error = fixed(
            text,
            &[json!([set("add", "/spec/containers/0/imagePullPolicy")])],
        )
        .unwrap_err();
        assert!(
            matches!(error, FixError::WouldDiffer { line: 1, .. }),
            "{error}"
        );
        // Both patched: the one edit serves both.
        let fixed = fixed(
            text,
            &[json!([
                set("add", "/spec/containers/0/imagePullPolicy"),
                set("add", "/spec/initContainers/0/imagePullPolicy"),
            ])],
        )
        .unwrap()
        .unwrap();
        assert!(fixed
            .text
            .contains("image: app:1, imagePullPolicy: Always}"));
    }

    #[test]
    fn nothing_to_fix_is_none_and_unknown_places_are_errors() {
        let text = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - {name: a, image: a:1}\n";
        assert!(fixed(text, &[json!([])]).unwrap().is_none());
        let error = fixed(
            text,
            &[json!([set(
                "replace",
                "/spec/containers/3/imagePullPolicy"
            )])],
        )
        .unwrap_err();
        assert!(matches!(error, FixError::NotFound { .. }), "{error}");
    }
}
