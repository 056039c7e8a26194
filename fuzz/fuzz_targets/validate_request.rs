//! Arbitrary bytes as the `validate` payload: a response always comes back and keeps the
//! response invariants (see `common`).
#![no_main]

use image_pull_policy::fuzzing::validate;
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|payload: &[u8]| {
    let response = validate(payload, &mut common::FuzzRegistry);
    common::check_response(payload, &response);
});
