//! The one canonical form of a request path, made before routing: it is
//! what the router matches, what policies see and what the backend gets,
//! so no two readings of one path can disagree (a backend that resolves
//! `/api/public/../admin` itself would otherwise serve what the gateway
//! never checked).
//!
//! - Percent-escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are
//!   decoded, the others keep their escape with upper-case hex; raw bytes
//!   outside RFC 3986's `pchar` (`"`, `{`, `|`, non-ASCII...) are escaped.
//!   Nothing is decoded twice: `%252e` stays `%252e`.
//! - Dot segments are resolved (RFC 3986 §5.2.4), the decoded ones too
//!   (`%2e%2E`, `.%2e`); empty segments (`//`) are merged, as nginx does.
//! - Refused (`PathError`): malformed escapes, a backslash (raw or
//!   `%5C`: a separator to Windows backends), control characters, escapes
//!   that decode to invalid UTF-8 (`%C0%AE`), `..` above the root, `..;`
//!   (a dot segment to servlet containers), and `%2F` next to a dot
//!   segment (`..%2F`). A `%2F` otherwise stays data of its segment and is
//!   reported, for the API to refuse (the default) or keep.
//!
//! A path that needs none of this (no `%`, `;`, dot or empty segment,
//! nothing to escape) is recognised in one pass and borrowed.

use std::borrow::Cow;

/// Why a path cannot be made canonical safely.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// Not origin-form (`*`, or an authority-form target).
    NotAbsolute,
    /// `%` not followed by two hex digits.
    Malformed,
    Backslash,
    ControlChar,
    /// Its escapes decode to bytes that are not UTF-8.
    NotUtf8,
    /// `..` climbs above `/` (or, see `Canonical::floor`, above the API).
    EscapesRoot,
    /// `%2F` (for an API that does not keep them).
    EncodedSlash,
    /// `%2F` beside a dot segment (`..%2Fadmin`): a backend that decodes
    /// it would resolve what the gateway routed as one segment.
    EncodedSlashDot,
    /// `..;x` or `.;x`: a dot segment to servlet containers.
    DotParams,
}

impl PathError {
    pub fn message(self) -> &'static str {
        match self {
            PathError::NotAbsolute => "request target is not an absolute path",
            PathError::Malformed => "malformed percent-encoding in path",
            PathError::Backslash => "backslash in path",
            PathError::ControlChar => "control character in path",
            PathError::NotUtf8 => "path is not valid UTF-8 once decoded",
            PathError::EscapesRoot => "path escapes the API root",
            PathError::EncodedSlash => "encoded slash in path",
            PathError::EncodedSlashDot => "encoded slash beside a dot segment in path",
            PathError::DotParams => "dot segment with parameters in path",
        }
    }
}

/// A canonical path and what canonicalising it found.
#[derive(Debug, PartialEq, Eq)]
pub struct Canonical<'a> {
    pub path: Cow<'a, str>,
    /// How many leading segments of `path` no `..` of the request went
    /// back over (`usize::MAX` without `..`). An API whose prefix has more
    /// segments was reached by climbing out of another part of the tree
    /// (`/other/../api/x`): refused as escaping the API root.
    pub floor: usize,
    /// A `%2F` stayed in a segment.
    pub encoded_slash: bool,
}

/// Byte classes of a raw path.
const PLAIN: u8 = 0;
const DOT: u8 = 1;
const SLASH: u8 = 2;
const PERCENT: u8 = 3;
/// `;`: harmless, but `..;` must be looked at.
const SEMI: u8 = 4;
const BACKSLASH: u8 = 5;
const CONTROL: u8 = 6;
/// Allowed by the URI parser but not in RFC 3986's `pchar`: escaped.
const ESCAPE: u8 = 7;

const fn classes() -> [u8; 256] {
    let mut t = [ESCAPE; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = match b {
            b'.' => DOT,
            b'/' => SLASH,
            b'%' => PERCENT,
            b';' => SEMI,
            b'\\' => BACKSLASH,
            0..=0x1f | 0x7f => CONTROL,
            // unreserved, sub-delims but ';', ':' and '@'
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'~' => PLAIN,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'=' => PLAIN,
            b':' | b'@' => PLAIN,
            _ => ESCAPE,
        };
        i += 1;
    }
    t
}

static CLASS: [u8; 256] = classes();

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The canonical form of `raw` (a request's path, without its query).
pub fn canonical(raw: &str) -> Result<Canonical<'_>, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if is_canonical(raw.as_bytes()) {
        return Ok(Canonical {
            path: Cow::Borrowed(raw),
            floor: usize::MAX,
            encoded_slash: false,
        });
    }
    rebuild(raw)
}

