//! The store: one interface over two engines. SQLite (the default, one
//! file, WAL mode: readers never wait for the writer and `admin-token
//! create` can write while `serve` runs) or PostgreSQL (`--db
//! postgres://...`, a connection pool, several replicas on one database).
//! Either way a write is one transaction, writers take turns, schema
//! migrations run at open, and every statement is parameterised.

pub mod gateways;
mod postgres;
pub mod resources;
mod schema;
pub mod sql;

pub use resources::Kind;
pub use sql::{Conn, DbError};

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use rusqlite::{Connection, TransactionBehavior};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}; check the path and its permissions")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    /// PostgreSQL could not be used as configured.
    #[error("database {url}: {problem}; {fix}")]
    Postgres {
        url: String,
        problem: String,
        fix: &'static str,
    },
    #[error(
        "the database has schema version {found} but this edgegw-cp supports at most {supported}; run the newer edgegw-cp that wrote it"
    )]
    TooNew { found: i64, supported: i64 },
    #[error("database error: {0}")]
    Sql(#[from] DbError),
    /// Options that do not go together.
    #[error("{0}")]
    Usage(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Sql(e.into())
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> StoreError {
        StoreError::Sql(e.into())
    }
}

/// Where the store lives (`--db`): a SQLite file, or a PostgreSQL URL
/// `postgres://USER@HOST:PORT/DATABASE` (never with its password).
#[derive(Clone, Debug)]
pub enum Location {
    File(PathBuf),
    Postgres(String),
}

impl std::str::FromStr for Location {
    type Err = String;

    fn from_str(text: &str) -> Result<Location, String> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            // Checked when opened: an error here would be echoed with the
            // whole value, password and all.
            Ok(Location::Postgres(text.to_string()))
        } else if text.contains("://") {
            Err(format!(
                "{text}: not a database; pass a SQLite file path or postgres://USER@HOST:PORT/DATABASE"
            ))
        } else {
            Ok(Location::File(PathBuf::from(text)))
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => f.write_str(url),
        }
    }
}

/// The database, shared by the request handlers. Its methods block: call
/// them from blocking threads (`crate::state::blocking`), or before the
/// server starts.
pub enum Store {
    /// One connection: SQLite serialises writers anyway, and every
    /// statement is short.
    Sqlite(Mutex<Connection>),
    Postgres(postgres::Postgres),
}

impl Store {
    /// Opens (creating if needed) and migrates the database. PostgreSQL is
    /// opened on the current tokio runtime, whose handle the store keeps.
    pub fn open(location: &Location, password_file: Option<&Path>) -> Result<Store, StoreError> {
        match location {
            Location::File(path) => {
                if let Some(file) = password_file {
                    return Err(StoreError::Usage(format!(
                        "--db-password-file {} applies to a postgres:// --db only; remove it",
                        file.display()
                    )));
                }
                open_sqlite(path).map(|c| Store::Sqlite(Mutex::new(c)))
            }
            Location::Postgres(url) => {
                postgres::Postgres::open(url, password_file).map(Store::Postgres)
            }
        }
    }

    /// Runs `f` on a connection (reads).
    pub fn read<T, E: From<DbError>>(&self, f: impl FnOnce(&Conn) -> Result<T, E>) -> Result<T, E> {
        match self {
            Store::Sqlite(conn) => {
                let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                f(&Conn::Sqlite(&conn))
            }
            Store::Postgres(pg) => pg.read(f),
        }
    }

    /// Runs `f` in a write transaction, committed only when `f` succeeds.
    /// Writers take turns (SQLite's write lock; an advisory lock on
    /// PostgreSQL, across replicas), so what `f` reads stays true until it
    /// commits.
    pub fn write<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        match self {
            Store::Sqlite(conn) => {
                let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(DbError::from)?;
                let out = f(&Conn::Sqlite(&tx))?;
                tx.commit().map_err(DbError::from)?;
                Ok(out)
            }
            Store::Postgres(pg) => pg.write(f),
        }
    }

    /// Follows the revisions other replicas commit (PostgreSQL only):
    /// a task that raises `revision` when one does.
    pub fn follow_revisions(&self, revision: tokio::sync::watch::Sender<u64>) {
        if let Store::Postgres(pg) = self {
            pg.follow_revisions(revision);
        }
    }
}

/// A migrated in-memory SQLite store, for unit tests.
#[cfg(test)]
pub fn in_memory() -> Store {
    let mut conn = Connection::open_in_memory().expect("an in-memory database opens");
    schema::migrate_sqlite(&mut conn).expect("the schema applies");
    Store::Sqlite(Mutex::new(conn))
}

fn open_sqlite(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.display().to_string(),
        source,
    };
    let mut conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    schema::migrate_sqlite(&mut conn)?;
    Ok(conn)
}

/// The store's revision: grows by one with every committed write.
pub fn revision(conn: &Conn) -> Result<u64, DbError> {
    let row = conn.query_one("SELECT value FROM meta WHERE key = 'revision'", &[])?;
    Ok(row.int(0)? as u64)
}

/// Increments the revision inside a write; returns the new one. On
/// PostgreSQL the new revision is announced to every replica when the
/// write commits (NOTIFY is transactional).
pub fn bump_revision(conn: &Conn) -> Result<u64, DbError> {
    let revision = conn
        .query_one(
            "UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value",
            &[],
        )?
        .int(0)? as u64;
    if conn.is_postgres() {
        let payload = revision.to_string();
        conn.execute(
            "SELECT pg_notify(?1, ?2)",
            &[postgres::CHANNEL.into(), payload.as_str().into()],
        )?;
    }
    Ok(revision)
}

/// Raises `watch` to `revision` (never lowers it: replicas' writes and
/// their notifications arrive in any order).
pub fn advance(watch: &tokio::sync::watch::Sender<u64>, revision: u64) {
    watch.send_if_modified(|current| {
        let newer = revision > *current;
        if newer {
            *current = revision;
        }
        newer
    });
}
