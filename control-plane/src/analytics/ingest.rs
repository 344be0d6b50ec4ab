//! Taking in one gateway's batch, exactly once: the batch id is recorded
//! in the same transaction as the counts, so a batch sent again (its
//! answer lost, or the gateway restarted before deleting it) adds nothing.

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
    for row in &batch.rows {
        add_row(conn, gateway, batch.start, SPAN_SENT, row)?;
    }
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

/// Adds a row to the stored one with the same key (histograms merged).
pub fn add_row(
    conn: &Conn,
    gateway: &str,
    start: i64,
    span: &str,
    row: &Row,
) -> Result<(), DbError> {
    let class = i64::from(row.status_class);
    let key: [Param; 8] = [
        gateway.into(),
        start.into(),
        span.into(),
        row.api.as_str().into(),
        row.operation.as_str().into(),
        row.product.as_str().into(),
        row.subscription.as_str().into(),
        class.into(),
    ];
    const WHERE: &str = "gateway = ?1 AND period_start = ?2 AND span = ?3 AND api = ?4
         AND operation = ?5 AND product = ?6 AND subscription = ?7 AND status_class = ?8";
    let stored = conn.query_opt(
        &format!(
            "SELECT requests, errors, bytes_in, bytes_out, latency FROM analytics WHERE {WHERE}"
        ),
        &key,
    )?;
    let mut merged = row.clone();
    if let Some(r) = &stored {
        merged.merge(&Row {
            requests: r.int(0)? as u64,
            errors: r.int(1)? as u64,
            bytes_in: r.int(2)? as u64,
            bytes_out: r.int(3)? as u64,
            latency: Histogram::from_text(&r.text(4)?).unwrap_or_default(),
            ..Row::default()
        });
    }
    let latency = merged.latency.to_text();
    let mut params = key.to_vec();
    params.extend::<[Param; 5]>([
        (merged.requests as i64).into(),
        (merged.errors as i64).into(),
        (merged.bytes_in as i64).into(),
        (merged.bytes_out as i64).into(),
        latency.as_str().into(),
    ]);
    if stored.is_some() {
        conn.execute(
            &format!(
                "UPDATE analytics SET requests = ?9, errors = ?10, bytes_in = ?11, bytes_out = ?12,
                 latency = ?13 WHERE {WHERE}"
            ),
            &params,
        )?;
    } else {
        conn.execute(
            "INSERT INTO analytics (gateway, period_start, span, api, operation, product,
                 subscription, status_class, requests, errors, bytes_in, bytes_out, latency)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
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
