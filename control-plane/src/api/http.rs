//! HTTP plumbing of the management API: bounded body reads, JSON answers,
//! path and query decoding.

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode, body::Incoming, header};
use serde_json::Value;

use crate::error::ApiError;

pub type Reply = Response<Full<Bytes>>;

/// Largest JSON body accepted.
pub const MAX_BODY: usize = 1 << 20;
/// Largest analytics batch accepted (`gateway_model::analytics::MAX_ROWS`
/// rows of long names).
pub const MAX_ANALYTICS: usize = 32 << 20;
/// Largest OpenAPI document accepted: GitHub's own is 13 MB. Parsing is
/// linear (`gateway_model::config::yaml`), so this also bounds the CPU time of one.
pub const MAX_IMPORT: usize = 16 << 20;

/// Bodies over the limit are still read (and dropped) up to this size so
/// the client sees the 413 rather than a reset stream.
const DRAIN_MAX: u64 = 64 << 20;

/// Reads the whole body, refusing more than `limit` bytes with 413.
pub async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {limit} bytes; send a smaller document"),
        )
    };
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > DRAIN_MAX) {
        return Err(too_large());
    }
    let mut body = req.into_body();
    let mut kept = BytesMut::new();
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::bad_request(format!("reading the request body failed: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len() as u64;
        if seen <= limit as u64 {
            kept.extend_from_slice(&data);
        } else if seen > DRAIN_MAX {
            break;
        }
    }
    if seen > limit as u64 {
        return Err(too_large());
    }
    Ok(kept.freeze())
}

pub fn json(status: StatusCode, value: &Value) -> Reply {
    text(status, value.to_string())
}

pub fn text(status: StatusCode, body: String) -> Reply {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("static parts are valid")
}

/// A status without a body (204, 304).
pub fn empty(status: StatusCode) -> Reply {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .expect("static parts are valid")
}

/// `reply` with `ETag: "<version>"`.
pub fn tagged(mut reply: Reply, version: u64) -> Reply {
    reply.headers_mut().insert(
        header::ETAG,
        header::HeaderValue::from_str(&format!("\"{version}\""))
            .expect("digits are a valid header"),
    );
    reply
}

pub fn error(err: &ApiError) -> Reply {
    text(err.status, err.body())
}

/// Decodes `%XX` escapes in a path segment.
pub fn percent_decode(text: &str) -> String {
    decode(text, false)
}

/// Decodes a query-string key or value (`+` is a space there).
fn decode_query(text: &str) -> String {
    decode(text, true)
}

fn decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded value of query parameter `key`.
pub fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode_query(k) == key).then(|| decode_query(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_names_and_queries() {
        assert_eq!(percent_decode("x%27%3B%20DROP"), "x'; DROP");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%2"), "%2");
        assert_eq!(percent_decode("a+b"), "a+b");
        assert_eq!(query_param(Some("q=a+b%2B"), "q").as_deref(), Some("a b+"));
        assert_eq!(
            query_param(Some("a=1&path=%2Fpets"), "path").as_deref(),
            Some("/pets")
        );
        assert_eq!(query_param(Some("a=1"), "b"), None);
    }
}
