//! The console and portal pages: the front end's built files
//! (`console/dist`, `npm run build`) embedded at compile time. A build
//! without them still compiles (`allow_missing`) and answers every page
//! with one line saying how to build them.

use std::{
    collections::HashMap,
    io::Write,
    sync::{LazyLock, Mutex},
};

use bytes::Bytes;
use flate2::{Compression, write::GzEncoder};
use http_body_util::Full;
use hyper::{Response, StatusCode, header};
use rust_embed::RustEmbed;

use crate::api::http::Reply;

#[derive(RustEmbed)]
#[folder = "../console/dist"]
#[allow_missing = true]
struct Assets;

const MISSING: &str = "<!doctype html><title>edgegw-cp</title><p>This edgegw-cp was built without its web console: run <code>cargo xtask build</code> (or <code>npm ci &amp;&amp; npm run build</code> in <code>console/</code>, then rebuild edgegw-cp).</p>\n";

/// The page or asset at `path` (`/ui...`, `/portal...`, `/assets/...`),
/// gzip-compressed when `accept_encoding` allows it and the file is text.
pub fn get(path: &str, accept_encoding: Option<&str>) -> Reply {
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
            let kind = content_type(&file);
            let compress = compressible(kind) && accepts_gzip(accept_encoding.unwrap_or_default());
            let mut reply = Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, kind)
                .header(
                    header::CACHE_CONTROL,
                    // Asset names carry a hash of their content.
                    if html {
                        "no-cache"
                    } else {
                        "public, max-age=31536000, immutable"
                    },
                );
            if compressible(kind) {
                reply = reply.header(header::VARY, "accept-encoding");
            }
            let body = if compress {
                reply = reply.header(header::CONTENT_ENCODING, "gzip");
                gzipped(&file, &found.data)
            } else {
                Bytes::from(found.data.into_owned())
            };
            reply.body(Full::new(body)).expect("static parts are valid")
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

fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type.starts_with("application/json")
        || content_type.starts_with("image/svg")
}

/// Whether an `Accept-Encoding` value takes gzip: a `gzip` (or `*`)
/// entry whose quality is not zero (RFC 9110 §12.5.3).
fn accepts_gzip(accept_encoding: &str) -> bool {
    accept_encoding.split(',').any(|entry| {
        let mut parts = entry.split(';').map(str::trim);
        let coding = parts.next().unwrap_or_default();
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

/// `file` gzip-compressed, once per process: the files never change.
fn gzipped(file: &str, data: &[u8]) -> Bytes {
    static DONE: LazyLock<Mutex<HashMap<String, Bytes>>> = LazyLock::new(Default::default);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    done.entry(file.to_string())
        .or_insert_with(|| {
            let mut gz = GzEncoder::new(Vec::new(), Compression::best());
            gz.write_all(data).expect("writing to memory");
            Bytes::from(gz.finish().expect("writing to memory"))
        })
        .clone()
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

#[cfg(test)]
mod tests {
    use super::accepts_gzip;

    #[test]
    fn accept_encoding_takes_gzip_unless_refused() {
        for (value, gzip) in [
            ("gzip", true),
            ("gzip, deflate, br, zstd", true),
            ("br;q=1.0, GZIP;q=0.5", true),
            ("*", true),
            ("gzip;q=0", false),
            ("gzip; q=0.0", false),
            ("identity", false),
            ("br, deflate", false),
            ("", false),
            ("x-gzip-not", false),
        ] {
            assert_eq!(accepts_gzip(value), gzip, "{value:?}");
        }
    }
}
