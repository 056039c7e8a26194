//! Embeds the repository's built `policy.wasm` (`make policy.wasm`) into the binary, so that an
//! installed `image-pull-policy` carries the module it runs. Without the file (a fresh checkout
//! before the module is built) the binary is built without one and asks for `--policy`.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let module = manifest_dir.join("../policy.wasm");
    let embedded =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("policy.wasm");
    println!("cargo::rerun-if-changed={}", module.display());
    println!("cargo::rustc-check-cfg=cfg(embedded_policy)");
    if module.is_file() {
        std::fs::copy(&module, &embedded).expect("cannot copy policy.wasm into OUT_DIR");
        println!("cargo::rustc-cfg=embedded_policy");
    }
}
