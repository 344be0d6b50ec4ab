//! What still refers to a resource: deleting it is refused with 409 naming
//! the referrer, so a delete never leaves a dangling name behind.

use serde_json::Value;

use crate::{
    error::ApiError,
    store::{Conn, Kind, gateways, resources},
};

/// Fails with 409 when something refers to `kind`/`name`.
pub fn check_unused(conn: &Conn, kind: Kind, name: &str) -> Result<(), ApiError> {
    if let Some(referrer) = referrer(conn, kind, name)? {
        return Err(ApiError::conflict(format!(
            "{} \"{name}\" is still used by {referrer}; remove it there first",
            kind.noun()
        )));
    }
    Ok(())
}

fn referrer(conn: &Conn, kind: Kind, name: &str) -> Result<Option<String>, ApiError> {
    let named = |kind: Kind, doc: &Value| {
        format!(
            "{} \"{}\"",
            kind.noun(),
            doc[kind.key()].as_str().unwrap_or_default()
        )
    };
    let lists = |doc: &Value, field: &str| {
        doc[field]
            .as_array()
            .is_some_and(|l| l.iter().any(|v| v.as_str() == Some(name)))
    };
    let scoped = |prefix: &str| -> Result<Option<String>, ApiError> {
        let scope = format!("{prefix}:{name}");
        Ok(resources::list(conn, Kind::Subscription)?
            .iter()
            .find(|s| s["scope"].as_str() == Some(scope.as_str()))
            .map(|s| named(Kind::Subscription, s)))
    };
    Ok(match kind {
        Kind::Api => {
            if let Some(p) = resources::list(conn, Kind::Product)?
                .iter()
                .find(|p| lists(p, "apis"))
            {
                Some(named(Kind::Product, p))
            } else if let Some(s) = scoped("api")? {
                Some(s)
            } else {
                gateways::list(conn)?
                    .into_iter()
                    .find(|g| g.apis.iter().any(|a| a == name))
                    .map(|g| format!("gateway \"{}\"", g.name))
            }
        }
        Kind::Product => scoped("product")?,
        Kind::Backend => resources::list(conn, Kind::Api)?
            .iter()
            .find(|a| a["backend"].as_str() == Some(name))
            .map(|a| named(Kind::Api, a)),
        Kind::DosProfile => gateways::list(conn)?
            .into_iter()
            .find(|g| g.dos_profile.as_deref() == Some(name))
            .map(|g| format!("gateway \"{}\"", g.name)),
        Kind::NamedValue => {
            let needle = format!("{{{{{name}}}}}");
            let mut found = None;
            for kind in [Kind::Policies, Kind::Api, Kind::Product] {
                if let Some(doc) = resources::list(conn, kind)?
                    .iter()
                    .find(|d| d.to_string().contains(&needle))
                {
                    found = Some(if kind == Kind::Policies {
                        "the global policies".to_string()
                    } else {
                        named(kind, doc)
                    });
                    break;
                }
            }
            found
        }
        Kind::Subscription | Kind::Policies | Kind::Redis => None,
        // An included fragment cannot go: the bundles it leaves refuse
        // (422 naming the include-fragment and its scope).
        Kind::Fragment => None,
    })
}
