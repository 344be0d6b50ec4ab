//! Admin tokens (random, stored as SHA-256) and gateway tokens
//! (`base64url(payload).base64url(HMAC-SHA-256)` signed with a key kept in
//! the database). A gateway token is valid while its signature verifies
//! under the current signing key, it has not expired, and its id is the
//! gateway's current token id: rotating the key or the gateway's token
//! invalidates the old one.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use ring::{
    digest, hmac,
    rand::{SecureRandom, SystemRandom},
};
use serde::{Deserialize, Serialize};

use crate::{
    clock::{self, rfc3339},
    error::ApiError,
    store::{Conn, DbError, gateways},
};

/// `n` random bytes, base64url.
pub fn random(n: usize) -> String {
    B64.encode(random_bytes(n))
}

/// `n` random bytes from the system RNG.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system RNG works");
    bytes
}

pub fn sha256_hex(text: &str) -> String {
    digest::digest(&digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Creates an admin token; only its hash is stored.
pub fn create_admin(conn: &Conn, name: &str) -> Result<String, DbError> {
    let token = format!("egwa_{}", random(32));
    let hash = sha256_hex(&token);
    conn.execute(
        "INSERT INTO admin_tokens (sha256, name, created_at) VALUES (?1, ?2, ?3)",
        &[(&hash).into(), name.into(), clock::now().into()],
    )?;
    Ok(token)
}

/// Labels and creation times (Unix seconds), oldest first.
pub fn list_admin(conn: &Conn) -> Result<Vec<(String, i64)>, DbError> {
    conn.query(
        "SELECT name, created_at FROM admin_tokens ORDER BY created_at, name",
        &[],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?, r.int(1)?)))
    .collect()
}

/// Deletes the admin tokens labelled `name`; how many there were.
pub fn revoke_admin(conn: &Conn, name: &str) -> Result<u64, DbError> {
    conn.execute("DELETE FROM admin_tokens WHERE name = ?1", &[name.into()])
}

pub fn admin_count(conn: &Conn) -> Result<i64, DbError> {
    conn.query_one("SELECT COUNT(*) FROM admin_tokens", &[])?
        .int(0)
}

/// Checks `Authorization: Bearer <admin token>` (its hash is looked up, so
/// timing reveals nothing about the token); returns the token's label.
pub fn check_admin(conn: &Conn, header: Option<&str>) -> Result<String, ApiError> {
    let token = bearer(header).ok_or_else(|| {
        ApiError::unauthorized(
            "missing admin token: send Authorization: Bearer <token> (create one with `edgegw-cp admin-token create`)",
        )
    })?;
    let hash = sha256_hex(token);
    let known = conn
        .query_opt(
            "SELECT name FROM admin_tokens WHERE sha256 = ?1",
            &[(&hash).into()],
        )?
        .map(|r| r.text(0))
        .transpose()?;
    match known {
        Some(label) => Ok(label),
        None => Err(ApiError::unauthorized(
            "admin token not recognised; create one with `edgegw-cp admin-token create`",
        )),
    }
}

fn bearer(header: Option<&str>) -> Option<&str> {
    let value = header?.trim();
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// Generates the signing key on first start.
pub fn ensure_signing_key(conn: &Conn) -> Result<(), DbError> {
    let count = conn
        .query_one("SELECT COUNT(*) FROM signing_keys", &[])?
        .int(0)?;
    if count == 0 {
        rotate_signing_key(conn)?;
    }
    Ok(())
}

/// Replaces the signing key: every gateway token issued so far fails.
pub fn rotate_signing_key(conn: &Conn) -> Result<(), DbError> {
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .expect("the system RNG works");
    conn.execute("DELETE FROM signing_keys", &[])?;
    conn.execute(
        "INSERT INTO signing_keys (key, created_at) VALUES (?1, ?2)",
        &[key.as_slice().into(), clock::now().into()],
    )?;
    Ok(())
}

fn signing_key(conn: &Conn) -> Result<hmac::Key, DbError> {
    let key = conn
        .query_one("SELECT key FROM signing_keys ORDER BY id DESC LIMIT 1", &[])?
        .bytes(0)?;
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &key))
}

#[derive(Serialize, Deserialize)]
struct Claims {
    /// Gateway name.
    gw: String,
    /// Token id: the gateway's current one, or the token was revoked.
    tid: String,
    /// Expiry, Unix seconds.
    exp: i64,
}

/// A freshly issued gateway token.
#[derive(Serialize)]
pub struct Issued {
    pub gateway: String,
    pub token: String,
    pub expires_at: String,
}

/// Issues a token for `gateway` with id `token_id`, valid `ttl_secs`.
pub fn issue(conn: &Conn, gateway: &str, token_id: &str, ttl_secs: u64) -> Result<Issued, DbError> {
    let exp = clock::now_ceil().saturating_add(ttl_secs.min(i64::MAX as u64 / 2) as i64);
    let claims = Claims {
        gw: gateway.into(),
        tid: token_id.into(),
        exp,
    };
    let payload = B64.encode(serde_json::to_vec(&claims).expect("claims serialise"));
    let tag = hmac::sign(&signing_key(conn)?, payload.as_bytes());
    Ok(Issued {
        gateway: gateway.into(),
        token: format!("{payload}.{}", B64.encode(tag.as_ref())),
        expires_at: rfc3339(exp),
    })
}

/// Verifies `Authorization: Bearer <gateway token>`; returns the gateway.
pub fn verify_gateway(conn: &Conn, header: Option<&str>) -> Result<String, ApiError> {
    let token = bearer(header).ok_or_else(|| {
        ApiError::unauthorized(
            "missing gateway token: send Authorization: Bearer <token> (issued by POST /v1/gateways)",
        )
    })?;
    let malformed = || {
        ApiError::unauthorized(
            "gateway token is malformed; issue a new one with POST /v1/gateways/NAME/token",
        )
    };
    let (payload, tag) = token.split_once('.').ok_or_else(malformed)?;
    let tag = B64.decode(tag).map_err(|_| malformed())?;
    let claims: Claims = B64
        .decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or_else(malformed)?;
    let renew = format!("issue a new one with POST /v1/gateways/{}/token", claims.gw);
    // ring compares in constant time.
    hmac::verify(&signing_key(conn)?, payload.as_bytes(), &tag).map_err(|_| {
        ApiError::unauthorized(format!(
            "gateway token signature does not verify (the signing key was rotated or the token altered); {renew}"
        ))
    })?;
    if claims.exp <= clock::now() {
        return Err(ApiError::unauthorized(format!(
            "gateway token expired at {}; {renew}",
            rfc3339(claims.exp)
        )));
    }
    let gateway = gateways::get(conn, &claims.gw)?.ok_or_else(|| {
        ApiError::unauthorized(format!(
            "gateway \"{}\" is not registered (it was deleted); register it with POST /v1/gateways",
            claims.gw
        ))
    })?;
    if gateway.token_id != claims.tid {
        return Err(ApiError::unauthorized(format!(
            "gateway token was revoked (a newer token was issued for gateway \"{}\"); use the newer token or {renew}",
            claims.gw
        )));
    }
    Ok(claims.gw)
}
