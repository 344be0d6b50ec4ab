//! Points `EDGEGW_EBPF_OBJECT` at the XDP object built by
//! `cargo xtask build-ebpf`, so the daemon embeds the program it ships with.
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    let object = std::env::var("EDGEGW_EBPF_OBJECT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target/bpf/bpfel-unknown-none/release/gateway-ebpf"));
    if !object.exists() {
        panic!(
            "XDP object {} not found: build it with `cargo xtask build-ebpf` (or use `cargo xtask build`)",
            object.display()
        );
    }
    println!("cargo:rerun-if-env-changed=EDGEGW_EBPF_OBJECT");
    println!("cargo:rerun-if-changed={}", object.display());
    println!("cargo:rustc-env=EDGEGW_EBPF_OBJECT={}", object.display());
}
