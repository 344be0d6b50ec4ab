//! YAML and JSON documents (the catalog file, the catalog of a bundle,
//! OpenAPI imports in the control plane) parsed within budgets, in time
//! linear in their size. Nesting depth, anchors, aliases and their replay,
//! node count and the length of implicit keys are capped, so a hostile
//! document (100,000 nested brackets, an alias bomb, a 10 MB key) is refused
//! after one pass over its text instead of after quadratic work.
//!
//! Text that opens with `{` or `[` is JSON, read by serde_json (recursion
//! limit 128, like the YAML depth budget): a JSON typo is reported as one,
//! never reread as YAML with another meaning (`{"b": }` is YAML for
//! `b: null`). Everything else is YAML 1.2 read by serde-saphyr: booleans are only
//! `true`/`false`, `0755` and `1_000` stay strings in untyped values (as
//! the former serde_yaml read them), duplicate keys are refused.

use serde::de::DeserializeOwned;

/// Deepest nesting of mappings and sequences accepted.
pub const MAX_DEPTH: usize = 128;

/// Which syntax a document was read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Yaml => "YAML",
        }
    }
}

/// A document refused: where (1-based line and column, when known) and why,
/// on one line.
#[derive(Debug, thiserror::Error)]
#[error("{}{message}", position(*.line, *.column))]
pub struct DocumentError {
    pub format: Format,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub message: String,
}

fn position(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("line {l} column {c}: "),
        (Some(l), None) => format!("line {l}: "),
        _ => String::new(),
    }
}

/// Reads `text` as `T`; see the module documentation for the budgets.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, DocumentError> {
    parse(text).map(|(value, _)| value)
}

/// Reads `text` as `T`, and says whether it was JSON or YAML.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<(T, Format), DocumentError> {
    let looks_like_json = text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with(['{', '[']);
    if looks_like_json {
        json_depth(text)?;
        return serde_json::from_str(text)
            .map(|v| (v, Format::Json))
            .map_err(|e| json_error(&e));
    }
    yaml(text).map(|v| (v, Format::Yaml))
}

/// serde_json limits the depth of what it builds, but skips the values a
/// type ignores without limit (iteratively, in linear time): one pass over
/// the text holds every part of a JSON document to `MAX_DEPTH` alike.
fn json_depth(text: &str) -> Result<(), DocumentError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let (mut line, mut line_start) = (1u64, 0usize);
    for (i, b) in text.bytes().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(DocumentError {
                        format: Format::Json,
                        line: Some(line),
                        column: Some(text[line_start..=i].chars().count() as u64),
                        message: format!(
                            "nested deeper than {MAX_DEPTH} levels; flatten the document"
                        ),
                    });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'\n' => {
                line += 1;
                line_start = i + 1;
            }
            _ => {}
        }
    }
    Ok(())
}

fn json_error(e: &serde_json::Error) -> DocumentError {
    // serde_json appends " at line L column C"; the position goes first.
    let text = e.to_string();
    let message = match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    };
    DocumentError {
        format: Format::Json,
        line: (e.line() > 0).then_some(e.line() as u64),
        column: (e.line() > 0).then_some(e.column() as u64),
        message,
    }
}

fn yaml<T: DeserializeOwned>(text: &str) -> Result<T, DocumentError> {
    serde_saphyr::from_str_with_options(text, options(text.len())).map_err(|e| {
        let location = e.location();
        let message = e
            .without_snippet()
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        DocumentError {
            format: Format::Yaml,
            line: location.map(|l| l.line()).filter(|l| *l > 0),
            column: location.map(|l| l.column()).filter(|c| *c > 0),
            message: explain(&strip_position(&message)),
        }
    })
}

/// A budget breach in words, with the fix.
fn explain(message: &str) -> String {
    if message.starts_with("recursion limit exceeded") {
        return format!("nested deeper than {MAX_DEPTH} levels; flatten the document");
    }
    let Some(breach) = message.strip_prefix("budget breached: ") else {
        return message.to_string();
    };
    let kind = breach.split([' ', '{']).next().unwrap_or_default();
    match kind {
        "Depth" => format!("nested deeper than {MAX_DEPTH} levels; flatten the document"),
        "Nodes" | "Events" | "Aliases" | "Anchors" | "ScalarBytes" => format!(
            "aliases expand to more than the document's own size (budget: {kind}); write the values out or use fewer aliases"
        ),
        "Documents" => "more than one YAML document (---); send one".to_string(),
        _ => format!("over the parser's limits (budget: {kind}); simplify the document"),
    }
}

