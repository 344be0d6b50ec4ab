//! The PostgreSQL store: `--db postgres://USER@HOST:PORT/DATABASE`, the
//! password from `--db-password-file` or `PGPASSWORD` (never the URL: a
//! command line is visible to every user of the machine), a pool of
//! connections (deadpool + tokio-postgres), schema migrations under an
//! advisory lock, writers taking turns on another advisory lock, and a
//! LISTEN connection that hears the revisions other replicas commit.

use std::{path::Path, time::Duration};

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio::{runtime::Handle, sync::watch};
use tokio_postgres::{AsyncMessage, Config, NoTls, config::SslMode, error::SqlState};

use super::{
    StoreError, schema,
    sql::{Conn, DbError, Session, describe},
};

/// The NOTIFY channel on which writes announce the new revision.
pub const CHANNEL: &str = "edgegw_revision";

/// The advisory lock every write transaction takes: one writer at a time
/// across replicas, as SQLite has one writer.
const WRITE_LOCK: i64 = 0x6567_7700_0002;

/// Connections in the pool: the store lanes of `crate::state` (admin and
/// gateway slots) plus room for startup and the watchdog.
const POOL_SIZE: usize = 8;

/// How long a connection attempt may take when the URL does not say
/// (`?connect_timeout=SECONDS`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest a statement may run (unless the URL sets `options`).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

const WRITE_URL: &str = "write it as postgres://USER@HOST:PORT/DATABASE";

/// The fix when no connection could be made.
const UNREACHABLE: &str = "check the host and port in the URL and that PostgreSQL is running and accepts connections there";

pub struct Postgres {
    pool: Pool,
    config: Config,
    rt: Handle,
}

/// Checks what can be checked of a `--db` URL without connecting: that it
/// parses and carries no password.
pub fn check_url(url: &str) -> Result<Config, String> {
    let config: Config = url
        .parse()
        .map_err(|e| format!("database URL {}: {e}; {WRITE_URL}", redacted(url)))?;
    if config.get_password().is_some() {
        return Err(format!(
            "database URL {} contains a password; remove it from the URL and pass it with --db-password-file FILE or the PGPASSWORD environment variable",
            redacted(url)
        ));
    }
    if config.get_user().is_none() {
        return Err(format!("database URL {url} names no user; {WRITE_URL}"));
    }
    if config.get_hosts().is_empty() {
        return Err(format!("database URL {url} names no host; {WRITE_URL}"));
    }
    if config.get_ssl_mode() == SslMode::Require {
        return Err(format!(
            "database URL {url}: sslmode=require, but this edgegw-cp connects without TLS; reach PostgreSQL over loopback, a Unix socket or a private network and drop sslmode"
        ));
    }
    Ok(config)
}

/// The URL with any password replaced, for messages.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}

/// What to do about an error met while connecting or migrating.
fn fix_for(e: &tokio_postgres::Error) -> &'static str {
    match e.code() {
        Some(c)
            if *c == SqlState::INVALID_PASSWORD
                || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            "check the user in the URL and the password (--db-password-file FILE or PGPASSWORD)"
        }
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => {
            "create the database (createdb NAME) or fix its name in the URL"
        }
        Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => {
            "let the user create and write tables in the database (e.g. make it the database's owner)"
        }
        Some(c) if *c == SqlState::READ_ONLY_SQL_TRANSACTION => "point --db at a writable primary",
        Some(_) => "check the database's state and the user's rights",
        None if describe(e).contains("password") => {
            "give the password with --db-password-file FILE or the PGPASSWORD environment variable"
        }
        None => UNREACHABLE,
    }
}

