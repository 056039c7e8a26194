//! `policy-host run` and `policy-host bench`: `kwctl run` / `kwctl bench` for a local
//! Kubewarden waPC policy module, without the network, the registry or the Kubernetes client.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context as _};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Map, Value};

use policy_host::admission::{self, AdmissionRequest, AdmissionResponse};
use policy_host::bench::{self, BenchInput, Mode, Subject};
use policy_host::capabilities::{HostCapabilities, HostCapabilityArgs};
use policy_host::engine::{EngineOptions, HostCallOptions, Policy, PolicyError};
use policy_host::{EXIT_INPUT, EXIT_INVALID_SETTINGS, EXIT_OK, EXIT_POLICY_FAILURE};

#[derive(Parser)]
#[command(
    name = "policy-host",
    version,
    about = "Run or time a Kubewarden waPC policy module the way kwctl and the policy server do",
    after_help = "Exit status: 0 the module answered (accepted, rejected or mutated); 1 unusable input \
                  (request, settings or module file) or settings the policy says are not valid, as \
                  kwctl run; 2 bad command line; 4 (bench only) the module failed (trap, waPC error, \
                  answer that is not the expected JSON). Like kwctl run, run answers such a failure \
                  with a rejection (code 500), and reports a failure of validate_settings as settings \
                  that are not valid."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the settings, evaluate one request and print the AdmissionResponse, like `kwctl run`
    Run(RunArgs),
    /// Time `validate` on one instance (warm) and on a new instance per request (fresh)
    Bench(BenchArgs),
}

#[derive(Args)]
struct Common {
    /// File with the AdmissionRequest, or a whole AdmissionReview ("-" for stdin)
    #[arg(short = 'r', long)]
    request_path: String,

    /// Policy settings as JSON
    #[arg(long, conflicts_with = "settings_path")]
    settings_json: Option<String>,

    /// File with the policy settings, YAML or JSON (`-s`, as in kwctl)
    #[arg(short = 's', long)]
    settings_path: Option<PathBuf>,

    /// Interrupt the policy after this many seconds, like the policy server's --policy-timeout
    /// (wasmtime epoch interruption). Off by default, as in kwctl
    #[arg(long, value_name = "SECONDS")]
    policy_timeout: Option<u64>,

    #[command(flatten)]
    host_capabilities: HostCapabilityArgs,

    /// The policy module (.wasm)
    policy: PathBuf,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    common: Common,

    /// Print what the policy logs through kubewarden/tracing/log on stderr
    #[arg(long)]
    show_logs: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    Warm,
    Fresh,
    Both,
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    common: Common,

    /// Which way to run the policy
    #[arg(long, value_enum, default_value = "both")]
    mode: ModeArg,

    /// Timed iterations per mode
    #[arg(long, default_value_t = 1000)]
    iterations: usize,

    /// Untimed iterations before timing, per mode
    #[arg(long, default_value_t = 100)]
    warmup: usize,

    /// Print one JSON object per mode, module and line instead of the readable lines
    #[arg(long)]
    json: bool,

    /// Before each call, write through this many MiB of memory, so that the module runs with
    /// cold caches, as in a policy server busy with other requests and policies (0: off; 32
    /// is past this machine's last-level cache)
    #[arg(long, value_name = "MIB", default_value_t = 0)]
    cold_cache_mib: usize,

    /// Another module to time with the same request and settings (repeatable), for example a
    /// baseline. The modules take turns call by call, so noise on the machine touches all alike;
    /// results come in the order the modules were given, the policy first
    #[arg(long = "baseline", value_name = "MODULE")]
    baselines: Vec<PathBuf>,
}

/// An error and the exit status it maps to.
struct Failure {
    code: i32,
    error: anyhow::Error,
}

impl Failure {
    fn input(error: anyhow::Error) -> Failure {
        Failure {
            code: EXIT_INPUT,
            error,
        }
    }
}

