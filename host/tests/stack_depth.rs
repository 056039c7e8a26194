//! How deep the policy's stack goes in a fresh instance, and that a kept instance's memory
//! stops growing.
//!
//! Every page of linear memory a fresh instance touches for the first time is a page fault
//! (about 1.5–2 µs where the benchmark runs), and the policy server makes a fresh instance per
//! request. The module's stack grows down from the top of its first 1 MiB, and `wapc_init`
//! already touches the top page, so evaluating a request must stay within that page: a second
//! one costs every request one more fault.
//!
//! wasmtime-provider does not give access to an instance's memory, so this test instantiates
//! the module with wasmtime directly and answers the few imports it has itself: the waPC
//! guest calls, and the WASI calls std makes (no environment, no randomness needed, output
//! discarded). What is below the stack's deepest point is still zero afterwards, so the
//! lowest non-zero byte under the stack's top is how deep the stack went.

mod common;

use std::path::{Path, PathBuf};

use policy_host::admission::{parse_request_str, validate_payload};
use serde_json::Map;
use wasmtime_provider::wasmtime::{
    self, Caller, Engine, Extern, Instance, Linker, Memory, Module, Store,
};

/// wasm-ld's layout for Rust's wasm32 targets: the stack (1 MiB) first, then the data.
const STACK_TOP: usize = 1 << 20;
const PAGE: usize = 4096;

#[derive(Default)]
struct Guest {
    payload: Vec<u8>,
    response: Option<Vec<u8>>,
    error: Option<Vec<u8>>,
}

fn memory(caller: &mut Caller<'_, Guest>) -> Memory {
    caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .expect("the module exports its memory")
}

fn read(caller: &mut Caller<'_, Guest>, ptr: i32, len: i32) -> Vec<u8> {
    let mut bytes = vec![0; len as usize];
    memory(caller)
        .read(&*caller, ptr as usize, &mut bytes)
        .expect("the guest points into its memory");
    bytes
}

fn write(caller: &mut Caller<'_, Guest>, ptr: i32, bytes: &[u8]) {
    let memory = memory(caller);
    memory
        .write(caller, ptr as usize, bytes)
        .expect("the guest points into its memory");
}

fn linker(engine: &Engine, module: &Module) -> Linker<Guest> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap(
            "wapc",
            "__guest_request",
            |mut caller: Caller<'_, Guest>, operation: i32, payload: i32| {
                write(&mut caller, operation, b"validate");
                let bytes = caller.data().payload.clone();
                write(&mut caller, payload, &bytes);
            },
        )
        .unwrap()
        .func_wrap(
            "wapc",
            "__guest_response",
            |mut caller: Caller<'_, Guest>, ptr: i32, len: i32| {
                caller.data_mut().response = Some(read(&mut caller, ptr, len));
            },
        )
        .unwrap()
        .func_wrap(
            "wapc",
            "__guest_error",
            |mut caller: Caller<'_, Guest>, ptr: i32, len: i32| {
                caller.data_mut().error = Some(read(&mut caller, ptr, len));
            },
        )
        .unwrap()
        .func_wrap(
            "wasi_snapshot_preview1",
            "random_get",
            |mut caller: Caller<'_, Guest>, ptr: i32, len: i32| -> i32 {
                write(&mut caller, ptr, &vec![0x5a; len as usize]);
                0
            },
        )
        .unwrap()
        .func_wrap(
            "wasi_snapshot_preview1",
            "environ_sizes_get",
            |mut caller: Caller<'_, Guest>, count: i32, size: i32| -> i32 {
                write(&mut caller, count, &0u32.to_le_bytes());
                write(&mut caller, size, &0u32.to_le_bytes());
                0
            },
        )
        .unwrap()
        .func_wrap(
            "wasi_snapshot_preview1",
            "environ_get",
            |_: Caller<'_, Guest>, _: i32, _: i32| -> i32 { 0 },
        )
        .unwrap()
        .func_wrap(
            "wasi_snapshot_preview1",
            "fd_write",
            |mut caller: Caller<'_, Guest>, _fd: i32, iovs: i32, count: i32, written: i32| -> i32 {
                let vectors = read(&mut caller, iovs, count * 8);
                let total: u32 = vectors
                    .chunks(8)
                    .map(|iov| u32::from_le_bytes(iov[4..8].try_into().unwrap()))
                    .sum();
                write(&mut caller, written, &total.to_le_bytes());
                0
            },
        )
        .unwrap()
        .func_wrap(
            "wasi_snapshot_preview1",
            "proc_exit",
            |_: Caller<'_, Guest>, code: i32| -> wasmtime::Result<()> {
                Err(wasmtime::Error::msg(format!("proc_exit({code})")))
            },
        )
        .unwrap();
    // Anything else the module might import one day traps when called, and fails the test.
    linker.define_unknown_imports_as_traps(module).unwrap();
    linker
}

