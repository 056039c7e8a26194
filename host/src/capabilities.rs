//! The host capabilities a policy may call and how they are answered, as policy-evaluator's
//! `host_callback` does: the allow-list (`kwctl run --allowed-host-capabilities`, a policies
//! file's `hostCapabilities`), then the answer, live from a registry, recorded, or replayed.

use std::collections::HashSet;
use std::path::PathBuf;

use crate::oci::{ManifestDigests, Sources, SourcesError};
use crate::session::{CallbackRequest, Recording, Replay, ReplayFailure, SessionError};

/// The command-line flags, named as kwctl's.
#[derive(clap::Args, Clone, Debug)]
pub struct HostCapabilityArgs {
    /// Host capabilities the policy may use, as kwctl's flag: '*' allows all; e.g. 'oci/*',
    /// 'oci/v1/manifest_digest'. Repeatable; given without a value, none
    #[arg(long, num_args = 0.., default_values = ["*"], value_name = "CAPABILITY")]
    pub allowed_host_capabilities: Vec<String>,

    /// YAML file of registry sources, as kwctl's: `insecure_sources` (hosts reached over plain
    /// HTTP or unverified TLS), `source_authorities` (their CA certificates)
    #[arg(long, value_name = "PATH")]
    pub sources_path: Option<PathBuf>,

    /// Directory holding the Docker config.json with registry credentials (default:
    /// $DOCKER_CONFIG, then ~/.docker)
    #[arg(long, value_name = "PATH")]
    pub docker_config_json_path: Option<PathBuf>,

    /// Record every host capability call and its answer into FILE (kwctl's session format)
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "replay_host_capabilities_interactions"
    )]
    pub record_host_capabilities_interactions: Option<PathBuf>,

    /// Answer host capability calls from a session file, without reaching any registry
    #[arg(long, value_name = "FILE")]
    pub replay_host_capabilities_interactions: Option<PathBuf>,
}

/// Why the host capabilities cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum CapabilitiesError {
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error(transparent)]
    Sources(#[from] SourcesError),
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// A pattern that is not a capability path, in policy-evaluator's words.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatternError {
    #[error("host capability pattern cannot be empty")]
    Empty,
    #[error("invalid host capability pattern '{0}': a wildcard may only be a whole last segment, as in 'oci/*'")]
    Wildcard(String),
    #[error("unknown host capability '{0}'; known: {known}", known = KNOWN_CAPABILITIES.join(", "))]
    Unknown(String),
}

/// Every capability path policy-evaluator knows.
const KNOWN_CAPABILITIES: &[&str] = &[
    "crypto/v1/is_certificate_trusted",
    "kubernetes/can_i",
    "kubernetes/get_resource",
    "kubernetes/list_resources_all",
    "kubernetes/list_resources_by_namespace",
    "net/v1/dns_lookup_host",
    "oci/v1/manifest_digest",
    "oci/v1/oci_manifest",
    "oci/v1/oci_manifest_config",
    "oci/v1/verify",
    "oci/v2/verify",
];

/// Which capabilities a policy may call: all, or exact paths and `prefix/*` patterns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedCapabilities {
    All,
    Some {
        exact: HashSet<String>,
        prefixes: Vec<String>,
    },
}

impl AllowedCapabilities {
    /// Reads kwctl's patterns: `*` allows all; no pattern allows none.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<AllowedCapabilities, PatternError> {
        let mut exact = HashSet::new();
        let mut prefixes = Vec::new();
        for pattern in patterns {
            let pattern = pattern.as_ref().trim();
            if pattern.is_empty() {
                return Err(PatternError::Empty);
            }
            if pattern == "*" {
                return Ok(AllowedCapabilities::All);
            }
            match pattern.strip_suffix('*') {
                Some(prefix) if prefix.ends_with('/') && !prefix.contains('*') => {
                    if !KNOWN_CAPABILITIES.iter().any(|c| c.starts_with(prefix)) {
                        return Err(PatternError::Unknown(pattern.to_owned()));
                    }
                    prefixes.push(prefix.to_owned());
                }
                _ if pattern.contains('*') => {
                    return Err(PatternError::Wildcard(pattern.to_owned()))
                }
                _ if KNOWN_CAPABILITIES.contains(&pattern) => {
                    exact.insert(pattern.to_owned());
                }
                _ => return Err(PatternError::Unknown(pattern.to_owned())),
            }
        }
        Ok(AllowedCapabilities::Some { exact, prefixes })
    }

    pub fn allows(&self, capability: &str) -> bool {
        match self {
            AllowedCapabilities::All => true,
            AllowedCapabilities::Some { exact, prefixes } => {
                exact.contains(capability) || prefixes.iter().any(|p| capability.starts_with(p))
            }
        }
    }
}

