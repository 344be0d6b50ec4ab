//! Errors the gateway itself detects, classified once and answered in the
//! JSON shape API-management users know: `{"statusCode": 404, "message": "..."}`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Response, StatusCode, header};

use super::ProxyBody;
use crate::admin::Rejection;

/// A request refused for what it is, before it reaches a backend (see
/// `request_checks`): its status, the one-line reason the client reads,
/// and the reason it is counted under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: &'static str,
    pub reason: Rejection,
}

impl Refusal {
    pub const fn bad_request(message: &'static str, reason: Rejection) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            message,
            reason,
        }
    }
}

/// Every error the proxy answers itself.
#[derive(Debug)]
pub enum ProxyError {
    NoApi {
        path: String,
    },
    NoOperation {
        api: String,
        method: String,
        path: String,
    },
    BadPath,
    BodyTooLarge {
        limit: u64,
    },
    BackendConnect {
        api: String,
    },
    BackendTimeout {
        api: String,
    },
    BackendFailed {
        api: String,
    },
    /// A pool with no member available (circuit breaker open, members
    /// ejected or unhealthy): 503 with `Retry-After`.
    BackendUnavailable {
        api: String,
        retry_after_secs: u64,
    },
    /// A backend switched protocols without being asked to (an upgrade
    /// the client did not ask for, or not the one it asked for).
    UnaskedUpgrade {
        api: String,
    },
    Refused(Refusal),
    /// The client's request body could not be decoded.
    BadBody {
        why: String,
    },
    /// CONNECT or TRACE where no operation names it; `allow` lists the
    /// methods the path's operations take.
    NotAllowed {
        allow: String,
    },
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoApi { .. } | ProxyError::NoOperation { .. } => StatusCode::NOT_FOUND,
            ProxyError::BadPath => StatusCode::BAD_REQUEST,
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::BackendConnect { .. }
            | ProxyError::BackendFailed { .. }
            | ProxyError::UnaskedUpgrade { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::BackendTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::BackendUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Refused(r) => r.status,
            ProxyError::BadBody { .. } => StatusCode::BAD_REQUEST,
            ProxyError::NotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn message(&self) -> String {
        match self {
            ProxyError::NoApi { path } => format!("No API matches the path {path}"),
            ProxyError::NoOperation { api, method, path } => {
                format!("API {api} has no operation matching {method} {path}")
            }
            ProxyError::BadPath => "The request path cannot be forwarded".into(),
            ProxyError::BodyTooLarge { limit } => {
                format!("The request body is larger than the limit of {limit} bytes")
            }
            ProxyError::BackendConnect { api } => {
                format!("Backend for API {api} is unavailable")
            }
            ProxyError::BackendTimeout { api } => {
                format!("Backend for API {api} did not answer in time")
            }
            ProxyError::BackendFailed { api } => {
                format!("Backend for API {api} failed to answer")
            }
            ProxyError::BackendUnavailable {
                api,
                retry_after_secs,
            } => format!(
                "Backend for API {api} is unavailable: no pool member can take requests (circuit breaker open, ejected or failing health checks); retry after {retry_after_secs} s"
            ),
            ProxyError::UnaskedUpgrade { api } => {
                format!("Backend for API {api} switched protocols without being asked to")
            }
            ProxyError::Refused(r) => r.message.into(),
            ProxyError::BadBody { why } => format!("The request body is malformed: {why}"),
            ProxyError::NotAllowed { .. } => "method not allowed".into(),
        }
    }

    pub fn response(&self) -> Response<ProxyBody> {
        let mut response = error(self.status(), &self.message());
        if let ProxyError::NotAllowed { allow } = self
            && let Ok(value) = header::HeaderValue::from_str(allow)
        {
            response.headers_mut().insert(header::ALLOW, value);
        }
        if let ProxyError::BackendUnavailable {
            retry_after_secs, ..
        } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, (*retry_after_secs).into());
        }
        response
    }
}

/// A JSON error response.
pub fn error(status: StatusCode, message: &str) -> Response<ProxyBody> {
    answer(crate::policy::refusal(status, message))
}

/// The response for what the gateway or a policy answers itself: the one
/// place a policy's answer becomes the proxy's response.
pub fn answer(answer: crate::policy::Answer) -> Response<ProxyBody> {
    answer.map(full)
}

/// A complete in-memory body.
pub fn full(data: impl Into<Bytes>) -> ProxyBody {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}
