//! Header names as they arrive on the wire, parsed once per thread: the
//! same few names (`Host`, `Content-Type`, a subscription key header...)
//! come on nearly every request and response, and parsing one costs a
//! lower-casing pass, a match against the standard names and, for the
//! others, an allocation. A small direct-mapped table per thread keeps the
//! last name seen in each slot under its exact bytes; a miss just parses.

use std::cell::RefCell;

use hyper::header::HeaderName;

const SLOTS: usize = 64;
/// Longer names are parsed every time (and not kept).
const MAX_LEN: usize = 32;

struct Entry {
    len: u8,
    raw: [u8; MAX_LEN],
    name: HeaderName,
}

thread_local! {
    static TABLE: RefCell<[Option<Entry>; SLOTS]> = const { RefCell::new([const { None }; SLOTS]) };
}

/// `raw` as a header name, or `None` when it is not a valid one.
pub fn parse(raw: &[u8]) -> Option<HeaderName> {
    let len = raw.len();
    if len == 0 || len > MAX_LEN {
        return HeaderName::from_bytes(raw).ok();
    }
    let slot =
        (len * 7 + usize::from(raw[0]) * 3 + usize::from(raw[len / 2]) + usize::from(raw[len - 1]))
            % SLOTS;
    TABLE.with_borrow_mut(|table| {
        if let Some(e) = &table[slot]
            && usize::from(e.len) == len
            && e.raw[..len] == *raw
        {
            return Some(e.name.clone());
        }
        let name = HeaderName::from_bytes(raw).ok()?;
        let mut kept = [0; MAX_LEN];
        kept[..len].copy_from_slice(raw);
        table[slot] = Some(Entry {
            len: len as u8,
            raw: kept,
            name: name.clone(),
        });
        Some(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_parsing_gives_hit_or_miss() {
        let long = "x-".repeat(20);
        for raw in [
            "Content-Type",
            "content-type",
            "Ocp-Apim-Subscription-Key",
            "X-Custom",
            &long,
        ] {
            for _ in 0..2 {
                assert_eq!(
                    parse(raw.as_bytes()),
                    HeaderName::from_bytes(raw.as_bytes()).ok(),
                    "{raw}"
                );
            }
        }
        // Names sharing a slot replace each other and stay distinct.
        for _ in 0..2 {
            for raw in ["ab", "ba", "aab", "aba"] {
                assert_eq!(parse(raw.as_bytes()).unwrap().as_str(), raw);
            }
        }
        for bad in ["", "bad name", "bad:name", "\u{e9}"] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad:?}");
        }
    }
}
