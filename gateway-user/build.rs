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
    // `edgegw_build_info{commit}`: given by a packaging build, else git's.
    println!("cargo:rerun-if-env-changed=EDGEGW_COMMIT");
    let commit = std::env::var("EDGEGW_COMMIT").ok().or_else(|| {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(&root)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    println!(
        "cargo:rustc-env=EDGEGW_COMMIT={}",
        commit
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "unknown".into())
    );
}