impl From<PolicyError> for Failure {
    fn from(error: PolicyError) -> Failure {
        // kwctl exits 1 when it cannot make an instance; `run` answers every later failure as
        // kwctl does, so the module failing is an exit status of `bench` alone.
        let code = match error {
            PolicyError::Load(_) | PolicyError::Init(_) => EXIT_INPUT,
            _ => EXIT_POLICY_FAILURE,
        };
        Failure {
            code,
            error: error.into(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Bench(args) => run_bench(args),
    };
    match result {
        Ok(()) => ExitCode::from(EXIT_OK as u8),
        Err(failure) => {
            eprintln!("Error: {:#}", failure.error);
            ExitCode::from(failure.code as u8)
        }
    }
}

/// Request, settings and module, read and checked.
struct Loaded {
    request: AdmissionRequest,
    settings: Map<String, Value>,
    policy: Policy,
    /// What the policy was loaded with, for any other module to load alike.
    options: EngineOptions,
}

fn load(common: &Common, show_logs: bool) -> Result<Loaded, Failure> {
    let text = read_request(&common.request_path).map_err(Failure::input)?;
    let (request, _source) = admission::parse_request_str(&text).map_err(Failure::input)?;
    let settings = read_settings(common).map_err(Failure::input)?;
    let capabilities =
        HostCapabilities::new(&common.host_capabilities).map_err(|e| Failure::input(e.into()))?;
    let options = EngineOptions {
        policy_timeout_secs: common.policy_timeout,
        host_calls: HostCallOptions {
            show_logs,
            capabilities: capabilities.into(),
        },
    };
    let policy = Policy::from_file(&common.policy, options.clone()).map_err(Failure::input)?;
    Ok(Loaded {
        request,
        settings,
        policy,
        options,
    })
}

fn read_request(path: &str) -> anyhow::Result<String> {
    if path == "-" {
        let mut buffer = String::new();
        std::io::stdin()
            .read_to_string(&mut buffer)
            .map_err(|e| anyhow!("Error reading request from stdin: {e}"))?;
        Ok(buffer)
    } else {
        std::fs::read_to_string(path).map_err(|e| anyhow!("Error opening request file {path}; {e}"))
    }
}

fn read_settings(common: &Common) -> anyhow::Result<Map<String, Value>> {
    if let Some(path) = &common.settings_path {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("Cannot open settings file {}: {e}", path.display()))?;
        admission::settings_from_yaml(&text, &path.display().to_string())
    } else if let Some(json) = &common.settings_json {
        admission::settings_from_json(json)
    } else {
        Ok(Map::new())
    }
}

/// Runs `validate_settings`. As in kwctl, a module that fails to answer it (a trap, an answer
/// that is not JSON) has settings that are not valid, with policy-evaluator's message.
fn check_settings(
    instance: &policy_host::engine::Instance,
    settings: &Map<String, Value>,
) -> Result<(), Failure> {
    let message = match instance.validate_settings(settings) {
        Ok(answer) if answer.valid => return Ok(()),
        Ok(answer) => answer.message.unwrap_or_default(),
        Err(error) => error.settings_message(),
    };
    Err(Failure {
        code: EXIT_INVALID_SETTINGS,
        error: anyhow!("Provided settings are not valid: {message}"),
    })
}

fn run(args: RunArgs) -> Result<(), Failure> {
    let loaded = load(&args.common, args.show_logs)?;
    // One instance for both calls, as kwctl run does.
    let instance = loaded.policy.instantiate()?;
    check_settings(&instance, &loaded.settings)?;
    let response = instance.validate(&loaded.request, &loaded.settings);
    finish_host_capabilities(&loaded.options)?;
    // A policy that fails to answer is a rejection, as policy-evaluator makes it.
    let response = response.unwrap_or_else(|error| {
        AdmissionResponse::internal_server_error(&loaded.request.uid, &error.evaluator_message())
    });
    println!("{}", response.to_line());
    Ok(())
}

/// Writes a recorded session (also after a failed evaluation), and warns of recorded calls
/// that a replay left unused.
fn finish_host_capabilities(options: &EngineOptions) -> Result<(), Failure> {
    match options.host_calls.capabilities.finish() {
        Ok(Some(warning)) => eprintln!("Warning: {warning}"),
        Ok(None) => {}
        Err(error) => return Err(Failure::input(error.into())),
    }
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn run_bench(args: BenchArgs) -> Result<(), Failure> {
    if args.iterations == 0 {
        return Err(Failure::input(anyhow!("--iterations must be at least 1")));
    }
    let loaded = load(&args.common, false)?;
    let mut subjects = vec![Subject {
        policy: loaded.policy,
        name: file_name(&args.common.policy),
    }];
    for path in &args.baselines {
        subjects.push(Subject {
            policy: Policy::from_file(path, loaded.options.clone()).map_err(Failure::input)?,
            name: file_name(path),
        });
    }
    for subject in &subjects {
        check_settings(&subject.policy.instantiate()?, &loaded.settings)?;
    }
    let request_name = if args.common.request_path == "-" {
        "stdin".to_owned()
    } else {
        file_name(Path::new(&args.common.request_path))
    };
    if !args.json {
        for Subject { policy, name } in &subjects {
            println!(
                "{name}: {} bytes, compiled and linked in {:.1} ms (not counted in the timings)",
                policy.module_size(),
                policy.compile_time().as_secs_f64() * 1e3
            );
        }
    }
    let input = BenchInput {
        subjects: &subjects,
        request: &loaded.request,
        settings: &loaded.settings,
        request_name,
        iterations: args.iterations,
        warmup: args.warmup,
        cold_cache_bytes: args.cold_cache_mib << 20,
    };
    let modes: &[Mode] = match args.mode {
        ModeArg::Warm => &[Mode::Warm],
        ModeArg::Fresh => &[Mode::Fresh],
        ModeArg::Both => &[Mode::Warm, Mode::Fresh],
    };
    for mode in modes {
        let results = bench::run_mode(&input, *mode)
            .with_context(|| format!("{} benchmark failed", mode.name()))
            .map_err(|error| Failure {
                code: EXIT_POLICY_FAILURE,
                error,
            })?;
        for result in results {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string(&result).expect("a result always serializes")
                );
            } else {
                println!("{}", result.line());
            }
        }
    }
    if !args.json {
        if let Some(kib) = peak_rss_kib() {
            println!("peak RSS of this process: {kib} KiB");
        }
    }
    finish_host_capabilities(&loaded.options)
}

/// The process's peak resident memory (Linux `VmHWM`), for the benchmark's memory figures.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
