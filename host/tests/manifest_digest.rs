//! `kubewarden/oci/v1/manifest_digest` against a real registry on 127.0.0.1 (Debian's
//! `docker-registry`, driven by `tests/lib/registry.bash`), under `policy-host` and under the
//! real `kwctl` and `policy-server`: a hand-written guest asks for digests and echoes every
//! answer, and both engines must give the same ones.
//!
//! kwctl and policy-server are found as `$KWCTL` / `$POLICY_SERVER`, then on `PATH`, then in
//! `../shared/kubewarden/bin`; without them (or without `docker-registry`) the tests say so and
//! pass, except under `CI=true`, where they fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{host_answers, workspace_root, write_wasm, HostAnswer, Validate, VALID_SETTINGS};
use serde_json::{json, Value};

const POLICY_HOST: &str = env!("CARGO_BIN_EXE_policy-host");
/// Every command a test runs is killed after this long.
const COMMAND_TIMEOUT_SECS: u64 = 60;

const REQUEST: &str = r#"{
  "uid": "d1d3bd7e-4f6a-4c1e-9a5e-0c1f6f0d2a11",
  "kind": {"group": "", "version": "v1", "kind": "Pod"},
  "resource": {"group": "", "version": "v1", "resource": "pods"},
  "namespace": "default",
  "operation": "CREATE",
  "userInfo": {"username": "alice"},
  "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
             "spec": {"containers": [{"name": "web", "image": "app:1.0"}]}}
}"#;

/// A scratch directory of its own for each test.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("manifest-digest")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Says why a test cannot run here: a failure under CI, a note otherwise.
fn unavailable(what: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what}, and CI=true: the test must run in CI (scripts/setup.sh installs it)");
    }
    eprintln!("SKIPPED: {what}");
}

/// A Kubewarden binary: `$VAR`, then `PATH`, then `../shared/kubewarden/bin`.
fn kubewarden_binary(name: &str, var: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    on_path.or_else(|| {
        let shared = workspace_root().join("../shared/kubewarden/bin").join(name);
        shared.is_file().then_some(shared)
    })
}

fn kwctl() -> Option<PathBuf> {
    let found = kubewarden_binary("kwctl", "KWCTL");
    if found.is_none() {
        unavailable("kwctl not found ($KWCTL, PATH, ../shared/kubewarden/bin)");
    }
    found
}

/// Runs a command with a time limit (`timeout`); its output.
fn bounded(command: Command) -> Output {
    let program = command.get_program().to_owned();
    let mut bounded = Command::new("timeout");
    bounded
        .args(["--kill-after=5", &COMMAND_TIMEOUT_SECS.to_string()])
        .arg(program)
        .args(command.get_args())
        .stdin(Stdio::null());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => bounded.env(key, value),
            None => bounded.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        bounded.current_dir(dir);
    }
    bounded.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A registry on 127.0.0.1 with its own storage, stopped when dropped.
struct Registry {
    address: String,
    /// `user:password` when the registry asks for them.
    auth: String,
    pid: u32,
    log: PathBuf,
    sources: PathBuf,
}

impl Registry {
    fn start(dir: &Path) -> Option<Registry> {
        Registry::start_with(dir, &[])
    }

    /// A registry that serves only `user` with `password` (basic auth).
    fn start_with_credentials(dir: &Path, user: &str, password: &str) -> Option<Registry> {
        Registry::start_with(dir, &[user, password])
    }

