SOURCE_FILES := $(shell find src -type f -name '*.rs') Cargo.toml Cargo.lock
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
KWCTL ?= kwctl
OCI_REPOSITORY ?= ghcr.io/example/policies/image-pull-policy
HOST := target/host/policy-host

.PHONY: all
all: policy.wasm

# wasm-opt (Debian's binaryen) takes another ~14% off the size and ~7% off the time per request.
WASM_OPT ?= wasm-opt
WASM_OPT_FLAGS := -Os --strip-debug --enable-bulk-memory --enable-sign-ext \
	--enable-mutable-globals --enable-nontrapping-float-to-int

policy.wasm: $(SOURCE_FILES)
	cargo build --target=wasm32-wasip1 --release -p image-pull-policy
	$(WASM_OPT) $(WASM_OPT_FLAGS) target/wasm32-wasip1/release/image_pull_policy.wasm -o policy.wasm

annotated-policy.wasm: policy.wasm metadata.yml README.md
	$(KWCTL) annotate -m metadata.yml -u README.md -o annotated-policy.wasm policy.wasm

# The waPC + wasmtime host that runs the module like the policy server does.
.PHONY: host
host:
	cargo build -p policy-host --profile host

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
	cargo test -p policy-host --profile host

.PHONY: e2e-tests
e2e-tests: policy.wasm host
	bats e2e.bats

# The same e2e.bats under the real kwctl, on the annotated module.
.PHONY: e2e-tests-kwctl
e2e-tests-kwctl: annotated-policy.wasm
	KWCTL=$(KWCTL) POLICY=annotated-policy.wasm bats e2e.bats

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

.PHONY: artifacthub
artifacthub:
	$(KWCTL) scaffold artifacthub --metadata-path metadata.yml \
		--questions-path questions-ui.yml --output artifacthub-pkg.yml

.PHONY: push
push: annotated-policy.wasm
	$(KWCTL) push annotated-policy.wasm $(OCI_REPOSITORY):v$(VERSION)

.PHONY: clean
clean:
	cargo clean
	rm -f policy.wasm annotated-policy.wasm