impl Postgres {
    /// Connects, checks the database is writable, migrates it. Must run
    /// inside a tokio runtime (not on one of its async threads).
    pub fn open(url: &str, password_file: Option<&Path>) -> Result<Postgres, StoreError> {
        let failed = |problem: String, fix: &'static str| StoreError::Postgres {
            url: url.to_string(),
            problem,
            fix,
        };
        let mut config = check_url(url).map_err(StoreError::Usage)?;
        let password = match password_file {
            Some(file) => Some(
                std::fs::read_to_string(file)
                    .map_err(|e| {
                        StoreError::Usage(format!(
                            "--db-password-file {}: {e}; give a readable file holding the password",
                            file.display()
                        ))
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
            ),
            None => std::env::var("PGPASSWORD").ok(),
        };
        if let Some(password) = password {
            config.password(password);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("edgegw-cp");
        // A database that stops answering fails requests instead of
        // holding the store lanes for ever (a write waiting for the write
        // lock counts too).
        if config.get_options().is_none() {
            config.options(format!(
                "-c statement_timeout={}",
                STATEMENT_TIMEOUT.as_millis()
            ));
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(CONNECT_TIMEOUT + Duration::from_secs(1)))
            .build()
            .expect("a pool with a runtime and a size builds");
        let rt = Handle::current();
        rt.block_on(async {
            let mut client = pool.get().await.map_err(|e| match e {
                PoolError::Backend(e) => failed(describe(&e), fix_for(&e)),
                PoolError::Timeout(_) => failed("timed out connecting".into(), UNREACHABLE),
                e => failed(e.to_string(), UNREACHABLE),
            })?;
            let row = client
                .query_one(
                    "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')",
                    &[],
                )
                .await
                .map_err(|e| failed(describe(&e), fix_for(&e)))?;
            if row.get::<_, bool>(0) || row.get::<_, String>(1) == "on" {
                return Err(failed(
                    "the database is read-only (a standby, or default_transaction_read_only is on)"
                        .into(),
                    "point --db at a writable primary",
                ));
            }
            schema::migrate_postgres(&mut client)
                .await
                .map_err(|e| match e {
                    StoreError::Sql(DbError::Postgres(e)) => failed(describe(&e), fix_for(&e)),
                    e => e,
                })
        })?;
        Ok(Postgres { pool, config, rt })
    }

    pub fn read<T, E: From<DbError>>(&self, f: impl FnOnce(&Conn) -> Result<T, E>) -> Result<T, E> {
        let client = self.rt.block_on(self.pool.get()).map_err(pool_error)?;
        f(&Conn::Postgres {
            session: Session::Client(&client),
            rt: &self.rt,
        })
    }

    pub fn write<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut client = self.rt.block_on(self.pool.get()).map_err(pool_error)?;
        let tx = self
            .rt
            .block_on(async {
                let tx = client.transaction().await?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
                    .await?;
                Ok::<_, tokio_postgres::Error>(tx)
            })
            .map_err(DbError::from)?;
        // On an error the transaction is dropped: rolled back.
        let out = f(&Conn::Postgres {
            session: Session::Tx(&tx),
            rt: &self.rt,
        })?;
        self.rt.block_on(tx.commit()).map_err(DbError::from)?;
        Ok(out)
    }

    /// Spawns the task that LISTENs for revisions and raises `revision`.
    pub fn follow_revisions(&self, revision: watch::Sender<u64>) {
        self.rt.spawn(follow(self.config.clone(), revision));
    }
}

fn pool_error(e: PoolError) -> DbError {
    match e {
        PoolError::Backend(e) => DbError::Postgres(e),
        e => DbError::Pool(e.to_string()),
    }
}

/// Keeps a LISTEN connection open, reconnecting after a second when it
/// drops. Until it is back, long-polls on this replica wake only for its
/// own writes; on reconnecting it reads the revision it may have missed.
async fn follow(config: Config, revision: watch::Sender<u64>) {
    loop {
        match listen(&config, &revision).await {
            Ok(()) => tracing::warn!(
                "the PostgreSQL LISTEN connection closed; reconnecting in 1 s (until then long-polls wake only for this replica's writes)"
            ),
            Err(e) => tracing::warn!(
                error = %describe(&e),
                "listening for other replicas' writes failed; retrying in 1 s (until then long-polls wake only for this replica's writes)"
            ),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen(
    config: &Config,
    revision: &watch::Sender<u64>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let watch = revision.clone();
    // The connection delivers notifications as it is polled; this task is
    // the only one polling it.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => match n.payload().parse() {
                    Ok(r) => super::advance(&watch, r),
                    Err(_) => tracing::warn!(
                        payload = n.payload(),
                        channel = n.channel(),
                        "a notification that is not a revision; ignored"
                    ),
                },
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    // Writes committed before LISTEN took effect: catch up once.
    let current: i64 = client
        .query_one("SELECT value FROM meta WHERE key = 'revision'", &[])
        .await?
        .get(0);
    super::advance(revision, current as u64);
    tracing::debug!("listening for other replicas' writes");
    driver.await.unwrap_or(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_passwords_or_without_users_are_refused_without_echoing_the_password() {
        let err = check_url("postgres://cp:s3cret@db:5432/edgegw").unwrap_err();
        assert!(err.contains("contains a password"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let err = check_url("postgres://db:5432/edgegw").unwrap_err();
        assert!(err.contains("names no user"), "{err}");
        let err = check_url("postgres://cp@/edgegw").unwrap_err();
        assert!(err.contains("names no host"), "{err}");
        let err = check_url("postgres://cp@db:5432/edgegw?sslmode=require").unwrap_err();
        assert!(err.contains("sslmode=require"), "{err}");
        assert!(check_url("postgres://cp@db:5432/edgegw").is_ok());
        assert!(check_url("postgresql://cp@127.0.0.1/edgegw").is_ok());
    }
}
