//! The scan benchmark: 10,000 generated workload objects in 1,000 files, scanned by the
//! `image-pull-policy` binary beside this example; prints objects per second and the peak
//! memory of the scanning process, for each report format, as the median of a few rounds.
//!
//!     make scan-bench            (or: scan_bench [FILES] [OBJECTS_PER_FILE] [ROUNDS])
//!
//! The goal is at least 2,000 objects per second on a 2-core machine; it is read from the
//! figures, not asserted.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .expect("FILES OBJECTS_PER_FILE ROUNDS are numbers")
        })
        .collect();
    let files = args.first().copied().unwrap_or(1000);
    let per_file = args.get(1).copied().unwrap_or(10);
    let rounds = args.get(2).copied().unwrap_or(3);

    let exe = std::env::current_exe().expect("own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/examples");
    let binary = profile_dir.join("image-pull-policy");
    assert!(
        binary.is_file(),
        "{} is not built: cargo build --profile host -p image-pull-policy-cli --bins --examples",
        binary.display()
    );
    let tree = profile_dir.join("scan-bench");
    let bytes = generate(&tree, files, per_file);
    let objects = files * per_file;
    println!(
        "{objects} objects in {files} files ({:.1} MB of YAML), {} cores, median of {rounds} rounds",
        bytes as f64 / 1e6,
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    for format in ["text", "sarif"] {
        let mut seconds = Vec::new();
        let mut peak_kib = Vec::new();
        for _ in 0..rounds {
            let (elapsed, kib) = run(&binary, &tree, format);
            seconds.push(elapsed);
            peak_kib.push(kib);
        }
        seconds.sort_by(f64::total_cmp);
        peak_kib.sort_unstable();
        let median = seconds[seconds.len() / 2];
        println!(
            "--format {format:5}: {:8.0} objects/s ({median:.2} s), peak RSS {:.1} MiB",
            objects as f64 / median,
            peak_kib[peak_kib.len() / 2] as f64 / 1024.0
        );
    }
    std::fs::remove_dir_all(&tree).expect("remove the generated tree");
}

/// Scans the tree once; wall time and the peak resident memory of the scan process.
fn run(binary: &Path, tree: &Path, format: &str) -> (f64, i64) {
    let started = Instant::now();
    let status = Command::new(binary)
        .args(["scan", "--format", format])
        .arg(tree)
        .stdout(Stdio::null())
        .status()
        .expect("cannot run image-pull-policy");
    let elapsed = started.elapsed().as_secs_f64();
    // The generated objects include refusals: exit 1 is the expected answer.
    assert_eq!(status.code(), Some(1), "scan failed");
    (elapsed, children_peak_rss_kib())
}

/// The largest peak RSS of any waited-for child so far (Linux reports KiB).
fn children_peak_rss_kib() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given.
    let usage = unsafe {
        assert_eq!(
            libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()),
            0
        );
        usage.assume_init()
    };
    usage.ru_maxrss
}

/// Writes `files` files of `per_file` workload objects each; returns the bytes written.
fn generate(tree: &Path, files: usize, per_file: usize) -> usize {
    let _ = std::fs::remove_dir_all(tree);
    let mut bytes = 0;
    for file in 0..files {
        let dir: PathBuf = tree.join(format!("team-{}", file % 20));
        std::fs::create_dir_all(&dir).expect("create the tree");
        let mut text = String::new();
        for object in 0..per_file {
            let index = file * per_file + object;
            text.push_str("---\n");
            text.push_str(&workload(index));
        }
        bytes += text.len();
        std::fs::write(dir.join(format!("app-{file}.yaml")), text).expect("write a manifest");
    }
    bytes
}

/// A workload of one of the evaluated kinds: compliant, to be changed, or refused.
fn workload(index: usize) -> String {
    let (api_version, kind, spec_prefix) = match index % 5 {
        0 => ("v1", "Pod", ""),
        1 => ("apps/v1", "Deployment", "template"),
        2 => ("apps/v1", "StatefulSet", "template"),
        3 => ("batch/v1", "CronJob", "cronjob"),
        _ => ("apps/v1", "DaemonSet", "template"),
    };
    let (image, policy) = match index % 7 {
        0 => ("busybox", "Always"), // refused: no tag
        1..=3 => ("registry.example.com/app:1.4.2", "IfNotPresent"), // changed
        _ => ("registry.example.com/app:1.4.2", "Always"), // accepted
    };
    let mut pod_spec = String::new();
    let indent = match spec_prefix {
        "" => "",
        "template" => "    ",
        _ => "        ",
    };
    let _ = writeln!(pod_spec, "{indent}  containers:");
    for (n, container) in ["app", "sidecar"].iter().enumerate() {
        let _ = writeln!(pod_spec, "{indent}    - name: {container}");
        let _ = writeln!(
            pod_spec,
            "{indent}      image: {}",
            if n == 0 {
                image
            } else {
                "registry.example.com/sidecar:2.0"
            }
        );
        let _ = writeln!(pod_spec, "{indent}      imagePullPolicy: {policy}");
        let _ = writeln!(
            pod_spec,
            "{indent}      ports: [{{containerPort: {}}}]",
            8080 + n
        );
    }
    let body = match spec_prefix {
        "" => format!("spec:\n{pod_spec}"),
        "template" => format!(
            "spec:\n  selector:\n    matchLabels: {{app: app-{index}}}\n  template:\n    metadata:\n      labels: {{app: app-{index}}}\n    spec:\n{pod_spec}"
        ),
        _ => format!(
            "spec:\n  schedule: \"0 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n{pod_spec}"
        ),
    };
    format!(
        "apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: app-{index}\n  namespace: team-{}\n  labels:\n    app.kubernetes.io/name: app-{index}\n{body}",
        index % 20
    )
}
