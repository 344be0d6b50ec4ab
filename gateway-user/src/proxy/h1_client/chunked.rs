//! The chunked transfer coding of a backend's response body (RFC 9112
//! section 7.1), decoded strictly: hexadecimal sizes of at most 16 digits,
//! extensions of the grammar's tokens and quoted strings, CRLF and nothing
//! else ending every line, each chunk's data exactly its size, trailers
//! parsed as fields. Whatever two parsers could read differently (a bare
//! LF, a size with a sign or a `0x`, data longer than its size) is an
//! error, not a guess.
//!
//! The decoder reads from the start of a buffer it does not own and says
//! what the next bytes are (`Step`); the caller consumes them and calls
//! again, so a body split anywhere across reads decodes the same.

use hyper::{
    HeaderMap,
    header::{HeaderName, HeaderValue},
};

/// The longest chunk-size line (size and extensions) accepted.
const MAX_SIZE_LINE: usize = 4 * 1024;
/// The longest trailer section accepted.
const MAX_TRAILERS: usize = 64 * 1024;
/// Most trailer fields accepted.
const MAX_TRAILER_FIELDS: usize = 64;
/// Most hexadecimal digits of a chunk size: 16 fill a `u64`.
const MAX_SIZE_DIGITS: usize = 16;

/// What the next bytes of the buffer are.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// This many bytes of framing (a chunk-size line, the CRLF after a
    /// chunk's data): skip them.
    Framing(usize),
    /// This many bytes of data (at least one).
    Data(usize),
    /// The body ended with this many more bytes (the trailer section);
    /// its trailers, if it had any.
    End(usize, Option<HeaderMap>),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("a chunk size is not hexadecimal digits")]
    InvalidSize,
    #[error("a chunk size has more than {MAX_SIZE_DIGITS} digits")]
    OverlongSize,
    #[error("a chunk extension is malformed")]
    InvalidExtension,
    #[error("a chunk-size line is not ended by CRLF")]
    BadLineEnd,
    #[error("a chunk-size line is over {MAX_SIZE_LINE} bytes")]
    LineTooLong,
    #[error("a chunk is longer than its size")]
    ChunkTooLong,
    #[error("the trailer section is malformed")]
    InvalidTrailers,
    #[error("the trailer section is over {MAX_TRAILERS} bytes")]
    TrailersTooLong,
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Size,
    /// Data bytes left of the current chunk.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// Expecting the trailer section after the last chunk.
    Trailers,
    Done,
}

#[derive(Debug, Default)]
pub struct Decoder {
    state: State,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Whether the body ended (`Step::End` was given).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// What the bytes at the start of `buf` are, or `None` when more are
    /// needed to tell. The caller consumes what the step names before the
    /// next call. After the end, nothing more is decoded.
    pub fn step(&mut self, buf: &[u8]) -> Result<Option<Step>, ChunkError> {
        match self.state {
            State::Done => Ok(None),
            State::Size => {
                let Some((used, size)) = size_line(buf)? else {
                    return Ok(None);
                };
                self.state = if size == 0 {
                    State::Trailers
                } else {
                    State::Data(size)
                };
                Ok(Some(Step::Framing(used)))
            }
            State::Data(left) => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let n = usize::try_from(left).map_or(buf.len(), |left| left.min(buf.len()));
                let left = left - n as u64;
                self.state = if left == 0 {
                    State::DataEnd
                } else {
                    State::Data(left)
                };
                Ok(Some(Step::Data(n)))
            }
            State::DataEnd => match buf {
                [b'\r', b'\n', ..] => {
                    self.state = State::Size;
                    Ok(Some(Step::Framing(2)))
                }
                [] | [b'\r'] => Ok(None),
                _ => Err(ChunkError::ChunkTooLong),
            },
            State::Trailers => {
                let Some((used, trailers)) = trailers(buf)? else {
                    return Ok(None);
                };
                self.state = State::Done;
                Ok(Some(Step::End(used, trailers)))
            }
        }
    }
}

