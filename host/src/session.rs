//! kwctl's record and replay of host capability interactions
//! (`--record-host-capabilities-interactions FILE`, `--replay-host-capabilities-interactions
//! FILE`), in kwctl's session file format, so that a session recorded by either host replays
//! under both:
//!
//! ```yaml
//! - type: Exchange
//!   request: |
//!     !OciManifestDigest
//!     image: 127.0.0.1:5000/app:1.0
//!   response:
//!     type: Success
//!     payload: '{"digest":"sha256:…"}'
//! - type: Exchange
//!   request: |
//!     !OciManifestDigest
//!     image: 127.0.0.1:5000/app:gone
//!   response:
//!     type: Error
//!     message: 'Fail to interact with OCI registry: …'
//! ```
//!
//! `request` is itself YAML: policy-evaluator's `CallbackRequestType`, as serde_yaml writes an
//! enum. A replay answers the calls in the recorded order and refuses a call that is not the
//! next recorded one.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// A host capability request, named and shaped as policy-evaluator's `CallbackRequestType`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallbackRequest {
    OciManifestDigest { image: String },
}

/// One recorded call and its answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type")]
struct Exchange {
    request: String,
    response: RecordedResponse,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type")]
enum RecordedResponse {
    Success { payload: String },
    Error { message: String },
}

/// Why a session file cannot be used, or a call cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot read the host capabilities interactions file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the host capabilities interactions file {path} is not a session: {source}")]
    Parse {
        path: PathBuf,
        source: Box<serde_saphyr::Error>,
    },
    #[error("cannot write the host capabilities interactions file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    // The next two are kwctl's texts.
    #[error("the list of recorded responses is empty")]
    Exhausted,
    #[error("Replay error: unexpected request. Was expecting {expected}, got {got:?} instead")]
    Unexpected {
        expected: String,
        got: CallbackRequest,
    },
}

/// A recording under way: every exchange, written to the file by [`Recording::save`].
pub struct Recording {
    path: PathBuf,
    exchanges: Mutex<Vec<Exchange>>,
}

impl Recording {
    pub fn new(path: &Path) -> Recording {
        Recording {
            path: path.to_owned(),
            exchanges: Mutex::new(Vec::new()),
        }
    }

    /// Keeps a call and its answer: the payload on success, the error's own message (not its
    /// causes, as kwctl keeps it) on failure.
    pub fn record(&self, request: &CallbackRequest, answer: Result<&[u8], String>) {
        let response = match answer {
            Ok(payload) => RecordedResponse::Success {
                payload: String::from_utf8_lossy(payload).into_owned(),
            },
            Err(message) => RecordedResponse::Error { message },
        };
        self.exchanges.lock().unwrap().push(Exchange {
            request: request_text(request),
            response,
        });
    }

