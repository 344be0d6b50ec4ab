//! Errors the gateway itself detects, classified once and answered in the
//! JSON shape API-management users know: `{"statusCode": 404, "message": "..."}`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Response, StatusCode, header};

use super::ProxyBody;

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
    /// The client's request body could not be decoded.
    BadBody {
        why: String,
    },
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoApi { .. } | ProxyError::NoOperation { .. } => StatusCode::NOT_FOUND,
            ProxyError::BadPath => StatusCode::BAD_REQUEST,
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::BackendConnect { .. } | ProxyError::BackendFailed { .. } => {
                StatusCode::BAD_GATEWAY
            }
            ProxyError::BackendTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::BadBody { .. } => StatusCode::BAD_REQUEST,
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
            ProxyError::BadBody { why } => format!("The request body is malformed: {why}"),
        }
    }

    pub fn response(&self) -> Response<ProxyBody> {
        error(self.status(), &self.message())
    }
}

/// A JSON error response.
pub fn error(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({ "statusCode": status.as_u16(), "message": message }).to_string();
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// A complete in-memory body.
pub fn full(data: impl Into<Bytes>) -> ProxyBody {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}
