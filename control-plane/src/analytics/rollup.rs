//! Rollup and retention: rows older than `minutes_for` (whole hours only)
//! are merged into one row per hour and key and deleted at their own
//! resolution; everything older than `retention` is deleted, batch ids
//! included (a gateway's outbox never holds a batch that long: its bound
//! drops older ones first).

use std::collections::BTreeMap;

use gateway_model::analytics::{Histogram, Row};

use super::{SPAN_HOUR, SPAN_SENT, Settings, ingest};
use crate::store::{Conn, DbError};

const HOUR: i64 = 3600;

/// (gateway, hour, api, operation, product, subscription, status class).
type HourKey = (String, i64, String, String, String, String, u8);

/// What one rollup did, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rolled {
    pub rows_merged: u64,
    pub deleted: u64,
}

/// Rolls up and expires as of `now`.
pub fn run(conn: &Conn, settings: &Settings, now: i64) -> Result<Rolled, DbError> {
    let mut done = Rolled::default();
    // Only hours wholly before the cutoff: a later batch of the hour in
    // progress still lands at its own resolution.
    let cutoff = (now - settings.minutes_for).div_euclid(HOUR) * HOUR;
    let rows = conn.query(
        "SELECT gateway, period_start, api, operation, product, subscription, status_class,
                requests, errors, bytes_in, bytes_out, latency
         FROM analytics WHERE span = ?1 AND period_start < ?2",
        &[SPAN_SENT.into(), cutoff.into()],
    )?;
    let mut hours: BTreeMap<HourKey, Row> = BTreeMap::new();
    for r in &rows {
        let row = Row {
            api: r.text(2)?,
            operation: r.text(3)?,
            product: r.text(4)?,
            subscription: r.text(5)?,
            status_class: r.int(6)? as u8,
            requests: r.int(7)? as u64,
            errors: r.int(8)? as u64,
            bytes_in: r.int(9)? as u64,
            bytes_out: r.int(10)? as u64,
            latency: Histogram::from_text(&r.text(11)?).unwrap_or_default(),
        };
        let key = (
            r.text(0)?,
            r.int(1)?.div_euclid(HOUR) * HOUR,
            row.api.clone(),
            row.operation.clone(),
            row.product.clone(),
            row.subscription.clone(),
            row.status_class,
        );
        hours
            .entry(key)
            .and_modify(|h| h.merge(&row))
            .or_insert(row);
        done.rows_merged += 1;
    }
    // One write per gateway and hour (the map is ordered by them).
    let mut group: Option<(String, i64)> = None;
    let mut of_group = Vec::new();
    for ((gateway, hour, ..), row) in hours {
        if group
            .as_ref()
            .is_some_and(|(g, h)| (g, *h) != (&gateway, hour))
        {
            let (g, h) = group.take().expect("checked");
            ingest::add_rows(conn, &g, h, SPAN_HOUR, &std::mem::take(&mut of_group))?;
        }
        group = Some((gateway, hour));
        of_group.push(row);
    }
    if let Some((g, h)) = group {
        ingest::add_rows(conn, &g, h, SPAN_HOUR, &of_group)?;
    }
    let drops = conn.query(
        "SELECT gateway, period_start, reason, packets FROM analytics_drops
         WHERE span = ?1 AND period_start < ?2",
        &[SPAN_SENT.into(), cutoff.into()],
    )?;
    let mut drop_hours: BTreeMap<(String, i64, String), u64> = BTreeMap::new();
    for r in &drops {
        *drop_hours
            .entry((r.text(0)?, r.int(1)?.div_euclid(HOUR) * HOUR, r.text(2)?))
            .or_default() += r.int(3)? as u64;
    }
    for ((gateway, hour, reason), packets) in &drop_hours {
        ingest::add_drops(conn, gateway, *hour, SPAN_HOUR, reason, *packets)?;
    }
    for table in ["analytics", "analytics_drops"] {
        done.deleted += conn.execute(
            &format!("DELETE FROM {table} WHERE span = ?1 AND period_start < ?2"),
            &[SPAN_SENT.into(), cutoff.into()],
        )?;
    }
    // Sources are kept at their own resolution only, as long as rows are.
    done.deleted += conn.execute(
        "DELETE FROM analytics_sources WHERE period_start < ?1",
        &[cutoff.into()],
    )?;
    let expired = now - settings.retention;
    for table in ["analytics", "analytics_drops"] {
        done.deleted += conn.execute(
            &format!("DELETE FROM {table} WHERE period_start < ?1"),
            &[expired.into()],
        )?;
    }
    conn.execute(
        "DELETE FROM analytics_batches WHERE received_at < ?1",
        &[expired.into()],
    )?;
    Ok(done)
}
