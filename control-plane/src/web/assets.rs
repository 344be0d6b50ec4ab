//! The console and portal pages: the front end's built files
//! (`console/dist`, `npm run build`) embedded at compile time. A build
//! without them still compiles (`allow_missing`) and answers every page
//! with one line saying how to build them.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode, header};
use rust_embed::RustEmbed;

use crate::api::http::Reply;

#[derive(RustEmbed)]
#[folder = "../console/dist"]
#[allow_missing = true]
struct Assets;

const MISSING: &str = "<!doctype html><title>edgegw-cp</title><p>This edgegw-cp was built without its web console: run <code>cargo xtask build</code> (or <code>npm ci &amp;&amp; npm run build</code> in <code>console/</code>, then rebuild edgegw-cp).</p>\n";

/// The page or asset at `path` (`/ui...`, `/portal...`, `/assets/...`).
pub fn get(path: &str) -> Reply {
    let file = if path == "/ui" || path.starts_with("/ui/") {
        "ui/index.html".to_string()
    } else if path == "/portal" || path.starts_with("/portal/") {
        "portal/index.html".to_string()
    } else {
        path.trim_start_matches('/').to_string()
    };
    match Assets::get(&file) {
        Some(found) => {
            let html = file.ends_with(".html");
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, content_type(&file))
                .header(
                    header::CACHE_CONTROL,
                    // Asset names carry a hash of their content.
                    if html {
                        "no-cache"
                    } else {
                        "public, max-age=31536000, immutable"
                    },
                )
                .body(Full::new(Bytes::from(found.data.into_owned())))
                .expect("static parts are valid")
        }
        None if file.ends_with("index.html") => Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
            .body(Full::new(Bytes::from_static(MISSING.as_bytes())))
            .expect("static parts are valid"),
        None => crate::api::http::error(&crate::error::ApiError::not_found(format!(
            "no asset {path}; the console's pages are under /ui and /portal"
        ))),
    }
}

/// Whether the assets were built into this binary.
pub fn built() -> bool {
    Assets::get("ui/index.html").is_some()
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}
