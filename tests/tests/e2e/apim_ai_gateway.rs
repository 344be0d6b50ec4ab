//! The AI gateway's policies run by a real gateway in front of a
//! language-model backend that answers as OpenAI's chat completions do
//! (JSON with `usage`, or an event stream with or without it):
//! `azure-openai-token-limit` refusing a team once its tokens per minute
//! are used up (and not another team), the tokens-consumed and
//! tokens-left headers, a prompt counted in advance refused before it
//! reaches the model, and `llm-emit-token-metric` counting each call's
//! tokens in `/metrics` by dimension.

use edgegw_tests::{
    apim::{ApimGateway, block, fetch},
    scripted::{Reply, ScriptedBackend},
};

/// A model: 10 prompt and 20 completion tokens for a JSON answer; a
/// stream of "Hello", " world" that reports 4 + 2 tokens, or nothing when
/// the prompt asks for no usage.
fn model() -> ScriptedBackend {
    ScriptedBackend::start(|req| {
        let body = String::from_utf8_lossy(&req.body);
        if body.contains("\"stream\":true") {
            let usage = if body.contains("no-usage") {
                ""
            } else {
                "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2,\"total_tokens\":6}}\n\n"
            };
            let events = format!(
                "data: {{\"choices\":[{{\"delta\":{{\"content\":\"Hello\"}}}}]}}\n\n\
                 data: {{\"choices\":[{{\"delta\":{{\"content\":\" world\"}}}}]}}\n\n{usage}data: [DONE]\n\n"
            );
            return Reply::keep(format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n{events}",
                events.len()
            ));
        }
        let json = r#"{"choices":[{"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":10,"completion_tokens":20,"total_tokens":30}}"#;
        Reply::keep(format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{json}",
            json.len()
        ))
    })
}

const POLICY: &str = r#"<policies>
  <inbound>
    <base />
    <choose>
      <when condition='@(context.Request.Url.Path.Contains("estimated"))'>
        <llm-token-limit counter-key="estimated" tokens-per-minute="20" estimate-prompt-tokens="true" remaining-tokens-variable-name="left" />
      </when>
      <otherwise>
        <azure-openai-token-limit counter-key='@(context.Request.Headers.GetValueOrDefault("x-team", "none"))' tokens-per-minute="100" estimate-prompt-tokens="false" remaining-tokens-header-name="x-tokens-left" tokens-consumed-header-name="x-tokens-used" retry-after-header-name="x-wait" />
      </otherwise>
    </choose>
    <azure-openai-emit-token-metric namespace="openai">
      <dimension name="API ID" />
      <dimension name="Team" value='@(context.Request.Headers.GetValueOrDefault("x-team", "none"))' />
    </azure-openai-emit-token-metric>
  </inbound>
</policies>"#;

#[test]
fn token_limits_and_token_metrics_follow_the_models_usage() {
    let backend = model();
    let rest = format!(
        "[[apis]]\nname = \"llm\"\npath = \"/llm\"\nbackend = \"http://{}\"\n\
         [[apis.operations]]\nname = \"chat\"\nmethod = \"POST\"\nurl = \"/*\"\n",
        backend.addr
    );
    let catalog = format!(
        "apis:\n  - name: llm\n    subscription_required: false\n    policies: |\n{}",
        block(POLICY, 6),
    );
    let gw = ApimGateway::start("apimai", &rest, &catalog);
    let chat = gw.url("/llm/chat/completions");
    let call = |team: &str, body: &str| {
        fetch(&[
            "-H",
            &format!("x-team: {team}"),
            "-H",
            "content-type: application/json",
            "--data-binary",
            body,
            &chat,
        ])
    };
    let prompt = r#"{"messages":[{"role":"user","content":"Say hello"}]}"#;

    // 100 tokens a minute, 30 a call: the tokens the model reported are
    // in the answer; four calls are admitted (the fourth while 90 are
    // used), the fifth is refused.
    for (n, left) in [(1, 100), (2, 70), (3, 40), (4, 10)] {
        let r = call("red", prompt);
        assert_eq!(r.status, 200, "call {n}: {}", r.body);
        assert_eq!(r.header("x-tokens-used"), Some("30"), "call {n}");
        assert_eq!(
            r.header("x-tokens-left"),
            Some(left.to_string().as_str()),
            "call {n}"
        );
    }
    let hits = backend.received().len();
    let r = call("red", prompt);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("Token limit is exceeded"), "{}", r.body);
    let wait: u64 = r.header("x-wait").expect("x-wait").parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(backend.received().len(), hits, "refused before the model");
    // Another team has its own tokens.
    assert_eq!(call("blue", prompt).status, 200);

    // Streams: the usage of the last event, or the streamed text's tokens
    // ("Hello world": 2) when the model reports none.
    let r = call(
        "green",
        r#"{"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("data: [DONE]"),
        "streamed through: {}",
        r.body
    );
    let r = call(
        "green",
        r#"{"stream":true,"messages":[{"role":"user","content":"no-usage"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let series = |team: &str, kind: &str| {
        format!(
            "edgegw_llm_tokens_total{{namespace=\"openai\",api_id=\"llm\",team=\"{team}\",kind=\"{kind}\"}}"
        )
    };
    assert_eq!(
        gw.gw.wait_metric(&series("green", "total"), 8.0),
        8.0,
        "{}",
        gw.gw.metrics()
    );
    assert_eq!(gw.gw.metric(&series("green", "prompt")), 4.0);
    assert_eq!(gw.gw.metric(&series("green", "completion")), 4.0);
    // Four admitted calls of red (the refused one counts nothing).
    assert_eq!(gw.gw.metric(&series("red", "total")), 120.0);
    assert_eq!(gw.gw.metric(&series("blue", "prompt")), 10.0);

    // Counted in advance: a prompt over the 20 tokens left is refused
    // before it is sent; a small one goes through.
    let estimated = gw.url("/llm/estimated/chat/completions");
    let long = format!(
        r#"{{"messages":[{{"role":"user","content":"{}"}}]}}"#,
        "tell me a long story about gateways ".repeat(10)
    );
    let hits = backend.received().len();
    let r = fetch(&["--data-binary", &long, &estimated]);
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(backend.received().len(), hits);
    let r = fetch(&["--data-binary", prompt, &estimated]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(backend.received().len(), hits + 1);
}

#[test]
fn token_policies_refuse_what_cannot_be_counted() {
    let tmp = edgegw_tests::process::TempDir::new("apimai-bad");
    let rest = "[[apis]]\nname = \"llm\"\npath = \"/llm\"\nbackend = \"http://127.0.0.1:9\"\n\
         [[apis.operations]]\nname = \"chat\"\nmethod = \"POST\"\nurl = \"/*\"\n";
    for (policy, want) in [
        (
            r#"<llm-token-limit counter-key="k" />"#,
            "tokens-per-minute or token-quota",
        ),
        (
            r#"<llm-token-limit counter-key="k" token-quota="10" token-quota-period="Fortnightly" />"#,
            "Fortnightly",
        ),
        (
            r#"<llm-emit-token-metric><dimension name="Colour" /></llm-emit-token-metric>"#,
            "dimension \"Colour\" has no value",
        ),
    ] {
        let doc = format!("<policies><inbound>{policy}</inbound></policies>");
        let catalog = tmp.write(
            "catalog.yaml",
            &format!(
                "apis:\n  - name: llm\n    subscription_required: false\n    policies: |\n{}",
                block(&doc, 6)
            ),
        );
        let log = edgegw_tests::apim::refused_start(&tmp, rest, &catalog);
        assert!(log.contains(want), "{policy}: {log}");
    }
}