    fn start_with(dir: &Path, credentials: &[&str]) -> Option<Registry> {
        if !Path::new("/usr/bin/docker-registry").exists()
            && bash("command -v docker-registry", &[]).status.code() != Some(0)
        {
            unavailable("docker-registry is not installed (Debian package docker-registry)");
            return None;
        }
        if !credentials.is_empty() && bash("command -v htpasswd", &[]).status.code() != Some(0) {
            unavailable("htpasswd is not installed (Debian package apache2-utils)");
            return None;
        }
        let mut args = vec![dir.to_str().unwrap()];
        args.extend(credentials);
        let out = bash(
            r#"registry_start "$@" >&2 && echo "$REGISTRY $REGISTRY_PID""#,
            &args,
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let line = text(&out.stdout);
        let (address, pid) = line.trim().split_once(' ').unwrap();
        Some(Registry {
            address: address.to_owned(),
            auth: credentials.join(":"),
            pid: pid.parse().unwrap(),
            log: dir.join("registry.log"),
            sources: dir.join("sources.yml"),
        })
    }

    /// Runs a function of `registry.bash` against this registry; its output, trimmed.
    fn call(&self, function: &str, args: &[&str]) -> String {
        let mut command = bash_command(&format!(r#"{function} "$@""#), args);
        command
            .env("REGISTRY", &self.address)
            .env("REGISTRY_AUTH", &self.auth);
        let out = bounded(command);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{function} {args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout).trim().to_owned()
    }

    fn push_image(&self, repo: &str, tag: &str, content: &str) -> String {
        self.call("registry_push_image", &[repo, tag, content])
    }

    fn push_index(&self, repo: &str, tag: &str) -> String {
        self.call("registry_push_index", &[repo, tag])
    }

    fn tag_digest(&self, repo: &str, tag: &str) -> String {
        self.call("registry_tag_digest", &[repo, tag])
    }

    fn image(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.address)
    }

    /// How many times the registry has served a manifest of `repo` (HEAD or GET) so far: any
    /// manifest, or the one `reference` names.
    fn manifest_reads(&self, repo: &str, reference: Option<&str>) -> usize {
        let uri = format!("http.request.uri=/v2/{repo}/manifests/");
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|line| {
                line.contains("response completed")
                    && (line.contains("http.request.method=HEAD")
                        || line.contains("http.request.method=GET"))
                    && match reference {
                        Some(reference) => line.contains(&format!("{uri}{reference} ")),
                        None => line.contains(&uri),
                    }
            })
            .count()
    }

    fn stop(&mut self) {
        if self.pid == 0 {
            return;
        }
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{}", self.pid)).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.pid = 0;
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn bash_command(script: &str, args: &[&str]) -> Command {
    let library = workspace_root().join("tests/lib/registry.bash");
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(format!("set -e; source '{}'; {script}", library.display()))
        .arg("bash")
        .args(args);
    command
}

fn bash(script: &str, args: &[&str]) -> Output {
    bounded(bash_command(script, args))
}

/// Which engine runs the guest.
#[derive(Clone, Debug)]
enum Host {
    PolicyHost,
    Kwctl(PathBuf),
}

impl Host {
    /// policy-host, and kwctl when it is here.
    fn all() -> Vec<Host> {
        let mut hosts = vec![Host::PolicyHost];
        hosts.extend(kwctl().map(Host::Kwctl));
        hosts
    }

    /// Runs a guest that asks for the digest of each image in turn; the answers it received.
    fn answers(&self, dir: &Path, images: &[String], flags: &[&str]) -> Vec<HostAnswer> {
        let request = dir.join("request.json");
        std::fs::write(&request, REQUEST).unwrap();
        let guest = write_wasm(
            &format!("digests-{:x}", fxhash(images)),
            VALID_SETTINGS,
            &Validate::ManifestDigests(images.to_vec()),
        );
        let mut command = match self {
            Host::PolicyHost => Command::new(POLICY_HOST),
            Host::Kwctl(kwctl) => {
                let mut command = Command::new(kwctl);
                // No cache or config of an earlier run, and no network look-up of its own.
                command
                    .env("XDG_CACHE_HOME", dir.join("xdg-cache"))
                    .env("XDG_CONFIG_HOME", dir.join("xdg-config"));
                command
            }
        };
        // Both engines hand the guest anyhow's `{:?}`, which holds a stack backtrace when these
        // are set.
        command
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .arg("run")
            // Flags first: --allowed-host-capabilities takes every value up to the next flag.
            .args(flags)
            .arg("--request-path")
            .arg(&request)
            .arg(&guest);
        let out = bounded(command);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{self:?} failed: {}",
            text(&out.stderr)
        );
        let stdout = text(&out.stdout);
        let line = stdout.lines().last().unwrap_or_default();
        let response: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{self:?} printed {stdout:?}: {e}"));
        host_answers(response["status"]["message"].as_str().unwrap())
    }
}

/// A stable name for a guest that asks for these images.
fn fxhash(images: &[String]) -> u64 {
    images
        .iter()
        .flat_map(|i| i.bytes().chain([0]))
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ byte as u64).wrapping_mul(0x100_0000_01b3)
        })
}

fn digest(value: &str) -> HostAnswer {
    Ok(json!({ "digest": value }))
}

