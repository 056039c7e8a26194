SOURCE_FILES := $(shell find src -type f -name '*.rs') Cargo.toml Cargo.lock
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
# kwctl and policy-server: $KWCTL / $POLICY_SERVER, else on PATH, else ../shared/kubewarden/bin.
find_kubewarden = $(or $(shell bash -c '. tests/lib/kubewarden.bash && kubewarden_find $(1)' 2>/dev/null),$(1))
KWCTL ?= $(call find_kubewarden,kwctl)
POLICY_SERVER ?= $(call find_kubewarden,policy-server)
# `make push`: the repository to push to, and a kwctl sources file (e.g. insecure_sources for a
# registry on loopback).
OCI_REPOSITORY ?= ghcr.io/example/policies/image-pull-policy
SOURCES ?=
# cargo's target directory, as cargo finds it.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
# The project's host: the profile quick to build for the tests, e2e.bats and the demo; bench/run.sh
# builds the optimised `host` profile itself.
HOST_PROFILE ?= host-dev
HOST := $(TARGET_DIR)/$(HOST_PROFILE)/policy-host
# Where both e2e passes write their runs down, for tests/engines.bats.
E2E_RUNS := target/e2e

.PHONY: all
all: policy.wasm

# wasm-opt (Debian's binaryen) takes another ~14% off the size and ~7% off the time per request.
# It keeps the functions' names (-g) for wasm-layout, which puts the functions a request runs
# together (layout/hot-functions.txt; about 3 µs off a cold call) and then drops the names.
WASM_OPT ?= wasm-opt
WASM_OPT_FLAGS := -Os -g --one-caller-inline-max-function-size 100 --enable-bulk-memory --enable-sign-ext \
	--enable-mutable-globals --enable-nontrapping-float-to-int
WASM_LAYOUT := $(TARGET_DIR)/release/wasm-layout

policy.wasm: $(SOURCE_FILES) layout/hot-functions.txt $(shell find layout/src -name '*.rs') layout/Cargo.toml
	cargo build --locked --target=wasm32-wasip1 --release -p image-pull-policy
	cargo build --locked --release -p wasm-layout
	$(WASM_OPT) $(WASM_OPT_FLAGS) $(TARGET_DIR)/wasm32-wasip1/release/image_pull_policy.wasm \
		-o $(TARGET_DIR)/wasm32-wasip1/release/image_pull_policy.named.wasm
	$(WASM_LAYOUT) layout/hot-functions.txt $(TARGET_DIR)/wasm32-wasip1/release/image_pull_policy.named.wasm policy.wasm

annotated-policy.wasm: policy.wasm metadata.yml README.md
	$(KWCTL) annotate -m metadata.yml -u README.md -o annotated-policy.wasm policy.wasm

# The waPC + wasmtime host that runs the module like the policy server does.
.PHONY: host
host:
	cargo build -p policy-host --profile $(HOST_PROFILE)

.PHONY: print-host
print-host:
	@echo $(HOST)

# The `image-pull-policy` command (`image-pull-policy scan`), with policy.wasm built in.
.PHONY: install
install: policy.wasm
	cargo install --locked --path cli --profile host --target-dir target

# 10,000 generated objects in 1,000 files through `image-pull-policy scan`.
.PHONY: scan-bench
scan-bench: policy.wasm
	cargo build --profile host -p image-pull-policy-cli --bins --examples
	target/host/examples/scan_bench

.PHONY: fmt
fmt:
	cargo fmt --all -- --check

.PHONY: lint
lint:
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p image-pull-policy -p baseline-accept -p baseline-sdk --target wasm32-wasip1 -- -D warnings

.PHONY: test
test: fmt lint
	cargo test -p image-pull-policy
	cargo test -p policy-host --profile $(HOST_PROFILE)

.PHONY: e2e-tests
e2e-tests: policy.wasm host
	KWCTL=$(HOST) POLICY=policy.wasm E2E_RECORD=$(E2E_RUNS)/host bats e2e.bats

# The same e2e.bats under the real kwctl, on the annotated module.
.PHONY: e2e-tests-kwctl
e2e-tests-kwctl: annotated-policy.wasm
	KWCTL=$(KWCTL) POLICY=annotated-policy.wasm E2E_RECORD=$(E2E_RUNS)/kwctl bats e2e.bats

# The real engine beyond kwctl run: every e2e run through policy-server (after both e2e passes),
# the audit scanner's requests to /audit beside the API server's to /validate, the module through
# an OCI registry, and the artifacts kwctl writes.
.PHONY: engine-tests
engine-tests: annotated-policy.wasm
	KWCTL=$(KWCTL) POLICY_SERVER=$(POLICY_SERVER) bats tests/engines.bats tests/audit.bats \
		tests/registry.bats tests/kwctl.bats

# Digest pinning against a registry on loopback (tests/pinning.bats): under the project host, and
# under kwctl and policy-server when found; PINNING_ENGINES chooses (host kwctl policy-server).
PINNING_ENGINES ?= host kwctl policy-server
.PHONY: pinning-tests
pinning-tests: policy.wasm host $(if $(filter-out host,$(PINNING_ENGINES)),annotated-policy.wasm)
	KWCTL=$(KWCTL) POLICY_SERVER=$(POLICY_SERVER) PINNING_ENGINES="$(PINNING_ENGINES)" \
		HOST_BIN=$(abspath $(HOST)) bats tests/pinning.bats

.PHONY: check
check:
	scripts/test-all.sh

.PHONY: demo
demo:
	scripts/demo.sh

.PHONY: bench
bench:
	bench/run.sh

.PHONY: fuzz
fuzz:
	fuzz/run.sh $(FUZZ_SECONDS)

# ARTIFACTHUB_PKG: where to write it (tests/kwctl.bats compares a fresh one with the committed file).
ARTIFACTHUB_PKG ?= artifacthub-pkg.yml
.PHONY: artifacthub
artifacthub:
	$(KWCTL) scaffold artifacthub --metadata-path metadata.yml \
		--questions-path questions-ui.yml --output $(ARTIFACTHUB_PKG)

.PHONY: push
push: annotated-policy.wasm
	$(KWCTL) push $(if $(SOURCES),--sources-path $(SOURCES)) annotated-policy.wasm \
		registry://$(OCI_REPOSITORY):v$(VERSION)

.PHONY: clean
clean:
	cargo clean
	rm -f policy.wasm annotated-policy.wasm
