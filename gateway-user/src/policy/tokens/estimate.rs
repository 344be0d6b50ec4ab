//! The prompt tokens of a request to a language model, counted before it
//! is sent (`estimate-prompt-tokens`): the texts of its `messages`
//! (chat completions, Anthropic messages), `prompt` (completions) or
//! `input` (embeddings, responses) in OpenAI's o200k tokenizer (tiktoken),
//! with the per-message overhead of OpenAI's chat format. An estimate, as
//! APIM's is: the model's own `usage` is what is counted afterwards.

use serde_json::Value;

/// Tokens each chat message adds around its text, and the reply's
/// priming (OpenAI's published counting for its chat models).
const PER_MESSAGE: u64 = 3;
const REPLY_PRIMING: u64 = 3;

/// The tokens of streamed text, when the stream reported no usage.
pub fn text_tokens(text: &str) -> u64 {
    tokens(text)
}

fn tokens(text: &str) -> u64 {
    tiktoken_rs::o200k_base_singleton()
        .encode_ordinary(text)
        .len() as u64
}

/// The texts of a message's `content`: a string, or parts with `text`.
fn content_tokens(content: &Value) -> u64 {
    match content {
        Value::String(s) => tokens(s),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p {
                Value::String(s) => tokens(s),
                other => other.get("text").and_then(Value::as_str).map_or(0, tokens),
            })
            .sum(),
        _ => 0,
    }
}

fn messages_tokens(messages: &[Value]) -> u64 {
    let each: u64 = messages
        .iter()
        .map(|m| {
            let role = m.get("role").and_then(Value::as_str).map_or(0, tokens);
            let name = m
                .get("name")
                .and_then(Value::as_str)
                .map_or(0, |n| tokens(n) + 1);
            PER_MESSAGE + role + name + m.get("content").map_or(0, content_tokens)
        })
        .sum();
    each + REPLY_PRIMING
}

/// The prompt tokens of a request body; `None` when it is not a model
/// request this understands (then nothing is counted in advance).
pub fn prompt_tokens(body: &[u8]) -> Option<u64> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let system = v.get("system").map_or(0, content_tokens);
    if let Some(Value::Array(messages)) = v.get("messages") {
        return Some(system + messages_tokens(messages));
    }
    let text = v.get("prompt").or_else(|| v.get("input"))?;
    Some(match text {
        Value::Array(items) if items.iter().any(|i| i.get("role").is_some()) => {
            messages_tokens(items)
        }
        other => content_tokens(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_as_openai_does() {
        // "Hello world" is 2 tokens in o200k; a chat of one user message
        // adds 3 + 1 (role "user") around it and 3 for the reply.
        assert_eq!(tokens("Hello world"), 2);
        let chat = br#"{"messages":[{"role":"user","content":"Hello world"}]}"#;
        assert_eq!(prompt_tokens(chat), Some(3 + 1 + 2 + 3));
        let parts =
            br#"{"messages":[{"role":"user","content":[{"type":"text","text":"Hello world"}]}]}"#;
        assert_eq!(prompt_tokens(parts), prompt_tokens(chat));
        assert_eq!(prompt_tokens(br#"{"prompt":"Hello world"}"#), Some(2));
        assert_eq!(
            prompt_tokens(br#"{"input":["Hello world","Hello world"]}"#),
            Some(4)
        );
        assert_eq!(prompt_tokens(br#"{"model":"x"}"#), None);
        assert_eq!(prompt_tokens(b"not json"), None);
    }
}
