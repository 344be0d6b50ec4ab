//! Which PEM public keys the gateway's JWT library (jsonwebtoken 9)
//! accepts, decided as it decides (`pem/decoder.rs` there), with its
//! messages: the control plane refuses what the gateway would refuse,
//! without linking the library. `gateway-user`'s `policy/jwt/keys.rs`
//! tests the two against each other.

use simple_asn1::{ASN1Block, OID, oid};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PemKind {
    Rsa,
    Ec,
}

/// `Ok` when the library would decode `text` as a key of `kind`; else its
/// error text (`InvalidKeyFormat`, `InvalidEcdsaKey`).
pub fn check(text: &str, kind: PemKind) -> Result<(), &'static str> {
    const FORMAT: &str = "InvalidKeyFormat";
    let pem = pem::parse(text.as_bytes()).map_err(|_| FORMAT)?;
    let asn1 = simple_asn1::from_der(pem.contents()).map_err(|_| FORMAT)?;
    let (class, pkcs8, private) = match pem.tag() {
        "RSA PRIVATE KEY" => (Class::Rsa, false, true),
        "RSA PUBLIC KEY" => (Class::Rsa, false, false),
        tag @ ("PRIVATE KEY" | "PUBLIC KEY" | "CERTIFICATE") => {
            (classify(&asn1).ok_or(FORMAT)?, true, tag == "PRIVATE KEY")
        }
        _ => return Err(FORMAT),
    };
    match kind {
        // PKCS#1 is taken as it is; PKCS#8 needs a bit or octet string.
        PemKind::Rsa if class == Class::Rsa && !pkcs8 => Ok(()),
        PemKind::Rsa if class == Class::Rsa => first_bitstring(&asn1),
        PemKind::Ec if class == Class::Ec && pkcs8 && !private => first_bitstring(&asn1),
        _ => Err(FORMAT),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Ec,
    Ed,
    Rsa,
}

fn first_bitstring(asn1: &[ASN1Block]) -> Result<(), &'static str> {
    for block in asn1 {
        match block {
            ASN1Block::Sequence(_, entries) if first_bitstring(entries).is_ok() => return Ok(()),
            ASN1Block::BitString(..) | ASN1Block::OctetString(..) => return Ok(()),
            _ => {}
        }
    }
    Err("InvalidEcdsaKey")
}

fn classify(asn1: &[ASN1Block]) -> Option<Class> {
    let ec: OID = oid!(1, 2, 840, 10_045, 2, 1);
    let rsa: OID = oid!(1, 2, 840, 113_549, 1, 1, 1);
    let ed: OID = oid!(1, 3, 101, 112);
    for block in asn1 {
        match block {
            ASN1Block::Sequence(_, entries) => {
                if let Some(c) = classify(entries) {
                    return Some(c);
                }
            }
            ASN1Block::ObjectIdentifier(_, id) if *id == ec => return Some(Class::Ec),
            ASN1Block::ObjectIdentifier(_, id) if *id == rsa => return Some(Class::Rsa),
            ASN1Block::ObjectIdentifier(_, id) if *id == ed => return Some(Class::Ed),
            _ => {}
        }
    }
    None
}
