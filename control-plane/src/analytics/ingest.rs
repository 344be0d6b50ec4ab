//! Taking in one gateway's batch, exactly once: the batch id is recorded
//! in the same transaction as the counts, so a batch sent again (its
//! answer lost, or the gateway restarted before deleting it) adds nothing.

use std::collections::BTreeMap;

use gateway_model::analytics::{Batch, Histogram, Row};

use super::SPAN_SENT;
use crate::{
    error::ApiError,
    store::{Conn, DbError, sql::Param},
};

/// Adds `batch` of `gateway`; false when that batch id was counted before.
/// Runs inside a write transaction: a bad batch changes nothing.
pub fn record(conn: &Conn, gateway: &str, batch: &Batch, now: i64) -> Result<bool, ApiError> {
    batch.validate().map_err(|m| {
        ApiError::bad_request(format!(
            "analytics batch {:?}: {m}; the batch is dropped (the gateway counts it as refused)",
            batch.id
        ))
    })?;
    let fresh = conn.execute(
        "INSERT INTO analytics_batches (gateway, id, received_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (gateway, id) DO NOTHING",
        &[gateway.into(), (&batch.id).into(), now.into()],
    )? == 1;
    if !fresh {
        tracing::info!(gateway, batch = %batch.id, "analytics batch already counted; not counted twice");
        return Ok(false);
    }
    add_rows(conn, gateway, batch.start, SPAN_SENT, &batch.rows)?;
    for d in &batch.drops {
        add_drops(conn, gateway, batch.start, SPAN_SENT, &d.reason, d.packets)?;
    }
    for s in &batch.top_dropped_sources {
        conn.execute(
            "INSERT INTO analytics_sources (gateway, period_start, source, packets)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (gateway, period_start, source) DO UPDATE SET
                 packets = analytics_sources.packets + excluded.packets",
            &[
                gateway.into(),
                batch.start.into(),
                (&s.source).into(),
                (s.packets as i64).into(),
            ],
        )?;
    }
    Ok(true)
}

/// (api, operation, product, subscription, status class).
type RowKey = (String, String, String, String, u8);

/// The most rows one statement writes (13 parameters each: well inside
/// SQLite's and PostgreSQL's parameter limits).
const ROWS_PER_STATEMENT: usize = 500;

/// Adds `rows` of one gateway and period to the stored ones with the same
/// keys (histograms merged): the stored rows of the period are read in
/// one query, merged in memory and written back in few multi-row
/// statements — a batch costs a handful of round trips to the store, not
/// two per row.
pub fn add_rows(
    conn: &Conn,
    gateway: &str,
    start: i64,
    span: &str,
    rows: &[Row],
) -> Result<(), DbError> {
    if rows.is_empty() {
        return Ok(());
    }
    let key_of = |r: &Row| -> RowKey {
        (
            r.api.clone(),
            r.operation.clone(),
            r.product.clone(),
            r.subscription.clone(),
            r.status_class,
        )
    };
    let mut merged: BTreeMap<RowKey, Row> = BTreeMap::new();
    for row in rows {
        merged
            .entry(key_of(row))
            .and_modify(|m| m.merge(row))
            .or_insert_with(|| row.clone());
    }
    let stored = conn.query(
        "SELECT api, operation, product, subscription, status_class,
                requests, errors, bytes_in, bytes_out, latency
         FROM analytics WHERE gateway = ?1 AND period_start = ?2 AND span = ?3",
        &[gateway.into(), start.into(), span.into()],
    )?;
    for r in &stored {
        let key: RowKey = (
            r.text(0)?,
            r.text(1)?,
            r.text(2)?,
            r.text(3)?,
            r.int(4)? as u8,
        );
        if let Some(m) = merged.get_mut(&key) {
            m.merge(&Row {
                requests: r.int(5)? as u64,
                errors: r.int(6)? as u64,
                bytes_in: r.int(7)? as u64,
                bytes_out: r.int(8)? as u64,
                latency: Histogram::from_text(&r.text(9)?).unwrap_or_default(),
                ..Row::default()
            });
        }
    }
    let rows: Vec<&Row> = merged.values().collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let latencies: Vec<String> = chunk.iter().map(|r| r.latency.to_text()).collect();
        let mut params: Vec<Param> = Vec::with_capacity(chunk.len() * 13);
        let mut values = Vec::with_capacity(chunk.len());
        for (row, latency) in chunk.iter().zip(&latencies) {
            let at = params.len();
            values.push(format!(
                "({})",
                (1..=13)
                    .map(|i| format!("?{}", at + i))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            params.extend::<[Param; 13]>([
                gateway.into(),
                start.into(),
                span.into(),
                row.api.as_str().into(),
                row.operation.as_str().into(),
                row.product.as_str().into(),
                row.subscription.as_str().into(),
                i64::from(row.status_class).into(),
                (row.requests as i64).into(),
                (row.errors as i64).into(),
                (row.bytes_in as i64).into(),
                (row.bytes_out as i64).into(),
                latency.as_str().into(),
            ]);
        }
        // The merged totals replace what was read above, in the same
        // transaction.
        conn.execute(
            &format!(
                "INSERT INTO analytics (gateway, period_start, span, api, operation, product,
                     subscription, status_class, requests, errors, bytes_in, bytes_out, latency)
                 VALUES {}
                 ON CONFLICT (gateway, period_start, span, api, operation, product,
                     subscription, status_class) DO UPDATE SET
                     requests = excluded.requests, errors = excluded.errors,
                     bytes_in = excluded.bytes_in, bytes_out = excluded.bytes_out,
                     latency = excluded.latency",
                values.join(", ")
            ),
            &params,
        )?;
    }
    Ok(())
}

