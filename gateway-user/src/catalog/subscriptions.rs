//! Subscriptions and their keys. Only SHA-256 hashes of keys are stored:
//! a request's key is hashed, the hash finds the candidate in a map, and
//! the stored hash is then compared in constant time. (The map lookup's
//! timing depends on the hash of the presented key only, which an attacker
//! cannot steer toward a stored hash.)

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a subscription grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every API of a product.
    Product(String),
    /// One API.
    Api(String),
    /// Every API.
    All,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Active,
    Suspended,
    Expired,
}

#[derive(Clone, Debug)]
pub struct Subscription {
    pub id: String,
    pub scope: Scope,
    pub state: State,
}

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

/// Constant-time equality of two digests, compared as four words: a
/// byte-wise comparison costs about ten times the instructions.
fn same_digest(a: &KeyHash, b: &KeyHash) -> bool {
    let words = |d: &KeyHash| -> [u64; 4] {
        std::array::from_fn(|i| {
            u64::from_ne_bytes(d[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
        })
    };
    bool::from(words(a)[..].ct_eq(&words(b)[..]))
}

/// Subscriptions indexed by key hash.
#[derive(Debug, Default)]
pub struct Subscriptions {
    list: Vec<Subscription>,
    ids: HashSet<String>,
    /// Hashed again with foldhash, not SipHash: its keys are SHA-256
    /// digests, which a caller cannot choose to collide, and the lookup is
    /// on every call.
    by_hash: HashMap<KeyHash, usize, foldhash::fast::RandomState>,
}

impl Subscriptions {
    pub fn insert(&mut self, sub: Subscription, keys: &[KeyHash]) -> Result<(), String> {
        if self.ids.contains(&sub.id) {
            return Err("id is used twice; give each subscription a unique id".into());
        }
        for key in keys {
            if let Some(&other) = self.by_hash.get(key) {
                return Err(format!(
                    "a key is also a key of subscription \"{}\"; keys must be unique",
                    self.list[other].id
                ));
            }
        }
        for key in keys {
            self.by_hash.insert(*key, self.list.len());
        }
        self.ids.insert(sub.id.clone());
        self.list.push(sub);
        Ok(())
    }

    /// The subscription whose primary or secondary key is `key`.
    pub fn find(&self, key: &str) -> Option<&Subscription> {
        let hash = hash_key(key);
        let (stored, &index) = self.by_hash.get_key_value(&hash)?;
        same_digest(stored, &hash).then(|| &self.list[index])
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_by_either_key_and_rejects_others() {
        let mut subs = Subscriptions::default();
        let sub = Subscription {
            id: "alice".into(),
            scope: Scope::All,
            state: State::Active,
        };
        subs.insert(sub.clone(), &[hash_key("k1"), hash_key("k2")])
            .unwrap();
        assert_eq!(subs.find("k1").unwrap().id, "alice");
        assert_eq!(subs.find("k2").unwrap().id, "alice");
        assert!(subs.find("k3").is_none());
        let dup = Subscription {
            id: "bob".into(),
            ..sub
        };
        assert!(
            subs.insert(dup, &[hash_key("k2")])
                .unwrap_err()
                .contains("alice")
        );
    }

    #[test]
    fn digests_are_equal_only_when_every_byte_is() {
        let a = hash_key("k1");
        assert!(same_digest(&a, &a.clone()));
        for i in 0..32 {
            let mut b = a;
            b[i] ^= 1;
            assert!(!same_digest(&a, &b), "byte {i} differs");
        }
    }

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