/// serde-saphyr ends some messages with its own "at line L, column C";
/// the position is reported once, first.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].trim_end_matches(',').to_string(),
        None => message.to_string(),
    }
}

fn options(len: usize) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.flow_nesting_limit = MAX_DEPTH;
    // Every node and event takes at least one byte of text, except what
    // aliases replay, which has its own caps below: these budgets only
    // stop amplification, never a document that is merely large.
    budget.max_nodes = len + 1024;
    budget.max_events = 2 * len + 1024;
    budget.max_total_scalar_bytes = len + 1024;
    budget.max_aliases = 10_000;
    budget.max_anchors = 10_000;
    budget.max_documents = 1;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = 100_000;
    options.alias_limits.max_replay_stack_depth = 16;
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    options.underscored_numbers_as_strings = true;
    options.with_snippet = false;
    // Numbers the reader skips (`1e400` in a schema) must not refuse it.
    options.non_finite_float_policy = serde_saphyr::NonFiniteFloatPolicy::PassThrough;
    options
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::Value;

    use super::*;

    #[test]
    fn json_and_yaml_read_alike() {
        let (json, f1): (Value, _) = parse(r#"{"a": [1, "x", true, null]}"#).unwrap();
        let (yaml, f2): (Value, _) = parse("a:\n  - 1\n  - x\n  - true\n  - ~\n").unwrap();
        assert_eq!((f1, f2), (Format::Json, Format::Yaml));
        assert_eq!(json, yaml);
        // Text that opens like JSON is JSON only.
        let e = parse::<Value>("{a: 1}").unwrap_err();
        assert_eq!((e.format, e.line), (Format::Json, Some(1)));
        // YAML 1.2: `yes` and `0755` are strings.
        let v: Value = from_str("a: yes\nb: 0755\nc: 1_000\n").unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": "yes", "b": "0755", "c": "1_000"})
        );
    }

    #[test]
    fn errors_name_the_position_on_one_line() {
        for (text, line) in [
            ("{\"a\": 1,\n \"b\": }", 2),
            ("a: 1\nb: [1, 2\n", 2),
            ("a: 1\na: 2\n", 2),
        ] {
            let e = from_str::<Value>(text).unwrap_err();
            assert_eq!(e.line, Some(line), "{text:?}: {e}");
            let shown = e.to_string();
            assert!(shown.starts_with(&format!("line {line} ")), "{shown}");
            assert!(!shown.contains('\n'), "{shown}");
        }
    }

    /// Each hostile shape of about 10 MB is refused, and in one pass: the
    /// time to refuse grows with size like the time to read a plain
    /// document of that size (no assertion on wall-clock; printed).
    #[test]
    fn hostile_documents_are_refused() {
        const SIZE: usize = 10 << 20;
        let deep_flow = format!("a: {}", "[".repeat(SIZE));
        let deep_json = format!("{}{}", "[".repeat(SIZE / 2), "]".repeat(SIZE / 2));
        let deep_block: String = {
            let mut s = String::new();
            let mut i = 0;
            while s.len() < SIZE {
                s.push_str(&" ".repeat(i.min(2000)));
                s.push_str("k:\n");
                i += 1;
            }
            s
        };
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..40 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let long_key = format!("{}: 1\n", "k".repeat(SIZE));
        let long_json_key = format!("{{\"{}\": 1}}", "k".repeat(SIZE));
        for (what, text) in [
            ("deep flow", &deep_flow),
            ("deep JSON", &deep_json),
            ("deep block", &deep_block),
            ("alias bomb", &bomb),
            ("long key", &long_key),
        ] {
            let start = Instant::now();
            let e = from_str::<Value>(text).unwrap_err();
            assert!(!e.to_string().contains('\n'), "{e}");
            eprintln!(
                "{what}: {} bytes refused in {:?}: {e}",
                text.len(),
                start.elapsed()
            );
        }
        // Deep nesting in a part the type skips is refused too.
        let skipped = format!(
            "{{\"a\": 1, \"b\": {}{}}}",
            "[".repeat(SIZE / 2),
            "]".repeat(SIZE / 2)
        );
        #[derive(Debug, serde::Deserialize)]
        struct OnlyA {
            #[expect(dead_code, reason = "read for its shape")]
            a: u8,
        }
        let e = from_str::<OnlyA>(&skipped).unwrap_err();
        assert_eq!(
            (e.line, e.column),
            (Some(1), Some(MAX_DEPTH as u64 + 14)),
            "{e}"
        );
        // A long JSON key is a long string, not an amplification: read.
        let v: Value = from_str(&long_json_key).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1);
    }
}
