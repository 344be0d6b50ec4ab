//! `GET /v1/analytics` and `GET /v1/analytics/drops`: stored rows of a
//! time range merged per step and group, percentiles from the merged
//! histograms. Times are Unix seconds, `now`, or a duration ago (`-1h`);
//! a row counts in the step its period starts in (an hour rolled up from
//! older periods starts at the hour).

use std::collections::BTreeMap;

use gateway_model::analytics::{Histogram, Row};
use serde_json::{Value, json};

use crate::{api::AdminRequest, clock, error::ApiError, store::Conn};

/// The most steps one answer may hold.
const MAX_STEPS: i64 = 10_000;

/// What rows are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GroupBy {
    Api,
    Operation,
    Product,
    Subscription,
    Gateway,
}

impl GroupBy {
    fn parse(text: Option<&str>) -> Result<GroupBy, ApiError> {
        Ok(match text.unwrap_or("api") {
            "api" => GroupBy::Api,
            "operation" => GroupBy::Operation,
            "product" => GroupBy::Product,
            "subscription" => GroupBy::Subscription,
            "gateway" => GroupBy::Gateway,
            other => {
                return Err(ApiError::bad_request(format!(
                    "group_by=\"{other}\" is unknown; use api, operation, product, subscription or gateway"
                )));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            GroupBy::Api => "api",
            GroupBy::Operation => "operation",
            GroupBy::Product => "product",
            GroupBy::Subscription => "subscription",
            GroupBy::Gateway => "gateway",
        }
    }
}

/// The time range and step of a query.
#[derive(Debug, PartialEq, Eq)]
struct Range {
    from: i64,
    to: i64,
    step: i64,
}

fn time(req: &AdminRequest, key: &str, default: i64, now: i64) -> Result<i64, ApiError> {
    let Some(text) = req.query(key) else {
        return Ok(default);
    };
    let bad = || {
        ApiError::bad_request(format!(
            "{key}=\"{text}\" is not a time; give Unix seconds, \"now\" or a duration ago such as \"-1h\""
        ))
    };
    if text == "now" {
        return Ok(now);
    }
    if let Some(ago) = text.strip_prefix('-') {
        let d = gateway_model::config::parse_duration(ago).map_err(|_| bad())?;
        return Ok(now - d.as_secs() as i64);
    }
    text.parse::<i64>().ok().filter(|t| *t >= 0).ok_or_else(bad)
}

fn range(req: &AdminRequest, now: i64) -> Result<Range, ApiError> {
    let from = time(req, "from", now - 3600, now)?;
    let to = time(req, "to", now + 1, now)?;
    if from >= to {
        return Err(ApiError::bad_request(format!(
            "from ({from}) must be before to ({to})"
        )));
    }
    let step = match req.query("step") {
        None => to - from,
        Some(text) => match text.parse::<i64>() {
            Ok(secs) => secs,
            Err(_) => gateway_model::config::parse_duration(&text)
                .map(|d| d.as_secs() as i64)
                .map_err(|e| ApiError::bad_request(format!("step: {e}; or give seconds")))?,
        },
    };
    if step <= 0 {
        return Err(ApiError::bad_request("step must be at least 1 second"));
    }
    if (to - from + step - 1) / step > MAX_STEPS {
        return Err(ApiError::bad_request(format!(
            "from..to in steps of {step} s is more than {MAX_STEPS} steps; use a larger step or a shorter range"
        )));
    }
    Ok(Range { from, to, step })
}

/// `GET /v1/analytics`.
pub fn requests(conn: &Conn, req: &AdminRequest) -> Result<Value, ApiError> {
    let now = clock::now();
    let group_by = GroupBy::parse(req.query("group_by").as_deref())?;
    let r = range(req, now)?;
    let only_api = req.query("api");
    let only_gateway = req.query("gateway");
    let rows = conn.query(
        "SELECT gateway, period_start, api, operation, product, subscription, status_class,
                requests, errors, bytes_in, bytes_out, latency
         FROM analytics WHERE period_start >= ?1 AND period_start < ?2",
        &[r.from.into(), r.to.into()],
    )?;
    // (step start, group key) -> merged row and counts per status class.
    let mut merged: BTreeMap<(i64, Vec<String>), (Row, [u64; 5])> = BTreeMap::new();
    for db in &rows {
        let gateway = db.text(0)?;
        let row = Row {
            api: db.text(2)?,
            operation: db.text(3)?,
            product: db.text(4)?,
            subscription: db.text(5)?,
            status_class: db.int(6)? as u8,
            requests: db.int(7)? as u64,
            errors: db.int(8)? as u64,
            bytes_in: db.int(9)? as u64,
            bytes_out: db.int(10)? as u64,
            latency: Histogram::from_text(&db.text(11)?).unwrap_or_default(),
        };
        if only_api.as_ref().is_some_and(|a| *a != row.api)
            || only_gateway.as_ref().is_some_and(|g| *g != gateway)
        {
            continue;
        }
        let key = match group_by {
            GroupBy::Api => vec![row.api.clone()],
            GroupBy::Operation => vec![row.api.clone(), row.operation.clone()],
            GroupBy::Product => vec![row.product.clone()],
            GroupBy::Subscription => vec![row.subscription.clone()],
            GroupBy::Gateway => vec![gateway],
        };
        let start = r.from + (db.int(1)? - r.from) / r.step * r.step;
        let class = usize::from(row.status_class.clamp(1, 5)) - 1;
        let entry = merged
            .entry((start, key))
            .or_insert_with(|| (Row::default(), [0; 5]));
        entry.0.merge(&row);
        entry.1[class] += row.requests;
    }
    let out: Vec<Value> = merged
        .into_iter()
        .map(|((start, key), (row, classes))| {
            let mut v = json!({
                "start": start,
                "requests": row.requests,
                "errors": row.errors,
                "error_rate": if row.requests == 0 { 0.0 } else { row.errors as f64 / row.requests as f64 },
                "bytes_in": row.bytes_in,
                "bytes_out": row.bytes_out,
                "status": {
                    "1xx": classes[0], "2xx": classes[1], "3xx": classes[2],
                    "4xx": classes[3], "5xx": classes[4],
                },
                "p50_ms": row.latency.quantile_ms(0.50),
                "p95_ms": row.latency.quantile_ms(0.95),
                "p99_ms": row.latency.quantile_ms(0.99),
            });
            let none = |s: &String| (!s.is_empty()).then(|| s.clone());
            match group_by {
                GroupBy::Operation => {
                    v["api"] = json!(none(&key[0]));
                    v["operation"] = json!(none(&key[1]));
                }
                g => v[g.name()] = json!(none(&key[0])),
            }
            v
        })
        .collect();
    Ok(json!({
        "group_by": group_by.name(),
        "from": r.from,
        "to": r.to,
        "step": r.step,
        "rows": out,
    }))
}

/// `GET /v1/analytics/drops`: XDP drops per gateway and reason, and the
/// sources dropped most per gateway, over the range.
pub fn drops(conn: &Conn, req: &AdminRequest) -> Result<Value, ApiError> {
    let now = clock::now();
    let r = range(req, now)?;
    let drops: Vec<Value> = conn
        .query(
            "SELECT gateway, reason, CAST(SUM(packets) AS BIGINT) FROM analytics_drops
             WHERE period_start >= ?1 AND period_start < ?2
             GROUP BY gateway, reason ORDER BY gateway, reason",
            &[r.from.into(), r.to.into()],
        )?
        .iter()
        .map(|row| {
            Ok(json!({
                "gateway": row.text(0)?,
                "reason": row.text(1)?,
                "packets": row.int(2)?,
            }))
        })
        .collect::<Result<_, crate::store::DbError>>()?;
    let mut per_gateway: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for row in conn.query(
        "SELECT gateway, source, CAST(SUM(packets) AS BIGINT) FROM analytics_sources
         WHERE period_start >= ?1 AND period_start < ?2 GROUP BY gateway, source",
        &[r.from.into(), r.to.into()],
    )? {
        per_gateway
            .entry(row.text(0)?)
            .or_default()
            .push((row.int(2)?, row.text(1)?));
    }
    let mut top = Vec::new();
    for (gateway, mut sources) in per_gateway {
        sources.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        for (packets, source) in sources.into_iter().take(10) {
            top.push(json!({"gateway": gateway, "source": source, "packets": packets}));
        }
    }
    Ok(json!({
        "from": r.from,
        "to": r.to,
        "drops": drops,
        "top_sources": top,
    }))
}
