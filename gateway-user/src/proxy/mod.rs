//! The HTTP reverse proxy: accept connections (`server`), pick the API for a
//! request (`router`), forward it to the backend (`forward`), and answer
//! errors in one JSON shape (`respond`). `echo` is the demo backend.

pub mod echo;
mod forward;
mod respond;
mod router;
mod server;

pub use forward::Proxy;
pub use router::Router;
pub use server::serve;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;

/// Body type of every response the proxy writes.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;
