//! The request view read in one loop, without serde's dispatch per token: most of a request is
//! values the policy skips, and skipping is most of what a request costs the module.
//!
//! The reader reads a payload only where it reads it exactly as serde would, and gives up
//! everywhere else: an escape in a key or in a string it decodes, a number where an object or a
//! list belongs (serde parses it, and one out of range is an error), a field given twice, a
//! payload that is not an object, nesting it does not track, and every syntax error. Serde then
//! reads the payload and names the error, so this reader has no error texts of its own, and the
//! tests check that whatever it reads, serde reads the same.

use std::borrow::Cow;
use std::num::NonZeroUsize;

use super::{AdmissionRequest, Entry, GroupVersionKind, Json, List, Node, Obj, Payload, Shaped};

/// The view of `text`, or `None` where serde must read it.
pub(super) fn payload(text: &str) -> Option<Payload<'_>> {
    let mut reader = Reader { text, at: 0 };
    let payload = reader.payload()?;
    reader.peek().is_none().then_some(payload)
}

/// Whether a `userInfo` object's text gives a `username` that is neither `null` nor empty (any
/// given twice counts), or `None` where serde must read it. Its text was read whole before.
pub(super) fn names_a_user(user_info: &str) -> Option<bool> {
    let mut reader = Reader {
        text: user_info,
        at: 0,
    };
    let (mut named, mut first) = (false, true);
    while let Some(key) = reader.next_key(&mut first)? {
        if key != "username" {
            reader.skip()?;
            continue;
        }
        named |= super::names_someone(reader.raw()?);
    }
    reader.peek().is_none().then_some(named)
}

/// Levels of skipped values the reader tracks (one bit each); deeper ones go to serde.
const MAX_SKIP_DEPTH: u32 = 64;

/// Levels of nested nodes (`spec.template.spec`...) the reader follows; a CronJob's pod spec
/// is the fifth. Deeper ones go to serde, whose recursion limit decides.
const MAX_NODE_DEPTH: u32 = 16;

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

/// Marks a field as read; `None` the second time (serde refuses a field given twice).
fn once(seen: &mut u16, field: u16) -> Option<()> {
    let first = *seen & field == 0;
    *seen |= field;
    first.then_some(())
}