/// One pass: only plain bytes, no empty (but the last) or dot segment.
/// Byte by byte, looking further only at a '.' that starts a segment: this
/// runs on every request, and most paths are canonical.
fn is_canonical(b: &[u8]) -> bool {
    let mut prev = b'/';
    for (i, &c) in b.iter().enumerate().skip(1) {
        match CLASS[usize::from(c)] {
            PLAIN => {}
            SLASH | DOT if prev != b'/' => {}
            DOT if !matches!(
                &b[i..],
                [b'.'] | [b'.', b'/', ..] | [b'.', b'.'] | [b'.', b'.', b'/', ..]
            ) => {}
            // `//`, a dot segment, or a byte to decode, escape or refuse.
            _ => return false,
        }
        prev = c;
    }
    true
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn push_escaped(out: &mut String, b: u8) {
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 15)]));
}

/// Facts about one normalised segment.
#[derive(Default)]
struct Seen {
    encoded_slash: bool,
    high: bool,
}

/// Appends the normalised form of one raw segment to `out`.
fn segment(raw: &[u8], out: &mut String, seen: &mut Seen) -> Result<(), PathError> {
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        match CLASS[usize::from(b)] {
            PLAIN | DOT | SEMI => out.push(char::from(b)),
            PERCENT => {
                let (Some(hi), Some(lo)) = (
                    raw.get(i + 1).copied().and_then(hex),
                    raw.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(PathError::Malformed);
                };
                i += 2;
                let v = hi << 4 | lo;
                match v {
                    _ if unreserved(v) => out.push(char::from(v)),
                    b'/' => {
                        seen.encoded_slash = true;
                        out.push_str("%2F");
                    }
                    b'\\' => return Err(PathError::Backslash),
                    0..=0x1f | 0x7f => return Err(PathError::ControlChar),
                    _ => {
                        seen.high |= v >= 0x80;
                        push_escaped(out, v);
                    }
                }
            }
            BACKSLASH => return Err(PathError::Backslash),
            CONTROL => return Err(PathError::ControlChar),
            // ESCAPE; raw non-ASCII bytes are whole UTF-8 characters (the
            // path is a `str`).
            _ => push_escaped(out, b),
        }
        i += 1;
    }
    Ok(())
}

/// The slow path: decode, resolve, merge, check.
fn rebuild(raw: &str) -> Result<Canonical<'static>, PathError> {
    let mut out = String::with_capacity(raw.len() + 8);
    // Where each kept segment starts in `out` (at its '/').
    let mut kept: Vec<usize> = Vec::new();
    let mut floor = usize::MAX;
    let mut seen = Seen::default();
    let mut parts = raw[1..].split('/').peekable();
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        let mark = out.len();
        out.push('/');
        let mut this = Seen::default();
        segment(part.as_bytes(), &mut out, &mut this)?;
        seen.high |= this.high;
        let text = &out[mark + 1..];
        let before_params = text.split(';').next().unwrap_or(text);
        if text.contains(';') && matches!(before_params, "." | "..") {
            return Err(PathError::DotParams);
        }
        match text {
            // `//` merged; a trailing '/' kept.
            "" if last => {}
            "" | "." => out.truncate(mark),
            ".." => {
                out.truncate(mark);
                let Some(start) = kept.pop() else {
                    return Err(PathError::EscapesRoot);
                };
                out.truncate(start);
                floor = floor.min(kept.len());
            }
            _ => {
                if this.encoded_slash {
                    if text.split("%2F").any(|p| matches!(p, "." | "..")) {
                        return Err(PathError::EncodedSlashDot);
                    }
                    seen.encoded_slash = true;
                }
                kept.push(mark);
            }
        }
        // A final dot segment leaves a directory: `/a/b/..` is `/a/`.
        if last && out.len() <= mark {
            out.push('/');
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    // Only what is forwarded counts: a `%2F` in a segment `..` removed
    // is gone.
    seen.encoded_slash &= out.contains("%2F");
    if seen.high {
        let decoded = percent_encoding::percent_decode_str(&out);
        if decoded.decode_utf8().is_err() {
            return Err(PathError::NotUtf8);
        }
    }
    Ok(Canonical {
        path: Cow::Owned(out),
        floor,
        encoded_slash: seen.encoded_slash,
    })
}

#[cfg(test)]
mod tests;
