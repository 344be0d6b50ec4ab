//! Deciding what a request is, in one place, before policy runs on it.
//! Every request, whichever server read it (the lean HTTP/1.1 server,
//! hyper's HTTP/1.1 or HTTP/2), passes `before_routing` once and then
//! `after_routing` with the API and operation it was routed to. A refusal
//! is answered with a JSON error, counted in
//! `edgegw_rejections_total{reason}` and logged like any request; nothing
//! of it reaches a backend.
//!
//! - **Host** (RFC 9112 §3.2, RFC 9113 §8.3.1): an HTTP/1.1 request has
//!   exactly one valid `Host` (400 otherwise); an absolute-form target's
//!   authority, or HTTP/2's `:authority`, names the host and must be valid
//!   too. HTTP/2 needs one of `:authority` or `Host`, and both agree when
//!   both are sent. HTTP/1.0 may go without.
//! - **Header names with `_`**: dropped (default), refused or allowed
//!   (`[gateway] underscores_in_headers`).
//! - **CONNECT and TRACE**: 405 unless an operation names the method.
//! - **The path**: routed, matched, given to policies and forwarded in its
//!   canonical form (`canonical`); 400 for what has none. `..` that climbs
//!   out of the API the path lands in is refused too.
//! - **Upgrades**: WebSocket only where the API or operation allows it
//!   (403 otherwise); other protocols are ignored (`upgrade`).

use hyper::{HeaderMap, Method, Request, StatusCode, Uri, Version, header, header::HeaderValue};

use super::{
    authority,
    canonical::{self, Canonical, PathError},
    respond::Refusal,
    router::Route,
    upgrade::{self, Asked},
};
use crate::{
    admin::Rejection,
    config::{Api, EncodedSlashes, Underscores},
};

/// What `before_routing` found out.
pub struct Checked<'u> {
    /// The host the client addressed, lower case, without port.
    pub host: Option<String>,
    pub path: Canonical<'u>,
    pub upgrade: Asked,
    /// Headers not forwarded for an `_` in their name.
    pub dropped: usize,
}

const MISSING_HOST: Refusal = Refusal::bad_request("missing Host header", Rejection::HostMissing);
const DUPLICATE_HOST: Refusal =
    Refusal::bad_request("duplicate Host header", Rejection::HostDuplicate);
const INVALID_HOST: Refusal = Refusal::bad_request("invalid Host header", Rejection::HostInvalid);
const INVALID_AUTHORITY: Refusal = Refusal::bad_request(
    "invalid authority in request target",
    Rejection::HostInvalid,
);
const AUTHORITY_MISMATCH: Refusal = Refusal::bad_request(
    "Host header disagrees with :authority",
    Rejection::HostInvalid,
);
const UNDERSCORE: Refusal = Refusal::bad_request(
    "header name with an underscore",
    Rejection::HeaderUnderscore,
);
pub const METHOD_NOT_ALLOWED: Refusal = Refusal {
    status: StatusCode::METHOD_NOT_ALLOWED,
    message: "method not allowed",
    reason: Rejection::MethodNotAllowed,
};
const UPGRADE_NOT_ALLOWED: Refusal = Refusal {
    status: StatusCode::FORBIDDEN,
    message: "WebSocket upgrade not allowed here",
    reason: Rejection::UpgradeNotAllowed,
};

/// Checks `req` (whose URI is `uri`) before it is routed; drops the
/// headers that are never forwarded.
pub fn before_routing<'u, B>(
    req: &mut Request<B>,
    uri: &'u Uri,
    underscores: Underscores,
    any_operation_names: impl FnOnce(&Method) -> bool,
) -> Result<Checked<'u>, Refusal> {
    // First: a CONNECT's authority-form target is no path or host to judge.
    if special(req.method()) && !any_operation_names(req.method()) {
        return Err(METHOD_NOT_ALLOWED);
    }
    let seen = scan(req.headers());
    let host = host(req.version(), uri, &seen)?;
    let (underscore, upgrade_headers) = (seen.underscore, seen.upgrade);
    let dropped = if underscore {
        header_names(req.headers_mut(), underscores)?
    } else {
        0
    };
    let path = canonical::canonical(uri.path()).map_err(path_refusal)?;
    let upgrade = if upgrade_headers {
        upgrade::asked(req)
    } else {
        Asked::Nothing
    };
    Ok(Checked {
        host,
        path,
        upgrade,
        dropped,
    })
}

/// Checks what depends on the API and operation `route` found.
pub fn after_routing(
    checked: &Checked<'_>,
    route: &Route<'_, '_>,
    method: &Method,
) -> Result<(), Refusal> {
    let api = route.api;
    within_api(checked, api)?;
    let op = route.operation;
    if special(method) && op.is_none_or(|o| o.method.as_ref() != Some(method)) {
        return Err(METHOD_NOT_ALLOWED);
    }
    if checked.upgrade == Asked::WebSocket && !op.map_or(api.websocket, |o| o.websocket) {
        return Err(UPGRADE_NOT_ALLOWED);
    }
    Ok(())
}

