//! The token counters `llm-emit-token-metric` adds to: one series per
//! namespace and dimension values, in `/metrics` as
//! `edgegw_llm_tokens_total{namespace, kind, <dimensions>}`. Kept for the
//! process (a reload keeps the counts), bounded in series: dimension values
//! come from requests, so past `MAX_SERIES` new ones are counted as dropped.

use std::{
    collections::HashMap,
    fmt::Write,
    sync::{LazyLock, Mutex},
};

use super::usage::Usage;

const MAX_SERIES: usize = 10_000;

/// A series: the namespace and the dimensions (label name, value).
type Labels = (String, Vec<(String, String)>);

#[derive(Default)]
struct Store {
    /// prompt, completion
    series: HashMap<Labels, [u64; 2]>,
    dropped: u64,
}

static STORE: LazyLock<Mutex<Store>> = LazyLock::new(Default::default);

/// A dimension's name as a Prometheus label: `API ID` is `api_id`.
pub fn label_name(name: &str) -> String {
    let mut out: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) || matches!(out.as_str(), "namespace" | "kind")
    {
        out.insert_str(0, "dim_");
    }
    out
}

pub fn record(namespace: &str, dimensions: Vec<(String, String)>, usage: Usage) {
    let mut store = STORE.lock().unwrap_or_else(|e| e.into_inner());
    let key = (namespace.to_string(), dimensions);
    if !store.series.contains_key(&key) && store.series.len() >= MAX_SERIES {
        store.dropped += 1;
        return;
    }
    let counts = store.series.entry(key).or_default();
    counts[0] += usage.prompt;
    counts[1] += usage.completion;
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn render(out: &mut String) {
    let store = STORE.lock().unwrap_or_else(|e| e.into_inner());
    if store.series.is_empty() && store.dropped == 0 {
        return;
    }
    out.push_str("# HELP edgegw_llm_tokens_total Language-model tokens of calls through llm-emit-token-metric, by namespace, kind (prompt, completion, total) and dimensions.\n# TYPE edgegw_llm_tokens_total counter\n");
    let mut series: Vec<_> = store.series.iter().collect();
    series.sort();
    for ((namespace, dims), [prompt, completion]) in series {
        let mut labels = format!("namespace=\"{}\"", escape(namespace));
        for (name, value) in dims {
            let _ = write!(labels, ",{name}=\"{}\"", escape(value));
        }
        for (kind, n) in [
            ("prompt", *prompt),
            ("completion", *completion),
            ("total", prompt + completion),
        ] {
            let _ = writeln!(
                out,
                "edgegw_llm_tokens_total{{{labels},kind=\"{kind}\"}} {n}"
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP edgegw_llm_token_series_dropped_total Calls not counted in edgegw_llm_tokens_total because it had {MAX_SERIES} series.\n# TYPE edgegw_llm_token_series_dropped_total counter\nedgegw_llm_token_series_dropped_total {}",
        store.dropped
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_are_prometheus_names() {
        for (name, want) in [
            ("API ID", "api_id"),
            ("Client IP", "client_ip"),
            ("1st", "dim_1st"),
            ("kind", "dim_kind"),
        ] {
            assert_eq!(label_name(name), want);
        }
    }
}
