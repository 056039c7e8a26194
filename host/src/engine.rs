//! Loading a policy module and running it through waPC, as policy-evaluator does.
//!
//! The module is compiled once into a `wasmtime::Module` and pre-linked into a
//! `WasmtimeEngineProviderPre` (an `InstancePre` with the WASI and waPC imports resolved).
//! Every [`Instance`] is then made the way policy-evaluator's `WapcStack::new_from_pre` makes
//! one for each request the policy server handles: `rehydrate` a provider from the pre-linked
//! module, and hand it to `wapc::WapcHost::new`, which instantiates the module and runs its
//! waPC start functions (`_start`, `wapc_init`).

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use wasmtime_provider::wasmtime;
use wasmtime_provider::{EpochDeadlines, WasmtimeEngineProviderBuilder, WasmtimeEngineProviderPre};

use crate::admission::{
    decode_settings_response, decode_validation_response, settings_payload, validate_payload,
    AdmissionRequest, AdmissionResponse, InvalidAnswer, SettingsValidationResponse,
};
use crate::capabilities::HostCapabilities;

/// How a policy failed to give a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The module could not be compiled or linked.
    #[error("cannot load the policy module: {0:#}")]
    Load(anyhow::Error),
    /// No instance could be made: the waPC start functions (`_start`, `wapc_init`) failed.
    /// Worded as policy-evaluator words it.
    #[error("unable to rehydrate wapc module: {0}")]
    Init(String),
    /// The guest trapped, returned a waPC error, or the call failed otherwise.
    #[error("the policy failed while running `{function}`: {}", describe_call_failure(.source))]
    Call {
        function: String,
        source: wapc::errors::Error,
    },
    /// The guest answered, but not with the JSON document the protocol asks for.
    #[error(transparent)]
    InvalidAnswer(#[from] InvalidAnswer),
    /// The guest's answer cannot be turned into an AdmissionResponse.
    #[error("{0:#}")]
    InvalidResponse(anyhow::Error),
}

impl PolicyError {
    /// What policy-evaluator says of this failure of `validate`, after `internal server error: `
    /// (`kwctl run` prints that rejection, policy-server sends it).
    pub fn evaluator_message(&self) -> String {
        match self {
            PolicyError::Call { source, .. } => source.to_string(),
            PolicyError::InvalidAnswer(answer) => {
                format!("invalid response from policy: {}", answer.cause)
            }
            PolicyError::InvalidResponse(error) => format!("invalid response format: {error:#}"),
            other => other.to_string(),
        }
    }

    /// What policy-evaluator says of this failure of `validate_settings`: it reports the
    /// settings as not valid with this message.
    pub fn settings_message(&self) -> String {
        match self {
            PolicyError::Call { source, .. } => {
                format!("Error invoking settings validation callback: {source:?}")
            }
            PolicyError::InvalidAnswer(answer) => {
                format!("error: InvalidResponseWithError({:?})", answer.cause)
            }
            other => other.to_string(),
        }
    }
}

/// The guest's own message, without waPC's prefix; a trap says what it is.
fn describe_call_failure(error: &wapc::errors::Error) -> String {
    match error {
        // wasmtime-provider keeps only the Display of a trap, which is the wasm backtrace; say
        // what it is. A panicking Rust policy ends this way, after printing its panic message
        // on the inherited stderr.
        wapc::errors::Error::GuestCallFailure(message) if message.contains("wasm backtrace") => {
            format!("the module trapped (a panicking Rust policy ends this way, its message is printed above): {message}")
        }
        wapc::errors::Error::GuestCallFailure(message) => message.clone(),
        other => other.to_string(),
    }
}

/// What the host does when a module makes a waPC host call.
#[derive(Clone, Default)]
pub struct HostCallOptions {
    /// Print the records the policy sends to `kubewarden/tracing/log` on stderr.
    pub show_logs: bool,
    /// The capabilities the policy may call and where their answers come from.
    pub capabilities: Arc<HostCapabilities>,
}

/// Answers the waPC host calls of a policy.
///
/// `kubewarden/tracing/log` succeeds with an empty answer, like policy-evaluator's
/// `host_callback` (the SDK's log drain panics when this call fails), and is never gated.
/// Every other call goes to [`HostCapabilities`]: `oci/v1/manifest_digest` is answered as the
/// engine answers it; the others (DNS, crypto, Kubernetes, sigstore) fail with a message the
/// guest receives as the host error, and the guest decides what to do.
pub fn host_callback(options: HostCallOptions) -> Box<wapc::HostCallback> {
    Box::new(
        move |_id: u64,
              binding: &str,
              namespace: &str,
              operation: &str,
              payload: &[u8]|
              -> std::result::Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
            match (binding, namespace, operation) {
                ("kubewarden", "tracing", "log") => {
                    if options.show_logs {
                        let mut stderr = std::io::stderr().lock();
                        let _ = stderr.write_all(b"policy log: ");
                        let _ = stderr.write_all(payload);
                        let _ = stderr.write_all(b"\n");
                    }
                    Ok(Vec::new())
                }
                _ => Ok(options
                    .capabilities
                    .call(binding, namespace, operation, payload)?),
            }
        },
    )
}

