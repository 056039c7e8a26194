//! The waPC host `scan` runs the module in. It is the wasmi interpreter, not a JIT: installing
//! the command then builds in a few minutes, where wasmtime alone takes a quarter of an hour on
//! two cores (docs/scan.md has the figures). It does for each object what the policy server
//! does for each request: a fresh instance, the waPC start functions (`_start`, `wapc_init`),
//! then one `__guest_call`. The payload and the answer are the ones policy-evaluator builds and
//! reads (the `policy-admission` crate, shared with the test host), so the verdict is the engine's; the
//! kwctl tests compare the two on every fixture.
//!
//! A scan asks no registry (pinning is off): a host call other than `kubewarden/tracing/log`
//! fails, as it does in a policy server that granted no capability.

use std::fmt;

use policy_admission::{
    decode_settings_response, decode_validation_response, settings_payload, validate_payload,
    AdmissionRequest, AdmissionResponse, InvalidAnswer, SettingsValidationResponse,
};
use serde_json::{Map, Value};
use wasmi::{Caller, Engine, Extern, Linker, Memory, Module, Store};

/// How a policy failed to give a usable answer.
#[derive(Debug)]
pub enum PolicyError {
    /// The module could not be compiled or linked.
    Load(String),
    /// The waPC start functions failed.
    Init(String),
    /// The guest trapped or returned a waPC error.
    Call { function: String, message: String },
    /// The guest answered, but not with the JSON document the protocol asks for.
    InvalidAnswer(InvalidAnswer),
    /// The guest's answer cannot be turned into an AdmissionResponse.
    InvalidResponse(String),
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Load(reason) => write!(f, "cannot load the policy module: {reason}"),
            Self::Init(reason) => write!(f, "unable to rehydrate wapc module: {reason}"),
            Self::Call { function, message } => {
                write!(f, "the policy failed while running `{function}`: {message}")
            }
            Self::InvalidAnswer(answer) => write!(f, "{answer}"),
            Self::InvalidResponse(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for PolicyError {}

/// What one instance's host functions share: the call in progress and the answers to hand over.
#[derive(Default)]
struct Exchange {
    operation: Vec<u8>,
    payload: Vec<u8>,
    response: Option<Vec<u8>>,
    error: Option<Vec<u8>>,
    host_response: Vec<u8>,
    host_error: Vec<u8>,
    /// For `random_get`: deterministic bytes are enough for a policy's hash maps.
    random_state: u64,
}

/// A compiled and linked policy module, ready to make instances.
pub struct Policy {
    engine: Engine,
    module: Module,
    linker: Linker<Exchange>,
}

impl Policy {
    /// Compiles `bytes` and links the waPC and WASI imports.
    pub fn new(bytes: &[u8]) -> Result<Policy, PolicyError> {
        let mut config = wasmi::Config::default();
        config.compilation_mode(wasmi::CompilationMode::Eager);
        let engine = Engine::new(&config);
        let module = Module::new(&engine, bytes).map_err(|e| PolicyError::Load(format!("{e}")))?;
        let mut linker = Linker::new(&engine);
        link_wapc(&mut linker).map_err(|e| PolicyError::Load(format!("{e}")))?;
        link_wasi(&mut linker).map_err(|e| PolicyError::Load(format!("{e}")))?;
        Ok(Policy {
            engine,
            module,
            linker,
        })
    }

    /// A new instance, its waPC start functions run.
    pub fn instantiate(&self) -> Result<Instance, PolicyError> {
        let mut store = Store::new(&self.engine, Exchange::default());
        let instance = self
            .linker
            .instantiate_and_start(&mut store, &self.module)
            .map_err(|e| PolicyError::Load(format!("{e}")))?;
        for start in ["_start", "wapc_init"] {
            if let Ok(function) = instance.get_typed_func::<(), ()>(&store, start) {
                if let Err(error) = function.call(&mut store, ()) {
                    // A WASI program may end its start function with exit(0).
                    if error.i32_exit_status() != Some(0) {
                        return Err(PolicyError::Init(format!("{start}: {error}")));
                    }
                }
            }
        }
        let guest_call = instance
            .get_typed_func::<(i32, i32), i32>(&store, "__guest_call")
            .map_err(|e| PolicyError::Load(format!("no waPC __guest_call export: {e}")))?;
        Ok(Instance { store, guest_call })
    }
}

/// One instance of a policy module.
pub struct Instance {
    store: Store<Exchange>,
    guest_call: wasmi::TypedFunc<(i32, i32), i32>,
}

impl Instance {
    /// Calls a waPC function of the guest.
    pub fn call(&mut self, function: &str, payload: &[u8]) -> Result<Vec<u8>, PolicyError> {
        let failure = |message: String| PolicyError::Call {
            function: function.to_owned(),
            message,
        };
        let (Ok(operation_len), Ok(payload_len)) =
            (i32::try_from(function.len()), i32::try_from(payload.len()))
        else {
            return Err(failure(
                "the payload is too large for a 32-bit module".into(),
            ));
        };
        let exchange = self.store.data_mut();
        *exchange = Exchange {
            operation: function.as_bytes().to_vec(),
            payload: payload.to_vec(),
            random_state: exchange.random_state,
            ..Exchange::default()
        };
        let succeeded = self
            .guest_call
            .call(&mut self.store, (operation_len, payload_len))
            .map_err(|trap| failure(format!("the module trapped: {trap}")))?;
        let exchange = self.store.data_mut();
        match (succeeded, exchange.response.take(), exchange.error.take()) {
            (1, Some(response), _) => Ok(response),
            (_, _, Some(error)) => Err(failure(String::from_utf8_lossy(&error).into_owned())),
            _ => Err(failure(
                "the guest gave neither an answer nor an error".into(),
            )),
        }
    }

    /// Runs `validate_settings` with the settings' JSON.
    pub fn validate_settings(
        &mut self,
        settings: &Map<String, Value>,
    ) -> Result<SettingsValidationResponse, PolicyError> {
        let answer = self.call("validate_settings", &settings_payload(settings))?;
        decode_settings_response(&answer).map_err(PolicyError::InvalidAnswer)
    }

    /// Builds the payload for `request` and `settings`, runs `validate`, and turns the answer
    /// into the AdmissionResponse policy-evaluator would give.
    pub fn validate(
        &mut self,
        request: &AdmissionRequest,
        settings: &Map<String, Value>,
    ) -> Result<AdmissionResponse, PolicyError> {
        let answer = self.call("validate", &validate_payload(request, settings))?;
        let response = decode_validation_response(&answer).map_err(PolicyError::InvalidAnswer)?;
        AdmissionResponse::from_validation_response(&request.uid, request.object.as_ref(), response)
            .map_err(|error| PolicyError::InvalidResponse(format!("{error:#}")))
    }
}

fn memory(caller: &Caller<'_, Exchange>) -> Result<Memory, wasmi::Error> {
    caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .ok_or_else(|| wasmi::Error::new("the module exports no memory"))
}

fn read(caller: &Caller<'_, Exchange>, ptr: i32, len: i32) -> Result<Vec<u8>, wasmi::Error> {
    let (Ok(ptr), Ok(len)) = (usize::try_from(ptr), usize::try_from(len)) else {
        return Err(wasmi::Error::new("a negative pointer or length"));
    };
    let mut bytes = vec![0; len];
    memory(caller)?.read(caller, ptr, &mut bytes)?;
    Ok(bytes)
}

fn write(caller: &mut Caller<'_, Exchange>, ptr: i32, bytes: &[u8]) -> Result<(), wasmi::Error> {
    let ptr = usize::try_from(ptr).map_err(|_| wasmi::Error::new("a negative pointer"))?;
    let memory = memory(caller)?;
    memory.write(caller, ptr, bytes)?;
    Ok(())
}

fn length(bytes: &[u8]) -> i32 {
    i32::try_from(bytes.len()).unwrap_or(i32::MAX)
}

/// The waPC protocol's host side (wapc-guest's imports from module `wapc`).
fn link_wapc(linker: &mut Linker<Exchange>) -> Result<(), wasmi::Error> {
    linker.func_wrap(
        "wapc",
        "__guest_request",
        |mut caller: Caller<'_, Exchange>, operation_ptr: i32, payload_ptr: i32| {
            let operation = std::mem::take(&mut caller.data_mut().operation);
            let payload = std::mem::take(&mut caller.data_mut().payload);
            write(&mut caller, operation_ptr, &operation)?;
            write(&mut caller, payload_ptr, &payload)
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__guest_response",
        |mut caller: Caller<'_, Exchange>, ptr: i32, len: i32| {
            let bytes = read(&caller, ptr, len)?;
            caller.data_mut().response = Some(bytes);
            Ok(())
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__guest_error",
        |mut caller: Caller<'_, Exchange>, ptr: i32, len: i32| {
            let bytes = read(&caller, ptr, len)?;
            caller.data_mut().error = Some(bytes);
            Ok(())
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__host_call",
        |mut caller: Caller<'_, Exchange>,
         binding_ptr: i32,
         binding_len: i32,
         namespace_ptr: i32,
         namespace_len: i32,
         operation_ptr: i32,
         operation_len: i32,
         _payload_ptr: i32,
         _payload_len: i32| {
            let binding = read(&caller, binding_ptr, binding_len)?;
            let namespace = read(&caller, namespace_ptr, namespace_len)?;
            let operation = read(&caller, operation_ptr, operation_len)?;
            let exchange = caller.data_mut();
            if (&binding[..], &namespace[..], &operation[..]) == (b"kubewarden", b"tracing", b"log")
            {
                exchange.host_response.clear();
                return Ok(1);
            }
            exchange.host_error = format!(
                "scan grants no host capability ({}/{}/{})",
                String::from_utf8_lossy(&binding),
                String::from_utf8_lossy(&namespace),
                String::from_utf8_lossy(&operation)
            )
            .into_bytes();
            Ok(0)
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__host_response_len",
        |caller: Caller<'_, Exchange>| length(&caller.data().host_response),
    )?;
    linker.func_wrap(
        "wapc",
        "__host_response",
        |mut caller: Caller<'_, Exchange>, ptr: i32| {
            let bytes = std::mem::take(&mut caller.data_mut().host_response);
            write(&mut caller, ptr, &bytes)
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__host_error_len",
        |caller: Caller<'_, Exchange>| length(&caller.data().host_error),
    )?;
    linker.func_wrap(
        "wapc",
        "__host_error",
        |mut caller: Caller<'_, Exchange>, ptr: i32| {
            let bytes = std::mem::take(&mut caller.data_mut().host_error);
            write(&mut caller, ptr, &bytes)
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__console_log",
        |_: Caller<'_, Exchange>, _ptr: i32, _len: i32| {},
    )?;
    Ok(())
}

/// WASI errno values.
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_BADF: i32 = 8;

/// The WASI calls a Rust waPC module makes: no environment and no arguments, stdout and stderr
/// to this process's stderr (a panicking guest prints its message there), deterministic random
/// bytes, and exit as a trap.
fn link_wasi(linker: &mut Linker<Exchange>) -> Result<(), wasmi::Error> {
    const WASI: &str = "wasi_snapshot_preview1";
    for (sizes, values) in [
        ("environ_sizes_get", "environ_get"),
        ("args_sizes_get", "args_get"),
    ] {
        linker.func_wrap(
            WASI,
            sizes,
            |mut caller: Caller<'_, Exchange>, count_ptr: i32, size_ptr: i32| {
                write(&mut caller, count_ptr, &0u32.to_le_bytes())?;
                write(&mut caller, size_ptr, &0u32.to_le_bytes())?;
                Ok(ERRNO_SUCCESS)
            },
        )?;
        linker.func_wrap(WASI, values, |_: Caller<'_, Exchange>, _: i32, _: i32| {
            ERRNO_SUCCESS
        })?;
    }
    linker.func_wrap(
        WASI,
        "fd_write",
        |mut caller: Caller<'_, Exchange>, fd: i32, iovs: i32, iovs_len: i32, written_ptr: i32| {
            if fd != 1 && fd != 2 {
                return Ok(ERRNO_BADF);
            }
            let mut written: u32 = 0;
            for i in 0..iovs_len.max(0) {
                let iov = read(&caller, iovs.wrapping_add(i.wrapping_mul(8)), 8)?;
                let field = |at: usize| {
                    u32::from_le_bytes([iov[at], iov[at + 1], iov[at + 2], iov[at + 3]])
                };
                let (ptr, len) = (field(0), field(4));
                let bytes = read(
                    &caller,
                    i32::try_from(ptr).unwrap_or(-1),
                    i32::try_from(len).unwrap_or(-1),
                )?;
                eprint!("{}", String::from_utf8_lossy(&bytes));
                written = written.saturating_add(len);
            }
            write(&mut caller, written_ptr, &written.to_le_bytes())?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(
        WASI,
        "random_get",
        |mut caller: Caller<'_, Exchange>, ptr: i32, len: i32| {
            let len = usize::try_from(len).unwrap_or(0);
            let mut state = caller.data().random_state ^ 0x9e37_79b9_7f4a_7c15;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    // xorshift64
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            caller.data_mut().random_state = state;
            write(&mut caller, ptr, &bytes)?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(
        WASI,
        "proc_exit",
        |_: Caller<'_, Exchange>, status: i32| -> Result<(), wasmi::Error> {
            Err(wasmi::Error::i32_exit(status))
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A waPC guest in text form: echoes `validate`'s payload, fails any other operation with
    /// its name, and logs through the host first.
    const ECHO: &str = r#"(module
      (import "wapc" "__guest_request" (func $request (param i32 i32)))
      (import "wapc" "__guest_response" (func $response (param i32 i32)))
      (import "wapc" "__guest_error" (func $error (param i32 i32)))
      (import "wapc" "__host_call" (func $host_call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "kubewardentracinglog")
      (func (export "wapc_init"))
      (func (export "__guest_call") (param $op_len i32) (param $len i32) (result i32)
        (call $request (i32.const 1024) (i32.const 2048))
        (drop (call $host_call (i32.const 0) (i32.const 10) (i32.const 10) (i32.const 7)
          (i32.const 17) (i32.const 3) (i32.const 0) (i32.const 0)))
        (if (result i32) (i32.eq (local.get $op_len) (i32.const 8))
          (then (call $response (i32.const 2048) (local.get $len)) (i32.const 1))
          (else (call $error (i32.const 1024) (local.get $op_len)) (i32.const 0)))))"#;

    fn echo() -> Instance {
        let bytes = wat::parse_str(ECHO).unwrap();
        Policy::new(&bytes).unwrap().instantiate().unwrap()
    }

    #[test]
    fn a_call_hands_over_the_payload_and_the_answer() {
        assert_eq!(echo().call("validate", b"{\"a\":1}").unwrap(), b"{\"a\":1}");
    }

    #[test]
    fn a_guest_error_is_the_call_failure() {
        let error = echo().call("other", b"").unwrap_err().to_string();
        assert_eq!(error, "the policy failed while running `other`: other");
    }

    #[test]
    fn a_module_that_is_not_wasm_is_a_load_error() {
        let error = Policy::new(b"not wasm").err().unwrap().to_string();
        assert!(
            error.starts_with("cannot load the policy module: "),
            "{error}"
        );
    }

    #[test]
    fn a_trap_is_a_call_failure_not_a_panic() {
        let bytes = wat::parse_str(
            r#"(module (memory (export "memory") 1)
                 (func (export "__guest_call") (param i32 i32) (result i32) unreachable))"#,
        )
        .unwrap();
        let mut instance = Policy::new(&bytes).unwrap().instantiate().unwrap();
        let error = instance.call("validate", b"{}").unwrap_err().to_string();
        assert!(error.contains("the module trapped"), "{error}");
    }
}
