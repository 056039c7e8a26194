//! YAML documents with the position of every node, read the way Kubernetes tools read them.
//!
//! kubectl, Helm and Argo CD turn YAML into JSON with `sigs.k8s.io/yaml`, which sits on a fork
//! of go-yaml v2: YAML 1.1 plain scalars (`yes`, `on` and `y` are booleans, `0755` is octal),
//! `<<` merge keys, and keys that are not strings written as strings. The parser
//! (granit-parser, a YAML 1.2 event parser with byte offsets) gives the structure and the
//! positions; this module resolves scalars and builds both the JSON value the policy receives
//! and a tree of positions that a module's path (`spec.containers[0]`) is looked up in.

use std::collections::HashMap;
use std::fmt;

use granit_parser::{Event, Parser, ScalarStyle, ScanError, Span as ParserSpan, StructureStyle};
use serde_json::{Map, Number, Value};

/// Aliases may not add more nodes than this to one file (a "billion laughs" stays small).
const ALIAS_NODE_BUDGET: usize = 1_000_000;

/// A place in the text: 1-based line and column (in characters), and the byte offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
    pub offset: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: Position,
    pub end: Position,
}

/// How a scalar was written, for an edit to write its replacement the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quoting {
    Plain,
    Single,
    Double,
    Block,
}

#[derive(Clone, Debug)]
pub enum Content {
    Scalar { value: Value, quoting: Quoting },
    Sequence(Vec<Node>),
    Mapping(Vec<Entry>),
}

/// A node and where it is written. A node reached through an alias keeps the position of the
/// anchored node it copies.
#[derive(Clone, Debug)]
pub struct Node {
    pub content: Content,
    pub span: Span,
    /// Written in flow style (`{…}`, `[…]`), JSON included.
    pub flow: bool,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub key_quoting: Quoting,
    pub value: Node,
}

/// One document of a stream; `root` is `None` for an empty one (comments only, or `---` alone).
#[derive(Clone, Debug)]
pub struct Document {
    pub root: Option<Node>,
    pub start: Position,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum YamlErrorKind {
    #[error("YAML syntax error: {0}")]
    Syntax(String),
    #[error("a mapping key must be a scalar")]
    ComplexKey,
    #[error("a merge key (<<) must merge a mapping or a list of mappings")]
    BadMerge,
    #[error("aliases expand to more than {ALIAS_NODE_BUDGET} nodes")]
    AliasExpansion,
    #[error("{0:?} is a number JSON cannot hold")]
    NotJson(String),
}

/// What is wrong with a YAML text, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub kind: YamlErrorKind,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {} column {}: {}",
            self.line, self.column, self.kind
        )
    }
}

impl std::error::Error for YamlError {}

/// Reads every document of a YAML (or JSON) text.
pub fn load(text: &str) -> Result<Vec<Document>, YamlError> {
    let options = granit_parser::options! {
        emit_comments: false,
        block_scalar_eof_without_line_feed: true,
    };
    let mut builder = Builder {
        events: Parser::new_from_str_with_options(text, options),
        anchors: HashMap::new(),
        alias_nodes: 0,
    };
    builder.stream()
}

