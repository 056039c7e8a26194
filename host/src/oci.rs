//! The `kubewarden/oci/v1/manifest_digest` host capability: the digest of the manifest an image
//! reference points to, asked of the registry over the distribution API with `oci-client`, the
//! way policy-evaluator answers it (docs/pinning-engine.md).
//!
//! - The reference is completed as the engine does (`nginx` → `docker.io/library/nginx:latest`).
//! - HTTPS first, verified with the system's CA certificates (or the source's own, from
//!   `source_authorities`). Only for a host in `insecure_sources`: then HTTPS without
//!   verification, then plain HTTP, and the last attempt's error is the answer.
//! - Credentials from the Docker `config.json` (anonymous when there are none).
//! - A successful answer is kept for 60 seconds under the image string as the policy sent it;
//!   a failure is not kept.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, ParseError, Reference};
use serde::Deserialize;

/// How long the engine keeps a resolved digest.
pub const DIGEST_CACHE_TTL: Duration = Duration::from_secs(60);

/// Why a manifest digest could not be had. The texts are policy-fetcher's, so that the guest
/// reads what the engine would tell it.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error(transparent)]
    Reference(#[from] ParseError),
    #[error("Fail to interact with OCI registry: {0}")]
    Registry(#[from] OciDistributionError),
    #[error("cannot start the runtime for registry requests: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Why a sources file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    #[error("cannot read the sources file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the sources file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: Box<serde_saphyr::Error>,
    },
    #[error("cannot read the certificate {path} of source {host}: {source}")]
    Certificate {
        host: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// kwctl's and policy-server's `--sources-path` file:
///
/// ```yaml
/// insecure_sources: ["127.0.0.1:5000"]
/// source_authorities:
///   "registry.example.com:5000":
///     - type: Path
///       path: /etc/ca.pem
///     - type: Data
///       data: "-----BEGIN CERTIFICATE-----..."
/// ```
///
/// Keys the host does not use (`proxies`) are accepted and ignored, as kwctl ignores keys it
/// does not know.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    insecure: HashSet<String>,
    authorities: HashMap<String, Vec<Certificate>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SourcesFile {
    insecure_sources: HashSet<String>,
    source_authorities: HashMap<String, Vec<SourceAuthority>>,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum SourceAuthority {
    Path { path: PathBuf },
    Data { data: String },
}

impl Sources {
    /// Reads a sources file.
    pub fn from_file(path: &Path) -> Result<Sources, SourcesError> {
        let text = std::fs::read_to_string(path).map_err(|source| SourcesError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: SourcesFile =
            serde_saphyr::from_str(&text).map_err(|source| SourcesError::Parse {
                path: path.to_owned(),
                source: Box::new(source),
            })?;
        let mut authorities = HashMap::new();
        for (host, entries) in file.source_authorities {
            let mut certificates = Vec::new();
            for entry in entries {
                let data = match entry {
                    SourceAuthority::Data { data } => data.into_bytes(),
                    SourceAuthority::Path { path } => {
                        std::fs::read(&path).map_err(|source| SourcesError::Certificate {
                            host: host.clone(),
                            path,
                            source,
                        })?
                    }
                };
                certificates.push(certificate(data));
            }
            authorities.insert(host, certificates);
        }
        Ok(Sources {
            insecure: file.insecure_sources,
            authorities,
        })
    }

    /// Whether `host` (`host[:port]`, as the registry appears in a reference) may be reached over
    /// plain HTTP or unverified TLS.
    pub fn is_insecure(&self, host: &str) -> bool {
        self.insecure.contains(host)
    }
}

/// A certificate as the engine tells them apart: PEM when it has a PEM header, DER otherwise.
fn certificate(data: Vec<u8>) -> Certificate {
    let encoding = if data
        .windows(b"-----BEGIN".len())
        .any(|w| w == b"-----BEGIN")
    {
        CertificateEncoding::Pem
    } else {
        CertificateEncoding::Der
    };
    Certificate { encoding, data }
}

/// One way of reaching a registry, tried in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attempt {
    Https,
    HttpsUnverified,
    Http,
}

/// Resolves image references to manifest digests, with the engine's cache.
pub struct ManifestDigests {
    sources: Sources,
    /// Directory of the Docker `config.json`; `None`: `$DOCKER_CONFIG`, then `~/.docker`.
    docker_config_dir: Option<PathBuf>,
    runtime: OnceLock<Result<tokio::runtime::Runtime, String>>,
    cache: Mutex<HashMap<String, (Instant, String)>>,
}

impl ManifestDigests {
    pub fn new(sources: Sources, docker_config_dir: Option<PathBuf>) -> ManifestDigests {
        ManifestDigests {
            sources,
            docker_config_dir,
            runtime: OnceLock::new(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The digest of the manifest `image` points to (for a multi-platform image, the index's).
    pub fn digest(&self, image: &str) -> Result<String, DigestError> {
        if let Some((at, digest)) = self.cache.lock().unwrap().get(image) {
            if at.elapsed() < DIGEST_CACHE_TTL {
                return Ok(digest.clone());
            }
        }
        let digest = self.fetch(image)?;
        self.cache
            .lock()
            .unwrap()
            .insert(image.to_owned(), (Instant::now(), digest.clone()));
        Ok(digest)
    }

    fn fetch(&self, image: &str) -> Result<String, DigestError> {
        let reference: Reference = image.parse()?;
        let auth = self.credentials(reference.registry());
        let runtime = self
            .runtime
            .get_or_init(|| {
                // reqwest is built without a default crypto provider; the first one wins.
                let _ = rustls::crypto::ring::default_provider().install_default();
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| DigestError::Runtime(std::io::Error::other(e.clone())))?;
        let attempts: &[Attempt] = if self.sources.is_insecure(reference.registry()) {
            &[Attempt::Https, Attempt::HttpsUnverified, Attempt::Http]
        } else {
            &[Attempt::Https]
        };
        let mut last_error = None;
        for attempt in attempts {
            // A new client for every attempt, as the engine makes one: no connection is reused.
            let client = Client::new(self.client_config(reference.registry(), *attempt));
            match runtime.block_on(client.fetch_manifest_digest(&reference, &auth)) {
                Ok(digest) => return Ok(digest),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.expect("there is at least one attempt").into())
    }

    fn client_config(&self, registry: &str, attempt: Attempt) -> ClientConfig {
        match attempt {
            Attempt::Https => ClientConfig {
                protocol: ClientProtocol::Https,
                extra_root_certificates: self
                    .sources
                    .authorities
                    .get(registry)
                    .cloned()
                    .unwrap_or_default(),
                ..Default::default()
            },
            Attempt::HttpsUnverified => ClientConfig {
                protocol: ClientProtocol::Https,
                accept_invalid_certificates: true,
                ..Default::default()
            },
            Attempt::Http => ClientConfig {
                protocol: ClientProtocol::Http,
                ..Default::default()
            },
        }
    }

    /// The registry's credentials from the Docker config, as policy-fetcher reads them:
    /// anonymous when there is no file, no entry, or only an identity token.
    fn credentials(&self, registry: &str) -> RegistryAuth {
        let credential = match &self.docker_config_dir {
            Some(dir) => std::fs::File::open(dir.join("config.json"))
                .ok()
                .and_then(|file| {
                    docker_credential::get_credential_from_reader(
                        std::io::BufReader::new(file),
                        registry,
                    )
                    .ok()
                }),
            None => docker_credential::get_credential(registry).ok(),
        };
        match credential {
            Some(docker_credential::DockerCredential::UsernamePassword(user, password)) => {
                RegistryAuth::Basic(user, password)
            }
            _ => RegistryAuth::Anonymous,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("policy-host-oci-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn sources_file_as_kwctl_takes_it() {
        let ca = scratch(
            "ca.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let path = scratch(
            "sources.yml",
            &format!(
                "insecure_sources:\n  - \"127.0.0.1:5000\"\nsource_authorities:\n  \
                 \"registry.example.com\":\n    - type: Path\n      path: {}\n    - type: Data\n      \
                 data: \"raw\"\nproxies:\n  http_proxy: http://proxy:3128\n",
                ca.display()
            ),
        );
        let sources = Sources::from_file(&path).unwrap();
        assert!(sources.is_insecure("127.0.0.1:5000"));
        assert!(!sources.is_insecure("127.0.0.1"));
        let certificates = &sources.authorities["registry.example.com"];
        assert_eq!(certificates.len(), 2);
        assert!(matches!(certificates[0].encoding, CertificateEncoding::Pem));
        assert!(matches!(certificates[1].encoding, CertificateEncoding::Der));
    }

    #[test]
    fn empty_sources_file_is_no_source() {
        let sources = Sources::from_file(&scratch("empty.yml", "{}\n")).unwrap();
        assert!(!sources.is_insecure("127.0.0.1:5000"));
    }

    #[test]
    fn unusable_sources_files_are_named() {
        let missing = Sources::from_file(Path::new("/nonexistent/sources.yml")).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("cannot read the sources file /nonexistent/sources.yml"),
            "{missing}"
        );
        let path = scratch("bad.yml", "insecure_sources: 5\n");
        let bad = Sources::from_file(&path).unwrap_err();
        assert!(
            bad.to_string()
                .contains("is not valid: error: line 1 column 19"),
            "{bad}"
        );
        let path = scratch(
            "nocert.yml",
            "source_authorities:\n  r.example:\n    - type: Path\n      path: /nonexistent/ca.pem\n",
        );
        let no_cert = Sources::from_file(&path).unwrap_err();
        assert!(
            no_cert
                .to_string()
                .starts_with("cannot read the certificate /nonexistent/ca.pem of source r.example"),
            "{no_cert}"
        );
    }

    #[test]
    fn invalid_reference_is_the_parsers_error_without_a_request() {
        let digests = ManifestDigests::new(Sources::default(), None);
        let error = digests.digest("in valid:1").unwrap_err();
        assert!(matches!(error, DigestError::Reference(_)), "{error:?}");
        assert!(digests.runtime.get().is_none(), "no runtime was needed");
    }

    #[test]
    fn credentials_come_from_the_given_docker_config() {
        let dir = scratch(
            "config.json",
            r#"{"auths":{"127.0.0.1:5000":{"auth":"dXNlcjpwYXNz"}}}"#,
        )
        .parent()
        .unwrap()
        .to_owned();
        let digests = ManifestDigests::new(Sources::default(), Some(dir));
        assert!(matches!(
            digests.credentials("127.0.0.1:5000"),
            RegistryAuth::Basic(user, password) if user == "user" && password == "pass"
        ));
        assert!(matches!(
            digests.credentials("other.example"),
            RegistryAuth::Anonymous
        ));
    }
}
