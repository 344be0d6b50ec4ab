//! The canonical path (`proxy::canonical`): never panics, and what it
//! makes is canonical: no dot or empty segment, every escape upper-case
//! hex of a byte that must stay escaped, a second pass changes nothing
//! (nothing is decoded twice), and a refusal is final.
#![no_main]

use edgegw::proxy::fuzzing::canonical;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(first) = canonical(raw) else {
        return;
    };
    let path = &*first.path;
    assert!(path.starts_with('/'), "{raw:?} -> {path:?}");
    let segments: Vec<&str> = path[1..].split('/').collect();
    for (i, s) in segments.iter().enumerate() {
        assert!(
            !matches!(*s, "." | ".."),
            "{raw:?} -> {path:?}: dot segment"
        );
        assert!(
            !s.is_empty() || i + 1 == segments.len(),
            "{raw:?} -> {path:?}: empty segment"
        );
    }
    let bytes = path.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        assert!(b.is_ascii_graphic(), "{raw:?} -> {path:?}: raw byte {b:#x}");
        assert_ne!(b, b'\\', "{raw:?} -> {path:?}");
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).expect("a whole escape");
            assert!(
                hex.iter().all(|h| matches!(h, b'0'..=b'9' | b'A'..=b'F')),
                "{raw:?} -> {path:?}: escape {hex:?}"
            );
            let v = u8::from_str_radix(std::str::from_utf8(hex).unwrap(), 16).unwrap();
            // An unreserved byte is always decoded.
            assert!(
                !(v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~')),
                "{raw:?} -> {path:?}: %{v:02X} left encoded"
            );
        }
    }
    // Idempotent: the canonical form is its own, borrowed as it is.
    let second = canonical(path).unwrap_or_else(|e| panic!("{raw:?} -> {path:?} -> {e:?}"));
    assert_eq!(second.path, path, "{raw:?}: a second pass changed it");
    assert_eq!(second.encoded_slash, first.encoded_slash, "{raw:?}");
});