impl Node {
    /// The JSON value of the node.
    pub fn to_json(&self) -> Value {
        match &self.content {
            Content::Scalar { value, .. } => value.clone(),
            Content::Sequence(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Content::Mapping(entries) => Value::Object(
                entries
                    .iter()
                    .map(|entry| (entry.key.clone(), entry.value.to_json()))
                    .collect::<Map<_, _>>(),
            ),
        }
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.content {
            Content::Mapping(entries) => entries.iter().find(|entry| entry.key == key),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|entry| &entry.value)
    }

    pub fn item(&self, index: usize) -> Option<&Node> {
        match &self.content {
            Content::Sequence(items) => items.get(index),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.content {
            Content::Scalar {
                value: Value::String(text),
                ..
            } => Some(text),
            _ => None,
        }
    }

    /// How a scalar was written; `None` for a collection.
    pub fn quoting(&self) -> Option<Quoting> {
        match &self.content {
            Content::Scalar { quoting, .. } => Some(*quoting),
            _ => None,
        }
    }

    fn count(&self) -> usize {
        1 + match &self.content {
            Content::Scalar { .. } => 0,
            Content::Sequence(items) => items.iter().map(Node::count).sum(),
            Content::Mapping(entries) => entries.iter().map(|entry| entry.value.count()).sum(),
        }
    }
}

struct Builder<'a> {
    events: Parser<'a, granit_parser::StrInput<'a>>,
    anchors: HashMap<usize, Node>,
    alias_nodes: usize,
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<(Event<'a>, ParserSpan), YamlError> {
        match self.events.next() {
            Some(Ok(next)) => Ok(next),
            Some(Err(error)) => Err(syntax_error(&error)),
            // The parser ends every stream with StreamEnd; running out early is a broken stream.
            None => Err(YamlError {
                line: 0,
                column: 0,
                kind: YamlErrorKind::Syntax("unexpected end of input".to_owned()),
            }),
        }
    }

    fn stream(&mut self) -> Result<Vec<Document>, YamlError> {
        let mut documents = Vec::new();
        loop {
            let (event, span) = self.next()?;
            match event {
                Event::StreamStart => {}
                Event::StreamEnd => return Ok(documents),
                Event::DocumentStart(..) => {
                    let start = position(&span.start);
                    let (event, span) = self.next()?;
                    let root = match event {
                        Event::DocumentEnd => None,
                        event => {
                            let node = self.node(event, span)?;
                            self.expect_document_end()?;
                            Some(node)
                        }
                    };
                    // Anchors do not carry from one document to the next.
                    self.anchors.clear();
                    documents.push(Document { root, start });
                }
                _ => return Err(unexpected(&span)),
            }
        }
    }

    fn expect_document_end(&mut self) -> Result<(), YamlError> {
        match self.next()? {
            (Event::DocumentEnd, _) => Ok(()),
            (_, span) => Err(unexpected(&span)),
        }
    }

    fn node(&mut self, event: Event<'a>, span: ParserSpan) -> Result<Node, YamlError> {
        let (node, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let quoting = match style {
                    ScalarStyle::Plain => Quoting::Plain,
                    ScalarStyle::SingleQuoted => Quoting::Single,
                    ScalarStyle::DoubleQuoted => Quoting::Double,
                    _ => Quoting::Block,
                };
                let tag = tag
                    .as_ref()
                    .and_then(|tag| tag.is_yaml_core_schema().then(|| tag.suffix().to_owned()));
                let value = resolve(&text, quoting, tag.as_deref()).map_err(|kind| YamlError {
                    line: span.start.line(),
                    column: span.start.col() + 1,
                    kind,
                })?;
                let node = Node {
                    content: Content::Scalar { value, quoting },
                    span: self::span(&span),
                    flow: false,
                };
                (node, anchor)
            }
            Event::SequenceStart(style, anchor, _) => {
                let mut items = Vec::new();
                let end = loop {
                    let (event, item_span) = self.next()?;
                    if let Event::SequenceEnd = event {
                        break item_span;
                    }
                    items.push(self.node(event, item_span)?);
                };
                let node = Node {
                    content: Content::Sequence(items),
                    span: joined(&span, &end),
                    flow: style == StructureStyle::Flow,
                };
                (node, anchor)
            }
            Event::MappingStart(style, anchor, _) => {
                let (entries, end) = self.mapping()?;
                let node = Node {
                    content: Content::Mapping(entries),
                    span: joined(&span, &end),
                    flow: style == StructureStyle::Flow,
                };
                (node, anchor)
            }
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| unexpected(&span))?;
                self.alias_nodes += node.count();
                if self.alias_nodes > ALIAS_NODE_BUDGET {
                    return Err(YamlError {
                        line: span.start.line(),
                        column: span.start.col() + 1,
                        kind: YamlErrorKind::AliasExpansion,
                    });
                }
                (node, 0)
            }
            _ => return Err(unexpected(&span)),
        };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    /// The entries of a mapping up to its end, as go-yaml v2 (under sigs.k8s.io/yaml) builds
    /// it: keys and merge keys are applied in the order written, and a later one replaces an
    /// earlier one, so `image: a` then `<<: *base` gives the base's image, and a key written
    /// twice keeps its last value.
    fn mapping(&mut self) -> Result<(Vec<Entry>, ParserSpan), YamlError> {
        let mut entries: Vec<Entry> = Vec::new();
        loop {
            let (event, key_span) = self.next()?;
            if let Event::MappingEnd = event {
                return Ok((entries, key_span));
            }
            let key_node = self.node(event, key_span)?;
            let (event, value_span) = self.next()?;
            let value = self.node(event, value_span)?;
            let Content::Scalar {
                value: key,
                quoting,
            } = &key_node.content
            else {
                return Err(YamlError {
                    line: key_node.span.start.line,
                    column: key_node.span.start.column,
                    kind: YamlErrorKind::ComplexKey,
                });
            };
            if *quoting == Quoting::Plain && key.as_str() == Some("<<") {
                merge_into(&mut entries, value, &key_node.span)?;
                continue;
            }
            set(
                &mut entries,
                Entry {
                    key: key_text(key),
                    key_span: key_node.span,
                    key_quoting: *quoting,
                    value,
                },
            );
        }
    }
}

