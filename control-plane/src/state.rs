//! What every request handler shares: the store, the revision waiters
//! watch, the default token lifetime. Writes go through `State::write` so
//! each one is validated whole and wakes the long-polls once committed.

use std::sync::Arc;

use tokio::sync::watch;

use crate::{
    bundle,
    error::ApiError,
    store::{self, Conn},
};

pub struct State {
    pub store: store::Store,
    /// The store revision after the last committed write (this replica's,
    /// or on PostgreSQL any replica's: see `Store::follow_revisions`).
    pub revision: watch::Sender<u64>,
    /// Lifetime of gateway tokens, seconds.
    pub token_ttl: u64,
    /// Store work admitted at once, per lane: admin requests and the
    /// gateways' long-polls and heartbeats wait in separate queues, so a
    /// burst of admin work cannot hold every slot while gateways wait. The
    /// store is one connection, so more slots would only park threads on
    /// its lock (a write waking a thousand long-polls would start hundreds
    /// of blocking threads). PostgreSQL's pool has a connection per slot.
    pub admin_slots: tokio::sync::Semaphore,
    pub gateway_slots: tokio::sync::Semaphore,
    /// Documents parsed at once (OpenAPI imports): CPU work on the request
    /// alone, kept off the store lanes and to one core.
    pub document_slots: tokio::sync::Semaphore,
    /// Retention and rollup of request analytics.
    pub analytics: crate::analytics::Settings,
    /// Browser sessions, sign-in rate limits and the portal's settings.
    pub web: crate::web::Settings,
    /// `--tls-client-ca`: the gateway endpoints need a client certificate.
    pub gateway_certs_required: bool,
}

/// Whether the request's connection presented a client certificate that
/// chains to `--tls-client-ca` (a request extension set per connection).
#[derive(Clone, Copy, Debug)]
pub struct ClientCertVerified(pub bool);

/// Blocking store tasks running at once, per lane.
pub const ADMIN_SLOTS: usize = 2;
pub const GATEWAY_SLOTS: usize = 4;
/// Documents parsed at once.
pub const DOCUMENT_SLOTS: usize = 1;
/// How long a document waits for its turn before the import is answered
/// 503. Parsing is linear in the document, whose size is capped
/// (`api::http::MAX_IMPORT`): one document takes well under a second of
/// CPU, so this bounds a queue of them, not one.
const DOCUMENT_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// Which queue blocking store work waits in.
#[derive(Clone, Copy, Debug)]
pub enum Lane {
    Admin,
    Gateway,
}

impl State {
    /// Runs `f` in a transaction, bumps the revision, re-assembles and
    /// validates every bundle, and commits only if all of that succeeds.
    pub fn write<T>(&self, f: impl FnOnce(&Conn) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let (out, revision) = self.store.write(|tx| {
            let out = f(tx)?;
            let revision = store::bump_revision(tx)?;
            bundle::refresh(tx, revision)?;
            Ok::<_, ApiError>((out, revision))
        })?;
        store::advance(&self.revision, revision);
        Ok(out)
    }
}

/// Runs blocking store work off the async threads, in `lane`.
pub async fn blocking<T: Send + 'static>(
    state: &Arc<State>,
    lane: Lane,
    f: impl FnOnce(&State) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let slots = match lane {
        Lane::Admin => &state.admin_slots,
        Lane::Gateway => &state.gateway_slots,
    };
    let _slot = slots
        .acquire()
        .await
        .expect("the semaphore is never closed");
    let state = state.clone();
    join(tokio::task::spawn_blocking(move || f(&state)).await)
}

/// Runs CPU work on a request's document (parsing, planning) in the
/// documents lane: one at a time, waiting at most `DOCUMENT_WAIT`.
pub async fn document<T: Send + 'static>(
    state: &Arc<State>,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let _slot = tokio::time::timeout(DOCUMENT_WAIT, state.document_slots.acquire())
        .await
        .map_err(|_| {
            ApiError::new(
                hyper::StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "other documents are being imported; retry in a few seconds (waited {} s)",
                    DOCUMENT_WAIT.as_secs()
                ),
            )
        })?
        .expect("the semaphore is never closed");
    join(tokio::task::spawn_blocking(f).await)
}

fn join<T>(result: Result<Result<T, ApiError>, tokio::task::JoinError>) -> Result<T, ApiError> {
    result.unwrap_or_else(|e| {
        Err(ApiError::new(
            hyper::StatusCode::INTERNAL_SERVER_ERROR,
            format!("request handler failed: {e}"),
        ))
    })
}
