//! The schema as an ordered list of migrations. `PRAGMA user_version` holds
//! how many have been applied; they run in one transaction at open, and a
//! database written by a newer edgegw-cp is refused rather than guessed at.

use rusqlite::Connection;

use super::StoreError;

/// Migration N (1-based) brings the schema from version N-1 to N. Append
/// only: a released migration is never edited.
const MIGRATIONS: &[&str] = &[
    // 1: catalog resources as validated JSON documents, gateways, tokens,
    // heartbeats and fleet usage.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
     INSERT INTO meta (key, value) VALUES ('revision', 1);
     CREATE TABLE resources (
         kind TEXT NOT NULL,
         name TEXT NOT NULL,
         body TEXT NOT NULL,
         PRIMARY KEY (kind, name)
     );
     CREATE TABLE admin_tokens (
         sha256 TEXT PRIMARY KEY,
         name TEXT NOT NULL,
         created_at INTEGER NOT NULL
     );
     CREATE TABLE signing_keys (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         key BLOB NOT NULL,
         created_at INTEGER NOT NULL
     );
     CREATE TABLE gateways (
         name TEXT PRIMARY KEY,
         apis TEXT NOT NULL,
         dos_profile TEXT,
         token_id TEXT NOT NULL,
         bundle_hash TEXT NOT NULL DEFAULT '',
         bundle TEXT NOT NULL DEFAULT '',
         version INTEGER NOT NULL DEFAULT 0,
         created_at INTEGER NOT NULL
     );
     CREATE TABLE gateway_status (
         name TEXT PRIMARY KEY REFERENCES gateways (name) ON DELETE CASCADE,
         body TEXT NOT NULL,
         last_seen INTEGER NOT NULL
     );
     CREATE TABLE usage (
         counter TEXT NOT NULL,
         window INTEGER NOT NULL,
         gateway TEXT NOT NULL,
         period INTEGER NOT NULL,
         calls INTEGER NOT NULL,
         kilobytes INTEGER NOT NULL,
         PRIMARY KEY (counter, window, gateway)
     );
     CREATE INDEX usage_expiry ON usage (window, period);",
];

/// The schema version this binary writes.
pub const CURRENT: i64 = MIGRATIONS.len() as i64;

/// Applies the migrations `conn` lacks, all or none.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > CURRENT {
        return Err(StoreError::TooNew {
            found: version,
            supported: CURRENT,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)?;
        // PRAGMA takes no parameters; the value is our own integer.
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_newer_databases_are_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, CURRENT);
        // Idempotent: a second start changes nothing.
        migrate(&mut conn).unwrap();
        let revision: i64 = conn
            .query_row("SELECT value FROM meta WHERE key = 'revision'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(revision, 1);
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
        let err = migrate(&mut conn).unwrap_err().to_string();
        assert!(err.contains("schema version 99"), "{err}");
    }
}
