//! Timing `validate` in the two ways a policy runs.
//!
//! * warm: one instance answers every request (what `kwctl bench` measures);
//! * fresh: each request gets a new instance made from the pre-linked module, as the policy
//!   server does. The module is compiled once, before timing; each timed iteration makes the
//!   instance (store, WASI context, instantiation, waPC start functions), validates, and drops
//!   the instance, and the three parts are timed apart too.
//!
//! Only the module's share is timed: the payload is written once before timing, and decoding
//! the answer (and the JSON patch of a mutation, which the host computes) happens after it,
//! so a module that mutates is not charged for the host's diff.
//!
//! Several modules can be timed in one run (a policy and its baselines): they take turns call
//! by call, so what disturbs the machine for a moment disturbs each of them alike.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::admission::{
    decode_validation_response, validate_payload, AdmissionRequest, AdmissionResponse,
};
use crate::engine::{Instance, Policy, PolicyError};

/// The two ways of running a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Warm,
    Fresh,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Warm => "warm",
            Mode::Fresh => "fresh",
        }
    }
}

/// Summary of the per-iteration times, in microseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stats {
    pub min_us: f64,
    pub median_us: f64,
    pub mean_us: f64,
    pub p90_us: f64,
    pub max_us: f64,
}

impl Stats {
    /// Summarizes a non-empty set of samples.
    pub fn from_samples(samples: &[Duration]) -> Stats {
        assert!(!samples.is_empty(), "no samples");
        let mut us: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        us.sort_by(f64::total_cmp);
        let n = us.len();
        let median = if n % 2 == 1 {
            us[n / 2]
        } else {
            (us[n / 2 - 1] + us[n / 2]) / 2.0
        };
        // nearest-rank percentile
        let p90 = us[((n as f64 * 0.9).ceil() as usize).clamp(1, n) - 1];
        Stats {
            min_us: us[0],
            median_us: median,
            mean_us: us.iter().sum::<f64>() / n as f64,
            p90_us: p90,
            max_us: us[n - 1],
        }
    }
}

/// Medians of the three parts of a fresh-mode call, in microseconds: making the instance
/// (store, WASI context, instantiation, waPC start functions), the `validate` call, and
/// dropping the instance. The first and last are mostly wasmtime's and the kernel's share.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Phases {
    pub instantiate_median_us: f64,
    pub call_median_us: f64,
    pub teardown_median_us: f64,
}

/// One mode's result for one module, also the `--json` line.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    pub request: String,
    pub module: String,
    pub module_bytes: usize,
    pub mode: Mode,
    pub iterations: usize,
    pub warmup: usize,
    pub compile_ms: f64,
    /// `allowed` of the AdmissionResponse, to see at a glance what was measured.
    pub allowed: bool,
    /// Whether the response carried a patch.
    pub mutated: bool,
    #[serde(flatten)]
    pub stats: Stats,
    /// Fresh mode only.
    #[serde(flatten)]
    pub phases: Option<Phases>,
}

impl BenchResult {
    /// The human-readable line.
    pub fn line(&self) -> String {
        let outcome = match (self.allowed, self.mutated) {
            (true, true) => "mutated",
            (true, false) => "accepted",
            (false, _) => "rejected",
        };
        let phases = self.phases.as_ref().map_or(String::new(), |p| {
            format!(
                " | instantiate {:.1} µs  call {:.1} µs  teardown {:.1} µs (medians)",
                p.instantiate_median_us, p.call_median_us, p.teardown_median_us
            )
        });
        format!(
            "{mode:<5} {request} | {module} ({bytes} B) | {outcome} | median {median:.1} µs  mean {mean:.1} µs  min {min:.1} µs  p90 {p90:.1} µs  max {max:.1} µs{phases} | {it} iterations after {wu} warm-up",
            mode = self.mode.name(),
            request = self.request,
            module = self.module,
            bytes = self.module_bytes,
            median = self.stats.median_us,
            mean = self.stats.mean_us,
            min = self.stats.min_us,
            p90 = self.stats.p90_us,
            max = self.stats.max_us,
            it = self.iterations,
            wu = self.warmup,
        )
    }
}

/// A module to time, and the name its results carry.
pub struct Subject {
    pub policy: Policy,
    pub name: String,
}

/// What to benchmark: one request, evaluated by every subject.
pub struct BenchInput<'a> {
    pub subjects: &'a [Subject],
    pub request: &'a AdmissionRequest,
    pub settings: &'a Map<String, Value>,
    pub request_name: String,
    pub iterations: usize,
    pub warmup: usize,
    /// Bytes written through before each call (not timed), to evict the caches.
    pub cold_cache_bytes: usize,
}

/// One timed evaluation.
struct Sample {
    total: Duration,
    /// instantiate, call, teardown (fresh mode)
    phases: Option<[Duration; 3]>,
}