pub fn add_drops(
    conn: &Conn,
    gateway: &str,
    start: i64,
    span: &str,
    reason: &str,
    packets: u64,
) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO analytics_drops (gateway, period_start, span, reason, packets)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (gateway, period_start, span, reason) DO UPDATE SET
             packets = analytics_drops.packets + excluded.packets",
        &[
            gateway.into(),
            start.into(),
            span.into(),
            reason.into(),
            (packets as i64).into(),
        ],
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use gateway_model::analytics::{Batch, Drops, Histogram, Row};

    use super::*;
    use crate::{
        analytics::{Settings, rollup},
        store,
    };

    fn batch(id: &str, start: i64, requests: u64) -> Batch {
        let mut latency = Histogram::default();
        for _ in 0..requests {
            latency.observe_micros(4000);
        }
        Batch {
            id: id.into(),
            start,
            period_secs: 60,
            rows: vec![Row {
                api: "orders".into(),
                operation: "get".into(),
                status_class: 2,
                requests,
                bytes_out: requests * 10,
                latency,
                ..Row::default()
            }],
            drops: vec![Drops {
                reason: "rate_limited".into(),
                packets: 5,
            }],
            top_dropped_sources: vec![],
        }
    }

    fn totals(store: &store::Store) -> Vec<(String, i64, i64, String)> {
        store
            .read(|c| {
                c.query(
                    "SELECT span, period_start, requests, latency FROM analytics ORDER BY span, period_start",
                    &[],
                )?
                .iter()
                .map(|r| Ok((r.text(0)?, r.int(1)?, r.int(2)?, r.text(3)?)))
                .collect::<Result<Vec<_>, DbError>>()
            })
            .unwrap()
    }

    #[test]
    fn a_batch_sent_again_is_counted_once_and_periods_merge() {
        let store = store::in_memory();
        let add = |b: &Batch| {
            store
                .write(|c| record(c, "gw-a", b, 1000))
                .map_err(|e| e.message)
        };
        assert_eq!(add(&batch("i-60-1", 60, 3)), Ok(true));
        assert_eq!(
            add(&batch("i-60-1", 60, 3)),
            Ok(false),
            "same id: a duplicate"
        );
        // Another batch of the same period (after a restart): added.
        assert_eq!(add(&batch("j-60-1", 60, 2)), Ok(true));
        let rows = totals(&store);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].2, 5);
        assert_eq!(Histogram::from_text(&rows[0].3).unwrap().count(), 5);
        let drops = store
            .read(|c| {
                c.query_one("SELECT packets FROM analytics_drops", &[])?
                    .int(0)
            })
            .unwrap();
        assert_eq!(drops, 10);
        // Another gateway may reuse an id: ids are per gateway.
        assert_eq!(
            store
                .write(|c| record(c, "gw-b", &batch("i-60-1", 60, 1), 1000))
                .map_err(|e| e.message),
            Ok(true)
        );
        // A bad batch changes nothing and names its problem.
        let mut bad = batch("k-60-1", 60, 1);
        bad.rows[0].requests = 9;
        let err = add(&bad).unwrap_err();
        assert!(err.contains("rows[0].latency counts 1 requests"), "{err}");
        assert_eq!(
            add(&batch("k-60-1", 60, 1)),
            Ok(true),
            "the refused id was not recorded"
        );
    }

    /// More rows than one statement writes, a key twice in one batch, and
    /// a second batch of the period merging into the stored rows.
    #[test]
    fn large_batches_are_written_whole_and_repeated_keys_merge() {
        let store = store::in_memory();
        let mut big = batch("big", 120, 1);
        let row = big.rows[0].clone();
        big.rows = (0..(ROWS_PER_STATEMENT * 2 + 7))
            .map(|i| Row {
                subscription: format!("s{i}"),
                ..row.clone()
            })
            .collect();
        big.rows.push(row.clone());
        big.rows.push(Row {
            subscription: "s0".into(),
            ..row.clone()
        });
        store.write(|c| record(c, "gw-a", &big, 1000)).unwrap();
        let mut again = batch("again", 120, 1);
        again.rows[0].subscription = "s0".into();
        store.write(|c| record(c, "gw-a", &again, 1000)).unwrap();
        let (rows, total, s0) = store
            .read(|c| {
                let n = |sql: &str| -> Result<i64, DbError> { c.query_one(sql, &[])?.int(0) };
                Ok::<_, DbError>((
                    n("SELECT count(*) FROM analytics")?,
                    n("SELECT sum(requests) FROM analytics")?,
                    n("SELECT requests FROM analytics WHERE subscription = 's0'")?,
                ))
            })
            .unwrap();
        assert_eq!(rows as usize, ROWS_PER_STATEMENT * 2 + 8);
        assert_eq!(total as usize, big.rows.len() + 1);
        assert_eq!(
            s0, 3,
            "once in each row of s0 and once from the second batch"
        );
    }

    #[test]
    fn old_periods_roll_up_into_hours_and_expire() {
        let store = store::in_memory();
        let hour = 3600 * 100;
        for (i, start) in [hour, hour + 60, hour + 3540, hour + 3600]
            .iter()
            .enumerate()
        {
            store
                .write(|c| record(c, "gw-a", &batch(&format!("b{i}"), *start, 2), 0))
                .unwrap();
        }
        // Rows stay as sent for 1 h: at hour + 2 h + 5 min, the first hour
        // rolls up and the second stays.
        let settings = Settings::new(3600, 10 * 86_400);
        let rolled = store
            .write(|c| rollup::run(c, &settings, hour + 7500))
            .unwrap();
        assert_eq!(rolled.rows_merged, 3);
        let rows = totals(&store);
        assert_eq!(
            rows.iter()
                .map(|r| (r.0.as_str(), r.1, r.2))
                .collect::<Vec<_>>(),
            [("h", hour, 6), ("m", hour + 3600, 2)]
        );
        assert_eq!(Histogram::from_text(&rows[0].3).unwrap().count(), 6);
        let drops: Vec<(String, i64)> = store
            .read(|c| {
                c.query(
                    "SELECT span, packets FROM analytics_drops ORDER BY span",
                    &[],
                )?
                .iter()
                .map(|r| Ok((r.text(0)?, r.int(1)?)))
                .collect::<Result<_, DbError>>()
            })
            .unwrap();
        assert_eq!(drops, [("h".to_string(), 15), ("m".to_string(), 5)]);
        // Past the retention everything goes, batch ids included.
        store
            .write(|c| rollup::run(c, &settings, hour + 20 * 86_400))
            .unwrap();
        assert!(totals(&store).is_empty());
        let ids = store
            .read(|c| {
                c.query_one("SELECT COUNT(*) FROM analytics_batches", &[])?
                    .int(0)
            })
            .unwrap();
        assert_eq!(ids, 0);
    }
}
