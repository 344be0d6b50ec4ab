//! What every request handler shares: the store, the revision waiters
//! watch, the default token lifetime. Writes go through `State::write` so
//! each one is validated whole and wakes the long-polls once committed.

use std::sync::Arc;

use rusqlite::Transaction;
use tokio::sync::watch;

use crate::{bundle, error::ApiError, store};

pub struct State {
    pub store: store::Store,
    /// The store revision after the last committed write.
    pub revision: watch::Sender<u64>,
    /// Lifetime of gateway tokens, seconds.
    pub token_ttl: u64,
    /// Store work admitted at once. The store is one connection, so more
    /// would only park threads on its lock (a write waking a thousand
    /// long-polls would start hundreds of blocking threads).
    pub slots: tokio::sync::Semaphore,
}

/// Blocking store tasks running at once.
pub const SLOTS: usize = 4;

impl State {
    /// Runs `f` in a transaction, bumps the revision, re-assembles and
    /// validates every bundle, and commits only if all of that succeeds.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&Transaction) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let (out, revision) = self.store.write(|tx| {
            let out = f(tx)?;
            let revision = store::bump_revision(tx)?;
            bundle::refresh(tx, revision)?;
            Ok::<_, ApiError>((out, revision))
        })?;
        self.revision.send_replace(revision);
        Ok(out)
    }
}

/// Runs blocking store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    state: &Arc<State>,
    f: impl FnOnce(&State) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let _slot = state
        .slots
        .acquire()
        .await
        .expect("the semaphore is never closed");
    let state = state.clone();
    tokio::task::spawn_blocking(move || f(&state))
        .await
        .unwrap_or_else(|e| {
            Err(ApiError::new(
                hyper::StatusCode::INTERNAL_SERVER_ERROR,
                format!("request handler failed: {e}"),
            ))
        })
}
