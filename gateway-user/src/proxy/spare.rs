//! Per-thread spares of the containers every proxied request fills and
//! empties: header maps (the request's, the backend response's) and
//! request head buffers. A request takes them here and gives them back,
//! emptied, once written out, so steady traffic allocates none of them.
//! A connection and its requests stay on one thread (see `workers`), so
//! what a thread takes it also gives back.

use std::{cell::RefCell, thread::LocalKey};

use hyper::HeaderMap;

/// Most spares kept per kind and thread.
const KEEP: usize = 64;
/// A map or buffer grown beyond these (by a rare large message) is freed,
/// not kept.
const MAX_MAP: usize = 64;
const MAX_BUF: usize = 16 * 1024;

thread_local! {
    static MAPS: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
    static BUFS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty header map with room for `capacity` headers.
pub fn header_map(capacity: usize) -> HeaderMap {
    let mut map = take(&MAPS).unwrap_or_default();
    map.reserve(capacity);
    map
}

/// Keeps `map`'s memory for a later request.
pub fn give_back_map(mut map: HeaderMap) {
    if map.capacity() <= MAX_MAP {
        map.clear();
        keep(&MAPS, map);
    }
}

/// An empty buffer with room for `capacity` bytes.
pub fn buffer(capacity: usize) -> Vec<u8> {
    let mut buf = take(&BUFS).unwrap_or_default();
    buf.reserve(capacity);
    buf
}

/// Keeps `buf`'s memory for a later request.
pub fn give_back_buffer(mut buf: Vec<u8>) {
    if buf.capacity() <= MAX_BUF {
        buf.clear();
        keep(&BUFS, buf);
    }
}

type Stash<T> = LocalKey<RefCell<Vec<T>>>;

// `try_with`: during thread teardown the stash may be gone already.
fn take<T>(stash: &'static Stash<T>) -> Option<T> {
    stash.try_with(|s| s.borrow_mut().pop()).ok().flatten()
}

fn keep<T>(stash: &'static Stash<T>, item: T) {
    let _ = stash.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < KEEP {
            s.push(item);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spares_come_back_empty_and_keep_their_memory() {
        let mut map = header_map(4);
        map.insert("x-a", "1".parse().unwrap());
        let room = map.capacity();
        give_back_map(map);
        let again = header_map(2);
        assert!(again.is_empty());
        assert_eq!(again.capacity(), room, "the same map, reused");

        let mut buf = buffer(100);
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let ptr = buf.as_ptr();
        give_back_buffer(buf);
        let again = buffer(10);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), ptr, "the same memory, reused");
    }

    #[test]
    fn grown_ones_are_not_kept() {
        let mut big = HeaderMap::new();
        for i in 0..200 {
            big.insert(
                hyper::header::HeaderName::from_bytes(format!("x-{i}").as_bytes()).unwrap(),
                "v".parse().unwrap(),
            );
        }
        MAPS.with_borrow_mut(Vec::clear);
        give_back_map(big);
        assert!(MAPS.with_borrow(Vec::is_empty));
        BUFS.with_borrow_mut(Vec::clear);
        give_back_buffer(Vec::with_capacity(MAX_BUF + 1));
        assert!(BUFS.with_borrow(Vec::is_empty));
    }
}
