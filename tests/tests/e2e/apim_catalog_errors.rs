//! A bad catalog given to the real binary: every problem reported with its
//! place, non-zero exit, nothing starts; `edgegw catalog validate` lists
//! them one per line.

use edgegw_tests::{
    apim::{hash_key, hash_key_stdin},
    process::{TempDir, edgegw, free_port},
};

const CONFIG_APIS: &str = r#"
[[apis]]
name = "orders"
path = "/orders"
backend = "http://127.0.0.1:9"
[[apis.operations]]
name = "get-order"
method = "GET"
url = "/{id}"
"#;

const BAD: &str = r#"
apis:
  - name: orders
    operations:
      - name: get-order
        policies:
          inbound:
            - rate-limt: {calls: 1, renewal_period: 1}
          outbound:
            - ip-filter: {action: allow, addresses: [10.0.0.1]}
  - name: ghost
subscriptions:
  - {id: a, scope: "product:none", primary_key_sha256: "abc"}
"#;

fn write(tmp: &TempDir, catalog: &str) -> (String, String) {
    let cat = tmp.write("catalog.yaml", catalog);
    let cfg = tmp.write(
        "edgegw.toml",
        &format!(
            "[gateway]\nlisten = \"127.0.0.1:{}\"\n[xdp]\nmode = \"off\"\n{CONFIG_APIS}\n[catalog]\nfile = \"catalog.yaml\"\n",
            free_port()
        ),
    );
    (
        cat.to_str().unwrap().to_string(),
        cfg.to_str().unwrap().to_string(),
    )
}

const WANT: [&str; 6] = [
    "catalog.yaml: api \"orders\": operation \"get-order\": inbound: unknown policy \"rate-limt\"",
    "catalog.yaml: api \"orders\": operation \"get-order\": outbound: policy \"ip-filter\" cannot run in the outbound section",
    "catalog.yaml: api \"ghost\": no API of that name in the gateway configuration",
    "catalog.yaml: subscription \"a\": scope \"product:none\"",
    "catalog.yaml: subscription \"a\": primary_key_sha256: \"abc\" is not a 64-digit hex SHA-256",
    "edgegw catalog hash-key",
];

#[test]
fn run_refuses_a_bad_catalog_naming_every_problem() {
    let tmp = TempDir::new("catrun");
    let (_, cfg) = write(&tmp, BAD);
    let out = edgegw(&["run", "--config", &cfg]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    for w in WANT {
        assert!(err.contains(w), "{w}\n{err}");
    }
    assert!(!err.contains("edgegw ready"));
}

#[test]
fn validate_lists_each_problem_on_its_own_line() {
    let tmp = TempDir::new("catval");
    let (cat, cfg) = write(&tmp, BAD);
    let out = edgegw(&["catalog", "validate", &cat, "--config", &cfg]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for w in &WANT[..5] {
        assert!(
            err.lines()
                .any(|l| l.contains("catalog.yaml: ") && l.contains(w)),
            "{w}\n{err}"
        );
    }
    assert!(err.contains("5 problem(s)"), "{err}");

    // Alone, the catalog cannot know the gateway's API names.
    let out = edgegw(&["catalog", "validate", &cat]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("ghost"));

    let good = format!(
        "apis:\n  - name: orders\nsubscriptions:\n  - {{id: a, scope: all, primary_key_sha256: {}}}\n",
        hash_key("k")
    );
    let (cat, cfg) = write(&tmp, &good);
    let out = edgegw(&["catalog", "validate", &cat, "--config", &cfg]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid (0 products, 1 subscriptions)"));
}

#[test]
fn structure_errors_and_empty_keys_are_one_clear_line() {
    let tmp = TempDir::new("catsyn");
    let (cat, _) = write(&tmp, "apis:\n  - name: orders\n    polices: {}\n");
    let out = edgegw(&["catalog", "validate", &cat]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("catalog.yaml: ") && err.contains("polices"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let out = edgegw(&["catalog", "hash-key", ""]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the key is empty"));
    // A key may start with '-': it is the key, not an option.
    let out = edgegw(&["catalog", "hash-key", "-Cab"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        hash_key("secret"),
        "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
    );
}

/// `edgegw catalog hash-key` without KEY reads one line from standard
/// input (the secret stays out of shell history and `ps`): the same hash as
/// the argument gives, and as coreutils' sha256sum gives for the key.
#[test]
fn hash_key_reads_the_key_from_standard_input() {
    let stdout = |out: std::process::Output| {
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    for key in ["secret", "-Cab", "a key with spaces ", "ключ"] {
        let mut sha256sum = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut sha256sum.stdin.take().unwrap(), key.as_bytes()).unwrap();
        let sha = stdout(sha256sum.wait_with_output().unwrap());
        let sha = sha.split_whitespace().next().unwrap();
        let from_arg = stdout(edgegw(&["catalog", "hash-key", key]));
        for input in [format!("{key}\n"), format!("{key}\r\n"), key.to_string()] {
            assert_eq!(stdout(hash_key_stdin(&input)), sha, "{input:?}");
        }
        assert_eq!(from_arg, sha, "{key}");
    }
    for (input, error) in [
        ("", "the key is empty"),
        ("\n", "the key is empty"),
        ("k1\nk2\n", "more than one line"),
    ] {
        let out = hash_key_stdin(input);
        assert!(!out.status.success(), "{input:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(error) && err.trim().lines().count() == 1,
            "{input:?}: {err}"
        );
    }
}

#[test]
fn the_example_catalog_is_valid_against_the_demo_configuration() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let catalog = root.join("config/catalog.example.yaml");
    let config = root.join("config/edgegw.toml");
    let out = edgegw(&[
        "catalog",
        "validate",
        catalog.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    // Its documented demo key is the one whose hash it stores.
    let text = std::fs::read_to_string(&catalog).unwrap();
    assert!(text.contains(&hash_key("demo-key")));
}
