//! `send-request` as APIM's token-caching samples use it, run by a real
//! gateway: a token fetched from a real (echo) identity service with
//! `send-request`, read from the kept response (`IResponse`), stored with
//! `cache-store-value` and found again by `cache-lookup-value`; failures
//! through on-error or, with `ignore-error`, a null variable;
//! `mode="copy"` and `send-one-way-request`.

use std::time::{Duration, Instant};

use edgegw_tests::{
    apim::{ApimGateway, block, fetch},
    backends::TestBackend,
};

fn policy(idp: &str) -> String {
    format!(
        r#"<policies>
  <inbound>
    <base />
    <set-variable name="tenant" value='@(context.Request.Headers.GetValueOrDefault("x-tenant", "none"))' />
    <choose>
      <when condition='@((string)context.Variables["tenant"] == "lenient")'>
        <send-request mode="new" response-variable-name="idp" timeout="5" ignore-error="true">
          <set-url>http://127.0.0.1:1/token</set-url>
        </send-request>
        <set-header name="x-null" exists-action="override"><value>@((context.Variables["idp"] == null).ToString())</value></set-header>
      </when>
      <when condition='@((string)context.Variables["tenant"] == "copy")'>
        <send-request mode="copy" response-variable-name="mirror">
          <set-url>http://{idp}/mirror</set-url>
          <set-header name="x-copy" exists-action="override"><value>yes</value></set-header>
        </send-request>
        <set-header name="x-mirror" exists-action="override"><value>@{{
          var seen = ((IResponse)context.Variables["mirror"]).Body.As<JObject>();
          return (string)seen["method"] + " " + (string)seen["body"] + " " + (string)seen["headers"]["x-copy"];
        }}</value></set-header>
      </when>
      <when condition='@((string)context.Variables["tenant"] == "audit")'>
        <send-one-way-request mode="new">
          <set-url>http://{idp}/audit</set-url>
          <set-method>PUT</set-method>
        </send-one-way-request>
      </when>
      <otherwise>
        <cache-lookup-value key='@("token-" + (string)context.Variables["tenant"])' variable-name="token" caching-type="internal" />
        <choose>
          <when condition='@(!context.Variables.ContainsKey("token"))'>
            <send-request mode="new" response-variable-name="idp" timeout="10" ignore-error="false">
              <set-url>@((string)context.Variables["tenant"] == "down" ? "http://127.0.0.1:1/token" : "http://{idp}/oauth/token/" + (string)context.Variables["tenant"])</set-url>
              <set-method>POST</set-method>
              <set-header name="Content-Type" exists-action="override">
                <value>application/x-www-form-urlencoded</value>
              </set-header>
              <set-body>@("grant_type=client_credentials&client_id=" + (string)context.Variables["tenant"])</set-body>
            </send-request>
            <set-variable name="token" value='@(((IResponse)context.Variables["idp"]).Body.As<JObject>()["path"].ToString())' />
            <set-header name="x-idp-said" exists-action="override">
              <value>@{{
                var r = (IResponse)context.Variables["idp"];
                var body = r.Body.As<JObject>(preserveContent: true);
                return r.StatusCode + " " + (string)body["method"] + " " + (string)body["body"] + " " + r.Headers.GetValueOrDefault("Content-Type", "");
              }}</value>
            </set-header>
            <cache-store-value key='@("token-" + (string)context.Variables["tenant"])' value='@((string)context.Variables["token"])' duration="60" caching-type="internal" />
          </when>
        </choose>
        <set-header name="x-token" exists-action="override"><value>@((string)context.Variables["token"])</value></set-header>
      </otherwise>
    </choose>
  </inbound>
  <on-error>
    <set-header name="x-error" exists-action="override"><value>@(context.LastError.Source + "/" + context.LastError.Reason)</value></set-header>
  </on-error>
</policies>"#
    )
}

#[test]
fn send_request_fetches_a_token_that_the_value_cache_keeps() {
    let backend = TestBackend::echo();
    let idp = TestBackend::echo();
    let rest = format!(
        "[[apis]]\nname = \"shop\"\npath = \"/shop\"\nbackend = \"http://{}\"\n\
         [[apis.operations]]\nname = \"any\"\nmethod = \"*\"\nurl = \"/*\"\n",
        backend.addr
    );
    let catalog = format!(
        "apis:\n  - name: shop\n    subscription_required: false\n    policies: |\n{}",
        block(&policy(&idp.addr.to_string()), 6),
    );
    let gw = ApimGateway::start("apimsend", &rest, &catalog);
    let url = gw.url("/shop/orders");
    let seen_header = |r: &edgegw_tests::apim::Answer, name: &str| -> String {
        r.json()["headers"][name]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    // The first call of a tenant asks the identity service (POST, form
    // body) and forwards the token it answered.
    let r = fetch(&["-H", "x-tenant: acme", &url]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(seen_header(&r, "x-token"), "/oauth/token/acme");
    assert_eq!(
        seen_header(&r, "x-idp-said"),
        "200 POST grant_type=client_credentials&client_id=acme application/json"
    );
    assert_eq!(idp.hits(), 1);
    // The next ones find it in the cache: the service is not asked again.
    for _ in 0..3 {
        let r = fetch(&["-H", "x-tenant: acme", &url]);
        assert_eq!(seen_header(&r, "x-token"), "/oauth/token/acme");
        assert_eq!(seen_header(&r, "x-idp-said"), "");
    }
    assert_eq!(idp.hits(), 1);
    // Another tenant, another key.
    let r = fetch(&["-H", "x-tenant: globex", &url]);
    assert_eq!(seen_header(&r, "x-token"), "/oauth/token/globex");
    assert_eq!(idp.hits(), 2);

    // No answer: on-error, with send-request as the error's source; the
    // backend is not called.
    let before = backend.hits();
    let r = fetch(&["-H", "x-tenant: down", &url]);
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(r.header("x-error"), Some("send-request/RequestFailed"));
    assert_eq!(backend.hits(), before);
    // ignore-error: the variable is null and the request goes on.
    let r = fetch(&["-H", "x-tenant: lenient", &url]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(seen_header(&r, "x-null"), "True");

    // copy: the client's method, body and headers, plus the policy's.
    let r = fetch(&[
        "-H",
        "x-tenant: copy",
        "-X",
        "PUT",
        "--data-binary",
        "hello",
        &url,
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(seen_header(&r, "x-mirror"), "PUT hello yes");
    // The body still reaches the backend after the copy read it.
    assert_eq!(r.json()["body"], "hello");

    // One way: the client is answered; the request arrives on its own.
    let hits = idp.hits();
    let r = fetch(&["-H", "x-tenant: audit", &url]);
    assert_eq!(r.status, 200, "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(10);
    while idp.hits() == hits {
        assert!(
            Instant::now() < deadline,
            "the one-way request never arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
