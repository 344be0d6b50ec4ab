//! Catalog resources (APIs, products, subscriptions, named values,
//! backends, the global policies, DoS profiles, policy fragments) as JSON documents keyed by
//! kind and name. Documents are validated before they are written (see
//! `crate::validate`), so what is stored always assembles into valid
//! bundles.

use serde_json::Value;

use super::{Conn, DbError};

/// A kind of catalog resource; its path segment under `/v1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Api,
    Product,
    Subscription,
    NamedValue,
    Backend,
    Policies,
    DosProfile,
    /// A policy fragment (`include-fragment`).
    Fragment,
    /// The Redis of cluster rate limits, in every bundle (one document).
    Redis,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Api,
        Kind::Product,
        Kind::Subscription,
        Kind::NamedValue,
        Kind::Fragment,
        Kind::Backend,
        Kind::Policies,
        Kind::DosProfile,
        Kind::Redis,
    ];

    /// Stored once, under `GLOBAL`, at `/v1/<segment>` (no collection).
    pub fn singleton(self) -> bool {
        matches!(self, Kind::Policies | Kind::Redis)
    }

    /// The collection's path segment, also the `kind` column.
    pub fn segment(self) -> &'static str {
        match self {
            Kind::Api => "apis",
            Kind::Product => "products",
            Kind::Subscription => "subscriptions",
            Kind::NamedValue => "named-values",
            Kind::Backend => "backends",
            Kind::Policies => "policies",
            Kind::DosProfile => "dos-profiles",
            Kind::Fragment => "fragments",
            Kind::Redis => "redis",
        }
    }

    /// The field of a document that holds its name.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Subscription => "id",
            _ => "name",
        }
    }

    /// Singular, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Api => "api",
            Kind::Product => "product",
            Kind::Subscription => "subscription",
            Kind::NamedValue => "named value",
            Kind::Backend => "backend",
            Kind::Policies => "policies",
            Kind::DosProfile => "dos profile",
            Kind::Fragment => "fragment",
            Kind::Redis => "redis",
        }
    }

    pub fn from_segment(segment: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.segment() == segment)
    }
}

pub fn get(conn: &Conn, kind: Kind, name: &str) -> Result<Option<Value>, DbError> {
    Ok(conn
        .query_opt(
            "SELECT body FROM resources WHERE kind = ?1 AND name = ?2",
            &[kind.segment().into(), name.into()],
        )?
        .map(|r| r.text(0))
        .transpose()?
        .map(|b| serde_json::from_str(&b).unwrap_or(Value::Null)))
}

/// Every document of `kind`, ordered by name (so assembled bundles are
/// deterministic).
pub fn list(conn: &Conn, kind: Kind) -> Result<Vec<Value>, DbError> {
    conn.query(
        "SELECT body FROM resources WHERE kind = ?1 ORDER BY name",
        &[kind.segment().into()],
    )?
    .iter()
    .map(|r| Ok(serde_json::from_str(&r.text(0)?).unwrap_or(Value::Null)))
    .collect()
}

/// Creates or replaces; true when it was created.
pub fn put(conn: &Conn, kind: Kind, name: &str, body: &Value) -> Result<bool, DbError> {
    let existed = get(conn, kind, name)?.is_some();
    let body = body.to_string();
    conn.execute(
        "INSERT INTO resources (kind, name, body) VALUES (?1, ?2, ?3)
         ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body",
        &[kind.segment().into(), name.into(), (&body).into()],
    )?;
    Ok(!existed)
}

/// True when something was deleted.
pub fn delete(conn: &Conn, kind: Kind, name: &str) -> Result<bool, DbError> {
    conn.execute(
        "DELETE FROM resources WHERE kind = ?1 AND name = ?2",
        &[kind.segment().into(), name.into()],
    )
    .map(|n| n > 0)
}
