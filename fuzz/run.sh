#!/usr/bin/env bash
# Runs every fuzz target for SECONDS_PER_TARGET seconds (default 180), one after another.
# Exits non-zero if any target finds a crash, and prints where the reproducer is.
#   fuzz/run.sh 30          # CI
#   TARGETS="image_reference" fuzz/run.sh 600
set -uo pipefail
seconds="${1:-180}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

# cargo fuzz hands rustc flags that only nightly accepts. Use a nightly toolchain when there is
# one; otherwise the stable toolchain, with RUSTC_BOOTSTRAP=1 letting it accept those flags (a
# fresh machine of this project has only stable, and fetches no other toolchain).
if cargo +nightly --version >/dev/null 2>&1; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked || exit 1
fi
./seed.sh || exit 1

# max_len per target: whole admission requests need room (the largest fixture is ~10 KiB).
declare -A max_len=(
    [validate_request]=65536
    [request_view]=65536
    [validate_structured]=65536
    [validate_settings]=4096
    [image_reference]=1024
)
targets="${TARGETS:-validate_request request_view validate_structured validate_settings image_reference}"

"${fuzz[@]}" build || exit 1
failed=()
for target in $targets; do
    echo "=== $target: ${seconds}s"
    mkdir -p "artifacts/$target" "corpus/$target"
    log="artifacts/$target/run.log"
    "${fuzz[@]}" run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -max_len="${max_len[$target]}" -print_final_stats=1 2>&1 | tee "$log" | grep -E \
        '^(#[0-9]+ +DONE|Done|stat::|==[0-9]+==|SUMMARY|thread|artifact_prefix|Test unit written)' 
    status=${PIPESTATUS[0]}
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        echo "!!! $target failed (exit $status); log: $here/$log"
        grep -h 'Test unit written to' "$log" | sed 's/^/!!! reproducer: /'
        echo "!!! reproduce with: ${RUSTC_BOOTSTRAP:+RUSTC_BOOTSTRAP=1 }${fuzz[*]} run $target <artifact>"
    fi
done
if [ "${#failed[@]}" -ne 0 ]; then
    echo "crashes in: ${failed[*]}"
    exit 1
fi
echo "no crash in: $targets"
