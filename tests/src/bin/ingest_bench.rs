//! `cargo xtask bench ingest [--gateways N] [--minutes N] [--rows N]
//! [--store sqlite|postgres]` (which builds everything, then runs this):
//! the control plane's analytics ingest rate and the storage it takes per
//! gateway-day.
//!
//! 1. Ingest: G simulated gateways (default 20), each on its own TLS
//!    connection from this process, send M one-minute batches (default 60,
//!    the hour before the last) of R rows (default 100: 10 APIs x 5
//!    operations x status classes 2xx and 4xx, two subscriptions) with
//!    XDP drops, as `POST /v1/gateway/analytics` the way gateways do.
//!    Batches/s, rows/s and the control plane's CPU per batch. The fleet
//!    totals `GET /v1/analytics` answers must equal what was sent.
//! 2. Storage: the store's bytes before and after, per gateway-minute and
//!    per gateway-day at minute resolution (x1440); then the control plane
//!    restarted with `--analytics-minutes-for 1h`, one more batch runs the
//!    rollup, and the same per gateway-day once rolled into hours (x24).
//!    Measured after `VACUUM` (SQLite: the whole file; PostgreSQL: the
//!    analytics tables with their indexes, `VACUUM FULL` and
//!    pg_total_relation_size), so space deleted rows left is not counted.
//!
//! Prints numbers; asserts only that every request was counted once.
#![forbid(unsafe_code)]

use std::time::Instant;

use edgegw_tests::{
    bench_args,
    cp::{ControlPlane, Db},
    cp_client::{self, connect, send, usage},
    postgres,
    process::TempDir,
};
use gateway_model::analytics::{Batch, DroppedSource, Drops, Histogram, Row};
use serde_json::json;

/// Batch `minute` of gateway `gw`: `rows` keys, the same every minute (a
/// steady fleet), with counts that vary; its request total.
fn batch(gw: u64, minute: i64, rows: u64) -> (Batch, u64) {
    let mut total = 0;
    let rows = (0..rows)
        .map(|i| {
            // A cheap deterministic spread of counts and latencies.
            let n = 1 + (i * 7919 + gw * 104_729 + minute as u64 * 31) % 500;
            total += n;
            let mut latency = Histogram::default();
            latency.0[2 + (i % 5) as usize] = n - n / 10;
            latency.0[8] = n / 10;
            let class = if i % 4 == 3 { 4 } else { 2 };
            Row {
                api: format!("api-{:02}", i % 10),
                operation: format!("operation-{}", (i / 10) % 5),
                product: format!("product-{}", i % 3),
                subscription: format!("subscription-{:04}", (i / 50) % 2 + gw * 2),
                status_class: class,
                requests: n,
                errors: 0,
                bytes_in: n * 120,
                bytes_out: n * 2048,
                latency,
            }
        })
        .collect();
    let batch = Batch {
        id: format!("bench-gw{gw}-{minute}"),
        start: minute,
        period_secs: 60,
        rows,
        drops: vec![
            Drops {
                reason: "rate_limited".into(),
                packets: 1000 + gw,
            },
            Drops {
                reason: "denied".into(),
                packets: 10,
            },
        ],
        top_dropped_sources: (0..10)
            .map(|s| DroppedSource {
                source: format!("198.51.100.{s}"),
                packets: 100 - s,
            })
            .collect(),
    };
    (batch, total)
}

