//! The backend client's response head parser: never panics, gives the
//! same verdict whatever the reads, and never uses more than it was given.
#![no_main]

use edgegw::proxy::fuzzing::response_head;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[split_hi, split_lo, flags], bytes)) = data.split_first_chunk::<3>() else {
        return;
    };
    let head_request = flags & 1 == 1;
    let split = usize::from(u16::from_be_bytes([split_hi, split_lo])) % (bytes.len() + 1);
    let whole = response_head(bytes, head_request);
    if let Ok(Some((_, _, used))) = &whole {
        assert!(*used <= bytes.len());
    }
    let key = |r: &Result<Option<(hyper::http::response::Parts, String, usize)>, String>| match r {
        Err(e) => Err(e.clone()),
        Ok(None) => Ok(None),
        Ok(Some((parts, framing, used))) => Ok(Some((
            parts.status,
            parts.version,
            parts.headers.clone(),
            framing.clone(),
            *used,
        ))),
    };
    let prefix = response_head(&bytes[..split], head_request);
    assert!(
        matches!(prefix, Ok(None)) || key(&prefix) == key(&whole),
        "{:?} on the first {split} bytes, {:?} on all",
        key(&prefix),
        key(&whole)
    );
});
