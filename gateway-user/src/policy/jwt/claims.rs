//! The claims a token must carry: every configured constraint requires its
//! claim to be present and to match (a token without `aud` is not "for any
//! audience" when audiences are configured). The signature library checks
//! signatures only; all claim checks are here, in one place.

use serde_json::{Map, Value};

/// What `validate-jwt` requires of a token's claims.
#[derive(Debug, Default)]
pub struct Constraints {
    /// Accepted `iss` values; when not empty, `iss` is required.
    pub issuers: Vec<String>,
    /// Accepted `aud` values; when not empty, `aud` (a string or an array
    /// of strings) is required and must hold one of them.
    pub audiences: Vec<String>,
    /// Claims that must be present (not null), with one of the values when
    /// values are given.
    pub required: Vec<(String, Vec<String>)>,
    /// Accepted client applications (Entra ID): when not empty, `azp`
    /// (v2 tokens) or else `appid` (v1) is required and must be one.
    pub client_applications: Vec<String>,
    /// Whether `exp` is required.
    pub require_exp: bool,
    /// Seconds of tolerance on `exp` and `nbf`.
    pub skew: u64,
}

impl Constraints {
    /// Checks `claims` at `now` (seconds since the Unix epoch); the error
    /// says which claim failed and why (logged, never sent to the client).
    pub fn check(&self, claims: &Map<String, Value>, now: u64) -> Result<(), String> {
        let (now, skew) = (now as f64, self.skew as f64);
        match time(claims, "exp")? {
            Some(exp) if now >= exp + skew => return Err("token expired (exp)".into()),
            None if self.require_exp => return Err("claim exp missing".into()),
            _ => {}
        }
        if let Some(nbf) = time(claims, "nbf")?
            && now + skew < nbf
        {
            return Err("token not valid yet (nbf)".into());
        }
        if !self.issuers.is_empty() {
            match claims.get("iss") {
                None | Some(Value::Null) => return Err("claim iss missing".into()),
                Some(Value::String(iss)) if self.issuers.contains(iss) => {}
                Some(other) => return Err(format!("issuer {other} not accepted")),
            }
        }
        if !self.audiences.is_empty() {
            let audiences: Vec<&str> = match claims.get("aud") {
                None | Some(Value::Null) => return Err("claim aud missing".into()),
                Some(Value::String(aud)) => vec![aud],
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| i.as_str().ok_or("claim aud: not an array of strings"))
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err("claim aud: not a string or an array of strings".into()),
            };
            if !audiences
                .iter()
                .any(|a| self.audiences.iter().any(|w| w == a))
            {
                return Err("no accepted audience in aud".into());
            }
        }
        if !self.client_applications.is_empty() {
            let client = ["azp", "appid"]
                .iter()
                .find_map(|c| claims.get(*c).filter(|v| !v.is_null()));
            match client {
                None => return Err("claim azp (or appid) missing".into()),
                Some(Value::String(id)) if self.client_applications.contains(id) => {}
                Some(other) => return Err(format!("client application {other} not accepted")),
            }
        }
        for (name, values) in &self.required {
            let claim = match claims.get(name) {
                None | Some(Value::Null) => return Err(format!("claim {name} missing")),
                Some(c) => c,
            };
            if !values.is_empty() && !values.iter().any(|want| holds(claim, want)) {
                return Err(format!("claim {name} has none of the required values"));
            }
        }
        Ok(())
    }
}

/// A NumericDate claim (`exp`, `nbf`): absent, or a number of seconds.
fn time(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, String> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("claim {name}: not a number of seconds")),
    }
}

