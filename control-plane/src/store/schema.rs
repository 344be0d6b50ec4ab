//! The schema as an ordered list of migrations, each in the two dialects.
//! SQLite keeps how many have been applied in `PRAGMA user_version`,
//! PostgreSQL in the one-row table `edgegw_schema`. They run in one
//! transaction at open (on PostgreSQL under an advisory lock, so replicas
//! starting together migrate once), and a database written by a newer
//! edgegw-cp is refused rather than guessed at.

use rusqlite::Connection;

use super::StoreError;

/// One schema step in both dialects.
struct Migration {
    sqlite: &'static str,
    postgres: &'static str,
}

/// Migration N (1-based) brings the schema from version N-1 to N. Append
/// only: a released migration is never edited. PostgreSQL sorts the key
/// columns bytewise (`COLLATE "C"`), as SQLite does, so lists and bundles
/// come out in the same order on both.
const MIGRATIONS: &[Migration] = &[
    // 1: catalog resources as validated JSON documents, gateways, tokens,
    // heartbeats and fleet usage.
    Migration {
        sqlite: "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
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
        postgres: r#"CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
     INSERT INTO meta (key, value) VALUES ('revision', 1);
     CREATE TABLE resources (
         kind TEXT COLLATE "C" NOT NULL,
         name TEXT COLLATE "C" NOT NULL,
         body TEXT NOT NULL,
         PRIMARY KEY (kind, name)
     );
     CREATE TABLE admin_tokens (
         sha256 TEXT PRIMARY KEY,
         name TEXT COLLATE "C" NOT NULL,
         created_at BIGINT NOT NULL
     );
     CREATE TABLE signing_keys (
         id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         key BYTEA NOT NULL,
         created_at BIGINT NOT NULL
     );
     CREATE TABLE gateways (
         name TEXT COLLATE "C" PRIMARY KEY,
         apis TEXT NOT NULL,
         dos_profile TEXT,
         token_id TEXT NOT NULL,
         bundle_hash TEXT NOT NULL DEFAULT '',
         bundle TEXT NOT NULL DEFAULT '',
         version BIGINT NOT NULL DEFAULT 0,
         created_at BIGINT NOT NULL
     );
     CREATE TABLE gateway_status (
         name TEXT COLLATE "C" PRIMARY KEY REFERENCES gateways (name) ON DELETE CASCADE,
         body TEXT NOT NULL,
         last_seen BIGINT NOT NULL
     );
     CREATE TABLE usage (
         counter TEXT COLLATE "C" NOT NULL,
         "window" BIGINT NOT NULL,
         gateway TEXT COLLATE "C" NOT NULL,
         period BIGINT NOT NULL,
         calls BIGINT NOT NULL,
         kilobytes BIGINT NOT NULL,
         PRIMARY KEY (counter, "window", gateway)
     );
     CREATE INDEX usage_expiry ON usage ("window", period);"#,
    },
    // 2: the last usage batch counted per gateway, so that a batch sent
    // again (its heartbeat unanswered) is not counted twice.
    Migration {
        sqlite: "CREATE TABLE usage_batches (
         gateway TEXT PRIMARY KEY REFERENCES gateways (name) ON DELETE CASCADE,
         batch TEXT NOT NULL
     );",
        postgres: r#"CREATE TABLE usage_batches (
         gateway TEXT COLLATE "C" PRIMARY KEY REFERENCES gateways (name) ON DELETE CASCADE,
         batch TEXT NOT NULL
     );"#,
    },
    // 3: request analytics (`crate::analytics`): rows per gateway, period
    // start and span ('m' as sent, 'h' rolled up into hours), XDP drops,
    // the top dropped sources, and the batch ids counted (exactly once).
    Migration {
        sqlite: "CREATE TABLE analytics (
         gateway TEXT NOT NULL,
         period_start INTEGER NOT NULL,
         span TEXT NOT NULL,
         api TEXT NOT NULL,
         operation TEXT NOT NULL,
         product TEXT NOT NULL,
         subscription TEXT NOT NULL,
         status_class INTEGER NOT NULL,
         requests INTEGER NOT NULL,
         errors INTEGER NOT NULL,
         bytes_in INTEGER NOT NULL,
         bytes_out INTEGER NOT NULL,
         latency TEXT NOT NULL,
         PRIMARY KEY (gateway, period_start, span, api, operation, product, subscription, status_class)
     );
     CREATE INDEX analytics_time ON analytics (period_start);
     CREATE TABLE analytics_drops (
         gateway TEXT NOT NULL,
         period_start INTEGER NOT NULL,
         span TEXT NOT NULL,
         reason TEXT NOT NULL,
         packets INTEGER NOT NULL,
         PRIMARY KEY (gateway, period_start, span, reason)
     );
     CREATE INDEX analytics_drops_time ON analytics_drops (period_start);
     CREATE TABLE analytics_sources (
         gateway TEXT NOT NULL,
         period_start INTEGER NOT NULL,
         source TEXT NOT NULL,
         packets INTEGER NOT NULL,
         PRIMARY KEY (gateway, period_start, source)
     );
     CREATE INDEX analytics_sources_time ON analytics_sources (period_start);
     CREATE TABLE analytics_batches (
         gateway TEXT NOT NULL,
         id TEXT NOT NULL,
         received_at INTEGER NOT NULL,
         PRIMARY KEY (gateway, id)
     );
     CREATE INDEX analytics_batches_time ON analytics_batches (received_at);",
        postgres: r#"CREATE TABLE analytics (
         gateway TEXT COLLATE "C" NOT NULL,
         period_start BIGINT NOT NULL,
         span TEXT COLLATE "C" NOT NULL,
         api TEXT COLLATE "C" NOT NULL,
         operation TEXT COLLATE "C" NOT NULL,
         product TEXT COLLATE "C" NOT NULL,
         subscription TEXT COLLATE "C" NOT NULL,
         status_class BIGINT NOT NULL,
         requests BIGINT NOT NULL,
         errors BIGINT NOT NULL,
         bytes_in BIGINT NOT NULL,
         bytes_out BIGINT NOT NULL,
         latency TEXT NOT NULL,
         PRIMARY KEY (gateway, period_start, span, api, operation, product, subscription, status_class)
     );
     CREATE INDEX analytics_time ON analytics (period_start);
     CREATE TABLE analytics_drops (
         gateway TEXT COLLATE "C" NOT NULL,
         period_start BIGINT NOT NULL,
         span TEXT COLLATE "C" NOT NULL,
         reason TEXT COLLATE "C" NOT NULL,
         packets BIGINT NOT NULL,
         PRIMARY KEY (gateway, period_start, span, reason)
     );
     CREATE INDEX analytics_drops_time ON analytics_drops (period_start);
     CREATE TABLE analytics_sources (
         gateway TEXT COLLATE "C" NOT NULL,
         period_start BIGINT NOT NULL,
         source TEXT COLLATE "C" NOT NULL,
         packets BIGINT NOT NULL,
         PRIMARY KEY (gateway, period_start, source)
     );
     CREATE INDEX analytics_sources_time ON analytics_sources (period_start);
     CREATE TABLE analytics_batches (
         gateway TEXT COLLATE "C" NOT NULL,
         id TEXT COLLATE "C" NOT NULL,
         received_at BIGINT NOT NULL,
         PRIMARY KEY (gateway, id)
     );
     CREATE INDEX analytics_batches_time ON analytics_batches (received_at);"#,
    },
    // 4: the web console and developer portal (`crate::web`): browser
    // sessions (hashed ids, CSRF tokens, expiry), consumer accounts
    // (argon2 password hashes), which subscriptions consumers made (and
    // whether an operator must still approve them), the products published
    // in the portal, and the readable digest of each imported OpenAPI
    // document.
    Migration {
        sqlite: "CREATE TABLE web_sessions (
         sha256 TEXT PRIMARY KEY,
         kind TEXT NOT NULL,
         subject TEXT NOT NULL,
         csrf TEXT NOT NULL,
         expires_at INTEGER NOT NULL
     );
     CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);
     CREATE TABLE consumers (
         email TEXT PRIMARY KEY,
         password TEXT NOT NULL,
         created_at INTEGER NOT NULL
     );
     CREATE TABLE consumer_subscriptions (
         subscription TEXT PRIMARY KEY,
         consumer TEXT NOT NULL REFERENCES consumers (email) ON DELETE CASCADE,
         product TEXT NOT NULL,
         pending INTEGER NOT NULL,
         created_at INTEGER NOT NULL
     );
     CREATE INDEX consumer_subscriptions_consumer ON consumer_subscriptions (consumer);
     CREATE TABLE published_products (
         product TEXT PRIMARY KEY,
         approval_required INTEGER NOT NULL
     );
     CREATE TABLE api_docs (
         api TEXT PRIMARY KEY,
         body TEXT NOT NULL
     );",
        postgres: r#"CREATE TABLE web_sessions (
         sha256 TEXT PRIMARY KEY,
         kind TEXT NOT NULL,
         subject TEXT COLLATE "C" NOT NULL,
         csrf TEXT NOT NULL,
         expires_at BIGINT NOT NULL
     );
     CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);
     CREATE TABLE consumers (
         email TEXT COLLATE "C" PRIMARY KEY,
         password TEXT NOT NULL,
         created_at BIGINT NOT NULL
     );
     CREATE TABLE consumer_subscriptions (
         subscription TEXT COLLATE "C" PRIMARY KEY,
         consumer TEXT COLLATE "C" NOT NULL REFERENCES consumers (email) ON DELETE CASCADE,
         product TEXT COLLATE "C" NOT NULL,
         pending BIGINT NOT NULL,
         created_at BIGINT NOT NULL
     );
     CREATE INDEX consumer_subscriptions_consumer ON consumer_subscriptions (consumer);
     CREATE TABLE published_products (
         product TEXT COLLATE "C" PRIMARY KEY,
         approval_required BIGINT NOT NULL
     );
     CREATE TABLE api_docs (
         api TEXT COLLATE "C" PRIMARY KEY,
         body TEXT NOT NULL
     );"#,
    },
    // 5: what a gateway's bundle is without its subscriptions (a hash), and
    // the change of subscriptions from its previous version, served to a
    // gateway that holds that version (`crate::bundle`, deltas).
    Migration {
        sqlite: "ALTER TABLE gateways ADD COLUMN base_hash TEXT NOT NULL DEFAULT '';
     ALTER TABLE gateways ADD COLUMN delta TEXT NOT NULL DEFAULT '';",
        postgres: "ALTER TABLE gateways ADD COLUMN base_hash TEXT NOT NULL DEFAULT '';
     ALTER TABLE gateways ADD COLUMN delta TEXT NOT NULL DEFAULT '';",
    },
];

