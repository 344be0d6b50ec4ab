//! The backend client's chunked decoder: never panics, steps stay within
//! the bytes given, and a body cut anywhere decodes as the whole does.
#![no_main]

use edgegw::proxy::fuzzing::{ChunkError, Decoder, Step};
use libfuzzer_sys::fuzz_target;

/// Data, trailer names, and the bytes used when the body ended; the error;
/// or what was decoded before the bytes ran out.
#[derive(Debug, PartialEq)]
enum Outcome {
    Ended(Vec<u8>, Vec<String>, usize),
    Failed(ChunkError),
    Short(Vec<u8>),
}

fn decode(pieces: &[&[u8]]) -> Outcome {
    let mut decoder = Decoder::new();
    let mut buf = Vec::new();
    let (mut data, mut used) = (Vec::new(), 0);
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            let step = match decoder.step(&buf) {
                Err(e) => return Outcome::Failed(e),
                Ok(None) => break,
                Ok(Some(step)) => step,
            };
            let n = match step {
                Step::Framing(n) => {
                    assert!(n > 0 && n <= buf.len());
                    n
                }
                Step::Data(n) => {
                    assert!(n > 0 && n <= buf.len());
                    data.extend_from_slice(&buf[..n]);
                    n
                }
                Step::End(n, trailers) => {
                    assert!(n <= buf.len() && decoder.is_done());
                    assert_eq!(decoder.step(&buf[n..]), Ok(None));
                    let names = trailers
                        .iter()
                        .flat_map(|t| t.keys().map(|k| k.to_string()))
                        .collect();
                    return Outcome::Ended(data, names, used + n);
                }
            };
            used += n;
            buf.drain(..n);
        }
    }
    Outcome::Short(data)
}

fuzz_target!(|data: &[u8]| {
    let Some((&[split_hi, split_lo], bytes)) = data.split_first_chunk::<2>() else {
        return;
    };
    let split = usize::from(u16::from_be_bytes([split_hi, split_lo])) % (bytes.len() + 1);
    let whole = decode(&[bytes]);
    if let Outcome::Ended(_, _, used) = &whole {
        assert!(*used <= bytes.len());
    }
    let (a, b) = bytes.split_at(split);
    assert_eq!(decode(&[a, b]), whole, "split at {split}");
});