/// Runs one mode for every subject: `warmup` untimed iterations, then `iterations` timed ones.
///
/// The subjects take turns call by call, each iteration starting with the next one, so that
/// noise on the machine (another process, a frequency change) falls on all of them alike and
/// their figures can be compared.
///
/// Every response of a subject must equal its first one: a policy that answers differently
/// from one call to the next (or fails) stops the benchmark.
pub fn run_mode(input: &BenchInput<'_>, mode: Mode) -> Result<Vec<BenchResult>> {
    if input.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    let subjects = input.subjects;
    let payload = validate_payload(input.request, input.settings);
    let answer = |raw: Result<Vec<u8>, PolicyError>| -> Result<AdmissionResponse, PolicyError> {
        let response = decode_validation_response(&raw?)?;
        AdmissionResponse::from_validation_response(
            &input.request.uid,
            input.request.object.as_ref(),
            response,
        )
        .map_err(PolicyError::InvalidResponse)
    };
    // Warm mode: one instance per module answers every request.
    let warm: Vec<Instance> = match mode {
        Mode::Warm => subjects
            .iter()
            .map(|subject| subject.policy.instantiate())
            .collect::<Result<_, _>>()?,
        Mode::Fresh => Vec::new(),
    };
    let evicting = std::cell::RefCell::new(vec![0u8; input.cold_cache_bytes]);
    let evaluate = |k: usize| -> (Sample, Result<Vec<u8>, PolicyError>) {
        // One write per cache line.
        for byte in evicting.borrow_mut().iter_mut().step_by(64) {
            *byte = byte.wrapping_add(1);
        }
        std::hint::black_box(&evicting);
        let started = Instant::now();
        let whole = |raw| {
            let total = started.elapsed();
            (
                Sample {
                    total,
                    phases: None,
                },
                raw,
            )
        };
        if let Some(instance) = warm.get(k) {
            return whole(instance.call("validate", &payload));
        }
        let instance = match subjects[k].policy.instantiate() {
            Ok(instance) => instance,
            Err(error) => return whole(Err(error)),
        };
        let made = Instant::now();
        let raw = instance.call("validate", &payload);
        let called = Instant::now();
        drop(instance);
        let done = Instant::now();
        let sample = Sample {
            total: done - started,
            phases: Some([made - started, called - made, done - called]),
        };
        (sample, raw)
    };
    let named = |k: usize| format!("module {}", subjects[k].name);

    let firsts = (0..subjects.len())
        .map(|k| answer(evaluate(k).1).with_context(|| named(k)))
        .collect::<Result<Vec<_>>>()?;
    for _ in 0..input.warmup {
        for (k, first) in firsts.iter().enumerate() {
            check(first, answer(evaluate(k).1)).with_context(|| named(k))?;
        }
    }
    let mut samples: Vec<Vec<Sample>> = subjects
        .iter()
        .map(|_| Vec::with_capacity(input.iterations))
        .collect();
    for iteration in 0..input.iterations {
        for turn in 0..subjects.len() {
            let k = (iteration + turn) % subjects.len();
            let (sample, raw) = evaluate(k);
            samples[k].push(sample);
            check(&firsts[k], answer(raw)).with_context(|| named(k))?;
        }
    }
    Ok(subjects
        .iter()
        .zip(firsts)
        .zip(samples)
        .map(|((subject, first), samples)| {
            let totals: Vec<Duration> = samples.iter().map(|s| s.total).collect();
            let phases = (mode == Mode::Fresh).then(|| {
                let median = |part: usize| {
                    let parts: Vec<Duration> = samples
                        .iter()
                        .filter_map(|s| s.phases.map(|p| p[part]))
                        .collect();
                    Stats::from_samples(&parts).median_us
                };
                Phases {
                    instantiate_median_us: median(0),
                    call_median_us: median(1),
                    teardown_median_us: median(2),
                }
            });
            BenchResult {
                request: input.request_name.clone(),
                module: subject.name.clone(),
                module_bytes: subject.policy.module_size(),
                mode,
                iterations: input.iterations,
                warmup: input.warmup,
                compile_ms: subject.policy.compile_time().as_secs_f64() * 1e3,
                allowed: first.allowed,
                mutated: first.patch.is_some(),
                stats: Stats::from_samples(&totals),
                phases,
            }
        })
        .collect())
}

fn check(
    first: &AdmissionResponse,
    response: Result<AdmissionResponse, PolicyError>,
) -> Result<()> {
    let response = response?;
    if &response != first {
        bail!(
            "the policy answered differently from one call to the next:\n  first: {}\n  later: {}",
            first.to_line(),
            response.to_line()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_micros(*v)).collect()
    }

    #[test]
    fn stats_of_odd_and_even_sample_counts() {
        let s = Stats::from_samples(&us(&[5, 1, 3]));
        assert_eq!((s.min_us, s.median_us, s.max_us), (1.0, 3.0, 5.0));
        assert!((s.mean_us - 3.0).abs() < 1e-9);
        let s = Stats::from_samples(&us(&[4, 1, 3, 2]));
        assert_eq!(s.median_us, 2.5);
        let s = Stats::from_samples(&us(&(1..=10).collect::<Vec<_>>()));
        assert_eq!(s.p90_us, 9.0);
    }

    #[test]
    fn result_line_and_json_carry_names_sizes_and_medians() {
        let result = BenchResult {
            request: "pod.json".into(),
            module: "policy.wasm".into(),
            module_bytes: 1234,
            mode: Mode::Fresh,
            iterations: 10,
            warmup: 2,
            compile_ms: 5.0,
            allowed: false,
            mutated: false,
            stats: Stats::from_samples(&us(&[10, 20, 30])),
            phases: None,
        };
        let line = result.line();
        assert!(
            line.starts_with("fresh pod.json | policy.wasm (1234 B) | rejected | median 20.0 µs")
        );
        let json: Value = serde_json::to_value(&result).unwrap();
        assert_eq!(json["mode"], "fresh");
        assert_eq!(json["module_bytes"], 1234);
        assert_eq!(json["median_us"], 20.0);
        assert_eq!(json["request"], "pod.json");
    }
}