/// Where answers come from.
enum Answers {
    Live(ManifestDigests),
    Record(ManifestDigests, Recording),
    Replay(Replay),
}

/// Why a host capability call failed, as the guest reads it (the `Display` text).
#[derive(Debug, thiserror::Error)]
pub enum HostCallError {
    #[error("unknown binding: {0}")]
    UnknownBinding(String),
    #[error("Policy has not been granted access to the '{0}' host capability. The violation has been reported.")]
    Denied(String),
    /// The payload is not what the capability takes (serde's text, as the engine gives it).
    #[error(transparent)]
    Payload(#[from] serde_json::Error),
    /// The host tried and failed: the engine's wrapping around the whole chain of causes.
    #[error("Callback evaluation failure: {0}")]
    Evaluation(String),
    #[error("policy-host does not provide the host capability {0}")]
    NotProvided(String),
}

/// The host capabilities of one run of `policy-host`.
pub struct HostCapabilities {
    allowed: AllowedCapabilities,
    answers: Answers,
}

impl Default for HostCapabilities {
    fn default() -> HostCapabilities {
        HostCapabilities {
            allowed: AllowedCapabilities::All,
            answers: Answers::Live(ManifestDigests::new(Sources::default(), None)),
        }
    }
}

impl HostCapabilities {
    pub fn new(args: &HostCapabilityArgs) -> Result<HostCapabilities, CapabilitiesError> {
        let allowed = AllowedCapabilities::new(&args.allowed_host_capabilities)?;
        let live = || -> Result<ManifestDigests, CapabilitiesError> {
            let sources = match &args.sources_path {
                Some(path) => Sources::from_file(path)?,
                None => Sources::default(),
            };
            Ok(ManifestDigests::new(
                sources,
                args.docker_config_json_path.clone(),
            ))
        };
        let answers = match (
            &args.record_host_capabilities_interactions,
            &args.replay_host_capabilities_interactions,
        ) {
            (_, Some(replay)) => Answers::Replay(Replay::from_file(replay)?),
            (Some(record), None) => Answers::Record(live()?, Recording::new(record)),
            (None, None) => Answers::Live(live()?),
        };
        Ok(HostCapabilities { allowed, answers })
    }

