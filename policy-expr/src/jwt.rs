//! `AsJwt()` / `TryParseJwt()`: a token decoded, not verified — as in
//! APIM, where `validate-jwt` is what checks signatures.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Map, Value as Json};
use time::OffsetDateTime;

#[derive(Debug, PartialEq)]
pub struct Jwt {
    pub header: Map<String, Json>,
    pub claims: Map<String, Json>,
}

impl Jwt {
    /// The token in `text`, which may carry a `Bearer ` scheme; `None`
    /// when it is not a JWT.
    pub fn decode(text: &str) -> Option<Jwt> {
        let text = text.trim();
        let token = match text.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => text[7..].trim_start(),
            _ => text,
        };
        let mut parts = token.split('.');
        let (header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let object = |part: &str| -> Option<Map<String, Json>> {
            let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
            match serde_json::from_slice(&bytes).ok()? {
                Json::Object(m) => Some(m),
                _ => None,
            }
        };
        Some(Jwt {
            header: object(header)?,
            claims: object(payload)?,
        })
    }

    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name)?.as_str()
    }

    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name)?.as_str()
    }

    /// A claim's values as `Claims[name]` shows them: an array's items,
    /// else the one value, as text.
    pub fn claim_values(&self, name: &str) -> Option<Vec<String>> {
        Some(match self.claims.get(name)? {
            Json::Array(items) => items.iter().map(text).collect(),
            other => vec![text(other)],
        })
    }

    /// `aud` as a list.
    pub fn audiences(&self) -> Vec<String> {
        self.claim_values("aud").unwrap_or_default()
    }

    /// A NumericDate claim (`exp`, `nbf`, `iat`) as a date.
    pub fn date(&self, name: &str) -> Option<OffsetDateTime> {
        let secs = self.claims.get(name)?.as_f64()?;
        OffsetDateTime::from_unix_timestamp_nanos((secs * 1e9) as i128).ok()
    }
}

fn text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}
