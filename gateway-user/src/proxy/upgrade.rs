//! HTTP/1.1 Upgrade (WebSocket) pass-through: the request keeps its
//! `Upgrade` header, and once both sides switched protocols the two
//! connections are spliced byte for byte.

use hyper::{Request, Version, header, header::HeaderValue, upgrade::OnUpgrade};
use hyper_util::rt::TokioIo;

/// The `Upgrade` value when the client asks to switch protocols.
pub fn requested<B>(req: &Request<B>) -> Option<HeaderValue> {
    if req.version() != Version::HTTP_11 {
        return None;
    }
    let asks = req
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| req.headers().get(header::UPGRADE).cloned())
        .flatten()
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