#[test]
fn the_answer_is_the_digest_the_registry_serves_for_the_tag() {
    let dir = scratch("registry-digests");
    let Some(registry) = Registry::start(&dir) else {
        return;
    };
    let single = registry.push_image("team/app", "1.0", "app 1.0");
    let index = registry.push_index("team/multi", "2.0");
    assert_eq!(single, registry.tag_digest("team/app", "1.0"));
    assert_eq!(index, registry.tag_digest("team/multi", "2.0"));
    let images = [
        registry.image("team/app:1.0"),
        registry.image("team/multi:2.0"),
    ];
    let sources = registry.sources.to_str().unwrap();
    for host in Host::all() {
        let answers = host.answers(&dir, &images, &["--sources-path", sources]);
        // For a multi-platform image, the index's digest: each node picks its platform.
        assert_eq!(answers, vec![digest(&single), digest(&index)], "{host:?}");
    }
}

#[test]
fn moving_the_tag_changes_the_answer() {
    let dir = scratch("moving-tag");
    let Some(registry) = Registry::start(&dir) else {
        return;
    };
    let images = [registry.image("app:stable")];
    let sources = registry.sources.to_str().unwrap();
    for host in Host::all() {
        let before = registry.push_image("app", "stable", &format!("{host:?} before"));
        let answers = host.answers(&dir, &images, &["--sources-path", sources]);
        assert_eq!(answers, vec![digest(&before)], "{host:?}");
        let after = registry.push_image("app", "stable", &format!("{host:?} after"));
        assert_ne!(before, after);
        let answers = host.answers(&dir, &images, &["--sources-path", sources]);
        assert_eq!(answers, vec![digest(&after)], "{host:?}");
    }
}

#[test]
fn one_run_asks_the_registry_once_per_image() {
    let dir = scratch("cache");
    let Some(registry) = Registry::start(&dir) else {
        return;
    };
    let pushed = registry.push_image("cached", "1", "cached");
    let image = registry.image("cached:1");
    let sources = registry.sources.to_str().unwrap();
    for host in Host::all() {
        let before = registry.manifest_reads("cached", None);
        let answers = host.answers(
            &dir,
            &[image.clone(), image.clone(), image.clone()],
            &["--sources-path", sources],
        );
        assert_eq!(answers, vec![digest(&pushed); 3], "{host:?}");
        assert_eq!(
            registry.manifest_reads("cached", None) - before,
            1,
            "{host:?}: a repeated image is answered from the cache"
        );
    }
}

/// Every answer under policy-host, and the same under kwctl when it is here.
fn same_under_both(dir: &Path, images: &[String], flags: &[&str]) -> Vec<HostAnswer> {
    let ours = Host::PolicyHost.answers(dir, images, flags);
    if let Some(kwctl) = kwctl() {
        let theirs = Host::Kwctl(kwctl).answers(dir, images, flags);
        assert_eq!(ours, theirs, "policy-host and kwctl answered differently");
    }
    ours
}

fn error(answer: &HostAnswer) -> &str {
    answer
        .as_ref()
        .err()
        .unwrap_or_else(|| panic!("expected an error, got {answer:?}"))
}

#[test]
fn an_unknown_tag_is_an_error_that_names_it() {
    let dir = scratch("unknown-tag");
    let Some(registry) = Registry::start(&dir) else {
        return;
    };
    registry.push_image("app", "1.0", "app");
    let sources = registry.sources.to_str().unwrap();
    let answers = same_under_both(
        &dir,
        &[registry.image("app:9.9"), registry.image("nothing:1.0")],
        &["--sources-path", sources],
    );
    for (answer, path) in answers
        .iter()
        .zip(["app/manifests/9.9", "nothing/manifests/1.0"])
    {
        let message = error(answer);
        assert!(
            message.starts_with("Callback evaluation failure: Fail to interact with OCI registry:"),
            "{message}"
        );
        assert!(message.contains(path), "{message}");
        assert!(message.contains("manifest unknown"), "{message}");
    }
}

#[test]
fn a_stopped_registry_is_an_error() {
    let dir = scratch("stopped");
    let Some(mut registry) = Registry::start(&dir) else {
        return;
    };
    registry.push_image("app", "1.0", "app");
    registry.stop();
    let sources = registry.sources.to_str().unwrap();
    let answers = same_under_both(
        &dir,
        &[registry.image("app:1.0")],
        &["--sources-path", sources],
    );
    let message = error(&answers[0]);
    assert!(
        message.starts_with("Callback evaluation failure: Fail to interact with OCI registry:"),
        "{message}"
    );
    assert!(message.contains("Connection refused"), "{message}");
}

