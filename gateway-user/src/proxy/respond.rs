//! Error responses, in the JSON shape API-management users know:
//! `{"statusCode": 404, "message": "..."}`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Response, StatusCode, header};

use super::ProxyBody;

/// A response for an error the gateway itself detected.
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
