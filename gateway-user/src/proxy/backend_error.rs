//! Why a backend exchange failed: its own module, so that the clients
//! (`h1_client`, the pooled hyper client in `backend`) and the proxy that
//! answers each failure share it without importing one another.

use super::BoxError;

/// Why a backend exchange failed; the proxy answers each differently.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot connect to the backend: {0}")]
    Connect(#[source] BoxError),
    #[error("the request body is over the limit")]
    BodyTooLarge,
    /// The client's body could not be decoded (see `h1_server::body`); the
    /// backend connection it was going to is closed.
    #[error("the request body is malformed: {0}")]
    BadRequestBody(#[source] BoxError),
    #[error("the backend exchange failed: {0}")]
    Failed(#[source] BoxError),
    /// A pool has no member available (unhealthy, ejected or its circuit
    /// breaker open); one may be back in about `retry_after_secs`.
    #[error("no pool member is available")]
    Unavailable { retry_after_secs: u64 },
}