/// Sets a key of a mapping, replacing the value it had.
fn set(entries: &mut Vec<Entry>, entry: Entry) {
    match entries.iter_mut().find(|e| e.key == entry.key) {
        Some(existing) => *existing = entry,
        None => entries.push(entry),
    }
}

/// A merge key's mappings set their keys over what the mapping holds so far; of a list of
/// mappings, the first wins (go-yaml v2 applies them last to first).
fn merge_into(entries: &mut Vec<Entry>, value: Node, at: &Span) -> Result<(), YamlError> {
    let bad = || YamlError {
        line: at.start.line,
        column: at.start.column,
        kind: YamlErrorKind::BadMerge,
    };
    let sources = match value.content {
        Content::Mapping(_) => vec![value],
        Content::Sequence(items) => items,
        Content::Scalar { .. } => return Err(bad()),
    };
    if sources
        .iter()
        .any(|source| !matches!(source.content, Content::Mapping(_)))
    {
        return Err(bad());
    }
    for source in sources.into_iter().rev() {
        if let Content::Mapping(merged) = source.content {
            for entry in merged {
                set(entries, entry);
            }
        }
    }
    Ok(())
}

/// A key as a JSON object key: strings as they are, other scalars as sigs.k8s.io/yaml writes
/// them.
fn key_text(key: &Value) -> String {
    match key {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn position(marker: &granit_parser::Marker) -> Position {
    Position {
        line: marker.line(),
        column: marker.col() + 1,
        offset: marker.byte_offset().unwrap_or(0),
    }
}

fn span(span: &ParserSpan) -> Span {
    Span {
        start: position(&span.start),
        end: position(&span.end),
    }
}

fn joined(start: &ParserSpan, end: &ParserSpan) -> Span {
    Span {
        start: position(&start.start),
        end: position(&end.end),
    }
}

fn syntax_error(error: &ScanError) -> YamlError {
    YamlError {
        line: error.marker().line(),
        column: error.marker().col() + 1,
        kind: YamlErrorKind::Syntax(error.info()),
    }
}

fn unexpected(span: &ParserSpan) -> YamlError {
    YamlError {
        line: span.start.line(),
        column: span.start.col() + 1,
        kind: YamlErrorKind::Syntax("unexpected event from the parser".to_owned()),
    }
}

/// The JSON value of a scalar: quoted and block scalars are strings; a plain one is resolved
/// as go-yaml v2 does. A core-schema tag (`!!str`, `!!int`, ...) decides instead.
fn resolve(text: &str, quoting: Quoting, tag: Option<&str>) -> Result<Value, YamlErrorKind> {
    match tag {
        Some("str" | "binary" | "timestamp") => return Ok(Value::String(text.to_owned())),
        Some("null") => return Ok(Value::Null),
        Some("bool" | "int" | "float") => return resolve_plain(text),
        _ => {}
    }
    if quoting != Quoting::Plain {
        return Ok(Value::String(text.to_owned()));
    }
    resolve_plain(text)
}

fn resolve_plain(text: &str) -> Result<Value, YamlErrorKind> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Ok(Value::Bool(true))
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Ok(Value::Bool(false))
        }
        _ => {}
    }
    let starts_number = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.'));
    if !starts_number {
        return Ok(Value::String(text.to_owned()));
    }
    let lower = text.to_ascii_lowercase();
    if matches!(
        lower.trim_start_matches(['-', '+']),
        ".inf" | ".nan" | "inf" | "nan" | "infinity"
    ) {
        return Err(YamlErrorKind::NotJson(text.to_owned()));
    }
    let plain: String = text.chars().filter(|&c| c != '_').collect();
    if let Some(number) = parse_int(&plain) {
        return Ok(Value::Number(number));
    }
    if is_float_syntax(&plain) {
        if let Some(number) = plain.parse::<f64>().ok().and_then(Number::from_f64) {
            return Ok(Value::Number(number));
        }
    }
    Ok(Value::String(text.to_owned()))
}

