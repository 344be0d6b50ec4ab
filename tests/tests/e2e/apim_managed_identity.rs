//! `authentication-managed-identity` as APIM documents write it, through
//! the real `edgegw`: the node's `[identity]` asks a token endpoint
//! (OAuth 2.0 client credentials, as Microsoft Entra ID takes them) once,
//! the backend gets the token as a Bearer header on every request, or a
//! variable gets it; a failing endpoint goes to on-error with
//! `context.LastError` filled, or is skipped with `ignore-error`; a node
//! without `[identity]` refuses such a catalog at start.

use edgegw_tests::{
    apim::{ApimGateway, fetch, refused_start},
    backends::{RawBackend, TestBackend},
    process::TempDir,
};

/// An answer of the token endpoint (fixed bytes, as `RawBackend` wants).
fn token_endpoint(status: &str, json: &str) -> RawBackend {
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{json}",
        json.len()
    );
    RawBackend::start(Box::leak(answer.into_boxed_str()).as_bytes())
}

/// The form fields of a recorded token request.
fn form(request: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(request);
    let (head, body) = text.split_once("\r\n\r\n").expect("a request with a body");
    assert!(head.starts_with("POST "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/x-www-form-urlencoded"),
        "{head}"
    );
    url_pairs(body)
}

fn url_pairs(body: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn identity_section(dir: &TempDir, token: &RawBackend) -> String {
    let secret = dir.write("client-secret", "s3cret\n");
    format!(
        "[identity]\ntoken_url = \"http://{}/tenant/oauth2/v2.0/token\"\nclient_id = \"edge-app\"\nclient_secret_file = \"{}\"\n",
        token.addr,
        secret.display()
    )
}

/// APIM's documented form, and the variable form read by an expression.
const CATALOG: &str = r#"apis:
  - name: storage
    subscription_required: false
    policies: |
      <policies>
        <inbound>
          <authentication-managed-identity resource="https://storage.azure.com/" />
        </inbound>
        <on-error>
          <set-header name="x-last-error" exists-action="override">
            <value>@(context.LastError.Source + ": " + context.LastError.Message)</value>
          </set-header>
        </on-error>
      </policies>
  - name: variable
    subscription_required: false
    policies: |
      <policies>
        <inbound>
          <authentication-managed-identity resource="api://backend-app" client-id="other-app"
              output-token-variable-name="msi-access-token" ignore-error="false" />
          <set-header name="x-token" exists-action="override">
            <value>@((string)context.Variables["msi-access-token"])</value>
          </set-header>
        </inbound>
      </policies>
  - name: lookup
    subscription_required: false
    policies: |
      <policies>
        <inbound>
          <send-request mode="new" response-variable-name="seen" timeout="10">
            <set-url>@(context.Request.Headers.GetValueOrDefault("x-echo", ""))</set-url>
            <authentication-managed-identity resource="https://storage.azure.com/" />
          </send-request>
          <set-header name="x-seen" exists-action="override">
            <value>@((string)((IResponse)context.Variables["seen"]).Body.As<JObject>()["headers"]["authorization"])</value>
          </set-header>
        </inbound>
      </policies>
  - name: lenient
    subscription_required: false
    policies: |
      <policies>
        <inbound>
          <authentication-managed-identity resource="https://vault.azure.net" ignore-error="true" />
        </inbound>
      </policies>
"#;

fn apis(backend: &TestBackend) -> String {
    ["storage", "variable", "lookup", "lenient"]
        .iter()
        .map(|n| {
            format!(
                "[[apis]]\nname = \"{n}\"\npath = \"/{n}\"\nbackend = \"http://{}\"\n",
                backend.addr
            )
        })
        .collect()
}

#[test]
fn tokens_are_fetched_once_and_sent_as_bearer_or_kept_in_a_variable() {
    let backend = TestBackend::echo();
    let token = token_endpoint(
        "200 OK",
        // Entra ID's v1 endpoint writes expires_in as text.
        r#"{"token_type":"Bearer","expires_in":"3599","access_token":"eyJ0eXAi.gateway-token.sig"}"#,
    );
    let dir = TempDir::new("msi-secret");
    let rest = format!("{}{}", apis(&backend), identity_section(&dir, &token));
    let gw = ApimGateway::start("msiok", &rest, CATALOG);

    for i in 0..3 {
        // The client's own credentials never reach the backend.
        let r = fetch(&[
            "-H",
            "Authorization: Bearer client-token",
            &gw.url(&format!("/storage/{i}")),
        ]);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.json()["headers"]["authorization"],
            "Bearer eyJ0eXAi.gateway-token.sig"
        );
    }
    let asked = token.take();
    assert_eq!(asked.len(), 1, "one token request for three calls");
    let fields = form(&asked[0]);
    for want in [
        ("grant_type", "client_credentials"),
        ("client_id", "edge-app"),
        ("client_secret", "s3cret"),
        ("scope", "https://storage.azure.com/.default"),
    ] {
        assert!(
            fields.iter().any(|(k, v)| (k.as_str(), v.as_str()) == want),
            "{want:?} in {fields:?}"
        );
    }
    assert!(
        String::from_utf8_lossy(&asked[0]).starts_with("POST /tenant/oauth2/v2.0/token "),
        "{}",
        String::from_utf8_lossy(&asked[0])
    );

    // Another scope and client id: its own token request; the token in the
    // variable, not in Authorization.
    let r = fetch(&[&gw.url("/variable/x")]);
    assert_eq!(r.status, 200, "{}", r.body);
    let headers = &r.json()["headers"];
    assert_eq!(headers["x-token"], "eyJ0eXAi.gateway-token.sig");
    assert!(headers.get("authorization").is_none(), "{headers}");
    let fields = form(&token.take()[0]);
    assert!(
        fields.contains(&("client_id".into(), "other-app".into())),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("scope".into(), "api://backend-app/.default".into())),
        "{fields:?}"
    );

    // Inside send-request: that request carries the token (the one
    // already fetched for its scope), the client's request does not.
    let echo = format!("http://{}/lookup", backend.addr);
    let r = fetch(&["-H", &format!("x-echo: {echo}"), &gw.url("/lookup/x")]);
    assert_eq!(r.status, 200, "{}", r.body);
    let headers = &r.json()["headers"];
    assert_eq!(headers["x-seen"], "Bearer eyJ0eXAi.gateway-token.sig");
    assert!(headers.get("authorization").is_none(), "{headers}");
    assert!(token.take().is_empty(), "the cached token was used");
}