impl<'a> Reader<'a> {
    /// The next byte that is not whitespace, left unread. Its own loop: through
    /// `skip_whitespace` the module grew 2.2 KB, and out of line a cold call was 1–5 µs slower.
    fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        while let Some(&byte) = bytes.get(self.at) {
            if !matches!(byte, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(byte);
            }
            self.at += 1;
        }
        None
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.at = literal_end(self.text.as_bytes(), self.at, word)?.get();
        Some(())
    }

    /// The next key of an object, its colon read; `None` past the object's end. `first` is
    /// true until the object's `{` is read. One loop for every object the reader reads.
    fn next_key(&mut self, first: &mut bool) -> Option<Option<&'a str>> {
        if std::mem::take(first) {
            self.eat(b'{')?;
            if self.peek()? == b'}' {
                self.at += 1;
                return Some(None);
            }
        } else {
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(None);
                }
                _ => return None,
            }
        }
        let key = self.plain_string()?;
        self.eat(b':')?;
        Some(Some(key))
    }

    /// Whether an array has a next item, its separator read; `first` is true until the
    /// array's `[` is read.
    fn next_item(&mut self, first: &mut bool) -> Option<bool> {
        if std::mem::take(first) {
            self.eat(b'[')?;
            if self.peek()? == b']' {
                self.at += 1;
                return Some(false);
            }
            return Some(true);
        }
        match self.peek()? {
            b',' => {
                self.at += 1;
                Some(true)
            }
            b']' => {
                self.at += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// A string with no escape, as the payload holds it (serde borrows such a string).
    fn plain_string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        self.at = string_end(self.text.as_bytes(), start, false)?.get();
        self.text.get(start..self.at - 1)
    }

    /// A JSON string decoded as serde decodes one it reads; escapes are left to serde.
    fn text(&mut self) -> Option<Cow<'a, str>> {
        self.plain_string().map(Cow::Borrowed)
    }

    fn optional_text(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.peek()? == b'n' {
            return self.literal(b"null").map(|()| None);
        }
        self.text().map(Some)
    }

    /// Any value's text, `null` included (as `raw_text`).
    fn raw(&mut self) -> Option<Json<'a>> {
        self.peek()?;
        let start = self.at;
        self.skip()?;
        self.text.get(start..self.at).map(Json)
    }

    /// Any value's text, `null` read as absent (as `raw_or_null`).
    fn optional_raw(&mut self) -> Option<Option<Json<'a>>> {
        if self.peek()? == b'n' {
            return self.literal(b"null").map(|()| None);
        }
        self.raw().map(Some)
    }

    /// Skips any value, checking it as serde checks a value it ignores.
    fn skip(&mut self) -> Option<()> {
        self.at = skip_value(self.text.as_bytes(), self.at)?.get();
        Some(())
    }

    /// A value of another JSON type than the one a field expects, visited as serde visits it
    /// to find its type: an object's keys and a string are decoded, so an escape in them goes
    /// to serde, and so does a number.
    fn mismatch(&mut self) -> Option<()> {
        match self.peek()? {
            b'{' => {
                let mut first = true;
                while self.next_key(&mut first)?.is_some() {
                    self.skip()?;
                }
                Some(())
            }
            b'[' => {
                let mut first = true;
                while self.next_item(&mut first)? {
                    self.skip()?;
                }
                Some(())
            }
            b'"' => self.plain_string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => None,
        }
    }

    fn payload(&mut self) -> Option<Payload<'a>> {
        let (mut request, mut settings, mut seen, mut first) = (None, None, 0, true);
        while let Some(key) = self.next_key(&mut first)? {
            match key {
                "request" => {
                    once(&mut seen, 1)?;
                    request = Some(self.admission_request()?);
                }
                "settings" => {
                    once(&mut seen, 2)?;
                    settings = self.optional_raw()?;
                }
                _ => self.skip()?,
            }
        }
        Some(Payload {
            request: request?,
            settings,
        })
    }

    fn admission_request(&mut self) -> Option<AdmissionRequest<'a>> {
        // Serde would read a struct from an array too; that is left to it.
        if self.peek()? != b'{' {
            return None;
        }
        let mut request = AdmissionRequest {
            kind: GroupVersionKind {
                group: None,
                kind: Cow::Borrowed(""),
            },
            operation: Cow::Borrowed(""),
            sub_resource: None,
            object: None,
            old_object: None,
            uid: None,
            resource: None,
            user_info: None,
        };
        let (mut seen, mut first) = (0, true);
        while let Some(key) = self.next_key(&mut first)? {
            match key {
                "kind" => {
                    once(&mut seen, 1)?;
                    request.kind = self.group_version_kind()?;
                }
                "operation" => {
                    once(&mut seen, 2)?;
                    request.operation = self.text()?;
                }
                "subResource" => {
                    once(&mut seen, 4)?;
                    request.sub_resource = self.optional_text()?;
                }
                "object" => {
                    once(&mut seen, 8)?;
                    request.object = self.optional_node(1)?;
                }
                "oldObject" => {
                    once(&mut seen, 16)?;
                    request.old_object = self.optional_node(1)?;
                }
                "uid" => {
                    once(&mut seen, 32)?;
                    request.uid = Some(self.raw()?);
                }
                "resource" => {
                    once(&mut seen, 64)?;
                    request.resource = Some(self.raw()?);
                }
                "userInfo" => {
                    once(&mut seen, 128)?;
                    request.user_info = Some(self.raw()?);
                }
                _ => self.skip()?,
            }
        }
        // `kind` and `operation` are required: without them serde names the missing field.
        (seen & 3 == 3).then_some(request)
    }

    fn group_version_kind(&mut self) -> Option<GroupVersionKind<'a>> {
        if self.peek()? != b'{' {
            return None;
        }
        let (mut group, mut kind, mut seen, mut first) = (None, None, 0, true);
        while let Some(key) = self.next_key(&mut first)? {
            match key {
                "group" => {
                    once(&mut seen, 1)?;
                    group = self.optional_text()?;
                }
                "kind" => {
                    once(&mut seen, 2)?;
                    kind = Some(self.text()?);
                }
                _ => self.skip()?,
            }
        }
        Some(GroupVersionKind { group, kind: kind? })
    }

    /// An optional object on the way to a pod spec (`Option<Obj<Box<Node>>>`).
    fn optional_node(&mut self, depth: u32) -> Option<Option<Obj<Box<Node<'a>>>>> {
        match self.peek()? {
            b'n' => self.literal(b"null").map(|()| None),
            b'{' => self
                .node(depth)
                .map(|node| Some(Obj(Shaped::Fits(Box::new(node))))),
            _ => self.mismatch().map(|()| Some(Obj(Shaped::Mismatch))),
        }
    }

    fn node(&mut self, depth: u32) -> Option<Node<'a>> {
        if depth > MAX_NODE_DEPTH {
            return None;
        }
        let mut node = Node {
            metadata: None,
            spec: None,
            template: None,
            job_template: None,
            containers: None,
            init_containers: None,
            ephemeral_containers: None,
            volumes: None,
        };
        let (mut seen, mut first) = (0, true);
        while let Some(key) = self.next_key(&mut first)? {
            match key {
                "metadata" => {
                    once(&mut seen, 1)?;
                    node.metadata = Some(self.raw()?);
                }
                "spec" => {
                    once(&mut seen, 2)?;
                    node.spec = self.optional_node(depth + 1)?;
                }
                "template" => {
                    once(&mut seen, 4)?;
                    node.template = self.optional_node(depth + 1)?;
                }
                "jobTemplate" => {
                    once(&mut seen, 8)?;
                    node.job_template = self.optional_node(depth + 1)?;
                }
                "containers" => {
                    once(&mut seen, 16)?;
                    node.containers = self.optional_entries()?;
                }
                "initContainers" => {
                    once(&mut seen, 32)?;
                    node.init_containers = self.optional_entries()?;
                }
                "ephemeralContainers" => {
                    once(&mut seen, 64)?;
                    node.ephemeral_containers = self.optional_entries()?;
                }
                "volumes" => {
                    once(&mut seen, 128)?;
                    node.volumes = self.optional_entries()?;
                }
                _ => self.skip()?,
            }
        }
        Some(node)
    }

    /// An optional list of containers or volumes (`Option<List<Obj<Entry>>>`).
    fn optional_entries(&mut self) -> Option<Option<List<Obj<Entry<'a>>>>> {
        match self.peek()? {
            b'n' => self.literal(b"null").map(|()| None),
            b'[' => {
                let (mut entries, mut first) = (Vec::new(), true);
                while self.next_item(&mut first)? {
                    let entry = if self.peek()? == b'{' {
                        Obj(Shaped::Fits(self.entry()?))
                    } else {
                        self.mismatch()?;
                        Obj(Shaped::Mismatch)
                    };
                    entries.push(entry);
                }
                Some(Some(List(Shaped::Fits(entries))))
            }
            _ => self.mismatch().map(|()| Some(List(Shaped::Mismatch))),
        }
    }

    fn entry(&mut self) -> Option<Entry<'a>> {
        let mut entry = Entry {
            name: None,
            image: None,
            image_pull_policy: None,
        };
        let (mut seen, mut first) = (0, true);
        while let Some(key) = self.next_key(&mut first)? {
            let field = match key {
                "name" => (1, &mut entry.name),
                "image" => (2, &mut entry.image),
                "imagePullPolicy" => (4, &mut entry.image_pull_policy),
                _ => {
                    self.skip()?;
                    continue;
                }
            };
            once(&mut seen, field.0)?;
            *field.1 = Some(self.raw()?);
        }
        Some(entry)
    }
}