/// `chunk-size [ chunk-ext ] CRLF`: its length and the size, `None` while
/// incomplete. Invalid bytes are refused as soon as they arrive.
fn size_line(buf: &[u8]) -> Result<Option<(usize, u64)>, ChunkError> {
    let digits = buf.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits > MAX_SIZE_DIGITS {
        return Err(ChunkError::OverlongSize);
    }
    if digits == buf.len() {
        return Ok(None);
    }
    if digits == 0 {
        return Err(ChunkError::InvalidSize);
    }
    let text = std::str::from_utf8(&buf[..digits]).expect("hex digits are ASCII");
    let size = u64::from_str_radix(text, 16).expect("16 hex digits fit a u64");
    let Some(len) = extensions(&buf[digits..])? else {
        if buf.len() >= MAX_SIZE_LINE {
            return Err(ChunkError::LineTooLong);
        }
        return Ok(None);
    };
    let used = digits + len;
    if used > MAX_SIZE_LINE {
        return Err(ChunkError::LineTooLong);
    }
    Ok(Some((used, size)))
}

/// `*( BWS ";" BWS ext-name [ BWS "=" BWS ext-value ] ) BWS CRLF` after
/// the size: its length, CRLF included, `None` while incomplete.
fn extensions(buf: &[u8]) -> Result<Option<usize>, ChunkError> {
    #[derive(Clone, Copy, PartialEq)]
    enum At {
        /// After the size, or after a complete extension and whitespace.
        Between,
        /// After `;`, before the name.
        BeforeName,
        Name,
        /// Whitespace after a name.
        AfterName,
        /// After `=`, before the value.
        BeforeValue,
        Token,
        Quoted,
        /// After `\` in a quoted string.
        Escaped,
        /// After the quoted string's closing quote.
        AfterQuoted,
        Cr,
    }
    let mut at = At::Between;
    for (i, &b) in buf.iter().enumerate() {
        at = match (at, b) {
            (At::Cr, b'\n') => return Ok(Some(i + 1)),
            (At::Cr, _) => return Err(ChunkError::BadLineEnd),
            (At::Quoted, b'"') => At::AfterQuoted,
            (At::Quoted, b'\\') => At::Escaped,
            (At::Quoted | At::Escaped, b) if qdtext(b) => At::Quoted,
            (At::Quoted | At::Escaped, _) => return Err(ChunkError::InvalidExtension),
            (At::Between | At::Name | At::AfterName | At::Token | At::AfterQuoted, b'\r') => At::Cr,
            (_, b'\r' | b'\n') => return Err(ChunkError::BadLineEnd),
            (At::Between | At::BeforeName | At::BeforeValue, b' ' | b'\t') => at,
            (At::Name | At::AfterName, b' ' | b'\t') => At::AfterName,
            (At::Token | At::AfterQuoted, b' ' | b'\t') => At::Between,
            (At::Between | At::Name | At::AfterName | At::Token | At::AfterQuoted, b';') => {
                At::BeforeName
            }
            (At::BeforeName | At::Name, b) if token(b) => At::Name,
            (At::Name | At::AfterName, b'=') => At::BeforeValue,
            (At::BeforeValue, b'"') => At::Quoted,
            (At::BeforeValue | At::Token, b) if token(b) => At::Token,
            _ if at == At::Between && buf[..i].iter().all(|b| matches!(b, b' ' | b'\t')) => {
                // Right after the size (and whitespace): neither `;` nor CRLF.
                return Err(ChunkError::InvalidSize);
            }
            _ => return Err(ChunkError::InvalidExtension),
        };
    }
    Ok(None)
}

/// RFC 9110 `tchar`.
fn token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 `qdtext` and `quoted-pair` characters.
fn qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff)
}

/// The trailer section after the last chunk: its length and trailers,
/// `None` while incomplete.
fn trailers(buf: &[u8]) -> Result<Option<(usize, Option<HeaderMap>)>, ChunkError> {
    match buf {
        [b'\r', b'\n', ..] => return Ok(Some((2, None))),
        [] | [b'\r'] => return Ok(None),
        [b'\r', ..] => return Err(ChunkError::InvalidTrailers),
        _ => {}
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
    let (used, fields) = match httparse::parse_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(done)) => done,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_TRAILERS => {
            return Err(ChunkError::TrailersTooLong);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ChunkError::InvalidTrailers),
    };
    if used > MAX_TRAILERS {
        return Err(ChunkError::TrailersTooLong);
    }
    // httparse takes a bare LF for CRLF: not here.
    if !crlf_lines(&buf[..used]) {
        return Err(ChunkError::InvalidTrailers);
    }
    let mut map = HeaderMap::with_capacity(fields.len());
    for f in fields.iter() {
        let name =
            HeaderName::from_bytes(f.name.as_bytes()).map_err(|_| ChunkError::InvalidTrailers)?;
        let value = HeaderValue::from_bytes(f.value).map_err(|_| ChunkError::InvalidTrailers)?;
        map.append(name, value);
    }
    Ok(Some((used, Some(map))))
}

