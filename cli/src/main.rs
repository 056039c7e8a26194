//! `image-pull-policy scan`: what admission would do with the objects of Kubernetes manifests.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use image_pull_policy_cli::admission::{parse_namespace_labels, Namespaces};
use image_pull_policy_cli::policy::Evaluator;
use image_pull_policy_cli::report::{self, Format};
use image_pull_policy_cli::scan::{scan, ScanRequest};
use image_pull_policy_cli::settings::PolicyConfig;

/// Exit status for unreadable input, invalid settings or a module that cannot be used.
const EXIT_INPUT: u8 = 2;

#[derive(Parser)]
#[command(
    name = "image-pull-policy",
    version,
    about = "The image-pull-policy Kubewarden policy, run over Kubernetes manifests as admission would run it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate every object of the manifests and report what admission would refuse, change or warn about
    #[command(
        after_help = "Exit status: 0 admission would refuse nothing; 1 it would refuse something \
                            (with --strict: also change or warn about something); 2 an input could not be \
                            read or evaluated, the settings are not valid, or a fix could not be written."
    )]
    Scan(ScanArgs),
}

#[derive(Args)]
struct ScanArgs {
    /// Manifest files and directories (searched for *.yaml, *.yml, *.json); "-" for standard input
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<String>,

    /// The policy module (.wasm, annotated or not); by default the one built into this binary
    #[arg(long, value_name = "MODULE")]
    policy: Option<PathBuf>,

    /// The policy's settings as YAML, or a ClusterAdmissionPolicy / AdmissionPolicy manifest
    /// (its spec.settings, and its spec.rules for which kinds are evaluated)
    #[arg(long, value_name = "FILE")]
    settings: Option<PathBuf>,

    /// The labels of a namespace that is not in the input, for a policy's namespaceSelector:
    /// NAMESPACE=key=value,key2=value2 (NAMESPACE= for none but its name); repeatable
    #[arg(long, value_name = "NS=LABELS")]
    namespace_labels: Vec<String>,

    /// Report format
    #[arg(long, value_enum, default_value = "text")]
    format: Format,

    /// Write the report to this file instead of standard output
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Exit 1 also when admission would change an object or warn about it
    #[arg(long)]
    strict: bool,

    /// Write the pull policies mutate mode would set into the files (never digests)
    #[arg(long)]
    fix: bool,
}

fn main() -> ExitCode {
    let Command::Scan(args) = Cli::parse().command;
    match run(&args) {
        Ok(status) => ExitCode::from(status),
        Err(message) => {
            eprintln!("image-pull-policy: {message}");
            ExitCode::from(EXIT_INPUT)
        }
    }
}

fn run(args: &ScanArgs) -> Result<u8, String> {
    if args.fix && args.paths.iter().any(|path| path == "-") {
        return Err("--fix writes into files, not standard input".to_owned());
    }
    let config = match &args.settings {
        Some(path) => PolicyConfig::from_file(path).map_err(|e| e.to_string())?,
        None => PolicyConfig::defaults(),
    };
    let evaluator = Evaluator::new(
        args.policy.as_deref(),
        config.settings.clone(),
        &config.source,
    )
    .map_err(|e| e.to_string())?;
    let mut namespaces = Namespaces::default();
    for text in &args.namespace_labels {
        let (name, labels) = parse_namespace_labels(text)?;
        namespaces.add(&name, labels);
    }
    let report = scan(
        &args.paths,
        &ScanRequest {
            evaluator: &evaluator,
            rules: &config.rules,
            admission: &config.admission,
            namespaces: &namespaces,
            fix: args.fix,
        },
    );
    let context = report::Context {
        strict: args.strict,
        notes: &config.notes,
    };
    let mut text = Vec::new();
    report::write(args.format, &report, &context, &mut text)
        .map_err(|e| format!("cannot write the report: {e}"))?;
    let written = match &args.output {
        Some(path) => std::fs::write(path, &text)
            .map_err(|e| format!("cannot write the report to {}: {e}", path.display())),
        None => std::io::stdout()
            .lock()
            .write_all(&text)
            .map_err(|e| format!("cannot write the report: {e}")),
    };
    written?;
    Ok(report.exit_status(args.strict))
}
