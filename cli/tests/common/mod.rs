//! Helpers shared by the integration tests: the policy module, the binary, the fixtures.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The host's test helpers, for the module built from this workspace.
#[path = "../../../host/tests/common/mod.rs"]
mod host_common;

pub const BIN: &str = env!("CARGO_BIN_EXE_image-pull-policy");

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `cli/tests`: the directory the scans run in, so that reports name `fixtures/...`.
pub fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// The module users get (`make policy.wasm`), or, before it is built, the module built from
/// this workspace without wasm-opt: the same code.
pub fn policy_module() -> PathBuf {
    static MODULE: OnceLock<PathBuf> = OnceLock::new();
    MODULE
        .get_or_init(|| {
            let built = workspace_root().join("policy.wasm");
            if built.is_file() {
                return built;
            }
            host_common::policy_module().expect("cannot build the policy module for the tests")
        })
        .clone()
}

/// Runs `image-pull-policy ARGS` in `cli/tests` with `--policy` set.
pub fn scan(args: &[&str]) -> Output {
    let policy = policy_module();
    Command::new(BIN)
        .current_dir(tests_dir())
        .arg("scan")
        .arg("--policy")
        .arg(&policy)
        .args(args)
        .output()
        .unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// A fresh scratch directory under the test target directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Copies a directory tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Every manifest file of the fixture tree, relative to `cli/tests`.
pub fn fixture_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&tests_dir().join("fixtures/manifests"), &mut files);
    files
}

/// Every manifest file of the fixture tree as (its name relative to `cli/tests`, its text).
pub fn fixture_texts() -> Vec<(String, String)> {
    fixture_files()
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(tests_dir())
                .unwrap()
                .display()
                .to_string();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}

/// The settings files of the fixtures; `None` is the default settings.
pub fn fixture_settings() -> Vec<Option<PathBuf>> {
    let dir = tests_dir().join("fixtures/settings");
    let mut settings: Vec<Option<PathBuf>> = [
        "reject.yaml",
        "warn.yaml",
        "gitops-policy.yaml",
        "full-version.yaml",
    ]
    .iter()
    .map(|name| Some(dir.join(name)))
    .collect();
    settings.insert(0, None);
    settings
}

/// Each settings file of [`fixture_settings`] read as `scan --settings` reads it, with the
/// module loaded under those settings.
pub fn fixture_evaluators() -> Vec<(
    image_pull_policy_cli::settings::PolicyConfig,
    image_pull_policy_cli::policy::Evaluator,
)> {
    use image_pull_policy_cli::policy::Evaluator;
    use image_pull_policy_cli::settings::PolicyConfig;
    fixture_settings()
        .iter()
        .map(|settings| {
            let config = match settings {
                Some(path) => PolicyConfig::from_file(path).unwrap(),
                None => PolicyConfig::defaults(),
            };
            let evaluator = Evaluator::new(
                Some(policy_module().as_path()),
                config.settings.clone(),
                &config.source,
            )
            .unwrap();
            (config, evaluator)
        })
        .collect()
}