/// A position past something read: never 0, so that `Option<End>` is one machine word, which a
/// wasm function returns in a register (a two-word `Option<usize>` goes through memory).
type End = NonZeroUsize;

/// Past the value at `at`, checked as serde checks a value it ignores. One loop with one copy
/// of the string scan, keys included: the code a cold call fetches is what skipping costs.
fn skip_value(bytes: &[u8], mut at: usize) -> Option<End> {
    // One bit a level: set for an object, clear for an array.
    let mut levels: u64 = 0;
    let mut depth = 0;
    // Whether the next string is an object's key, which a colon follows.
    let mut key = false;
    loop {
        at = skip_whitespace(bytes, at);
        let byte = *bytes.get(at)?;
        if key && byte != b'"' {
            return None;
        }
        match byte {
            b'"' => {
                at = string_end(bytes, at + 1, true)?.get();
                if key {
                    at = skip_whitespace(bytes, at);
                    (bytes.get(at) == Some(&b':')).then_some(())?;
                    at += 1;
                    key = false;
                    continue;
                }
            }
            open @ (b'{' | b'[') => {
                at = skip_whitespace(bytes, at + 1);
                // `}` and `]` are two past `{` and `[`.
                if bytes.get(at) == Some(&(open + 2)) {
                    at += 1;
                } else {
                    if depth == MAX_SKIP_DEPTH {
                        return None;
                    }
                    key = open == b'{';
                    levels = levels << 1 | u64::from(key);
                    depth += 1;
                    continue;
                }
            }
            b't' | b'f' | b'n' => {
                let word: &[u8] = match byte {
                    b't' => b"true",
                    b'f' => b"false",
                    _ => b"null",
                };
                at = literal_end(bytes, at, word)?.get();
            }
            _ => at = number_end(bytes, at)?.get(),
        }
        // A value ends: so may the levels around it.
        loop {
            if depth == 0 {
                return End::new(at);
            }
            at = skip_whitespace(bytes, at);
            let in_object = levels & 1 == 1;
            match *bytes.get(at)? {
                b',' => {
                    at += 1;
                    key = in_object;
                    break;
                }
                b'}' if in_object => {}
                b']' if !in_object => {}
                _ => return None,
            }
            at += 1;
            levels >>= 1;
            depth -= 1;
        }
    }
}

