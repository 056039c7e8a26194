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
# A registry on loopback for the host capability tests (tests/lib/registry.bash), and htpasswd
# for its basic-auth variant.
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v htpasswd >/dev/null || missing+=(apache2-utils)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  "${apt_get[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq "${missing[@]}"
fi
