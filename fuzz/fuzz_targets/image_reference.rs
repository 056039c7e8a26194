//! Arbitrary text as an image reference: the parser never panics, and what it accepts is
//! stable under its own normalisation.
#![no_main]

use image_pull_policy::fuzzing::parse_reference;
use libfuzzer_sys::fuzz_target;

fn is_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    bytes.next().is_some_and(word)
        && tag.len() <= 128
        && bytes.all(|b| word(b) || b == b'.' || b == b'-')
}

fuzz_target!(|written: &str| {
    let Ok((name, tag, digest, qualified)) = parse_reference(written) else {
        return;
    };
    assert!(!written.is_empty());
    if let Some(tag) = &tag {
        assert!(
            written.contains(tag.as_str()),
            "tag {tag:?} is not in {written:?}"
        );
        assert!(is_tag(tag), "tag {tag:?} breaks the tag grammar");
    }
    if let Some(digest) = &digest {
        assert!(
            written.ends_with(&format!("@{digest}")),
            "digest {digest:?} is not the end of {written:?}"
        );
        assert!(digest.contains(':'), "digest {digest:?} has no algorithm");
    }
    assert!(!name.contains('@'), "name {name:?} holds a digest");
    assert!(
        name.contains('/'),
        "name {name:?} is not qualified with a registry"
    );
    assert!(
        qualified.starts_with(&name),
        "{qualified:?} does not start with {name:?}"
    );
    // Normalising again changes nothing: a fully qualified reference is its own normal form.
    let again = parse_reference(&qualified).unwrap_or_else(|error| {
        panic!("{qualified:?} (from {written:?}) no longer parses: {error}")
    });
    let implicit_latest = tag.is_none() && digest.is_none();
    let expected_tag = if implicit_latest {
        Some("latest".to_owned())
    } else {
        tag.clone()
    };
    assert_eq!(
        (&again.0, &again.1, &again.2, &again.3),
        (&name, &expected_tag, &digest, &qualified),
        "{written:?} → {qualified:?} parses differently"
    );
});
