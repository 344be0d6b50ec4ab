//! Registered gateways: their assignments (APIs, DoS profile), current
//! token id, the bundle they should run with its version, and the status
//! their last heartbeat reported.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::Value;

/// One gateway as stored.
#[derive(Clone, Debug, Serialize)]
pub struct Gateway {
    pub name: String,
    pub apis: Vec<String>,
    pub dos_profile: Option<String>,
    #[serde(skip)]
    pub token_id: String,
    #[serde(skip)]
    pub bundle_hash: String,
    /// The bundle version this gateway should run.
    pub version: u64,
}

/// What a gateway's last heartbeat said, and when it arrived.
#[derive(Clone, Debug, Serialize)]
pub struct GatewayStatus {
    /// The heartbeat body without its usage deltas.
    #[serde(flatten)]
    pub reported: Value,
    /// Unix seconds.
    pub last_seen: i64,
}

const COLUMNS: &str = "name, apis, dos_profile, token_id, bundle_hash, version";

fn from_row(r: &Row) -> rusqlite::Result<Gateway> {
    let apis: String = r.get(1)?;
    Ok(Gateway {
        name: r.get(0)?,
        apis: serde_json::from_str(&apis).unwrap_or_default(),
        dos_profile: r.get(2)?,
        token_id: r.get(3)?,
        bundle_hash: r.get(4)?,
        version: r.get::<_, i64>(5)? as u64,
    })
}

pub fn get(conn: &Connection, name: &str) -> rusqlite::Result<Option<Gateway>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM gateways WHERE name = ?1"),
        params![name],
        from_row,
    )
    .optional()
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<Gateway>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM gateways ORDER BY name"))?;
    stmt.query_map([], from_row)?.collect()
}

pub fn insert(conn: &Connection, gw: &Gateway) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO gateways (name, apis, dos_profile, token_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            gw.name,
            serde_json::to_string(&gw.apis).expect("strings serialise"),
            gw.dos_profile,
            gw.token_id,
            crate::clock::now()
        ],
    )
    .map(drop)
}

pub fn set_assignment(
    conn: &Connection,
    name: &str,
    apis: &[String],
    dos_profile: Option<&str>,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE gateways SET apis = ?2, dos_profile = ?3 WHERE name = ?1",
        params![
            name,
            serde_json::to_string(apis).expect("strings serialise"),
            dos_profile
        ],
    )
    .map(drop)
}

pub fn set_token_id(conn: &Connection, name: &str, token_id: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE gateways SET token_id = ?2 WHERE name = ?1",
        params![name, token_id],
    )
    .map(drop)
}

/// Records a new bundle (its content changed at `version`).
pub fn set_bundle(
    conn: &Connection,
    name: &str,
    hash: &str,
    bundle: &str,
    version: u64,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE gateways SET bundle_hash = ?2, bundle = ?3, version = ?4 WHERE name = ?1",
        params![name, hash, bundle, version as i64],
    )
    .map(drop)
}

/// The version and bundle text a gateway should run.
pub fn bundle(conn: &Connection, name: &str) -> rusqlite::Result<Option<(u64, String)>> {
    conn.query_row(
        "SELECT version, bundle FROM gateways WHERE name = ?1",
        params![name],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
    )
    .optional()
}

/// The version alone (what a waiting long-poll compares).
pub fn version(conn: &Connection, name: &str) -> rusqlite::Result<Option<u64>> {
    conn.query_row(
        "SELECT version FROM gateways WHERE name = ?1",
        params![name],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|v| v.map(|v| v as u64))
}

pub fn delete(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.execute("DELETE FROM gateways WHERE name = ?1", params![name])
        .map(|n| n > 0)
}

pub fn set_status(conn: &Connection, name: &str, reported: &Value) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO gateway_status (name, body, last_seen) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET body = excluded.body, last_seen = excluded.last_seen",
        params![name, reported.to_string(), crate::clock::now()],
    )
    .map(drop)
}

pub fn status(conn: &Connection, name: &str) -> rusqlite::Result<Option<GatewayStatus>> {
    conn.query_row(
        "SELECT body, last_seen FROM gateway_status WHERE name = ?1",
        params![name],
        |r| {
            let body: String = r.get(0)?;
            Ok(GatewayStatus {
                reported: serde_json::from_str(&body).unwrap_or(Value::Null),
                last_seen: r.get(1)?,
            })
        },
    )
    .optional()
}
