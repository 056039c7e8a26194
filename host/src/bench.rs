//! Timing `validate` in the two ways a policy runs.
//!
//! * warm: one instance answers every request (what `kwctl bench` measures);
//! * fresh: each request gets a new instance made from the pre-linked module, as the policy
//!   server does. The module is compiled once, before timing; each timed iteration makes the
//!   instance (store, WASI context, instantiation, waPC start functions), validates, and drops
//!   the instance.
//!
//! Only the module's share is timed: the payload is written once before timing, and decoding
//! the answer (and the JSON patch of a mutation, which the host computes) happens after it,
//! so a module that mutates is not charged for the host's diff.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
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

/// One mode's result, also the `--json` line.
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
}

impl BenchResult {
    /// The human-readable line.
    pub fn line(&self) -> String {
        let outcome = match (self.allowed, self.mutated) {
            (true, true) => "mutated",
            (true, false) => "accepted",
            (false, _) => "rejected",
        };
        format!(
            "{mode:<5} {request} | {module} ({bytes} B) | {outcome} | median {median:.1} µs  mean {mean:.1} µs  min {min:.1} µs  p90 {p90:.1} µs  max {max:.1} µs | {it} iterations after {wu} warm-up",
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

/// What to benchmark.
pub struct BenchInput<'a> {
    pub policy: &'a Policy,
    pub request: &'a AdmissionRequest,
    pub settings: &'a Map<String, Value>,
    pub request_name: String,
    pub module_name: String,
    pub iterations: usize,
    pub warmup: usize,
}

/// Runs one mode: `warmup` untimed iterations, then `iterations` timed ones.
///
/// Every response must equal the first one: a policy that answers differently from one call to
/// the next (or fails) stops the benchmark.
pub fn run_mode(input: &BenchInput<'_>, mode: Mode) -> Result<BenchResult> {
    if input.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    let mut samples = Vec::with_capacity(input.iterations);
    let payload = validate_payload(input.request, input.settings);
    let answer = |raw: Result<Vec<u8>, PolicyError>| -> Result<AdmissionResponse, PolicyError> {
        let response = decode_validation_response(&raw?).map_err(PolicyError::InvalidResponse)?;
        AdmissionResponse::from_validation_response(
            &input.request.uid,
            input.request.object.as_ref(),
            response,
        )
        .map_err(PolicyError::InvalidResponse)
    };
    let call = |instance: &Instance| instance.call("validate", &payload);
    let first = match mode {
        Mode::Warm => {
            let instance = input.policy.instantiate()?;
            let first = answer(call(&instance))?;
            for _ in 0..input.warmup {
                check(&first, answer(call(&instance)))?;
            }
            for _ in 0..input.iterations {
                let started = Instant::now();
                let raw = call(&instance);
                samples.push(started.elapsed());
                check(&first, answer(raw))?;
            }
            first
        }
        Mode::Fresh => {
            let one = || -> Result<Vec<u8>, PolicyError> {
                let instance = input.policy.instantiate()?;
                let raw = call(&instance);
                drop(instance);
                raw
            };
            let first = answer(one())?;
            for _ in 0..input.warmup {
                check(&first, answer(one()))?;
            }
            for _ in 0..input.iterations {
                let started = Instant::now();
                let raw = one();
                samples.push(started.elapsed());
                check(&first, answer(raw))?;
            }
            first
        }
    };
    Ok(BenchResult {
        request: input.request_name.clone(),
        module: input.module_name.clone(),
        module_bytes: input.policy.module_size(),
        mode,
        iterations: input.iterations,
        warmup: input.warmup,
        compile_ms: input.policy.compile_time().as_secs_f64() * 1e3,
        allowed: first.allowed,
        mutated: first.patch.is_some(),
        stats: Stats::from_samples(&samples),
    })
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