#[test]
fn a_failing_token_endpoint_goes_to_on_error_unless_ignored() {
    let backend = TestBackend::echo();
    let token = token_endpoint(
        "401 Unauthorized",
        r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1"}"#,
    );
    let dir = TempDir::new("msi-bad");
    let rest = format!("{}{}", apis(&backend), identity_section(&dir, &token));
    let gw = ApimGateway::start("msibad", &rest, CATALOG);

    let hits = backend.hits();
    let r = fetch(&[&gw.url("/storage/x")]);
    assert_eq!(r.status, 500, "{}", r.body);
    let last = r.header("x-last-error").unwrap_or_default();
    assert!(
        last.starts_with("authentication-managed-identity: Could not obtain a token for https://storage.azure.com/")
            && last.contains("AADSTS7000215: Invalid client secret provided."),
        "{last}"
    );
    assert_eq!(backend.hits(), hits, "nothing reached the backend");

    // The failure is remembered for a moment: the next call fails the
    // same way without asking again (no queue behind a dead endpoint).
    let r = fetch(&[&gw.url("/storage/y")]);
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(
        r.header("x-last-error")
            .is_some_and(|l| l.contains("AADSTS7000215")),
        "{}",
        r.body
    );
    assert_eq!(token.take().len(), 1, "one token request for two calls");

    // ignore-error: served without a token.
    let r = fetch(&[&gw.url("/lenient/x")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["headers"].get("authorization").is_none());
    assert_eq!(token.take().len(), 1, "its own scope: its own request");
}

#[test]
fn a_node_without_identity_refuses_the_catalog_at_start() {
    let backend = TestBackend::echo();
    let tmp = TempDir::new("msi-none");
    let cat = tmp.write("catalog.yaml", CATALOG);
    let log = refused_start(&tmp, &apis(&backend), &cat);
    let line = log
        .lines()
        .find(|l| l.contains("authentication-managed-identity needs the gateway's own identity"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("add [identity] with token_url"), "{line}");
}
