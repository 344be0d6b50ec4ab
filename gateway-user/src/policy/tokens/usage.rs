//! The tokens a language model's answer reports: `usage` in a JSON answer
//! (OpenAI chat completions and embeddings: `prompt_tokens`,
//! `completion_tokens`; the Responses and Anthropic APIs: `input_tokens`,
//! `output_tokens`), or in the events of a streamed one (`text/event-stream`,
//! the last event with `usage`). A stream without `usage` (OpenAI sends it
//! only when asked with `stream_options.include_usage`) leaves the text it
//! streamed, whose tokens are counted instead.

use serde_json::Value;

/// Tokens of one call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
}

impl Usage {
    pub fn total(self) -> u64 {
        self.prompt + self.completion
    }
}

/// `usage` of a JSON answer (or of one streamed event).
pub fn of_json(v: &Value) -> Option<Usage> {
    // Anthropic's stream puts it under `message` in its first event.
    let u = v
        .get("usage")
        .or_else(|| v.get("response").and_then(|r| r.get("usage")))
        .or_else(|| v.get("message").and_then(|m| m.get("usage")))?;
    let n = |names: &[&str]| names.iter().find_map(|k| u.get(*k).and_then(Value::as_u64));
    let prompt = n(&["prompt_tokens", "input_tokens"]);
    let completion = n(&["completion_tokens", "output_tokens"]);
    let total = n(&["total_tokens"]);
    match (prompt, completion, total) {
        (None, None, None) => None,
        (p, c, t) => {
            let prompt = p.unwrap_or(0);
            // Embeddings report prompt and total only.
            let completion = c.unwrap_or_else(|| t.unwrap_or(prompt).saturating_sub(prompt));
            Some(Usage { prompt, completion })
        }
    }
}

/// Bytes of an answer kept to read its usage; past it the answer is not
/// read (and counts no tokens).
pub const MAX_JSON: usize = 8 << 20;
/// Bytes of one streamed event kept; longer ones are skipped.
const MAX_EVENT: usize = 1 << 20;
/// Bytes of streamed text kept to count when no usage comes.
const MAX_TEXT: usize = 1 << 20;

/// Reads the usage of an answer as its bytes go by.
pub enum Scanner {
    /// A JSON answer, kept whole (up to `MAX_JSON`).
    Json { body: Vec<u8>, overflow: bool },
    /// A stream of events: the line being read, the last usage seen and
    /// the text streamed so far.
    Events {
        line: Vec<u8>,
        skipping: bool,
        usage: Option<Usage>,
        text: String,
    },
}

impl Scanner {
    /// For an answer of `content_type`.
    pub fn for_type(content_type: Option<&str>) -> Scanner {
        let stream = content_type.is_some_and(|c| {
            c.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/event-stream")
        });
        if stream {
            Scanner::Events {
                line: Vec::new(),
                skipping: false,
                usage: None,
                text: String::new(),
            }
        } else {
            Scanner::Json {
                body: Vec::new(),
                overflow: false,
            }
        }
    }

    pub fn feed(&mut self, data: &[u8]) {
        match self {
            Scanner::Json { body, overflow } => {
                if body.len() + data.len() > MAX_JSON {
                    *overflow = true;
                } else if !*overflow {
                    body.extend_from_slice(data);
                }
            }
            Scanner::Events {
                line,
                skipping,
                usage,
                text,
            } => {
                for part in data.split_inclusive(|&b| b == b'\n') {
                    let ends = part.ends_with(b"\n");
                    if !*skipping {
                        if line.len() + part.len() > MAX_EVENT {
                            *skipping = true;
                            line.clear();
                        } else {
                            line.extend_from_slice(part);
                        }
                    }
                    if ends {
                        if !*skipping {
                            event_line(line, usage, text);
                        }
                        line.clear();
                        *skipping = false;
                    }
                }
            }
        }
    }

