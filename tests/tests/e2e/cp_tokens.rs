//! Admin and gateway tokens of the real `edgegw-cp`: missing, wrong,
//! expired, revoked (admin tokens by label; gateway tokens by rotating the
//! gateway's token or the signing key), each refused with 401 and a message
//! naming the reason.

use std::time::Duration;

use edgegw_tests::{
    cp::{ControlPlane, Store, edgegw_cp},
    process::{TempDir, assert_one_line_error},
};
use serde_json::json;

edgegw_tests::on_both_stores!(
    admin_tokens_are_required_and_can_be_added_while_serving,
    gateway_tokens_fail_once_rotated_revoked_or_expired,
    the_token_lifetime_flag_sets_the_default_expiry
);

fn config_status(cp: &ControlPlane, token: &str) -> (u16, String) {
    let answer = cp.gateway(token, "GET", "/v1/gateway/config", &[], None);
    let message = if answer.status == 200 {
        String::new()
    } else {
        answer.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    (answer.status, message)
}

fn admin_tokens_are_required_and_can_be_added_while_serving(store: Store) {
    let tmp = TempDir::new("cpadm");
    let cp = ControlPlane::launch(store, &tmp.0, &[]);
    let missing = cp.request("GET", "/v1/apis", None, &[], None);
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["statusCode"], 401);
    assert!(
        missing.json()["message"]
            .as_str()
            .unwrap()
            .contains("missing admin token"),
        "{}",
        missing.body
    );
    let wrong = cp.request("GET", "/v1/apis", Some("egwa_not-a-token"), &[], None);
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body.contains("admin token not recognised"),
        "{}",
        wrong.body
    );
    // Nothing is written without a valid token.
    let denied = cp.request(
        "PUT",
        "/v1/backends/b1",
        Some("wrong"),
        &[],
        Some(br#"{"url": "http://127.0.0.1:9000"}"#),
    );
    assert_eq!(denied.status, 401);
    assert_eq!(cp.admin("GET", "/v1/backends", None).1, json!([]));

    // A second token, created by the CLI on the live database.
    let out = cp.cli(&["admin-token", "create", "--name", "ci"]);
    assert!(out.status.success(), "{out:?}");
    let second = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_ne!(second, cp.admin_token);
    let answer = cp.request("GET", "/v1/apis", Some(&second), &[], None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    // An admin token is no gateway token, and the other way round.
    let (status, message) = config_status(&cp, &second);
    assert_eq!(status, 401);
    assert!(message.contains("malformed"), "{message}");
    let gw = cp.gateway_token("edge-1");
    assert_eq!(
        cp.request("GET", "/v1/apis", Some(&gw), &[], None).status,
        401
    );

    // Revoked by label: refused at once, the other token still works.
    let out = cp.cli(&["admin-token", "list"]);
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(
        listed.contains("admin\t") && listed.contains("ci\t"),
        "{listed}"
    );
    assert!(!listed.contains(&second), "{listed}");
    // Changes are logged with the label of the token that made them.
    let log = cp.log_text();
    assert!(
        log.contains("admin write admin=admin method=POST path=/v1/gateways status=201"),
        "{log}"
    );
    let out = cp.cli(&["admin-token", "revoke", "--name", "ci"]);
    assert!(out.status.success(), "{out:?}");
    let revoked = cp.request("GET", "/v1/apis", Some(&second), &[], None);
    assert_eq!(revoked.status, 401);
    assert!(
        revoked.body.contains("admin token not recognised"),
        "{}",
        revoked.body
    );
    assert_eq!(cp.admin("GET", "/v1/apis", None).0, 200);
    let out = cp.cli(&["admin-token", "revoke", "--name", "nobody"]);
    assert_one_line_error(
        &out,
        &["no admin token is named \"nobody\"", "admin-token list"],
    );
}

fn gateway_tokens_fail_once_rotated_revoked_or_expired(store: Store) {
    let tmp = TempDir::new("cptok");
    let cp = ControlPlane::launch(store, &tmp.0, &[]);
    let first = cp.gateway_token("edge-1");
    assert_eq!(config_status(&cp, &first).0, 200);

    let (status, message) = config_status(&cp, "");
    assert_eq!(status, 401);
    assert!(message.contains("missing gateway token"), "{message}");
    let (status, message) = config_status(&cp, "garbage");
    assert_eq!(status, 401);
    assert!(message.contains("malformed"), "{message}");
    // A token altered by one character fails its signature.
    let mut altered = first.clone().into_bytes();
    let last = altered.len() - 2;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let (status, message) = config_status(&cp, &String::from_utf8(altered).unwrap());
    assert_eq!(status, 401);
    assert!(message.contains("signature does not verify"), "{message}");

    // Rotating the gateway's token revokes the previous one.
    let second = cp.gateway_token("edge-1");
    let (status, message) = config_status(&cp, &first);
    assert_eq!(status, 401);
    assert!(message.contains("revoked"), "{message}");
    assert_eq!(config_status(&cp, &second).0, 200);

    // Rotating the signing key invalidates every token issued so far.
    let (status, _) = cp.admin("POST", "/v1/signing-key/rotate", None);
    assert_eq!(status, 200);
    let (status, message) = config_status(&cp, &second);
    assert_eq!(status, 401);
    assert!(message.contains("signing key was rotated"), "{message}");
    assert!(
        message.contains("POST /v1/gateways/edge-1/token"),
        "{message}"
    );
    let third = cp.gateway_token("edge-1");
    assert_eq!(config_status(&cp, &third).0, 200);
    // Heartbeats are refused the same way.
    let hb = cp.gateway(
        &second,
        "POST",
        "/v1/gateway/heartbeat",
        &[],
        Some(&json!({"uptime_secs": 1, "healthy": true})),
    );
    assert_eq!(hb.status, 401);

    // A token issued for 1 s expires; the message says when and what to do.
    let (status, body) = cp.admin(
        "POST",
        "/v1/gateways/edge-1/token",
        Some(&json!({"ttl_secs": 1})),
    );
    assert_eq!(status, 200, "{body}");
    let short = body["token"].as_str().unwrap().to_string();
    let expires_at = body["expires_at"].as_str().unwrap().to_string();
    assert_eq!(config_status(&cp, &short).0, 200);
    std::thread::sleep(Duration::from_millis(2100));
    let (status, message) = config_status(&cp, &short);
    assert_eq!(status, 401);
    assert_eq!(
        message,
        format!(
            "gateway token expired at {expires_at}; issue a new one with POST /v1/gateways/edge-1/token"
        )
    );

    // A deleted gateway's token is refused.
    let fourth = cp.gateway_token("edge-1");
    assert_eq!(cp.admin("DELETE", "/v1/gateways/edge-1", None).0, 204);
    let (status, message) = config_status(&cp, &fourth);
    assert_eq!(status, 401);
    assert!(message.contains("not registered"), "{message}");
}

fn the_token_lifetime_flag_sets_the_default_expiry(store: Store) {
    let tmp = TempDir::new("cpttl");
    let cp = ControlPlane::launch(store, &tmp.0, &["--token-ttl", "1h"]);
    let (status, body) = cp.admin("POST", "/v1/gateways", Some(&json!({"name": "g"})));
    assert_eq!(status, 201, "{body}");
    let expires = body["expires_at"].as_str().unwrap();
    let out = std::process::Command::new("date")
        .args(["-u", "-d", expires, "+%s"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{expires} is not a date: {out:?}");
    let expires_unix: u64 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        expires_unix.abs_diff(now + 3600) < 120,
        "{expires} is not an hour from now"
    );
    let bad = edgegw_cp(&[
        "serve",
        "--db",
        "/nonexistent/x.db",
        "--listen",
        "127.0.0.1:0",
        "--token-ttl",
        "forever",
    ]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("forever"), "{stderr}");
}