#[inline(always)]
fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        at += 1;
    }
    at
}

#[inline(always)]
fn literal_end(bytes: &[u8], at: usize, word: &[u8]) -> Option<End> {
    let end = at.checked_add(word.len())?;
    (bytes.get(at..end)? == word).then_some(())?;
    End::new(end)
}

/// Past a number, by JSON's grammar.
#[inline(always)]
fn number_end(bytes: &[u8], mut at: usize) -> Option<End> {
    let digits = |mut at: usize| {
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        at
    };
    if bytes.get(at) == Some(&b'-') {
        at += 1;
    }
    at = match bytes.get(at)? {
        b'0' => at + 1,
        b'1'..=b'9' => digits(at + 1),
        _ => return None,
    };
    if bytes.get(at) == Some(&b'.') {
        let fraction = at + 1;
        at = digits(fraction);
        if at == fraction {
            return None;
        }
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let exponent = at;
        at = digits(exponent);
        if at == exponent {
            return None;
        }
    }
    End::new(at)
}

/// A byte that goes on a string as it is: not a quote, a backslash or a control character.
fn is_plain(byte: u8) -> bool {
    byte >= 0x20 && byte != b'"' && byte != b'\\'
}

/// Past the closing quote of the string whose text starts at `at`. Escapes are checked as
/// serde checks those of a string it skips, or refused.
#[inline(always)]
fn string_end(bytes: &[u8], mut at: usize, escapes: bool) -> Option<End> {
    loop {
        at = plain_run_end(bytes, at);
        let byte = *bytes.get(at)?;
        at += 1;
        match byte {
            b'"' => return End::new(at),
            b'\\' if escapes => at = escape_end(bytes, at)?.get(),
            _ => return None,
        }
    }
}