/// Whether `claim` holds `want`: equal, one of a space-separated list
/// (`scope: "read write"`), one of an array, or an equal number or boolean.
fn holds(claim: &Value, want: &str) -> bool {
    match claim {
        Value::String(s) => s == want || s.split(' ').any(|p| p == want),
        Value::Array(items) => items.iter().any(|i| i.as_str() == Some(want)),
        other => want.parse::<Value>().is_ok_and(|w| w == *other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;

    fn constraints() -> Constraints {
        Constraints {
            issuers: vec!["iss1".into(), "iss2".into()],
            audiences: vec!["api1".into()],
            required: vec![
                ("scope".into(), vec!["read".into()]),
                ("sub".into(), vec![]),
            ],
            client_applications: vec!["app1".into()],
            require_exp: true,
            skew: 5,
        }
    }

    fn good() -> Value {
        json!({"iss": "iss1", "aud": "api1", "scope": "read write", "sub": "u1", "azp": "app1", "exp": NOW + 60})
    }

    /// Every constrained claim × absent, wrong, right.
    #[test]
    fn every_constraint_requires_its_claim() {
        let c = constraints();
        let n = NOW as i64;
        #[rustfmt::skip]
        let table: &[(&str, Option<Value>, bool)] = &[
            ("iss", None, false),
            ("iss", Some(Value::Null), false),
            ("iss", Some(json!("other")), false),
            ("iss", Some(json!(["iss1"])), false),
            ("iss", Some(json!("iss2")), true),
            ("aud", None, false),
            ("aud", Some(json!("other")), false),
            ("aud", Some(json!([])), false),
            ("aud", Some(json!(["other", 1])), false),
            ("aud", Some(json!(7)), false),
            ("aud", Some(json!(["other", "api1"])), true),
            ("aud", Some(json!("api1")), true),
            ("scope", None, false),
            ("scope", Some(json!("write")), false),
            ("scope", Some(json!(["read"])), true),
            ("sub", None, false),
            ("sub", Some(Value::Null), false),
            ("sub", Some(json!("anyone")), true),
            ("exp", None, false),
            ("exp", Some(json!("tomorrow")), false),
            ("exp", Some(json!(n - 30)), false),
            ("exp", Some(json!(n - 5)), false),
            ("exp", Some(json!(n - 2)), true),
            ("exp", Some(json!(NOW as f64 + 0.5)), true),
            ("nbf", None, true),
            ("nbf", Some(json!("now")), false),
            ("nbf", Some(json!(n + 60)), false),
            ("nbf", Some(json!(n + 3)), true),
            ("azp", None, false),
            ("azp", Some(Value::Null), false),
            ("azp", Some(json!("other")), false),
            ("azp", Some(json!(["app1"])), false),
            ("azp", Some(json!("app1")), true),
        ];
        for (claim, value, ok) in table {
            let mut claims = good();
            match value {
                None => {
                    claims.as_object_mut().unwrap().remove(*claim);
                }
                Some(v) => claims[claim] = v.clone(),
            }
            let result = c.check(claims.as_object().unwrap(), NOW);
            assert_eq!(result.is_ok(), *ok, "{claim} = {value:?}: {result:?}");
        }
        // A v1 token names its client in appid.
        let mut v1 = good();
        v1.as_object_mut().unwrap().remove("azp");
        v1["appid"] = json!("app1");
        assert_eq!(c.check(v1.as_object().unwrap(), NOW), Ok(()));
        v1["appid"] = json!("app2");
        assert!(c.check(v1.as_object().unwrap(), NOW).is_err());
    }

    #[test]
    fn unconstrained_claims_are_optional() {
        let none = Constraints::default();
        assert_eq!(none.check(&Map::new(), NOW), Ok(()));
        let claims = json!({"iss": 1, "aud": {"x": 1}, "exp": NOW + 1});
        assert_eq!(none.check(claims.as_object().unwrap(), NOW), Ok(()));
        // Present but malformed or past: refused even when not required.
        for bad in [json!({"exp": "x"}), json!({"exp": NOW - 1})] {
            assert!(none.check(bad.as_object().unwrap(), NOW).is_err(), "{bad}");
        }
    }
}