/// Go's `strconv.ParseInt(s, 0, 64)`, then `ParseUint`: sign, `0x`, `0o`, `0b`, and a leading
/// `0` for octal.
fn parse_int(text: &str) -> Option<Number> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(rest) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, rest)
    } else if let Some(rest) = digits
        .strip_prefix("0o")
        .or_else(|| digits.strip_prefix("0O"))
    {
        (8, rest)
    } else if let Some(rest) = digits
        .strip_prefix("0b")
        .or_else(|| digits.strip_prefix("0B"))
    {
        (2, rest)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        let value = 0i64.checked_sub_unsigned(magnitude)?;
        Some(Number::from(value))
    } else {
        Some(Number::from(magnitude))
    }
}

fn is_float_syntax(text: &str) -> bool {
    let body = text.trim_start_matches(['-', '+']);
    !body.is_empty()
        && body.chars().any(|c| c.is_ascii_digit())
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json_of(text: &str) -> Vec<Value> {
        load(text)
            .unwrap()
            .iter()
            .map(|doc| doc.root.as_ref().map_or(Value::Null, Node::to_json))
            .collect()
    }

    #[test]
    fn plain_scalars_resolve_like_go_yaml_v2() {
        let docs = json_of(
            "a: yes\nb: off\nc: ~\nd: 0755\ne: 0x1F\nf: -12\ng: 1.5\nh: 1e3\ni: 1_000\n\
             j: 1.27\nk: nginx:1.27\nl: '0755'\nm: \"on\"\nt: !!str 12\no: 18446744073709551615\n\
             p: 1.2.3\n",
        );
        assert_eq!(
            docs,
            vec![json!({
                "a": true, "b": false, "c": null, "d": 493, "e": 31, "f": -12, "g": 1.5,
                "h": 1000.0, "i": 1000, "j": 1.27, "k": "nginx:1.27", "l": "0755", "m": "on",
                "t": "12", "o": 18446744073709551615u64, "p": "1.2.3"
            })]
        );
    }

    #[test]
    fn keys_that_are_not_strings_become_strings() {
        assert_eq!(
            json_of("1: a\nnull: c\non: d\n"),
            vec![json!({"1": "a", "null": "c", "true": "d"})]
        );
    }

    #[test]
    fn documents_anchors_and_merge_keys() {
        let text = "\
base: &base {image: nginx:1.27, imagePullPolicy: IfNotPresent}
c1:
  <<: *base
  imagePullPolicy: Always
c2: *base
---
# only a comment
---
- x
";
        assert_eq!(
            json_of(text),
            vec![
                json!({
                    "base": {"image": "nginx:1.27", "imagePullPolicy": "IfNotPresent"},
                    "c1": {"imagePullPolicy": "Always", "image": "nginx:1.27"},
                    "c2": {"image": "nginx:1.27", "imagePullPolicy": "IfNotPresent"}
                }),
                Value::Null,
                json!(["x"]),
            ]
        );
        // An aliased node keeps the position of its anchor.
        let docs = load(text).unwrap();
        let root = docs[0].root.as_ref().unwrap();
        let base = root.get("base").unwrap().get("image").unwrap();
        let aliased = root.get("c2").unwrap().get("image").unwrap();
        assert_eq!(base.span, aliased.span);
        assert_eq!(base.span.start.line, 1);
    }

    /// Every `NAME.yaml` of `cli/tests/fixtures/yaml-conversion` gives the JSON that go-yaml v2
    /// gave (`NAME.json`), or is refused where go-yaml refused it (`NAME.error`).
    #[test]
    fn documents_read_as_go_yaml_v2_reads_them() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/yaml-conversion");
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
            .collect();
        inputs.sort();
        assert!(inputs.len() >= 10, "{inputs:?}");
        for input in inputs {
            let text = std::fs::read_to_string(&input).unwrap();
            let expected = input.with_extension("json");
            if expected.is_file() {
                let expected: Value =
                    serde_json::from_str(&std::fs::read_to_string(&expected).unwrap()).unwrap();
                assert_eq!(json_of(&text), vec![expected], "{}", input.display());
            } else {
                assert!(
                    input.with_extension("error").is_file(),
                    "{}",
                    input.display()
                );
                assert!(load(&text).is_err(), "{}", input.display());
            }
        }
    }

    #[test]
    fn a_merge_replaces_what_was_written_before_it() {
        let docs = load(
            "a: &a {image: x:1}
b:
  image: y:2
  <<: *a
",
        )
        .unwrap();
        let root = docs[0].root.as_ref().unwrap();
        // The value, and its position: the anchored node's.
        let image = root.get("b").unwrap().get("image").unwrap();
        assert_eq!(image.as_str(), Some("x:1"));
        assert_eq!(image.span.start.line, 1);
        let docs = load(
            "b:
  image: y:2
  image: z:3
",
        )
        .unwrap();
        let image = docs[0]
            .root
            .as_ref()
            .unwrap()
            .get("b")
            .unwrap()
            .entry("image");
        assert_eq!(image.unwrap().key_span.start.line, 3);
    }

    #[test]
    fn positions_are_lines_columns_and_byte_offsets() {
        let text =
            "kind: Pod # é\nspec:\n  containers:\n    - name: web\n      image: \"nginx:1.27\"\n";
        let docs = load(text).unwrap();
        let root = docs[0].root.as_ref().unwrap();
        let container = root
            .get("spec")
            .unwrap()
            .get("containers")
            .unwrap()
            .item(0)
            .unwrap();
        let image = container.entry("image").unwrap();
        assert_eq!(
            (image.key_span.start.line, image.key_span.start.column),
            (5, 7)
        );
        assert_eq!(image.value.span.start.line, 5);
        let range = image.value.span.start.offset..image.value.span.end.offset;
        assert_eq!(&text[range], "\"nginx:1.27\"");
        assert_eq!(
            image.value.quoting(),
            Some(Quoting::Double),
            "quoting is kept"
        );
    }

    #[test]
    fn errors_name_the_line() {
        let error = load("a: 1\nb: [1, 2\n").unwrap_err();
        assert!(matches!(error.kind, YamlErrorKind::Syntax(_)), "{error}");
        assert!(error.line >= 2, "{error}");
        let error = load("? [a]\n: 1\n").unwrap_err();
        assert_eq!(error.kind, YamlErrorKind::ComplexKey);
        let error = load("a: .inf\n").unwrap_err();
        assert_eq!(error.kind, YamlErrorKind::NotJson(".inf".into()));
        let error = load("a: &a 1\nb:\n  <<: *a\n").unwrap_err();
        assert_eq!(error.kind, YamlErrorKind::BadMerge);
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..9 {
            let previous = level - 1;
            let refs = vec![format!("*a{previous}"); 10].join(", ");
            text.push_str(&format!("a{level}: &a{level} [{refs}]\n"));
        }
        assert_eq!(load(&text).unwrap_err().kind, YamlErrorKind::AliasExpansion);
    }

    #[test]
    fn json_is_yaml() {
        let docs = json_of(r#"{"kind": "Pod", "spec": {"containers": [{"image": "a:1"}]}}"#);
        assert_eq!(
            docs,
            vec![json!({"kind": "Pod", "spec": {"containers": [{"image": "a:1"}]}})]
        );
        let docs = load(r#"{"a": {"b": 1}}"#).unwrap();
        assert!(docs[0].root.as_ref().unwrap().get("a").unwrap().flow);
    }
}
