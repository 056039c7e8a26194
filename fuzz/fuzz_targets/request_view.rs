//! Arbitrary text as the `validate` payload, read by the hand-written request reader and by
//! serde: wherever the reader reads a view, serde reads the same one (the reader leaves the
//! rest, errors included, to serde).
#![no_main]

use image_pull_policy::fuzzing::request_views;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|payload: &[u8]| {
    let Ok(text) = std::str::from_utf8(payload) else {
        return;
    };
    if let (Some(scanned), by_serde) = request_views(text) {
        assert_eq!(Ok(scanned), by_serde, "{text}");
    }
});
