//! The lean server's request head parser: never panics, and decides the
//! same whatever the reads. A verdict on the first bytes (serve this head,
//! or hand the connection to hyper) stands once the rest arrives; this is
//! what keeps the head limit exact however a head is cut.
#![no_main]

use edgegw::proxy::fuzzing::{LeanVerdict, lean_head, lean_read, limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[split_hi, split_lo, limit], bytes)) = data.split_first_chunk::<3>() else {
        return;
    };
    // A small head limit lets short inputs reach it: 8192 to 8192 + 255.
    let limits = limits(8192 + usize::from(limit));
    let split = usize::from(u16::from_be_bytes([split_hi, split_lo])) % (bytes.len() + 1);
    let whole = lean_head(bytes, &limits);
    if let LeanVerdict::Serve { head_len, .. } = whole {
        assert!(head_len <= bytes.len());
        assert!(head_len <= limits.max_header_bytes, "served over the limit");
    }
    let prefix = lean_head(&bytes[..split], &limits);
    assert!(
        prefix == LeanVerdict::Partial || prefix == whole,
        "{prefix:?} on the first {split} bytes, {whole:?} on all"
    );
    // Read in two reads or in one: the same request, or none.
    let one = lean_read(bytes, &[], &limits);
    let two = lean_read(&bytes[..split], &bytes[split..], &limits);
    assert_eq!(one.is_some(), two.is_some());
    if let (Some(one), Some(two)) = (one, two) {
        assert_eq!(one.method(), two.method());
        assert_eq!(one.uri(), two.uri());
        assert_eq!(one.headers(), two.headers());
        assert_eq!(one.body(), two.body());
    }
});
