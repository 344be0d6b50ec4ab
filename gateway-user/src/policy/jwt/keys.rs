//! Signature keys (inline or from a JWKS document) and signature checks.
//! Only the signature is checked here; claims are `claims.rs`'s concern.

use gateway_model::policy::validate_jwt::{InlineKey, KeyMaterial};
use jsonwebtoken::{
    Algorithm, DecodingKey, Header, Validation,
    jwk::{AlgorithmParameters, JwkSet},
};
use serde_json::{Map, Value};

/// The algorithms `validate-jwt` accepts.
pub const ALGORITHMS: [Algorithm; 3] = [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256];

pub struct Key {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub key: DecodingKey,
}

impl Key {
    /// An inline key, validated by the model.
    pub fn inline(spec: &InlineKey) -> Result<Key, String> {
        let (alg, key) = match &spec.material {
            KeyMaterial::Hs256 { secret } => (
                Algorithm::HS256,
                DecodingKey::from_secret(secret.as_bytes()),
            ),
            KeyMaterial::Rs256 { pem } => (
                Algorithm::RS256,
                DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| format!("RS256 pem: {e}"))?,
            ),
            KeyMaterial::Es256 { pem } => (
                Algorithm::ES256,
                DecodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| format!("ES256 pem: {e}"))?,
            ),
        };
        Ok(Key {
            alg,
            kid: spec.kid.clone(),
            key,
        })
    }
}

/// The usable keys of a JWKS document (others, such as Ed25519, are skipped).
pub fn from_jwks(set: &JwkSet) -> Vec<Key> {
    set.keys
        .iter()
        .filter_map(|jwk| {
            let alg = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                AlgorithmParameters::OctetKey(_) => Algorithm::HS256,
                AlgorithmParameters::OctetKeyPair(_) => return None,
            };
            Some(Key {
                alg,
                kid: jwk.common.key_id.clone(),
                key: DecodingKey::from_jwk(jwk).ok()?,
            })
        })
        .collect()
}

/// The claims of `token` if one of `keys` (of the token's algorithm and,
/// when both name one, its key id) verifies its signature.
pub fn verify(keys: &[Key], token: &str, header: &Header) -> Option<Map<String, Value>> {
    keys.iter()
        .filter(|k| k.alg == header.alg)
        .filter(|k| match (&k.kid, &header.kid) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        })
        .find_map(|k| {
            jsonwebtoken::decode::<Map<String, Value>>(token, &k.key, &signature_only(k.alg))
                .ok()
                .map(|d| d.claims)
        })
}

/// Signature checks only: the library's claim checks treat an absent
/// `iss` or `aud` as acceptable, and ignore a malformed `nbf`.
fn signature_only(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v
}
