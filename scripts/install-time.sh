#!/usr/bin/env bash
# How long installing the scanner takes: `cargo install` of the command from a clean target
# directory (crates already downloaded), printing wall and CPU time and peak memory. A figure for
# docs/scan.md, not a test.
#
#   scripts/install-time.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { echo "install-time.sh: needs /usr/bin/time (Debian: time)" >&2; exit 1; }
make --no-print-directory policy.wasm >/dev/null
target=$(mktemp -d) root=$(mktemp -d)
trap 'rm -rf "$target" "$root"' EXIT
cargo fetch --locked --quiet
echo "cargo install --locked --path cli --profile host, clean target directory, $(nproc) cores:"
/usr/bin/time -f 'wall %e s, CPU %U s user + %S s system, peak %M KB' \
  cargo install --locked --quiet --path cli --profile host --target-dir "$target" --root "$root"
"$root/bin/image-pull-policy" --version
