//! `ComputeHash` of System.Security.Cryptography's SHA and HMAC classes,
//! over the RustCrypto implementations.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::ast::HashKind;

fn hmac<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut mac =
        <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The digest of `data`; `key` is an HMAC's key (empty for the others).
pub fn compute(kind: HashKind, key: &[u8], data: &[u8]) -> Vec<u8> {
    match kind {
        HashKind::Sha1 => Sha1::digest(data).to_vec(),
        HashKind::Sha256 => Sha256::digest(data).to_vec(),
        HashKind::Sha512 => Sha512::digest(data).to_vec(),
        HashKind::HmacSha1 => hmac::<Hmac<Sha1>>(key, data),
        HashKind::HmacSha256 => hmac::<Hmac<Sha256>>(key, data),
        HashKind::HmacSha512 => hmac::<Hmac<Sha512>>(key, data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn known_answers() {
        // FIPS 180 and RFC 4231 (test case 2) vectors.
        let cases = [
            (
                HashKind::Sha1,
                "",
                "abc",
                "a9993e364706816aba3e25717850c26c9cd0d89d",
            ),
            (
                HashKind::Sha256,
                "",
                "abc",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                HashKind::HmacSha256,
                "Jefe",
                "what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                HashKind::HmacSha1,
                "Jefe",
                "what do ya want for nothing?",
                "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
            ),
        ];
        for (kind, key, data, want) in cases {
            assert_eq!(
                hex(&compute(kind, key.as_bytes(), data.as_bytes())),
                want,
                "{kind:?}"
            );
        }
        assert_eq!(compute(HashKind::Sha512, b"", b"abc").len(), 64);
        assert_eq!(compute(HashKind::HmacSha512, b"k", b"abc").len(), 64);
    }
}
