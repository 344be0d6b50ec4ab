//! Subscription keys: only their SHA-256 is stored, written in hex in the
//! catalog (`edgegw catalog hash-key KEY`, or by the control plane).

use sha2::{Digest, Sha256};

pub type KeyHash = [u8; 32];

/// SHA-256 of a key.
pub fn hash_key(key: &str) -> KeyHash {
    Sha256::digest(key.as_bytes()).into()
}

/// Hex form, as written in the catalog.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn parse_hex(text: &str) -> Result<KeyHash, String> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return Err(format!(
            "\"{text}\" is not a 64-digit hex SHA-256; produce one with `edgegw catalog hash-key KEY`"
        ));
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digit = std::str::from_utf8(pair).ok();
        out[i] = digit
            .and_then(|d| u8::from_str_radix(d, 16).ok())
            .ok_or_else(|| {
                format!(
                    "\"{text}\" is not a 64-digit hex SHA-256; produce one with `edgegw catalog hash-key KEY`"
                )
            })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let h = hash_key("secret");
        assert_eq!(
            to_hex(&h),
            "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
        );
        assert_eq!(parse_hex(&to_hex(&h)).unwrap(), h);
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex(&"zz".repeat(32)).is_err());
    }
}
