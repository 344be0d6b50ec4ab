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

#[cfg(test)]
mod tests {
    use gateway_model::policy::validate_jwt::ValidateJwtSpec;
    use jsonwebtoken::DecodingKey;
    use ring::{
        rand::SystemRandom,
        signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair},
    };

    fn pem(tag: &str, der: &[u8]) -> String {
        pem::encode(&pem::Pem::new(tag, der))
    }

    /// The model checks inline PEM keys without the JWT library (the
    /// control plane does not link it): it must accept exactly what the
    /// library decodes, and refuse the rest with the library's words.
    #[test]
    fn the_model_accepts_the_pem_keys_the_library_decodes() {
        let rng = SystemRandom::new();
        let ec_pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let ec =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, ec_pkcs8.as_ref(), &rng)
                .unwrap();
        // SubjectPublicKeyInfo { ecPublicKey, prime256v1 } + the point.
        let mut spki = b"\x30\x59\x30\x13\x06\x07\x2a\x86\x48\xce\x3d\x02\x01\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07\x03\x42\x00".to_vec();
        spki.extend_from_slice(ec.public_key().as_ref());
        let ed_pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        // RSAPublicKey { n, e } (PKCS#1): its numbers are not checked.
        let pkcs1 = b"\x30\x06\x02\x01\x05\x02\x01\x03";
        let cases = [
            pem("PUBLIC KEY", &spki),
            pem("CERTIFICATE", &spki),
            pem("PRIVATE KEY", ec_pkcs8.as_ref()),
            pem("PRIVATE KEY", ed_pkcs8.as_ref()),
            pem("RSA PUBLIC KEY", pkcs1),
            pem("RSA PRIVATE KEY", pkcs1),
            pem("RSA PUBLIC KEY", b"\x01\x02"),
            pem("PUBLIC KEY", pkcs1),
            pem("EC PUBLIC KEY", &spki),
            "nope".to_string(),
        ];
        let mut accepted = 0;
        for text in &cases {
            for (alg, library) in [
                ("RS256", DecodingKey::from_rsa_pem(text.as_bytes())),
                ("ES256", DecodingKey::from_ec_pem(text.as_bytes())),
            ] {
                let policy = serde_yaml::to_value(serde_json::json!({
                    "signing_keys": [{"alg": alg, "pem": text}]
                }))
                .unwrap();
                let model = ValidateJwtSpec::parse(policy).map(drop);
                let library = library.map(drop).map_err(|e| format!("{alg} pem: {e}"));
                assert_eq!(model, library, "{alg}: {text}");
                accepted += usize::from(model.is_ok());
            }
        }
        // EC SPKI as PUBLIC KEY and CERTIFICATE; PKCS#1 public and private.
        assert_eq!(accepted, 4);
    }
}
