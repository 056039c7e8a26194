#!/usr/bin/env bash
# Every test: formatting, lints (host and wasm), unit and property tests, the release module
# through the waPC host (e2e.bats), and a short fuzzing run. FUZZ_SECONDS=0 skips fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check
(cd fuzz && cargo fmt -- --check)

step "clippy (host)"
cargo clippy --workspace --all-targets -- -D warnings
step "clippy (wasm32-wasip1)"
cargo clippy -p image-pull-policy -p baseline-accept -p baseline-sdk --target wasm32-wasip1 -- -D warnings

step "unit, fixture and property tests"
cargo test -p image-pull-policy
step "host tests"
cargo test -p policy-host --profile host

step "release module and e2e.bats"
make --no-print-directory policy.wasm host
size=$(stat -c %s policy.wasm)
echo "policy.wasm: $size bytes"
if ((size > 400 * 1024)); then echo "policy.wasm is over the 400 KiB budget" >&2; exit 1; fi
bats e2e.bats

step "scan command: unit, golden, --fix and kwctl verdict tests"
cargo test -p image-pull-policy-cli --profile host

if [ "${FUZZ_SECONDS:-20}" != 0 ]; then
  step "fuzzing, ${FUZZ_SECONDS:-20} s per target"
  fuzz/run.sh "${FUZZ_SECONDS:-20}"
fi