/// Engine settings.
#[derive(Clone, Default)]
pub struct EngineOptions {
    /// Interrupt guest code after this many seconds, as the policy server's `--policy-timeout`
    /// does (wasmtime epoch interruption, one tick a second). `None`: no interruption, as
    /// `kwctl run` and `kwctl bench`.
    pub policy_timeout_secs: Option<u64>,
    pub host_calls: HostCallOptions,
}

/// A compiled and pre-linked policy module, ready to make instances.
pub struct Policy {
    engine: wasmtime::Engine,
    pre: WasmtimeEngineProviderPre,
    options: EngineOptions,
    compile_time: Duration,
    module_size: usize,
    ticker: Option<Ticker>,
}

impl Policy {
    /// Compiles `bytes` and pre-links the module.
    pub fn new(bytes: &[u8], options: EngineOptions) -> Result<Policy, PolicyError> {
        let mut config = wasmtime::Config::new();
        // `perf` names the module's functions from /tmp/perf-PID.map (docs/performance.md).
        if std::env::var_os("POLICY_HOST_PERF_MAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        if options.policy_timeout_secs.is_some() {
            config.epoch_interruption(true);
        }
        let engine = wasmtime::Engine::new(&config).map_err(|e| {
            PolicyError::Load(anyhow!(e).context("cannot create the wasmtime engine"))
        })?;
        let started = Instant::now();
        let module = wasmtime::Module::new(&engine, bytes)
            .map_err(|e| PolicyError::Load(anyhow!(e).context("cannot compile the module")))?;
        let pre = WasmtimeEngineProviderBuilder::new()
            .engine(engine.clone())
            .module(module)
            .build_pre()
            .map_err(|e| PolicyError::Load(anyhow!(e).context("cannot link the module")))?;
        let compile_time = started.elapsed();
        let ticker = options
            .policy_timeout_secs
            .map(|_| Ticker::start(engine.clone()));
        Ok(Policy {
            engine,
            pre,
            options,
            compile_time,
            module_size: bytes.len(),
            ticker,
        })
    }

    /// Reads and loads a module file.
    pub fn from_file(path: &std::path::Path, options: EngineOptions) -> Result<Policy> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the policy module {}", path.display()))?;
        Ok(Policy::new(&bytes, options)?)
    }

    /// Time spent compiling and pre-linking the module.
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }

    /// Size of the module file in bytes.
    pub fn module_size(&self) -> usize {
        self.module_size
    }

    /// The wasmtime engine the module was compiled with.
    pub fn engine(&self) -> &wasmtime::Engine {
        &self.engine
    }

    /// A new instance, initialized (waPC start functions run), as the policy server makes one
    /// for each request.
    pub fn instantiate(&self) -> Result<Instance, PolicyError> {
        let deadlines = self.options.policy_timeout_secs.map(|secs| EpochDeadlines {
            wapc_init: secs,
            wapc_func: secs,
        });
        let provider = self
            .pre
            .rehydrate(deadlines)
            .map_err(|e| PolicyError::Init(format!("cannot build Wasmtime engine: {e}")))?;
        let host = wapc::WapcHost::new(
            Box::new(provider),
            Some(host_callback(self.options.host_calls.clone())),
        )
        .map_err(|e| PolicyError::Init(format!("cannot build Wapc host: {e}")))?;
        Ok(Instance { host })
    }
}

impl Drop for Policy {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.stop();
        }
    }
}

/// Advances the engine's epoch once a second while the policy lives.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Ticker {
    fn start(engine: wasmtime::Engine) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut last = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                if last.elapsed() >= Duration::from_secs(1) {
                    engine.increment_epoch();
                    last = Instant::now();
                }
            }
        });
        Ticker { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// One instance of a policy module.
pub struct Instance {
    host: wapc::WapcHost,
}

impl Instance {
    /// Calls a waPC function of the guest.
    pub fn call(&self, function: &str, payload: &[u8]) -> Result<Vec<u8>, PolicyError> {
        self.host
            .call(function, payload)
            .map_err(|source| PolicyError::Call {
                function: function.to_owned(),
                source,
            })
    }

    /// Runs `validate_settings` with the settings' JSON.
    pub fn validate_settings(
        &self,
        settings: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<SettingsValidationResponse, PolicyError> {
        let answer = self.call("validate_settings", &settings_payload(settings))?;
        Ok(decode_settings_response(&answer)?)
    }

    /// Runs `validate` with an already-built payload and turns the answer into the
    /// AdmissionResponse policy-evaluator would give.
    pub fn validate_payload(
        &self,
        request: &AdmissionRequest,
        payload: &[u8],
    ) -> Result<AdmissionResponse, PolicyError> {
        let answer = self.call("validate", payload)?;
        let response = decode_validation_response(&answer)?;
        AdmissionResponse::from_validation_response(&request.uid, request.object.as_ref(), response)
            .map_err(PolicyError::InvalidResponse)
    }

    /// Builds the payload for `request` and `settings`, and validates it: the whole of what
    /// policy-evaluator does for one request.
    pub fn validate(
        &self,
        request: &AdmissionRequest,
        settings: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<AdmissionResponse, PolicyError> {
        let payload = validate_payload(request, settings);
        self.validate_payload(request, &payload)
    }
}