/// The first position from `at` of a byte that is not plain, or the end: eight bytes a step
/// (most of a request is string text, and a byte a step was most of what reading it cost).
#[inline(always)]
fn plain_run_end(bytes: &[u8], mut at: usize) -> usize {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = ONES << 7;
    while let Some(chunk) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let word = u64::from_le_bytes(*chunk);
        let (quote, backslash) = (
            word ^ (ONES * u64::from(b'"')),
            word ^ (ONES * u64::from(b'\\')),
        );
        // The high bit of each byte that is a quote, a backslash or below 0x20. A borrow can
        // mark a byte past the first marked one, never one before it.
        let marked = (quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash
            | word.wrapping_sub(ONES * 0x20) & !word)
            & HIGHS;
        if marked != 0 {
            return at + (marked.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while bytes.get(at).copied().is_some_and(is_plain) {
        at += 1;
    }
    at
}

/// Past an escape whose backslash ends at `at`, checked as serde checks one it skips: a
/// `\u` needs four hex digits, whatever code point they name.
fn escape_end(bytes: &[u8], at: usize) -> Option<End> {
    match bytes.get(at)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => End::new(at + 1),
        b'u' => {
            let digits = bytes.get(at + 1..at + 5)?;
            digits.iter().all(u8::is_ascii_hexdigit).then_some(())?;
            End::new(at + 5)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;
    use std::path::Path;

    /// What serde reads of `text`: the view, written out, or its error.
    fn by_serde(text: &str) -> Result<String, String> {
        serde_json::from_str::<Payload<'_>>(text)
            .map(|view| format!("{view:?}"))
            .map_err(|error| error.to_string())
    }

    fn by_scan(text: &str) -> Option<String> {
        payload(text).map(|view| format!("{view:?}"))
    }

    /// The property: whatever the reader reads, serde reads the same.
    fn agrees(text: &str) -> Result<(), TestCaseError> {
        if let Some(view) = by_scan(text) {
            prop_assert_eq!(Ok(view), by_serde(text), "{}", text);
        }
        Ok(())
    }

    /// Every admission request of the fixtures and the benchmark, as the policy server sends it
    /// (compact) and pretty-printed.
    fn requests() -> Vec<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<_> = ["test_data", "test_data/audit", "bench/requests"]
            .iter()
            .flat_map(|dir| std::fs::read_dir(root.join(dir)).unwrap())
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        files.sort();
        assert!(files.len() > 40, "{files:?}");
        files
            .iter()
            .flat_map(|path| {
                let value: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
                let request = value.get("request").cloned().unwrap_or(value);
                let payload = serde_json::json!({"request": request, "settings": {"mode": "warn"}});
                [
                    payload.to_string(),
                    serde_json::to_string_pretty(&payload).unwrap(),
                ]
            })
            .collect()
    }

    #[test]
    fn every_request_is_read_as_serde_reads_it() {
        for text in requests() {
            let view = by_scan(&text).unwrap_or_else(|| panic!("the reader gave up on {text}"));
            assert_eq!(Ok(view), by_serde(&text));
        }
    }

    #[rstest]
    // Read: escapes and numbers in values the policy skips, every JSON type, whitespace.
    #[case::escapes_in_skipped_values(
        r#"{"request":{"kind":{"kind":"Pod"},"operation":"CREATE","name":"a\"b\\c\u00e9\n",
            "object":{"metadata":{"annotations":{"k\"ey":"{\"x\":[1,2]}"}},"spec":{"containers":
            [{"name":"a","image":"b:1","args":["\t\u0041",-0.5e+3,1E9,0,true,false,null,{},[]]}]}}}}"#,
        true
    )]
    #[case::null_fields(
        r#"{"request":{"kind":{"group":null,"kind":"Pod"},"operation":"CREATE","subResource":null,
            "object":null,"oldObject":null,"uid":null},"settings":null}"#,
        true
    )]
    #[case::types_the_walker_names(
        r#"{"request":{"kind":{"kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":
            ["x",null,true,[1],{"image":{"a":1}}],"initContainers":{"a":[]},"volumes":"v"},
            "metadata":[]}}}"#,
        true
    )]
    #[case::spec_of_other_types(
        r#"{"request":{"kind":{"kind":"Pod"},"operation":"CREATE","object":{"spec":[{"a":1}]}}}"#,
        true
    )]
    #[case::empty_containers(r#" { "request" : { "kind" : { "kind" : "Pod" } , "operation" : "CREATE" , "object" : { "spec" : { "containers" : [ ] } } } } "#, true)]
    // Left to serde: what it decodes, refuses, or reads in a way of its own.
    #[case::escaped_key(
        r#"{"request":{"kind":{"kind":"Pod"},"operation":"CREATE","ob\u006aect":{}}}"#,
        false
    )]
    #[case::escaped_operation(
        r#"{"request":{"kind":{"kind":"Pod"},"operation":"CR\u0045ATE"}}"#,
        false
    )]
    #[case::repeated_field(
        r#"{"request":{"kind":{"kind":"Pod"},"operation":"CREATE","operation":"UPDATE"}}"#,
        false
    )]
    #[case::repeated_image(r#"{"request":{"kind":{"kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":[{"image":"a","image":"b"}]}}}}"#, false)]
    #[case::number_for_a_container(r#"{"request":{"kind":{"kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":[7]}}}}"#, false)]
    #[case::number_for_an_object(
        r#"{"request":{"kind":{"kind":"Pod"},"operation":"CREATE","object":{"spec":1e999}}}"#,
        false
    )]
    #[case::request_as_an_array(r#"{"request":[{"kind":"Pod"},"CREATE"]}"#, false)]
    #[case::payload_as_an_array(r#"[{"kind":{"kind":"Pod"},"operation":"CREATE"}]"#, false)]
    #[case::no_operation(r#"{"request":{"kind":{"kind":"Pod"}}}"#, false)]
    #[case::no_request(r#"{"settings":{}}"#, false)]
    #[case::kind_not_a_string(r#"{"request":{"kind":{"kind":1},"operation":"CREATE"}}"#, false)]
    #[case::trailing_comma(r#"{"request":{"kind":{"kind":"Pod"},"operation":"CREATE",}}"#, false)]
    #[case::trailing_text(r#"{"request":{"kind":{"kind":"Pod"},"operation":"CREATE"}} x"#, false)]
    fn reads_what_serde_reads_and_leaves_it_the_rest(#[case] text: &str, #[case] read: bool) {
        read_or_left(text, read);
    }

    /// `text` is read by the reader (`read`) or left to it; either way the answer is serde's.
    fn read_or_left(text: &str, read: bool) {
        assert_eq!(by_scan(text).is_some(), read, "{text}");
        agrees(text).unwrap();
        // Whoever reads it, the policy's answer is serde's.
        let parsed = Payload::parse(text.as_bytes())
            .map(|view| format!("{view:?}"))
            .map_err(|error| error.to_string());
        let expected =
            by_serde(text).map_err(|error| format!("the request cannot be read: {error}"));
        assert_eq!(parsed, expected);
    }

    /// A syntax error in a value the policy skips (`tail` ends the request): the reader gives
    /// up, and serde names it.
    #[rstest]
    #[case::bad_escape(r#""x":"\q"}}"#)]
    #[case::short_unicode_escape(r#""x":"\u00"}}"#)]
    #[case::control_character("\"x\":\"a\tb\"}}")]
    #[case::leading_zero(r#""x":01}}"#)]
    #[case::bare_minus(r#""x":-}}"#)]
    #[case::no_fraction_digits(r#""x":1.}}"#)]
    #[case::no_exponent_digits(r#""x":1e+}}"#)]
    #[case::short_literal(r#""x":tru}}"#)]
    #[case::unclosed(r#""x":[1,2"#)]
    #[case::mismatched_close(r#""x":[1,2}}}"#)]
    fn a_syntax_error_in_a_skipped_value_is_left_to_serde(#[case] tail: &str) {
        let text = format!(r#"{{"request":{{"kind":{{"kind":"Pod"}},"operation":"CREATE",{tail}"#);
        read_or_left(&text, false);
    }

    #[test]
    fn deep_values_go_to_serde() {
        let deep = |levels: usize| {
            format!(
                r#"{{"request":{{"kind":{{"kind":"Pod"}},"operation":"CREATE","x":{}1{}}}}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            )
        };
        assert!(by_scan(&deep(MAX_SKIP_DEPTH as usize)).is_some());
        assert!(by_scan(&deep(MAX_SKIP_DEPTH as usize + 1)).is_none());
        agrees(&deep(MAX_SKIP_DEPTH as usize)).unwrap();
        let specs = |levels: usize| {
            format!(
                r#"{{"request":{{"kind":{{"kind":"Pod"}},"operation":"CREATE","object":{}{{}}{}}}}}"#,
                r#"{"spec":"#.repeat(levels),
                "}".repeat(levels)
            )
        };
        assert!(by_scan(&specs(MAX_NODE_DEPTH as usize - 1)).is_some());
        assert!(by_scan(&specs(MAX_NODE_DEPTH as usize)).is_none());
        agrees(&specs(MAX_NODE_DEPTH as usize - 1)).unwrap();
    }

    #[rstest]
    #[case(
        r#"{"username":"kubernetes-admin","groups":["system:masters"]}"#,
        Some(true)
    )]
    #[case(r#"{"username":"","uid":"x"}"#, Some(false))]
    #[case(r#"{"username":null}"#, Some(false))]
    #[case(r#"{"username":"","username":"a"}"#, Some(true))]
    #[case(r#"{"username":"\u0061"}"#, Some(true))]
    #[case(r#"{"username":7}"#, Some(true))]
    #[case(r#"{}"#, Some(false))]
    #[case(r#"{"user\u006eame":"a"}"#, None)]
    #[case(r#""alice""#, None)]
    fn a_user_is_named_as_serde_reads_user_info(#[case] text: &str, #[case] named: Option<bool>) {
        assert_eq!(names_a_user(text), named, "{text}");
    }

    proptest! {
        #[test]
        fn plain_runs_end_at_the_first_byte_that_is_not_plain(
            bytes in prop::collection::vec(prop_oneof![
                4 => 0x20u8..=0x7e, 1 => any::<u8>(), 1 => Just(b'"'), 1 => Just(b'\\'),
            ], 0..40),
            at in 0..48usize,
        ) {
            let expected = (at..bytes.len())
                .find(|&i| !is_plain(bytes[i]))
                .unwrap_or(bytes.len().max(at));
            prop_assert_eq!(plain_run_end(&bytes, at), expected);
        }
    }

    /// An edit of a request's text: bytes that matter to JSON, put anywhere.
    #[derive(Debug, Clone)]
    enum Edit {
        Insert(usize, String),
        Replace(usize, String),
        Delete(usize, usize),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let piece = prop::sample::select(vec![
            "\"",
            "\\",
            "\\u",
            "\\u00",
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            " ",
            "\t",
            "0",
            "-",
            "1e",
            ".",
            "null",
            "true",
            "x",
            "\u{1}",
            "\"spec\":",
            "\"kind\":",
            "\"image\":\"a\",",
            "\"operation\":\"CREATE\",",
            "[{}]",
            "é",
        ]);
        prop_oneof![
            (any::<usize>(), piece.clone()).prop_map(|(at, s)| Edit::Insert(at, s.to_owned())),
            (any::<usize>(), piece).prop_map(|(at, s)| Edit::Replace(at, s.to_owned())),
            (any::<usize>(), 1..40usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        ]
    }

    fn apply(text: &str, edits: &[Edit]) -> String {
        let mut text = text.to_owned();
        for edit in edits {
            let boundary = |at: usize, text: &str| {
                let mut at = at % (text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                at
            };
            match edit {
                Edit::Insert(at, piece) => text.insert_str(boundary(*at, &text), piece),
                Edit::Replace(at, piece) => {
                    let start = boundary(*at, &text);
                    let end = boundary(start + piece.len(), &text).max(start);
                    text.replace_range(start..end, piece);
                }
                Edit::Delete(at, n) => {
                    let start = boundary(*at, &text);
                    let end = boundary(start + n, &text).max(start);
                    text.replace_range(start..end, "");
                }
            }
        }
        text
    }

    /// Any JSON value, with the strings and numbers of any text.
    fn json() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".*".prop_map(Value::String),
            prop::sample::select(vec!["Pod", "CREATE", "spec", "nginx:1.27"]).prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 40, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop::sample::select(vec![
                            "spec",
                            "template",
                            "jobTemplate",
                            "metadata",
                            "containers",
                            "initContainers",
                            "volumes",
                            "image",
                            "name",
                            "imagePullPolicy",
                            "x",
                            "k\"y",
                        ]),
                        inner
                    ),
                    0..6
                )
                .prop_map(|entries| Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect()
                )),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn any_value_anywhere_is_read_as_serde_reads_it(
            value in json(),
            at in prop::sample::select(vec![
                "/x", "/object", "/object/spec", "/object/metadata", "/object/spec/containers",
                "/object/spec/containers/0", "/object/spec/containers/0/image",
                "/object/spec/template", "/userInfo", "/kind/group", "/operation",
            ]),
        ) {
            let mut request = serde_json::json!({"kind": {"kind": "Pod"}, "operation": "CREATE",
                "object": {"spec": {"containers": [{"name": "a", "image": "b"}]}}});
            let (parent, key) = at.rsplit_once('/').unwrap();
            match request.pointer_mut(parent).unwrap() {
                serde_json::Value::Object(map) => { map.insert(key.to_owned(), value); }
                serde_json::Value::Array(items) => items[0] = value,
                _ => unreachable!(),
            }
            let text = serde_json::json!({"request": request}).to_string();
            agrees(&text)?;
        }

        #[test]
        fn an_edited_request_is_read_as_serde_reads_it_or_left_to_serde(
            index in any::<prop::sample::Index>(),
            edits in prop::collection::vec(edit(), 1..4),
        ) {
            static REQUESTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
            let requests = REQUESTS.get_or_init(requests);
            let text = apply(index.get::<String>(requests), &edits);
            agrees(&text)?;
        }
    }
}