#[test]
fn a_plain_http_registry_needs_the_sources_file() {
    let dir = scratch("no-sources");
    let Some(registry) = Registry::start(&dir) else {
        return;
    };
    registry.push_image("app", "1.0", "app");
    let answers = same_under_both(&dir, &[registry.image("app:1.0")], &[]);
    let message = error(&answers[0]);
    assert!(
        message.starts_with("Callback evaluation failure: Fail to interact with OCI registry:"),
        "{message}"
    );
    assert!(message.contains("https://"), "{message}");
}

#[test]
fn a_capability_not_allowed_is_refused_before_any_request() {
    let dir = scratch("not-allowed");
    let Some(registry) = Registry::start(&dir) else {
        return;
    };
    registry.push_image("app", "1.0", "app");
    let sources = registry.sources.to_str().unwrap();
    for allowed in [&["net/*"][..], &["oci/v2/*", "net/v1/dns_lookup_host"]] {
        let mut flags = vec!["--sources-path", sources, "--allowed-host-capabilities"];
        flags.extend(allowed);
        let answers = same_under_both(&dir, &[registry.image("app:1.0")], &flags);
        assert_eq!(
            answers,
            vec![Err(
                "Policy has not been granted access to the 'oci/v1/manifest_digest' host \
                      capability. The violation has been reported."
                    .to_owned()
            )]
        );
    }
    assert_eq!(registry.manifest_reads("app", None), 0);
    let allowed = same_under_both(
        &dir,
        &[registry.image("app:1.0")],
        &[
            "--sources-path",
            sources,
            "--allowed-host-capabilities",
            "oci/v1/manifest_digest",
        ],
    );
    assert!(allowed[0].is_ok(), "{allowed:?}");
}

#[test]
fn an_invalid_reference_is_an_error() {
    let dir = scratch("invalid-reference");
    let answers = same_under_both(&dir, &["in valid:1".to_owned()], &[]);
    let message = error(&answers[0]);
    assert!(
        message.starts_with("Callback evaluation failure: "),
        "{message}"
    );
}

#[test]
fn a_recorded_session_replays_under_both_hosts_without_a_registry() {
    let dir = scratch("record-replay");
    let Some(mut registry) = Registry::start(&dir) else {
        return;
    };
    let app = registry.push_image("app", "1.0", "app");
    let index = registry.push_index("multi", "1");
    let images = [
        registry.image("app:1.0"),
        registry.image("multi:1"),
        registry.image("app:gone"),
    ];
    let sources = registry.sources.to_str().unwrap();
    let mut recorders = Host::all();
    // kwctl records what policy-host replays, and the other way round.
    let sessions: Vec<(Host, PathBuf, Vec<HostAnswer>)> = recorders
        .drain(..)
        .enumerate()
        .map(|(i, host)| {
            let session = dir.join(format!("session-{i}.yml"));
            let answers = host.answers(
                &dir,
                &images,
                &[
                    "--sources-path",
                    sources,
                    "--record-host-capabilities-interactions",
                    session.to_str().unwrap(),
                ],
            );
            (host, session, answers)
        })
        .collect();
    registry.stop();
    for (recorder, session, recorded) in &sessions {
        assert_eq!(
            recorded[..2],
            [digest(&app), digest(&index)],
            "{recorder:?}"
        );
        assert!(error(&recorded[2]).contains("manifest unknown"));
        for replayer in Host::all() {
            let replayed = replayer.answers(
                &dir,
                &images,
                &[
                    "--replay-host-capabilities-interactions",
                    session.to_str().unwrap(),
                ],
            );
            assert_eq!(
                replayed[..2],
                recorded[..2],
                "{recorder:?} recorded, {replayer:?} replayed"
            );
            // A replayed failure is the recorded text, without the causes a live one lists.
            assert!(
                error(&replayed[2]).contains("manifest unknown"),
                "{recorder:?} recorded, {replayer:?} replayed: {replayed:?}"
            );
        }
    }
    if let [(_, ours, _), (_, theirs, _)] = &sessions[..] {
        // The same YAML document; the two writers quote strings differently.
        let read = |path: &Path| -> serde_json::Value {
            serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
        };
        assert_eq!(
            read(ours),
            read(theirs),
            "policy-host and kwctl wrote different session files"
        );
    }
}

