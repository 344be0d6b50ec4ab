//! Registered gateways: their assignments (APIs, DoS profile), current
//! token id, the bundle they should run with its version, and the status
//! their last heartbeat reported.

use serde::Serialize;
use serde_json::Value;

use super::{Conn, DbError, sql::Row};

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
    /// Hash of the bundle without its subscriptions.
    #[serde(skip)]
    pub base_hash: String,
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

const COLUMNS: &str = "name, apis, dos_profile, token_id, bundle_hash, version, base_hash";

fn from_row(r: &Row) -> Result<Gateway, DbError> {
    Ok(Gateway {
        name: r.text(0)?,
        apis: serde_json::from_str(&r.text(1)?).unwrap_or_default(),
        dos_profile: r.opt_text(2)?,
        token_id: r.text(3)?,
        bundle_hash: r.text(4)?,
        version: r.int(5)? as u64,
        base_hash: r.text(6)?,
    })
}

pub fn get(conn: &Conn, name: &str) -> Result<Option<Gateway>, DbError> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM gateways WHERE name = ?1"),
        &[name.into()],
    )?
    .as_ref()
    .map(from_row)
    .transpose()
}

pub fn list(conn: &Conn) -> Result<Vec<Gateway>, DbError> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM gateways ORDER BY name"),
        &[],
    )?
    .iter()
    .map(from_row)
    .collect()
}

pub fn insert(conn: &Conn, gw: &Gateway) -> Result<(), DbError> {
    let apis = serde_json::to_string(&gw.apis).expect("strings serialise");
    conn.execute(
        "INSERT INTO gateways (name, apis, dos_profile, token_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        &[
            (&gw.name).into(),
            (&apis).into(),
            gw.dos_profile.as_deref().into(),
            (&gw.token_id).into(),
            crate::clock::now().into(),
        ],
    )
    .map(drop)
}

pub fn set_assignment(
    conn: &Conn,
    name: &str,
    apis: &[String],
    dos_profile: Option<&str>,
) -> Result<(), DbError> {
    let apis = serde_json::to_string(apis).expect("strings serialise");
    conn.execute(
        "UPDATE gateways SET apis = ?2, dos_profile = ?3 WHERE name = ?1",
        &[name.into(), (&apis).into(), dos_profile.into()],
    )
    .map(drop)
}

pub fn set_token_id(conn: &Conn, name: &str, token_id: &str) -> Result<(), DbError> {
    conn.execute(
        "UPDATE gateways SET token_id = ?2 WHERE name = ?1",
        &[name.into(), token_id.into()],
    )
    .map(drop)
}

/// A gateway's bundle as of one write.
pub struct NewBundle<'a> {
    pub hash: &'a str,
    pub base_hash: &'a str,
    pub text: &'a str,
    /// Its change of subscriptions from the previous version, when that
    /// is all that changed (JSON of `BundleDelta`), or empty.
    pub delta: &'a str,
}

/// Records a new bundle (its content changed at `version`).
pub fn set_bundle(conn: &Conn, name: &str, new: &NewBundle, version: u64) -> Result<(), DbError> {
    conn.execute(
        "UPDATE gateways SET bundle_hash = ?2, bundle = ?3, version = ?4, base_hash = ?5, delta = ?6
         WHERE name = ?1",
        &[
            name.into(),
            new.hash.into(),
            new.text.into(),
            (version as i64).into(),
            new.base_hash.into(),
            new.delta.into(),
        ],
    )
    .map(drop)
}

/// The change of subscriptions into a gateway's current version, if that
/// version differs from the previous one by subscriptions alone.
pub fn delta(conn: &Conn, name: &str) -> Result<Option<String>, DbError> {
    conn.query_opt("SELECT delta FROM gateways WHERE name = ?1", &[name.into()])?
        .map(|r| r.text(0))
        .transpose()
        .map(|d| d.filter(|d| !d.is_empty()))
}

/// The version and bundle text a gateway should run.
pub fn bundle(conn: &Conn, name: &str) -> Result<Option<(u64, String)>, DbError> {
    conn.query_opt(
        "SELECT version, bundle FROM gateways WHERE name = ?1",
        &[name.into()],
    )?
    .map(|r| Ok((r.int(0)? as u64, r.text(1)?)))
    .transpose()
}

/// The version alone (what a waiting long-poll compares).
pub fn version(conn: &Conn, name: &str) -> Result<Option<u64>, DbError> {
    conn.query_opt(
        "SELECT version FROM gateways WHERE name = ?1",
        &[name.into()],
    )?
    .map(|r| Ok(r.int(0)? as u64))
    .transpose()
}

pub fn delete(conn: &Conn, name: &str) -> Result<bool, DbError> {
    conn.execute("DELETE FROM gateways WHERE name = ?1", &[name.into()])
        .map(|n| n > 0)
}

pub fn set_status(conn: &Conn, name: &str, reported: &Value) -> Result<(), DbError> {
    let body = reported.to_string();
    conn.execute(
        "INSERT INTO gateway_status (name, body, last_seen) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET body = excluded.body, last_seen = excluded.last_seen",
        &[name.into(), (&body).into(), crate::clock::now().into()],
    )
    .map(drop)
}

/// Gateways that heartbeated within the last `secs` seconds.
pub fn seen_within(conn: &Conn, secs: i64) -> Result<i64, DbError> {
    conn.query_opt(
        "SELECT COUNT(*) FROM gateway_status WHERE last_seen >= ?1",
        &[(crate::clock::now() - secs).into()],
    )?
    .map_or(Ok(0), |r| r.int(0))
}

pub fn status(conn: &Conn, name: &str) -> Result<Option<GatewayStatus>, DbError> {
    conn.query_opt(
        "SELECT body, last_seen FROM gateway_status WHERE name = ?1",
        &[name.into()],
    )?
    .map(|r| {
        Ok(GatewayStatus {
            reported: serde_json::from_str(&r.text(0)?).unwrap_or(Value::Null),
            last_seen: r.int(1)?,
        })
    })
    .transpose()
}