/// Checks what depends on the API the path fell in (also when none of its
/// operations matched: a path that climbed out of another API is refused
/// as that, not as unknown to this one).
pub fn within_api(checked: &Checked<'_>, api: &Api) -> Result<(), Refusal> {
    if checked.path.encoded_slash && api.encoded_slashes == EncodedSlashes::Refuse {
        return Err(path_refusal(PathError::EncodedSlash));
    }
    // Counted only for the rare path that had a `..`.
    if checked.path.floor != usize::MAX && checked.path.floor < segments(&api.prefix) {
        return Err(path_refusal(PathError::EscapesRoot));
    }
    Ok(())
}

/// The host and canonical path of a request refused before routing, as
/// far as they can be told (for a 405's `Allow`).
pub fn hints<B>(req: &Request<B>) -> (Option<String>, String) {
    let host = match req.uri().authority() {
        Some(a) => Some(a.as_str()),
        None => req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok()),
    };
    let host = host
        .filter(|h| authority::valid(h.as_bytes()))
        .map(authority::host);
    let path = canonical::canonical(req.uri().path())
        .map_or_else(|_| String::new(), |c| c.path.into_owned());
    (host, path)
}

/// Whether a request that matched no API or operation is refused for its
/// method (`METHOD_NOT_ALLOWED`, not 404).
pub fn unrouted(method: &Method) -> bool {
    special(method)
}

/// Methods no operation allows unless it names them.
fn special(method: &Method) -> bool {
    *method == Method::CONNECT || *method == Method::TRACE
}

/// Segments of an API prefix ("/" has none).
fn segments(prefix: &str) -> usize {
    prefix.split('/').filter(|s| !s.is_empty()).count()
}

fn path_refusal(e: PathError) -> Refusal {
    let reason = match e {
        PathError::EscapesRoot => Rejection::PathEscapesRoot,
        PathError::EncodedSlash | PathError::EncodedSlashDot => Rejection::PathEncodedSlash,
        _ => Rejection::PathInvalid,
    };
    Refusal::bad_request(e.message(), reason)
}

/// What one pass over the header fields found (one pass instead of a
/// lookup per rule: these checks run on every request).
struct Seen<'h> {
    /// The first `Host` field, and whether there was another.
    host: Option<&'h HeaderValue>,
    duplicate_host: bool,
    /// A name with `_`.
    underscore: bool,
    /// A header `upgrade::asked` looks at.
    upgrade: bool,
}

fn scan(headers: &HeaderMap) -> Seen<'_> {
    let mut seen = Seen {
        host: None,
        duplicate_host: false,
        underscore: false,
        upgrade: false,
    };
    for (name, value) in headers {
        if *name == header::HOST {
            seen.duplicate_host |= seen.host.is_some();
            seen.host = Some(value);
        } else if upgrade::concerns(name) {
            seen.upgrade = true;
        } else {
            // A byte loop: names are short, memchr's set-up costs more.
            seen.underscore |= name.as_str().bytes().any(|b| b == b'_');
        }
    }
    seen
}

/// The host the client addressed, after the Host rules.
fn host(version: Version, uri: &Uri, seen: &Seen<'_>) -> Result<Option<String>, Refusal> {
    if seen.duplicate_host {
        return Err(DUPLICATE_HOST);
    }
    let field = seen.host;
    if field.is_some_and(|v| !authority::valid(v.as_bytes())) {
        return Err(INVALID_HOST);
    }
    // Valid, hence ASCII.
    let field = field.and_then(|v| v.to_str().ok());
    let target = match uri.authority() {
        Some(a) if !authority::valid(a.as_str().as_bytes()) => return Err(INVALID_AUTHORITY),
        Some(_) if !matches!(uri.scheme_str(), Some("http" | "https")) => {
            return Err(INVALID_AUTHORITY);
        }
        a => a.map(|a| a.as_str()),
    };
    match version {
        Version::HTTP_11 if field.is_none() => return Err(MISSING_HOST),
        Version::HTTP_2 | Version::HTTP_3 => match (target, field) {
            (None, None) => return Err(MISSING_HOST),
            (Some(t), Some(f)) if !t.eq_ignore_ascii_case(f) => return Err(AUTHORITY_MISMATCH),
            _ => {}
        },
        _ => {}
    }
    // An absolute-form target's authority wins over Host (RFC 9112 §3.2.2).
    Ok(target.or(field).map(authority::host))
}

/// Applies the underscore rule to headers some of whose names have a `_`;
/// the number of headers dropped.
fn header_names(headers: &mut HeaderMap, rule: Underscores) -> Result<usize, Refusal> {
    if rule == Underscores::Allow {
        return Ok(0);
    }
    if rule == Underscores::Refuse {
        return Err(UNDERSCORE);
    }
    let names: Vec<_> = headers
        .keys()
        .filter(|n| n.as_str().contains('_'))
        .cloned()
        .collect();
    let mut dropped = 0;
    for name in names {
        if let header::Entry::Occupied(e) = headers.entry(name) {
            dropped += e.remove_entry_mult().1.count();
        }
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests;
