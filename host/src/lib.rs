//! A small host that runs a Kubewarden waPC policy module the way kwctl and the policy server
//! do, to test a policy and to time it. See the `policy-host` binary.

/// The request and response types, shared with the `scan` command.
pub use policy_admission as admission;
pub mod bench;
pub mod capabilities;
pub mod engine;
pub mod oci;
pub mod session;

/// Exit status when the module answered (accepted, rejected or mutated).
pub const EXIT_OK: i32 = 0;
/// Exit status for unusable input: request, settings or module file.
pub const EXIT_INPUT: i32 = 1;
/// Exit status for a malformed command line (clap's own).
pub const EXIT_USAGE: i32 = 2;
/// Exit status when the policy says its settings are not valid: 1, as `kwctl run`, which exits 1
/// on every error.
pub const EXIT_INVALID_SETTINGS: i32 = 1;
/// Exit status when the module failed: trap, waPC error, init failure, unusable answer.
pub const EXIT_POLICY_FAILURE: i32 = 4;
