//! The HTTP reverse proxy.
//!
//! Request flow: `server` (accept, TLS, limits; HTTP/1.1 on the lean
//! `h1_server`, which hands the rare requests to hyper; HTTP/2 on hyper;
//! `drain` on shutdown) → `forward` (`request_checks` decides what the
//! request is: Host (`authority`), header names, method, the `canonical`
//! path, upgrades; then route with `router`, rewrite
//! `headers`, send through a pooled `backend` client (`h1_client` for
//! HTTP/1.1), `upgrade` pass-through) → `respond` (JSON errors); `observe`
//! writes the `access_log` line (secrets `redact`ed), metrics and the
//! OTLP `span` when the response ends.
//! `gateway` is the reloadable state; `echo` is the demo backend. `workers`
//! runs connections thread per core.

mod access_log;
mod authority;
pub(crate) mod backend;
mod backend_error;
mod canonical;
mod deadline;
mod drain;
pub mod echo;
pub(crate) mod escalate;
mod forward;
#[doc(hidden)]
pub mod fuzzing;
pub mod gate;
mod gateway;
mod h1_client;
mod h1_server;
mod headers;
mod limits;
mod names;
mod observe;
pub mod pool;
mod redact;
mod request_checks;
mod resolve;
mod respond;
mod router;
mod server;
mod span;
mod spare;
mod upgrade;
mod workers;

pub use gateway::{Gateway, GatewayError, SharedGateway};
pub use router::Router;
pub use server::{Listeners, bind, serve};

use bytes::Bytes;
use http_body_util::combinators::{BoxBody, UnsyncBoxBody};

/// The error of a body stream (defined at the crate root: policies stream
/// bodies too, and do not depend on the proxy).
pub use crate::BoxError;

/// Body type of every response the proxy writes.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// Body type of every request sent to a backend.
pub type RequestBody = UnsyncBoxBody<Bytes, BoxError>;