/// The schema version this binary writes.
pub const CURRENT: i64 = MIGRATIONS.len() as i64;

/// Applies the migrations the SQLite database lacks, all or none.
pub fn migrate_sqlite(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > CURRENT {
        return Err(StoreError::TooNew {
            found: version,
            supported: CURRENT,
        });
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(m.sqlite)?;
        // PRAGMA takes no parameters; the value is our own integer.
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
    }
    tx.commit()?;
    Ok(())
}

/// The advisory lock replicas take to migrate one at a time.
const MIGRATION_LOCK: i64 = 0x6567_7700_0001;

/// Applies the migrations the PostgreSQL database lacks, all or none, under
/// an advisory lock: replicas starting together wait for the first one and
/// then find the schema current.
pub async fn migrate_postgres(client: &mut tokio_postgres::Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    // Created only when missing (IF NOT EXISTS would log a notice at every
    // start).
    let fresh: bool = tx
        .query_one("SELECT to_regclass('edgegw_schema') IS NULL", &[])
        .await?
        .get(0);
    if fresh {
        tx.batch_execute("CREATE TABLE edgegw_schema (version BIGINT NOT NULL)")
            .await?;
    }
    let version: i64 = tx
        .query_opt("SELECT version FROM edgegw_schema", &[])
        .await?
        .map_or(0, |r| r.get(0));
    if version > CURRENT {
        return Err(StoreError::TooNew {
            found: version,
            supported: CURRENT,
        });
    }
    if version < CURRENT {
        for m in MIGRATIONS.iter().skip(version as usize) {
            tx.batch_execute(m.postgres).await?;
        }
        tx.execute("DELETE FROM edgegw_schema", &[]).await?;
        tx.execute(
            "INSERT INTO edgegw_schema (version) VALUES ($1)",
            &[&CURRENT],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_newer_databases_are_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_sqlite(&mut conn).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, CURRENT);
        // Idempotent: a second start changes nothing.
        migrate_sqlite(&mut conn).unwrap();
        let revision: i64 = conn
            .query_row("SELECT value FROM meta WHERE key = 'revision'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(revision, 1);
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
        let err = migrate_sqlite(&mut conn).unwrap_err().to_string();
        assert!(err.contains("schema version 99"), "{err}");
    }
}
