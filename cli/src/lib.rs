//! `image-pull-policy scan`: the image-pull-policy module run over Kubernetes manifests, one
//! fresh instance per object as the policy server does, with what admission would refuse,
//! change or warn about reported as text, JSON, SARIF or JUnit, and the pull policies fixed in
//! the files on request.
//!
//! The way a manifest travels: paths → files ([`manifest`]) → YAML documents with positions
//! ([`yaml`]) → objects → CREATE AdmissionRequests for the kinds the webhook rules select
//! ([`request`], [`settings`]) → the module's answer ([`policy`], in [`engine`]) → findings on lines
//! ([`findings`]) → a report ([`report`]) and, with `--fix`, the edited file ([`fix`]).
//! [`scan`] drives it.

pub mod admission;
pub mod engine;
pub mod findings;
pub mod fix;
pub mod manifest;
pub mod policy;
pub mod report;
pub mod request;
pub mod scan;
pub mod settings;
pub mod yaml;