    /// The usage once the answer ended, and the streamed text when a
    /// stream reported none (to count its tokens).
    pub fn finish(mut self) -> (Option<Usage>, Option<String>) {
        if let Scanner::Events { line, .. } = &mut self
            && !line.is_empty()
        {
            line.push(b'\n');
            let line = std::mem::take(line);
            self.feed(&line);
        }
        match self {
            Scanner::Json { body, overflow } => {
                let usage = (!overflow)
                    .then(|| serde_json::from_slice::<Value>(&body).ok())
                    .flatten()
                    .as_ref()
                    .and_then(of_json);
                (usage, None)
            }
            Scanner::Events { usage, text, .. } => match usage {
                Some(u) => (Some(u), None),
                None => (None, Some(text)),
            },
        }
    }
}

/// One line of an event stream: `data: {...}` events carry usage or text.
fn event_line(line: &[u8], usage: &mut Option<Usage>, text: &mut String) {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(data) = line.strip_prefix(b"data:") else {
        return;
    };
    let Ok(v) = serde_json::from_slice::<Value>(data.trim_ascii()) else {
        return; // `[DONE]` and anything else that is not JSON
    };
    if let Some(u) = of_json(&v) {
        // Anthropic reports input at the start and output at the end.
        *usage = Some(match *usage {
            Some(before) if u.prompt == 0 => Usage {
                prompt: before.prompt,
                completion: u.completion,
            },
            _ => u,
        });
    }
    let delta = v
        .get("choices")
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("delta"))
        .and_then(|d| d.get("content"))
        .or_else(|| v.get("delta").and_then(|d| d.get("text")))
        .or_else(|| v.get("delta").filter(|d| d.is_string()))
        .and_then(Value::as_str);
    if let Some(piece) = delta
        && text.len() + piece.len() <= MAX_TEXT
    {
        text.push_str(piece);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_of_each_api_shape() {
        let cases = [
            (
                json!({"usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}}),
                Some((9, 12)),
            ),
            (
                json!({"usage": {"prompt_tokens": 5, "total_tokens": 5}}),
                Some((5, 0)),
            ),
            (
                json!({"usage": {"input_tokens": 3, "output_tokens": 4}}),
                Some((3, 4)),
            ),
            (
                json!({"response": {"usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}}}),
                Some((1, 2)),
            ),
            (json!({"usage": {}}), None),
            (json!({"id": "x"}), None),
        ];
        for (v, want) in cases {
            assert_eq!(of_json(&v).map(|u| (u.prompt, u.completion)), want, "{v}");
        }
    }

    #[test]
    fn json_answers_in_pieces() {
        let body =
            br#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}"#;
        let mut s = Scanner::for_type(Some("application/json; charset=utf-8"));
        for chunk in body.chunks(5) {
            s.feed(chunk);
        }
        assert_eq!(
            s.finish().0,
            Some(Usage {
                prompt: 7,
                completion: 2
            })
        );
        let mut s = Scanner::for_type(None);
        s.feed(b"not json");
        assert_eq!(s.finish(), (None, None));
    }

    #[test]
    fn streams_take_the_last_usage_or_keep_the_text() {
        let stream = "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n\
                      data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\r\n\r\n\
                      data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2,\"total_tokens\":6}}\n\n\
                      data: [DONE]\n\n";
        // Split everywhere, lines across chunks included.
        for size in [1, 3, 7, 64, 4096] {
            let mut s = Scanner::for_type(Some("text/event-stream"));
            for chunk in stream.as_bytes().chunks(size) {
                s.feed(chunk);
            }
            assert_eq!(
                s.finish(),
                (
                    Some(Usage {
                        prompt: 4,
                        completion: 2
                    }),
                    None
                ),
                "{size}"
            );
        }
        let mut s = Scanner::for_type(Some("text/event-stream"));
        s.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}");
        assert_eq!(s.finish(), (None, Some("Hello".into())));
        // Anthropic: input tokens first, output tokens last.
        let mut s = Scanner::for_type(Some("text/event-stream"));
        s.feed(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n");
        s.feed(b"data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n");
        assert_eq!(
            s.finish().0,
            Some(Usage {
                prompt: 10,
                completion: 15
            })
        );
    }
}
