//! `set-backend-service backend-id="..."` picks one of the gateway's named
//! backends (`[[backends]]`), as APIM's backend entities; APIM's own
//! `id="apim-generated-policy"` is accepted. An id the gateway does not
//! have stops the start with one line naming it.

use edgegw_tests::{
    apim::{ApimGateway, fetch},
    backends::TestBackend,
    process::{TempDir, edgegw, free_port},
};

/// Requests whose `x-to` header is `b` go to the named backend "second".
const PICK: &str = r#"<policies>
  <inbound>
    <base />
    <choose>
      <when condition="@(context.Request.Headers.GetValueOrDefault(&quot;x-to&quot;, &quot;&quot;) == &quot;b&quot;)">
        <set-backend-service id="apim-generated-policy" backend-id="second" />
      </when>
    </choose>
  </inbound>
</policies>"#;

fn indented(xml: &str) -> String {
    xml.lines().map(|l| format!("      {l}\n")).collect()
}

#[test]
fn backend_id_sends_the_request_to_the_named_backend() {
    let first = TestBackend::echo();
    let second = TestBackend::echo();
    let apis = format!(
        "[[apis]]\nname = \"bid\"\npath = \"/bid\"\nbackend = \"http://{}\"\n\
         [[backends]]\nname = \"second\"\nurl = \"http://{}/v2\"\n",
        first.addr, second.addr
    );
    let catalog = format!(
        "apis:\n  - name: bid\n    subscription_required: false\n    policies: |\n{}",
        indented(PICK)
    );
    let gw = ApimGateway::start("apimbid", &apis, &catalog);

    let r = fetch(&[&gw.url("/bid/items/1")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["path"], "/items/1");
    assert_eq!((first.hits(), second.hits()), (1, 0));

    let r = fetch(&["-H", "x-to: b", &gw.url("/bid/items/2")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["path"], "/v2/items/2");
    assert_eq!((first.hits(), second.hits()), (1, 1));
}

#[test]
fn an_unknown_backend_id_is_refused_with_one_line() {
    let tmp = TempDir::new("apimbidbad");
    let catalog = format!(
        "apis:\n  - name: bid\n    subscription_required: false\n    policies: |\n{}",
        indented(&PICK.replace("second", "secnd"))
    );
    tmp.write("catalog.yaml", &catalog);
    let cfg = tmp.write(
        "edgegw.toml",
        &format!(
            "[gateway]\nlisten = \"127.0.0.1:{}\"\n[xdp]\nmode = \"off\"\n\
             [[apis]]\nname = \"bid\"\npath = \"/bid\"\nbackend = \"second\"\n\
             [[backends]]\nname = \"second\"\nurl = \"http://127.0.0.1:9\"\n\
             [catalog]\nfile = \"catalog.yaml\"\n",
            free_port()
        ),
    );
    let out = edgegw(&["run", "--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("set-backend-service: backend-id \"secnd\" is not a named backend of this gateway (known: second)"),
        "{err}"
    );
    assert!(!err.contains("edgegw ready"));
}
