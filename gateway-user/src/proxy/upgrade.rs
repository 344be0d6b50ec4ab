//! HTTP/1.1 Upgrade: only WebSocket, only where the API or operation
//! allows it (`websocket = true`), only after the policies ran; once both
//! sides switched protocols the two connections are spliced byte for byte.
//!
//! Any other protocol a client asks for (`h2c` above all: a tunnel that
//! would carry later requests past routing and policies) is ignored, as
//! RFC 9110 §7.8 allows and nginx does: `Upgrade`, the `Connection` token
//! and `HTTP2-Settings` are not forwarded, and the request is answered as
//! the plain HTTP/1.1 request it also is.

use hyper::{HeaderMap, Request, Version, header, header::HeaderValue, upgrade::OnUpgrade};
use hyper_util::rt::TokioIo;

const HTTP2_SETTINGS: header::HeaderName = header::HeaderName::from_static("http2-settings");

/// The protocol switch a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    /// None, or one this proxy never forwards.
    Nothing,
    WebSocket,
}

/// Whether `asked` has anything to look at in a header named `name`: a
/// request without such a header asks for nothing (read in the one pass
/// `request_checks` makes over the header names).
pub fn concerns(name: &header::HeaderName) -> bool {
    *name == header::UPGRADE || *name == HTTP2_SETTINGS
}

/// What `req` asks to switch to; drops the headers of the upgrades that
/// are never forwarded.
pub fn asked<B>(req: &mut Request<B>) -> Asked {
    let headers = req.headers_mut();
    if headers.contains_key(&HTTP2_SETTINGS) {
        headers.remove(&HTTP2_SETTINGS);
    }
    if req.version() != Version::HTTP_11 || !req.headers().contains_key(header::UPGRADE) {
        return Asked::Nothing;
    }
    let headers = req.headers();
    if has_token(headers, header::CONNECTION, "upgrade")
        && has_token(headers, header::UPGRADE, "websocket")
    {
        Asked::WebSocket
    } else {
        Asked::Nothing
    }
}

/// The headers that ask the backend for a WebSocket upgrade.
pub fn ask_backend(headers: &mut HeaderMap) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
}

/// Whether a backend's 101 switched to WebSocket.
pub fn backend_switched_to_websocket(headers: &HeaderMap) -> bool {
    has_token(headers, header::UPGRADE, "websocket")
}

/// Whether a comma-separated header names `token` (case-insensitively;
/// `Upgrade` protocols may carry a version: `websocket/13`).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().split('/').next().unwrap_or_default())
        .any(|t| t.eq_ignore_ascii_case(token))
}

/// Copies bytes both ways until either side closes.
pub async fn tunnel(client: OnUpgrade, backend: OnUpgrade) {
    let (client, backend) = match tokio::try_join!(client, backend) {
        Ok(both) => both,
        Err(err) => {
            tracing::debug!(error = %err, "upgrade failed");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut backend = TokioIo::new(backend);
    if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut backend).await {
        tracing::debug!(error = %err, "upgraded connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asks(version: Version, headers: &[(&str, &str)]) -> (Asked, bool) {
        let mut req = Request::new(());
        *req.version_mut() = version;
        for (n, v) in headers {
            req.headers_mut().append(
                header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let asked = asked(&mut req);
        (asked, req.headers().contains_key("http2-settings"))
    }

    #[test]
    fn only_websocket_is_an_upgrade_and_http2_settings_never_stays() {
        let h11 = Version::HTTP_11;
        let ws = [("connection", "Upgrade"), ("upgrade", "websocket")];
        assert_eq!(asks(h11, &ws), (Asked::WebSocket, false));
        assert_eq!(
            asks(
                h11,
                &[
                    ("connection", "keep-alive, Upgrade"),
                    ("upgrade", "WebSocket/13")
                ]
            ),
            (Asked::WebSocket, false)
        );
        for headers in [
            &[
                ("connection", "Upgrade, HTTP2-Settings"),
                ("upgrade", "h2c"),
                ("http2-settings", "AAMAAABkAAQAAP__"),
            ][..],
            &[("connection", "upgrade"), ("upgrade", "TLS/1.0")],
            &[("upgrade", "websocket")],
            &[("connection", "close"), ("upgrade", "websocket")],
            &[("connection", "upgrade")],
            &[("http2-settings", "AAMAAABkAAQAAP__")],
        ] {
            assert_eq!(asks(h11, headers), (Asked::Nothing, false), "{headers:?}");
        }
        assert_eq!(asks(Version::HTTP_10, &ws), (Asked::Nothing, false));
        assert_eq!(asks(Version::HTTP_2, &ws), (Asked::Nothing, false));
    }
}