/// The release module, compiled, and its linker; `None` where it cannot be built here.
fn release_module() -> Option<(Linker<Guest>, Module)> {
    let module_path = common::policy_module()?;
    let engine = Engine::default();
    let module = Module::from_file(&engine, &module_path).unwrap();
    Some((linker(&engine, &module), module))
}

/// A new instance of `module` after `wapc_init`, given the payload of `request_path`.
fn instantiate(
    linker: &Linker<Guest>,
    module: &Module,
    request_path: &Path,
) -> (Store<Guest>, Instance, Memory) {
    let text = std::fs::read_to_string(request_path).unwrap();
    let (request, _) = parse_request_str(&text).unwrap();
    let payload = validate_payload(&request, &Map::new());
    let mut store = Store::new(
        linker.engine(),
        Guest {
            payload,
            ..Guest::default()
        },
    );
    let instance: Instance = linker.instantiate(&mut store, module).unwrap();
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    instance
        .get_typed_func::<(), ()>(&mut store, "wapc_init")
        .unwrap()
        .call(&mut store, ())
        .unwrap();
    (store, instance, memory)
}

/// Calls `validate` on the instance's payload; returns the response.
fn validate(store: &mut Store<Guest>, instance: &Instance) -> String {
    let payload_len = store.data().payload.len() as i32;
    let answered = instance
        .get_typed_func::<(i32, i32), i32>(&mut *store, "__guest_call")
        .unwrap()
        .call(&mut *store, (b"validate".len() as i32, payload_len))
        .unwrap();
    let guest = store.data();
    assert_eq!(answered, 1, "guest error: {:?}", guest.error);
    String::from_utf8(guest.response.clone().unwrap()).unwrap()
}

/// Evaluates `request_path` in a fresh instance; returns the stack depth and the response.
fn evaluate(linker: &Linker<Guest>, module: &Module, request_path: &Path) -> (usize, String) {
    let (mut store, instance, memory) = instantiate(linker, module, request_path);
    let response = validate(&mut store, &instance);
    let stack = &memory.data(&store)[..STACK_TOP];
    let deepest = stack.iter().position(|b| *b != 0).unwrap_or(STACK_TOP);
    (STACK_TOP - deepest, response)
}

fn requests() -> Vec<PathBuf> {
    let root = common::workspace_root();
    let mut paths = Vec::new();
    for dir in ["bench/requests", "test_data", "test_data/e2e"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                paths.push(path);
            }
        }
    }
    paths.sort();
    paths
}

#[test]
fn every_request_is_evaluated_within_the_first_stack_page() {
    let Some((linker, module)) = release_module() else {
        return;
    };
    let mut outcomes = std::collections::BTreeSet::new();
    let mut deepest = (0, PathBuf::new());
    for path in requests() {
        let (depth, response) = evaluate(&linker, &module, &path);
        // a measurement that found no stack at all would prove nothing
        assert!(depth > 256, "{}: {depth} bytes", path.display());
        for outcome in [
            r#""accepted":true"#,
            r#""accepted":false"#,
            r#""mutated_object":{"#,
        ] {
            if response.contains(outcome) {
                outcomes.insert(outcome);
            }
        }
        if depth > deepest.0 {
            deepest = (depth, path);
        }
    }
    // accepted, rejected and mutated requests were all among them
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert!(
        deepest.0 < PAGE,
        "{} takes {} bytes of stack, more than one {PAGE}-byte page",
        deepest.1.display(),
        deepest.0
    );
}

/// The module allocates from an arena that starts over when a call's allocations are freed
/// (`src/arena.rs`): a host that keeps one instance for many calls, as `kwctl bench` does, must
/// see its memory stop growing after the first call, and the same answer every time.
#[test]
fn a_kept_instance_reuses_its_memory_call_after_call() {
    let Some((linker, module)) = release_module() else {
        return;
    };
    let root = common::workspace_root();
    for request in [
        "bench/requests/pod-50-containers.json",
        "bench/requests/pod-mutated.json",
        "bench/requests/pod-rejected-many.json",
    ] {
        let (mut store, instance, memory) = instantiate(&linker, &module, &root.join(request));
        let first = validate(&mut store, &instance);
        let size = memory.data_size(&store);
        for call in 2..=50 {
            assert_eq!(
                validate(&mut store, &instance),
                first,
                "{request}, call {call}"
            );
            assert_eq!(
                memory.data_size(&store),
                size,
                "{request}: memory grew at call {call}"
            );
        }
    }
}