    /// Answers a waPC host call other than `kubewarden/tracing/log` (which is never gated).
    pub fn call(
        &self,
        binding: &str,
        namespace: &str,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, HostCallError> {
        if binding != "kubewarden" {
            return Err(HostCallError::UnknownBinding(binding.to_owned()));
        }
        let capability = format!("{namespace}/{operation}");
        if !self.allowed.allows(&capability) {
            return Err(HostCallError::Denied(capability));
        }
        match capability.as_str() {
            "oci/v1/manifest_digest" => {
                let image: String = serde_json::from_slice(payload)?;
                self.answer(CallbackRequest::OciManifestDigest { image })
            }
            _ => Err(HostCallError::NotProvided(format!(
                "{binding}/{capability}"
            ))),
        }
    }

    fn answer(&self, request: CallbackRequest) -> Result<Vec<u8>, HostCallError> {
        let live = |digests: &ManifestDigests| match &request {
            CallbackRequest::OciManifestDigest { image } => digests
                .digest(image)
                .map(|digest| {
                    serde_json::json!({ "digest": digest })
                        .to_string()
                        .into_bytes()
                })
                .map_err(anyhow::Error::from),
        };
        match &self.answers {
            Answers::Live(digests) => live(digests).map_err(evaluation_failure),
            Answers::Record(digests, recording) => {
                let answer = live(digests);
                recording.record(
                    &request,
                    answer.as_deref().map_err(|error| error.to_string()),
                );
                answer.map_err(evaluation_failure)
            }
            Answers::Replay(replay) => replay.answer(&request).map_err(|failure| match failure {
                ReplayFailure::Recorded(message) => HostCallError::Evaluation(message),
                ReplayFailure::Session(error) => HostCallError::Evaluation(error.to_string()),
            }),
        }
    }

    /// Writes the session file when recording; says how many recorded calls a replay did not
    /// use (kwctl warns about them).
    pub fn finish(&self) -> Result<Option<String>, SessionError> {
        match &self.answers {
            Answers::Record(_, recording) => recording.save().map(|()| None),
            Answers::Replay(replay) if replay.left_over() > 0 => Ok(Some(format!(
                "{} recorded host capability interactions were not replayed",
                replay.left_over()
            ))),
            _ => Ok(None),
        }
    }
}

/// The engine hands the guest the whole chain of causes, as anyhow's `{:?}` writes it.
fn evaluation_failure(error: anyhow::Error) -> HostCallError {
    HostCallError::Evaluation(format!("{error:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_as_kwctl_reads_them() {
        let all = AllowedCapabilities::new(&["oci/*", "*"]).unwrap();
        assert_eq!(all, AllowedCapabilities::All);
        let none = AllowedCapabilities::new::<&str>(&[]).unwrap();
        assert!(!none.allows("oci/v1/manifest_digest"));
        let oci = AllowedCapabilities::new(&["oci/*"]).unwrap();
        assert!(oci.allows("oci/v1/manifest_digest"));
        assert!(!oci.allows("net/v1/dns_lookup_host"));
        let exact = AllowedCapabilities::new(&["oci/v1/manifest_digest"]).unwrap();
        assert!(exact.allows("oci/v1/manifest_digest"));
        assert!(!exact.allows("oci/v1/verify"));
        let versioned = AllowedCapabilities::new(&["oci/v2/*"]).unwrap();
        assert!(!versioned.allows("oci/v1/manifest_digest"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert_eq!(AllowedCapabilities::new(&[" "]), Err(PatternError::Empty));
        assert_eq!(
            AllowedCapabilities::new(&["oci/v1/manifest_*"]),
            Err(PatternError::Wildcard("oci/v1/manifest_*".into()))
        );
        assert_eq!(
            AllowedCapabilities::new(&["oci/v1/manifest"]),
            Err(PatternError::Unknown("oci/v1/manifest".into()))
        );
        assert_eq!(
            AllowedCapabilities::new(&["dns/*"]),
            Err(PatternError::Unknown("dns/*".into()))
        );
    }

    fn capabilities(allowed: &[&str]) -> HostCapabilities {
        HostCapabilities {
            allowed: AllowedCapabilities::new(allowed).unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn a_capability_not_granted_is_refused_in_the_engines_words() {
        let error = capabilities(&["net/*"])
            .call("kubewarden", "oci", "v1/manifest_digest", br#""app:1""#)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "Policy has not been granted access to the 'oci/v1/manifest_digest' host capability. \
             The violation has been reported."
        );
    }

    #[test]
    fn a_payload_that_is_not_a_string_gets_serdes_message() {
        let error = capabilities(&["*"])
            .call(
                "kubewarden",
                "oci",
                "v1/manifest_digest",
                br#"{"image":"a"}"#,
            )
            .unwrap_err();
        assert!(matches!(error, HostCallError::Payload(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            "invalid type: map, expected a string at line 1 column 0"
        );
    }

    #[test]
    fn other_bindings_and_capabilities() {
        let host = capabilities(&["*"]);
        assert_eq!(
            host.call("other", "oci", "v1/manifest_digest", b"")
                .unwrap_err()
                .to_string(),
            "unknown binding: other"
        );
        assert_eq!(
            host.call("kubewarden", "net", "v1/dns_lookup_host", b"\"a\"")
                .unwrap_err()
                .to_string(),
            "policy-host does not provide the host capability kubewarden/net/v1/dns_lookup_host"
        );
    }

    #[test]
    fn an_invalid_reference_is_an_evaluation_failure() {
        let error = capabilities(&["*"])
            .call(
                "kubewarden",
                "oci",
                "v1/manifest_digest",
                br#""in valid:1""#,
            )
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("Callback evaluation failure: "),
            "{error}"
        );
    }
}