/// Every LF is preceded by CR.
fn crlf_lines(section: &[u8]) -> bool {
    section
        .iter()
        .enumerate()
        .all(|(i, &b)| b != b'\n' || (i > 0 && section[i - 1] == b'\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoded body: data, trailers, and the bytes the coding used.
    #[derive(Debug, PartialEq)]
    struct Decoded {
        data: Vec<u8>,
        trailers: Option<HeaderMap>,
        used: usize,
    }

    /// What decoding `wire` fed in the given pieces gives: the body, an
    /// error, or `Ok(None)` when it ended incomplete.
    fn decode_pieces(pieces: &[&[u8]]) -> Result<Option<Decoded>, ChunkError> {
        let mut d = Decoder::new();
        let mut buf = Vec::new();
        let (mut data, mut used) = (Vec::new(), 0);
        for piece in pieces {
            buf.extend_from_slice(piece);
            while let Some(step) = d.step(&buf)? {
                let n = match step {
                    Step::Framing(n) => n,
                    Step::Data(n) => {
                        assert!(n > 0);
                        data.extend_from_slice(&buf[..n]);
                        n
                    }
                    Step::End(n, trailers) => {
                        assert!(d.is_done());
                        assert_eq!(d.step(&buf[n..]), Ok(None), "nothing after the end");
                        return Ok(Some(Decoded {
                            data,
                            trailers,
                            used: used + n,
                        }));
                    }
                };
                used += n;
                buf.drain(..n);
            }
        }
        Ok(None)
    }

    /// Decodes `wire` whole, then split in two at every index and in one
    /// byte reads; every way gives the same verdict.
    fn decode(wire: &[u8]) -> Result<Option<Decoded>, ChunkError> {
        let whole = decode_pieces(&[wire]);
        // Every index of a short body; a sample of a long one's.
        let step = if wire.len() <= 8 * 1024 { 1 } else { 1021 };
        for split in (0..=wire.len()).step_by(step) {
            let (a, b) = wire.split_at(split);
            assert_eq!(
                decode_pieces(&[a, b]),
                whole,
                "split at {split}: {:?}",
                String::from_utf8_lossy(wire)
            );
        }
        if step == 1 {
            let bytes: Vec<&[u8]> = wire.chunks(1).collect();
            assert_eq!(decode_pieces(&bytes), whole, "byte by byte");
        }
        whole
    }

    fn body(wire: &str) -> (String, usize) {
        let d = decode(wire.as_bytes())
            .unwrap_or_else(|e| panic!("{wire:?}: {e}"))
            .unwrap_or_else(|| panic!("{wire:?}: incomplete"));
        assert!(d.trailers.is_none());
        (String::from_utf8(d.data).unwrap(), d.used)
    }

    #[test]
    fn decodes_valid_bodies_at_every_split_point() {
        for (wire, want) in [
            ("0\r\n\r\n", ""),
            ("3\r\nabc\r\n0\r\n\r\n", "abc"),
            ("3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n", "abcdefg"),
            ("A\r\n0123456789\r\n0\r\n\r\n", "0123456789"),
            ("a\r\n0123456789\r\n0\r\n\r\n", "0123456789"),
            ("0003\r\nabc\r\n000\r\n\r\n", "abc"),
            ("1\r\n\r\r\n0\r\n\r\n", "\r"),
            // Extensions: names, token and quoted values, whitespace around `;`.
            ("3;x\r\nabc\r\n0\r\n\r\n", "abc"),
            ("3;x=1;y=two\r\nabc\r\n0;last\r\n\r\n", "abc"),
            ("3 ; x = 1\r\nabc\r\n0\r\n\r\n", "abc"),
            ("3;x=\"a \\\" ; b\"\r\nabc\r\n0\r\n\r\n", "abc"),
            ("3;x=\"\"\r\nabc\r\n0\r\n\r\n", "abc"),
            // Whitespace before the CRLF.
            ("3 \r\nabc\r\n0\t\r\n\r\n", "abc"),
            ("FFFFFFFFFFFFFFF0\r\n", ""),
        ] {
            if wire.starts_with("FFFF") {
                // A huge size is fine: its data is just not there yet.
                assert_eq!(decode(wire.as_bytes()), Ok(None));
                continue;
            }
            let (data, used) = body(wire);
            assert_eq!(data, want, "{wire:?}");
            assert_eq!(used, wire.len(), "{wire:?} is used whole");
        }
    }

    #[test]
    fn stops_at_the_end_of_the_body() {
        let wire = "2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n";
        let d = decode(wire.as_bytes()).unwrap().unwrap();
        assert_eq!(&wire[d.used..], "HTTP/1.1 200 OK\r\n");
    }

    #[test]
    fn reads_trailers() {
        let wire = b"2\r\nok\r\n0\r\nGrpc-Status: 0\r\nX-N: 1\r\nX-N: 2\r\n\r\nnext";
        let d = decode(wire).unwrap().unwrap();
        assert_eq!(d.data, b"ok");
        assert_eq!(d.used, wire.len() - 4);
        let t = d.trailers.unwrap();
        assert_eq!(t["grpc-status"], "0");
        assert_eq!(t.get_all("x-n").iter().count(), 2);
    }

    #[test]
    fn incomplete_bodies_wait_for_more() {
        for wire in [
            "",
            "3",
            "3\r",
            "3\r\nab",
            "3\r\nabc",
            "3\r\nabc\r",
            "3\r\nabc\r\n0\r\n",
            "3\r\nabc\r\n0\r\nX: 1\r\n",
            "3;x=\"open",
        ] {
            assert_eq!(decode(wire.as_bytes()), Ok(None), "{wire:?}");
        }
    }

    #[test]
    fn refuses_malformed_bodies_at_every_split_point() {
        use ChunkError::*;
        let long_ext = format!("1;{}\r\na\r\n0\r\n\r\n", "x".repeat(MAX_SIZE_LINE));
        let long_trailer = format!("0\r\nX: {}\r\n\r\n", "v".repeat(MAX_TRAILERS));
        for (wire, want) in [
            // Sizes: signs, prefixes, empty, overlong, not hex.
            ("-1\r\na\r\n0\r\n\r\n", InvalidSize),
            ("+1\r\na\r\n0\r\n\r\n", InvalidSize),
            ("0x1\r\na\r\n0\r\n\r\n", InvalidSize),
            ("\r\n", InvalidSize),
            (" 1\r\na\r\n0\r\n\r\n", InvalidSize),
            ("g\r\n", InvalidSize),
            ("1 1\r\na\r\n0\r\n\r\n", InvalidSize),
            ("00000000000000001\r\na\r\n0\r\n\r\n", OverlongSize),
            ("10000000000000000\r\n", OverlongSize),
            // Line ends: bare LF, bare CR, CR then something else.
            ("1\na\r\n0\r\n\r\n", BadLineEnd),
            ("1\ra\r\n0\r\n\r\n", BadLineEnd),
            ("1;x\na\r\n0\r\n\r\n", BadLineEnd),
            ("1\r\na\r\n0\n\r\n", BadLineEnd),
            // Extensions.
            ("1;\r\na\r\n0\r\n\r\n", BadLineEnd),
            ("1;=v\r\na\r\n0\r\n\r\n", InvalidExtension),
            ("1;x=\r\na\r\n0\r\n\r\n", BadLineEnd),
            ("1;x=\"a\nb\"\r\na\r\n0\r\n\r\n", InvalidExtension),
            ("1;x=\"a\"b\r\na\r\n0\r\n\r\n", InvalidExtension),
            ("1;x y\r\na\r\n0\r\n\r\n", InvalidExtension),
            ("1;x\0\r\na\r\n0\r\n\r\n", InvalidExtension),
            (&long_ext, LineTooLong),
            // Data longer (or shorter) than its size, missing CRLF.
            ("1\r\nab\r\n0\r\n\r\n", ChunkTooLong),
            ("3\r\nab\r\n0\r\n\r\n", ChunkTooLong),
            ("1\r\na\n0\r\n\r\n", ChunkTooLong),
            ("1\r\na0\r\n\r\n", ChunkTooLong),
            // Trailers.
            ("0\r\nBad Name: 1\r\n\r\n", InvalidTrailers),
            ("0\r\nX: 1\n\r\n", InvalidTrailers),
            ("0\r\nX: 1\r\n folded\r\n\r\n", InvalidTrailers),
            ("0\r\n\rx", InvalidTrailers),
            (&long_trailer, TrailersTooLong),
        ] {
            assert_eq!(decode(wire.as_bytes()), Err(want), "{wire:?}");
        }
    }
}