/// Bytes the store's live data takes: compacted first (`VACUUM`), so
/// that space deleted rows left behind is not counted.
fn stored_bytes(db: &Db) -> u64 {
    match db {
        Db::File(path) => {
            let conn =
                rusqlite::Connection::open(path).expect("opening the control plane's SQLite file");
            conn.busy_timeout(std::time::Duration::from_secs(30))
                .unwrap();
            conn.execute_batch("VACUUM").expect("VACUUM");
            let pages: i64 = conn
                .query_row("SELECT page_count FROM pragma_page_count", [], |r| r.get(0))
                .unwrap();
            let size: i64 = conn
                .query_row("SELECT page_size FROM pragma_page_size", [], |r| r.get(0))
                .unwrap();
            (pages * size) as u64
        }
        Db::Postgres(db) => {
            let server = postgres::server();
            server.psql(
                &db.name,
                "VACUUM FULL analytics, analytics_drops, analytics_sources, analytics_batches",
            );
            server
                .psql(
                    &db.name,
                    "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_catalog.pg_statio_user_tables WHERE relname LIKE 'analytics%'",
                )
                .parse()
                .expect("a size from psql")
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The requests `GET /v1/analytics` (`range`, grouped by gateway) counts.
fn requests_counted(cp: &ControlPlane, range: &str) -> u64 {
    let (status, answer) = cp.admin("GET", range, None);
    assert_eq!(status, 200, "{answer}");
    answer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["requests"].as_u64().unwrap())
        .sum()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let gateways = bench_args::number(&args, "--gateways", 20).max(1);
    let minutes = bench_args::number(&args, "--minutes", 60).clamp(1, 1440) as i64;
    let rows = bench_args::number(&args, "--rows", 100).clamp(1, 20_000);
    let store = bench_args::store(&args);
    let tmp = TempDir::new("bingest");
    let mut cp = ControlPlane::launch(store, &tmp.0, &[]);
    let tokens: Vec<String> = (0..gateways)
        .map(|g| cp.gateway_token(&format!("bench-{g:03}")))
        .collect();
    // Minutes ending at the last hour but one: kept at minute resolution
    // by the default --analytics-minutes-for (2d) while ingesting, and
    // wholly before the rollup's cutoff with 1h.
    let now = unix_now();
    let first = (now / 3600 - 1) * 3600 - minutes * 60;
    let before = stored_bytes(&cp.db);
    let pid = cp.daemon.child.id();
    let (_, cpu_before) = usage(pid);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", cp.port).parse().unwrap();
    let tls = cp_client::tls(&cp);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // Bodies made before the clock starts: the client's JSON is not the
    // control plane's cost.
    let bodies: Vec<Vec<String>> = (0..gateways)
        .map(|g| {
            (0..minutes)
                .map(|m| serde_json::to_string(&batch(g, first + m * 60, rows).0).unwrap())
                .collect()
        })
        .collect();
    let sent_requests: u64 = (0..gateways)
        .flat_map(|g| (0..minutes).map(move |m| batch(g, first + m * 60, rows).1))
        .sum();
    let body_bytes: usize = bodies.iter().flatten().map(String::len).sum();
    let started = Instant::now();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for (token, bodies) in tokens.iter().cloned().zip(bodies) {
            let tls = tls.clone();
            tasks.push(tokio::spawn(async move {
                let mut s = connect(addr, tls).await;
                for body in bodies {
                    let (status, _, answer) =
                        send(&mut s, "POST", "/v1/gateway/analytics", &token, &[], body).await;
                    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let took = started.elapsed();
    let (rss, cpu_after) = usage(pid);
    let after = stored_bytes(&cp.db);

    // From the start of the first minute's hour: a rolled-up hour counts
    // where it starts.
    let range = format!(
        "/v1/analytics?group_by=gateway&from={}&to={}",
        first / 3600 * 3600,
        first + minutes * 60
    );
    assert_eq!(
        requests_counted(&cp, &range),
        sent_requests,
        "every request counted once"
    );

    let batches = (gateways * minutes as u64) as f64;
    let secs = took.as_secs_f64();
    println!(
        "control plane analytics ingest ({store:?}): {gateways} gateways x {minutes} one-minute batches of {rows} rows ({:.1} KiB of JSON each), one TLS connection per gateway",
        body_bytes as f64 / batches / 1024.0
    );
    println!(
        "  {batches} batches in {secs:.2} s: {:.0} batches/s, {:.0} rows/s; control plane CPU {:.2} ms per batch; RSS {:.1} MiB",
        batches / secs,
        batches * rows as f64 / secs,
        (cpu_after - cpu_before) * 1000.0 / batches,
        rss as f64 / 1024.0
    );
    println!(
        "  at that rate one control plane takes the minute batches of {:.0} such gateways (one batch per gateway per minute)",
        batches / secs * 60.0
    );
    let per_minute = after.saturating_sub(before) as f64 / batches;
    println!(
        "  storage at minute resolution: {:.1} KiB per gateway-minute, {:.1} MiB per gateway-day ({:.0} bytes per row)",
        per_minute / 1024.0,
        per_minute * 1440.0 / 1024.0 / 1024.0,
        per_minute / rows as f64
    );

    // Rolled into hours: restart with a one-hour minute resolution; the
    // first batch after the restart runs the rollup.
    cp.restart_with(&["--analytics-minutes-for", "1h"]);
    let now_minute = unix_now() / 60 * 60;
    let trigger = json!({"id": "bench-trigger", "start": now_minute, "period_secs": 60});
    let answer = cp.gateway(
        &tokens[0],
        "POST",
        "/v1/gateway/analytics",
        &[],
        Some(&trigger),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let rolled = stored_bytes(&cp.db);
    assert_eq!(
        requests_counted(&cp, &range),
        sent_requests,
        "the rollup keeps every count"
    );
    let hours = (minutes as f64 / 60.0).ceil();
    let per_hour = rolled.saturating_sub(before) as f64 / (gateways as f64 * hours);
    println!(
        "  rolled into hours (--analytics-minutes-for 1h): {:.1} KiB per gateway-hour, {:.2} MiB per gateway-day; the totals are unchanged",
        per_hour / 1024.0,
        per_hour * 24.0 / 1024.0 / 1024.0
    );
    println!(
        "  default retention (2 days of minutes, then hours to 90 days): about {:.0} MiB per gateway",
        (per_minute * 1440.0 * 2.0 + per_hour * 24.0 * 88.0) / 1024.0 / 1024.0
    );
}
