//! The control plane builds on a machine without the eBPF toolchain: it
//! depends on the model, never on the gateway (which embeds the XDP
//! object), and nothing it builds has a build script needing that object.
//! Reads cargo's dependency graph only; builds nothing.

use std::process::Command;

/// What must never be in edgegw-cp's build: the gateway crate and what
/// only the gateway needs.
const FORBIDDEN: [&str; 5] = [
    "gateway-user",
    "aya",
    "mimalloc",
    "libmimalloc-sys",
    "jsonwebtoken",
];

fn cargo(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn control_plane_depends_on_the_model_not_the_gateway() {
    let tree = cargo(&[
        "tree",
        "-p",
        "edgegw-cp",
        "--edges",
        "normal,build",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]);
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(crates.contains(&"gateway-model"), "{tree}");
    for name in FORBIDDEN {
        assert!(
            !crates.contains(&name),
            "edgegw-cp depends on {name}:\n{tree}"
        );
    }
}

#[test]
fn neither_the_model_nor_the_control_plane_has_a_build_script() {
    let metadata: serde_json::Value =
        serde_json::from_str(&cargo(&["metadata", "--format-version", "1", "--no-deps"]))
            .expect("cargo metadata is JSON");
    for name in ["gateway-model", "edgegw-cp"] {
        let package = metadata["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} is a workspace member"));
        let kinds: Vec<&serde_json::Value> = package["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .flat_map(|t| t["kind"].as_array().expect("kind"))
            .collect();
        assert!(
            !kinds.iter().any(|k| *k == "custom-build"),
            "{name} has a build script"
        );
    }
}
