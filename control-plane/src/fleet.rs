//! Heartbeats: each gateway's reported status, and fleet-wide quota usage.
//! Gateways send usage deltas per (counter, window); they are summed per
//! gateway and answered as fleet totals of the windows still current.
//! Windows whose period has passed are dropped, so storage stays bounded.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    clock,
    error::ApiError,
    store::{Conn, DbError, gateways},
};

/// The largest delta accepted: totals stay far from the store's i64 limit.
const MAX_DELTA: u64 = 1 << 40;

/// The longest counter name accepted.
const MAX_COUNTER: usize = 1024;

/// The most pool members a heartbeat may report.
const MAX_POOL_MEMBERS: usize = 4096;

/// The longest batch id accepted.
const MAX_BATCH: usize = 128;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// Bundle version the gateway runs (0 or null before its first one).
    #[serde(default)]
    version: Option<u64>,
    /// Seconds since the gateway started.
    uptime_secs: u64,
    healthy: bool,
    /// Last failure to fetch or apply a bundle; null once one applied.
    #[serde(default)]
    last_sync_error: Option<String>,
    /// XDP per-reason counter totals; null without XDP.
    #[serde(default)]
    xdp: Option<Value>,
    /// Each backend pool's members and their state (available, ejected,
    /// breaker open, recent failures); absent from older gateways.
    #[serde(default)]
    pools: Vec<gateway_model::pool_status::PoolView>,
    /// Quota usage deltas since the last acknowledged heartbeat.
    #[serde(default)]
    usage: Vec<UsageDelta>,
    /// Id of this usage batch. A gateway sends a batch it got no answer
    /// for again with the same id (maybe to another replica): a batch
    /// already counted for this gateway is not counted again.
    #[serde(default)]
    batch: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageDelta {
    counter: String,
    /// Window start, Unix seconds, aligned to `period`.
    window: i64,
    /// Window length in seconds.
    period: i64,
    #[serde(default)]
    calls: u64,
    #[serde(default)]
    kilobytes: u64,
}

/// Fleet totals of one counter in one window.
#[derive(Debug, Serialize)]
pub struct Total {
    counter: String,
    window: i64,
    calls: i64,
    kilobytes: i64,
}

/// Stores the heartbeat of `gateway`, adds its usage, answers the fleet
/// totals. Called inside a transaction: a bad delta changes nothing.
pub fn record(conn: &Conn, gateway: &str, hb: Heartbeat) -> Result<Value, ApiError> {
    for (i, u) in hb.usage.iter().enumerate() {
        if u.counter.is_empty() || u.counter.len() > MAX_COUNTER {
            return Err(ApiError::bad_request(format!(
                "usage[{i}]: counter must be 1 to {MAX_COUNTER} characters"
            )));
        }
        if u.calls > MAX_DELTA || u.kilobytes > MAX_DELTA {
            return Err(ApiError::bad_request(format!(
                "usage[{i}]: calls and kilobytes must be at most {MAX_DELTA} per heartbeat"
            )));
        }
        if u.period <= 0 || u.window < 0 || u.window % u.period != 0 {
            return Err(ApiError::bad_request(format!(
                "usage[{i}]: period must be positive and window a multiple of it (now - now % period)"
            )));
        }
    }
    if let Some(batch) = &hb.batch
        && (batch.is_empty() || batch.len() > MAX_BATCH)
    {
        return Err(ApiError::bad_request(format!(
            "batch must be 1 to {MAX_BATCH} characters"
        )));
    }
    let members: usize = hb.pools.iter().map(|p| p.members.len()).sum();
    if members > MAX_POOL_MEMBERS {
        return Err(ApiError::bad_request(format!(
            "pools: {members} members; at most {MAX_POOL_MEMBERS} are reported"
        )));
    }
    let status = json!({
        "version": hb.version,
        "uptime_secs": hb.uptime_secs,
        "healthy": hb.healthy,
        "last_sync_error": hb.last_sync_error,
        "xdp": hb.xdp,
        "pools": hb.pools,
    });
    gateways::set_status(conn, gateway, &status)?;
    let now = clock::now();
    let counted = match &hb.batch {
        Some(batch) => {
            let last = conn
                .query_opt(
                    "SELECT batch FROM usage_batches WHERE gateway = ?1",
                    &[gateway.into()],
                )?
                .map(|r| r.text(0))
                .transpose()?;
            last.as_deref() == Some(batch.as_str())
        }
        None => false,
    };
    if counted {
        tracing::info!(
            gateway,
            "usage batch already counted (sent again after an unanswered heartbeat); not counted twice"
        );
    }
    let usage = if counted { &[][..] } else { &hb.usage[..] };
    if let (Some(batch), false) = (&hb.batch, counted) {
        conn.execute(
            "INSERT INTO usage_batches (gateway, batch) VALUES (?1, ?2)
             ON CONFLICT (gateway) DO UPDATE SET batch = excluded.batch",
            &[gateway.into(), batch.into()],
        )?;
    }
    for u in usage.iter().filter(|u| u.window + u.period > now) {
        conn.execute(
            "INSERT INTO usage (counter, \"window\", gateway, period, calls, kilobytes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (counter, \"window\", gateway) DO UPDATE SET
                 calls = usage.calls + excluded.calls,
                 kilobytes = usage.kilobytes + excluded.kilobytes",
            &[
                (&u.counter).into(),
                u.window.into(),
                gateway.into(),
                u.period.into(),
                (u.calls as i64).into(),
                (u.kilobytes as i64).into(),
            ],
        )?;
    }
    conn.execute(
        "DELETE FROM usage WHERE \"window\" + period <= ?1",
        &[now.into()],
    )?;
    let fleet = conn
        .query(
            "SELECT counter, \"window\", CAST(SUM(calls) AS BIGINT), CAST(SUM(kilobytes) AS BIGINT)
             FROM usage WHERE \"window\" + period > ?1
             GROUP BY counter, \"window\" ORDER BY counter, \"window\"",
            &[now.into()],
        )?
        .iter()
        .map(|r| {
            Ok(Total {
                counter: r.text(0)?,
                window: r.int(1)?,
                calls: r.int(2)?,
                kilobytes: r.int(3)?,
            })
        })
        .collect::<Result<Vec<_>, DbError>>()?;
    Ok(json!({ "fleet": fleet }))
}

/// A gateway's own reported usage in the current windows.
pub fn usage_of(conn: &Conn, gateway: &str) -> Result<Vec<Value>, DbError> {
    conn.query(
        "SELECT counter, \"window\", calls, kilobytes FROM usage
         WHERE gateway = ?1 AND \"window\" + period > ?2 ORDER BY counter, \"window\"",
        &[gateway.into(), clock::now().into()],
    )?
    .iter()
    .map(|r| {
        Ok(json!({
            "counter": r.text(0)?,
            "window": r.int(1)?,
            "calls": r.int(2)?,
            "kilobytes": r.int(3)?,
        }))
    })
    .collect()
}