#[test]
fn a_replay_refuses_a_call_that_was_not_recorded_next() {
    let dir = scratch("replay-order");
    let session = dir.join("session.yml");
    std::fs::write(
        &session,
        "- type: Exchange\n  request: |\n    !OciManifestDigest\n    image: a:1\n  response:\n    \
         type: Success\n    payload: '{\"digest\":\"sha256:aa\"}'\n",
    )
    .unwrap();
    let flags = [
        "--replay-host-capabilities-interactions",
        session.to_str().unwrap(),
    ];
    let answers = same_under_both(&dir, &["b:1".to_owned(), "a:1".to_owned()], &flags);
    assert_eq!(
        answers,
        vec![
            Err("Callback evaluation failure: Replay error: unexpected request. Was expecting \
                 OciManifestDigest { image: \"a:1\" }, got OciManifestDigest { image: \"b:1\" } instead"
                .to_owned()),
            Err("Callback evaluation failure: the list of recorded responses is empty".to_owned()),
        ]
    );
}

#[test]
fn credentials_come_from_the_docker_config() {
    let dir = scratch("credentials");
    let Some(registry) = Registry::start_with_credentials(&dir, "alice", "s3cret") else {
        return;
    };
    let pushed = registry.push_image("private/app", "1.0", "private");
    let images = [registry.image("private/app:1.0")];
    let sources = registry.sources.to_str().unwrap();
    let docker_config = |name: &str, auth: Option<&str>| {
        let config = dir.join(name);
        std::fs::create_dir_all(&config).unwrap();
        if let Some(auth) = auth {
            use base64::Engine as _;
            let auth = base64::engine::general_purpose::STANDARD.encode(auth);
            std::fs::write(
                config.join("config.json"),
                json!({ "auths": { &registry.address: { "auth": auth } } }).to_string(),
            )
            .unwrap();
        }
        config.to_str().unwrap().to_owned()
    };
    let answer = |config: &str| {
        same_under_both(
            &dir,
            &images,
            &[
                "--sources-path",
                sources,
                "--docker-config-json-path",
                config,
            ],
        )
        .remove(0)
    };
    assert_eq!(
        answer(&docker_config("good", Some("alice:s3cret"))),
        digest(&pushed)
    );
    for refused in [
        answer(&docker_config("none", None)),
        answer(&docker_config("wrong", Some("alice:wrong"))),
    ] {
        let message = error(&refused);
        assert!(
            message.starts_with("Callback evaluation failure: Fail to interact with OCI registry:"),
            "{message}"
        );
    }
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `policy-server` on 127.0.0.1, killed when dropped.
struct PolicyServer {
    child: std::process::Child,
    port: u16,
}

impl PolicyServer {
    /// Starts the server with a policies file and waits until it is ready.
    fn start(binary: &Path, dir: &Path, policies: &str, sources: &Path) -> PolicyServer {
        let policies_path = dir.join("policies.yml");
        std::fs::write(&policies_path, policies).unwrap();
        let (port, readiness) = (free_port(), free_port());
        let log = std::fs::File::create(dir.join("policy-server.log")).unwrap();
        let child = Command::new(binary)
            .args(["--addr", "127.0.0.1", "--port", &port.to_string()])
            .args(["--readiness-probe-port", &readiness.to_string()])
            .arg("--policies")
            .arg(&policies_path)
            .arg("--policies-download-dir")
            .arg(dir.join("downloads"))
            .arg("--sigstore-cache-dir")
            .arg(dir.join("sigstore"))
            .arg("--sources-path")
            .arg(sources)
            .args([
                "--ignore-kubernetes-connection-failure",
                "--log-level",
                "info",
                "--log-no-color",
            ])
            .env("XDG_CACHE_HOME", dir.join("xdg-cache"))
            .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut server = PolicyServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(COMMAND_TIMEOUT_SECS);
        loop {
            let ready = Command::new("curl")
                .args(["-fsS", "-o", "/dev/null", "--max-time", "2"])
                .arg(format!("http://127.0.0.1:{readiness}/readiness"))
                .stderr(Stdio::null())
                .status()
                .unwrap();
            if ready.success() {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "policy-server exited ({status}): {}",
                    std::fs::read_to_string(dir.join("policy-server.log")).unwrap()
                );
            }
            assert!(Instant::now() < deadline, "policy-server did not get ready");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Posts the test request to a policy; the response's message, as host answers.
    fn answers(&self, policy: &str) -> Vec<HostAnswer> {
        let review = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{REQUEST}}}"#
        );
        let mut command = Command::new("curl");
        command
            .args([
                "-fsS",
                "--max-time",
                "30",
                "-H",
                "Content-Type: application/json",
            ])
            .args(["--data-binary", &review])
            .arg(format!("http://127.0.0.1:{}/validate/{policy}", self.port));
        let out = bounded(command);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let review: Value = serde_json::from_slice(&out.stdout).unwrap();
        let message = review["response"]["status"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message in {review}"));
        host_answers(message)
    }
}