    /// Writes the session file (an empty list when nothing was called).
    pub fn save(&self) -> Result<(), SessionError> {
        let exchanges = self.exchanges.lock().unwrap();
        let text = serde_saphyr::to_string(&*exchanges).expect("a session always serializes");
        std::fs::write(&self.path, text).map_err(|source| SessionError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

/// The fields of a request variant, under the variant's YAML tag.
#[derive(Serialize, Deserialize)]
struct ImageField {
    image: String,
}

const OCI_MANIFEST_DIGEST_TAG: &str = "!OciManifestDigest\n";

/// A request as serde_yaml writes policy-evaluator's enum: the variant as a YAML tag on its
/// fields, a form serde-saphyr does not write or read for struct variants.
fn request_text(request: &CallbackRequest) -> String {
    let CallbackRequest::OciManifestDigest { image } = request;
    let fields = serde_saphyr::to_string(&ImageField {
        image: image.clone(),
    })
    .expect("a request always serializes");
    format!("{OCI_MANIFEST_DIGEST_TAG}{fields}")
}

fn parse_request(text: &str) -> Option<CallbackRequest> {
    let fields: ImageField =
        serde_saphyr::from_str(text.strip_prefix(OCI_MANIFEST_DIGEST_TAG)?).ok()?;
    Some(CallbackRequest::OciManifestDigest {
        image: fields.image,
    })
}

/// A recorded session being replayed.
pub struct Replay {
    exchanges: Mutex<VecDeque<Exchange>>,
}

impl Replay {
    pub fn from_file(path: &Path) -> Result<Replay, SessionError> {
        let text = std::fs::read_to_string(path).map_err(|source| SessionError::Read {
            path: path.to_owned(),
            source,
        })?;
        let exchanges: VecDeque<Exchange> =
            serde_saphyr::from_str(&text).map_err(|source| SessionError::Parse {
                path: path.to_owned(),
                source: Box::new(source),
            })?;
        Ok(Replay {
            exchanges: Mutex::new(exchanges),
        })
    }

    /// The recorded answer to `request`, if it is the next recorded call. The exchange is used up
    /// either way, as in kwctl. `Err(Ok(message))` is a recorded failure.
    pub fn answer(&self, request: &CallbackRequest) -> Result<Vec<u8>, ReplayFailure> {
        let exchange = self
            .exchanges
            .lock()
            .unwrap()
            .pop_front()
            .ok_or(ReplayFailure::Session(SessionError::Exhausted))?;
        let recorded = parse_request(&exchange.request);
        if recorded.as_ref() != Some(request) {
            return Err(ReplayFailure::Session(SessionError::Unexpected {
                expected: match recorded {
                    Some(recorded) => format!("{recorded:?}"),
                    None => exchange.request.trim_end().to_owned(),
                },
                got: request.clone(),
            }));
        }
        match exchange.response {
            RecordedResponse::Success { payload } => Ok(payload.into_bytes()),
            RecordedResponse::Error { message } => Err(ReplayFailure::Recorded(message)),
        }
    }

    /// How many recorded exchanges were not asked for.
    pub fn left_over(&self) -> usize {
        self.exchanges.lock().unwrap().len()
    }
}

/// Why a replayed call has no answer.
#[derive(Debug, thiserror::Error)]
pub enum ReplayFailure {
    /// The host's failure, as it was recorded.
    #[error("{0}")]
    Recorded(String),
    #[error(transparent)]
    Session(SessionError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(image: &str) -> CallbackRequest {
        CallbackRequest::OciManifestDigest {
            image: image.to_owned(),
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("policy-host-session-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    /// A session as kwctl 1.35.0 wrote it, against a loopback registry.
    const KWCTL_SESSION: &str = r#"- type: Exchange
  request: |
    !OciManifestDigest
    image: 127.0.0.1:51803/app:1.0
  response:
    type: Success
    payload: '{"digest":"sha256:ea1fb0ca5c5db825b81823e80ac3bf39bde1e6a3a0fdf5ac3d7f68afd7c2d2bc"}'
- type: Exchange
  request: |
    !OciManifestDigest
    image: 127.0.0.1:51803/app:gone
  response:
    type: Error
    message: 'Fail to interact with OCI registry: Registry error: url http://127.0.0.1:51803/v2/app/manifests/gone, envelope: OCI API errors: [OCI API error: manifest unknown]'
"#;

    #[test]
    fn replays_a_kwctl_session_in_order() {
        let path = scratch("kwctl.yml");
        std::fs::write(&path, KWCTL_SESSION).unwrap();
        let replay = Replay::from_file(&path).unwrap();
        assert_eq!(
            replay.answer(&digest_of("127.0.0.1:51803/app:1.0")).unwrap(),
            br#"{"digest":"sha256:ea1fb0ca5c5db825b81823e80ac3bf39bde1e6a3a0fdf5ac3d7f68afd7c2d2bc"}"#
        );
        let failure = replay
            .answer(&digest_of("127.0.0.1:51803/app:gone"))
            .unwrap_err();
        assert!(matches!(failure, ReplayFailure::Recorded(_)));
        assert_eq!(
            failure.to_string(),
            "Fail to interact with OCI registry: Registry error: url \
             http://127.0.0.1:51803/v2/app/manifests/gone, envelope: OCI API errors: \
             [OCI API error: manifest unknown]"
        );
        assert_eq!(
            replay.answer(&digest_of("x")).unwrap_err().to_string(),
            "the list of recorded responses is empty"
        );
    }

    #[test]
    fn a_call_out_of_order_is_refused_and_uses_up_the_exchange() {
        let path = scratch("order.yml");
        std::fs::write(&path, KWCTL_SESSION).unwrap();
        let replay = Replay::from_file(&path).unwrap();
        let failure = replay
            .answer(&digest_of("127.0.0.1:51803/app:gone"))
            .unwrap_err();
        assert_eq!(
            failure.to_string(),
            "Replay error: unexpected request. Was expecting OciManifestDigest { image: \"127.0.0.1:51803/app:1.0\" }, \
             got OciManifestDigest { image: \"127.0.0.1:51803/app:gone\" } instead"
        );
        assert_eq!(replay.left_over(), 1);
    }

    #[test]
    fn a_recording_replays() {
        let path = scratch("recorded.yml");
        let recording = Recording::new(&path);
        recording.record(&digest_of("a:1"), Ok(br#"{"digest":"sha256:aa"}"#));
        recording.record(&digest_of("b:1"), Err("it: \"failed\"\nbadly".to_owned()));
        recording.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(
                "- type: Exchange\n  request: |\n    !OciManifestDigest\n    image: a:1\n"
            ),
            "{text}"
        );
        let replay = Replay::from_file(&path).unwrap();
        assert_eq!(
            replay.answer(&digest_of("a:1")).unwrap(),
            br#"{"digest":"sha256:aa"}"#
        );
        assert_eq!(
            replay.answer(&digest_of("b:1")).unwrap_err().to_string(),
            "it: \"failed\"\nbadly"
        );
        assert_eq!(replay.left_over(), 0);
    }

    #[test]
    fn an_empty_recording_is_an_empty_list() {
        let path = scratch("empty.yml");
        Recording::new(&path).save().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[]\n");
    }

    #[test]
    fn unusable_session_files_are_named() {
        let missing = Replay::from_file(Path::new("/nonexistent/s.yml"))
            .err()
            .unwrap();
        assert!(missing
            .to_string()
            .starts_with("cannot read the host capabilities interactions file /nonexistent/s.yml"));
        let path = scratch("bad.yml");
        std::fs::write(&path, "request: 1\n").unwrap();
        let bad = Replay::from_file(&path).err().unwrap();
        assert!(bad.to_string().contains("is not a session"), "{bad}");
    }
}
