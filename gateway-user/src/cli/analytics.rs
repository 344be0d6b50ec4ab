//! `edgegw analytics [--json]`: the running daemon's analytics of the
//! period in progress, from its admin listener's `/analytics` (found in
//! the status file).

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    time::Duration,
};

use anyhow::Context;
use serde_json::Value;

use crate::status;

pub fn analytics(runtime_dir: &Path, json_out: bool) -> anyhow::Result<()> {
    let status = status::read(runtime_dir)?;
    let admin = status
        .listeners
        .iter()
        .find(|l| l.name == "admin")
        .map(|l| l.addr.clone())
        .context(
            "the daemon has no admin listener; add [admin] listen = \"127.0.0.1:9100\" to its configuration to read its analytics",
        )?;
    let body = get(&admin, "/analytics")
        .with_context(|| format!("reading /analytics from the admin listener {admin}"))?;
    let v: Value = serde_json::from_str(&body).context("the admin listener's /analytics")?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render(&v));
    }
    Ok(())
}

/// A GET over HTTP/1.0 on loopback: the body of a 200.
fn get(addr: &str, path: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP answer")?;
    // The body of a refusal says why (e.g. analytics turned off).
    anyhow::ensure!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "answered {}: {}",
        head.lines().next().unwrap_or_default(),
        body.trim()
    );
    Ok(body.to_string())
}

fn render(v: &Value) -> String {
    let s = |v: &Value| match v {
        Value::String(s) if s.is_empty() => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let mut out = format!(
        "period {} (+{} s), in progress\n{:<16} {:<16} {:<12} {:<14} {:>6} {:>9} {:>7} {:>11} {:>11} {:>7} {:>7} {:>7}\n",
        gateway_model::clock::rfc3339_secs(v["start"].as_i64().unwrap_or(0)),
        s(&v["period_secs"]),
        "API",
        "OPERATION",
        "PRODUCT",
        "SUBSCRIPTION",
        "STATUS",
        "REQUESTS",
        "ERRORS",
        "BYTES IN",
        "BYTES OUT",
        "P50 MS",
        "P95 MS",
        "P99 MS"
    );
    for r in v["rows"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<16} {:<16} {:<12} {:<14} {:>6} {:>9} {:>7} {:>11} {:>11} {:>7} {:>7} {:>7}\n",
            s(&r["api"]),
            s(&r["operation"]),
            s(&r["product"]),
            s(&r["subscription"]),
            s(&r["status_class"]),
            s(&r["requests"]),
            s(&r["errors"]),
            s(&r["bytes_in"]),
            s(&r["bytes_out"]),
            s(&r["p50_ms"]),
            s(&r["p95_ms"]),
            s(&r["p99_ms"]),
        ));
    }
    let a = &v["sending"];
    if !a["outbox_dir"].is_null() {
        out.push_str(&format!(
            "outbox: {} batches, {} bytes; sent {}, refused {}, dropped {}\n",
            s(&a["outbox_batches"]),
            s(&a["outbox_bytes"]),
            s(&a["sent_batches"]),
            s(&a["refused_batches"]),
            s(&a["dropped_batches"]),
        ));
    }
    out
}