impl Drop for PolicyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The guest, annotated by kwctl (policy-server refuses a module without metadata), declaring
/// the capability it calls.
fn annotated_guest(kwctl: &Path, dir: &Path, images: &[String]) -> PathBuf {
    let guest = write_wasm(
        &format!("digests-{:x}", fxhash(images)),
        VALID_SETTINGS,
        &Validate::ManifestDigests(images.to_vec()),
    );
    let metadata = dir.join("metadata.yml");
    std::fs::write(
        &metadata,
        "rules:\n  - apiGroups: [\"\"]\n    apiVersions: [v1]\n    resources: [pods]\n    \
         operations: [CREATE]\nmutating: false\ncontextAware: false\nexecutionMode: kubewarden-wapc\n\
         backgroundAudit: false\nhostCapabilities: [\"oci/v1/manifest_digest\"]\n\
         annotations:\n  io.kubewarden.policy.title: digest-echo\n",
    )
    .unwrap();
    let annotated = dir.join("annotated-guest.wasm");
    let mut command = Command::new(kwctl);
    command
        .env("XDG_CACHE_HOME", dir.join("xdg-cache"))
        .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
        .arg("annotate")
        .arg("-m")
        .arg(&metadata)
        .arg("-o")
        .arg(&annotated)
        .arg(&guest);
    let out = bounded(command);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    annotated
}

#[test]
fn policy_server_answers_only_a_policy_granted_the_capability() {
    let dir = scratch("policy-server");
    let Some(kwctl) = kwctl() else {
        return;
    };
    let Some(server_binary) = kubewarden_binary("policy-server", "POLICY_SERVER") else {
        unavailable("policy-server not found ($POLICY_SERVER, PATH, ../shared/kubewarden/bin)");
        return;
    };
    let Some(registry) = Registry::start(&dir) else {
        return;
    };
    let pushed = registry.push_image("app", "1.0", "app");
    let images = [registry.image("app:1.0"), registry.image("app:9.9")];
    let module = annotated_guest(&kwctl, &dir, &images);
    let policies = format!(
        "granted:\n  module: file://{module}\n  hostCapabilities: [\"oci/v1/manifest_digest\"]\n\
         not-granted:\n  module: file://{module}\n",
        module = module.display()
    );
    let server = PolicyServer::start(&server_binary, &dir, &policies, &registry.sources);
    let granted = server.answers("granted");
    assert_eq!(granted[0], digest(&pushed));
    let unknown = error(&granted[1]);
    assert!(
        unknown.starts_with("Callback evaluation failure: Fail to interact with OCI registry:")
            && unknown.contains("manifest unknown"),
        "{unknown}"
    );
    // The engine keeps a digest for 60 seconds: a tag moved since is not seen yet.
    let moved = registry.push_image("app", "1.0", "app, moved");
    assert_ne!(moved, pushed);
    let reads = registry.manifest_reads("app", Some("1.0"));
    let unknown_reads = registry.manifest_reads("app", Some("9.9"));
    assert_eq!(server.answers("granted")[0], digest(&pushed));
    assert_eq!(registry.manifest_reads("app", Some("1.0")), reads);
    // A failure is not kept: the unknown tag is asked again (HEAD, then GET).
    assert_eq!(
        registry.manifest_reads("app", Some("9.9")) - unknown_reads,
        2
    );
    // A policy without the grant (the policies file's default) gets the engine's refusal for
    // every call, and the registry is never asked.
    let reads = registry.manifest_reads("app", None);
    let refused = "Policy has not been granted access to the 'oci/v1/manifest_digest' host \
                   capability. The violation has been reported.";
    assert_eq!(
        server.answers("not-granted"),
        vec![Err(refused.to_owned()), Err(refused.to_owned())]
    );
    assert_eq!(registry.manifest_reads("app", None), reads);
    // policy-host, a new process, sees the moved tag; its other answer is the server's.
    let ours = Host::PolicyHost.answers(
        &dir,
        &images,
        &["--sources-path", registry.sources.to_str().unwrap()],
    );
    assert_eq!(ours, vec![digest(&moved), granted[1].clone()]);
}
