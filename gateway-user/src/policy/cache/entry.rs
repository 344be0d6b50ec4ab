//! What the cache holds: a stored response (status, headers, body and its
//! times) or a value of `cache-store-value`; and the bytes a response is
//! kept as in Redis, where every gateway sharing it reads it back.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use hyper::{
    HeaderMap, StatusCode,
    header::{HeaderName, HeaderValue},
};

/// A stored response.
#[derive(Debug, Clone)]
pub struct Stored {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Unix milliseconds when it was stored (for `Age`, on any gateway).
    pub stored_ms: u64,
    /// Unix milliseconds when it stops being fresh.
    pub expires_ms: u64,
}

/// First bytes of an encoded response: a format change is a miss, not
/// garbage.
const MAGIC: &[u8; 4] = b"EGC1";

impl Stored {
    /// Bytes it takes in memory, roughly: what the cache's bound counts.
    pub fn weight(&self) -> u64 {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 32)
            .sum();
        (self.body.len() + headers + 96) as u64
    }

    /// `EGC1`, status, stored and expiry times, header count, each header
    /// as (name length, name, value length, value), then the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = BytesMut::with_capacity(self.weight() as usize);
        out.put_slice(MAGIC);
        out.put_u16(self.status.as_u16());
        out.put_u64(self.stored_ms);
        out.put_u64(self.expires_ms);
        out.put_u16(self.headers.len().min(u16::MAX as usize) as u16);
        for (name, value) in self.headers.iter().take(u16::MAX as usize) {
            out.put_u16(name.as_str().len() as u16);
            out.put_slice(name.as_str().as_bytes());
            out.put_u32(value.len() as u32);
            out.put_slice(value.as_bytes());
        }
        out.put_slice(&self.body);
        out.to_vec()
    }

    /// The response `encode` wrote; `None` for anything else.
    pub fn decode(bytes: Vec<u8>) -> Option<Stored> {
        let mut buf = Bytes::from(bytes);
        if buf.len() < 4 + 2 + 16 + 2 || &buf[..4] != MAGIC {
            return None;
        }
        buf.advance(4);
        let status = StatusCode::from_u16(buf.get_u16()).ok()?;
        let stored_ms = buf.get_u64();
        let expires_ms = buf.get_u64();
        let count = buf.get_u16();
        let mut headers = HeaderMap::with_capacity(count as usize);
        for _ in 0..count {
            let len = take_len(&mut buf, 2)?;
            let name = HeaderName::from_bytes(&buf.split_to(len)).ok()?;
            let len = take_len(&mut buf, 4)?;
            let value = HeaderValue::from_maybe_shared(buf.split_to(len)).ok()?;
            headers.append(name, value);
        }
        Some(Stored {
            status,
            headers,
            body: buf,
            stored_ms,
            expires_ms,
        })
    }
}

/// A length of `width` bytes, checked against what is left.
fn take_len(buf: &mut Bytes, width: usize) -> Option<usize> {
    if buf.remaining() < width {
        return None;
    }
    let len = if width == 2 {
        buf.get_u16() as usize
    } else {
        buf.get_u32() as usize
    };
    (buf.remaining() >= len).then_some(len)
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let mut headers = HeaderMap::new();
        headers.append("content-type", "application/json".parse().unwrap());
        headers.append("x-a", "1".parse().unwrap());
        headers.append("x-a", "2".parse().unwrap());
        let stored = Stored {
            status: StatusCode::CREATED,
            headers,
            body: Bytes::from_static(b"{\"a\":1}"),
            stored_ms: 5,
            expires_ms: 9,
        };
        let back = Stored::decode(stored.encode()).unwrap();
        assert_eq!(back.status, StatusCode::CREATED);
        assert_eq!(back.headers, stored.headers);
        assert_eq!(back.body, stored.body);
        assert_eq!((back.stored_ms, back.expires_ms), (5, 9));
        assert!(Stored::decode(b"nope".to_vec()).is_none());
        let mut cut = stored.encode();
        cut.truncate(30);
        assert!(Stored::decode(cut).is_none());
    }
}
