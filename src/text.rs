//! Text taken from a request, made safe to show: escaped so that no line break or control
//! character reaches a message or a warning, and cut so that a huge field cannot blow one up.

use std::fmt;

/// Longer names and images are cut in messages.
pub(crate) const MAX_SHOWN_CHARS: usize = 200;

/// Request text, escaped and cut to `MAX_SHOWN_CHARS`.
pub(crate) struct Shown<'s>(pub(crate) &'s str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        ShownUpTo(self.0, MAX_SHOWN_CHARS).fmt(f)
    }
}

/// Request text, escaped and cut to the given number of characters (then `...`).
pub(crate) struct ShownUpTo<'s>(pub(crate) &'s str, pub(crate) usize);

impl fmt::Display for ShownUpTo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ShownUpTo(text, max) = *self;
        let plain = |b: u8| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\';
        if text.len() <= max && text.bytes().all(plain) {
            return f.write_str(text);
        }
        let mut chars = text.chars();
        for c in chars.by_ref().take(max) {
            match c {
                '"' => f.write_str("\\\"")?,
                '\'' => f.write_str("'")?,
                c => write!(f, "{}", c.escape_debug())?,
            }
        }
        if chars.next().is_some() {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// `text` cut to at most `max` characters, ending in `…` when it was cut.
pub(crate) fn fit_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) => {
            let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
            cut.push('…');
            cut
        }
    }
}

/// `text` in at most `max` characters, its middle replaced by `…` when it is longer: the
/// registry and the tag of an image, or the start and the innermost cause of an error, say the
/// most.
pub(crate) fn middle_cut(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    let length = text.chars().count();
    if length <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    let tail = (max - 1) / 2;
    let head = max - 1 - tail;
    let mut cut: String = text.chars().take(head).collect();
    cut.push('…');
    cut.extend(text.chars().skip(length - tail));
    std::borrow::Cow::Owned(cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_shown_as_it_is() {
        assert_eq!(Shown("nginx:1.27").to_string(), "nginx:1.27");
    }

    #[test]
    fn quotes_and_control_characters_are_escaped() {
        assert_eq!(Shown("x\"\ny\u{7}").to_string(), r#"x\"\ny\u{7}"#);
        assert_eq!(Shown("it's").to_string(), "it's");
    }

    #[test]
    fn long_text_is_cut() {
        let long = "a".repeat(MAX_SHOWN_CHARS + 1);
        assert_eq!(
            Shown(&long).to_string(),
            format!("{}...", "a".repeat(MAX_SHOWN_CHARS))
        );
        assert_eq!(ShownUpTo("abcdef", 3).to_string(), "abc...");
        assert_eq!(ShownUpTo("abc", 3).to_string(), "abc");
    }

    #[test]
    fn fit_chars_counts_characters_not_bytes() {
        assert_eq!(fit_chars("ééé", 3), "ééé");
        assert_eq!(fit_chars("éééé", 3), "éé…");
        assert_eq!(fit_chars("abcd", 3).chars().count(), 3);
    }
}
