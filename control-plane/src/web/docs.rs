//! API docs: the digest of an API's imported OpenAPI document
//! (`openapi::digest`), or for an API written by hand, its operations.

use serde_json::{Value, json};

use crate::{
    error::ApiError,
    store::{Conn, DbError, Kind, resources},
};

/// Keeps the digest of `api`'s imported document (replacing any).
pub fn put(conn: &Conn, api: &str, digest: &Value) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO api_docs (api, body) VALUES (?1, ?2)
         ON CONFLICT (api) DO UPDATE SET body = excluded.body",
        &[api.into(), (&digest.to_string()).into()],
    )?;
    Ok(())
}

/// The docs of API `name`: `{api, path, title, version, description,
/// operations: [{method, path, operation, summary, description}]}`.
pub fn get(conn: &Conn, name: &str) -> Result<Value, ApiError> {
    let api = resources::get(conn, Kind::Api, name)?
        .ok_or_else(|| ApiError::not_found(format!("api \"{name}\" does not exist")))?;
    let digest = conn
        .query_opt("SELECT body FROM api_docs WHERE api = ?1", &[name.into()])?
        .map(|r| r.text(0))
        .transpose()?
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .filter(|d| d["operations"].as_array().is_some_and(|o| !o.is_empty()));
    let mut docs = match digest {
        Some(d) => d,
        None => {
            let operations: Vec<Value> = api["operations"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|o| {
                    json!({
                        "method": o["method"],
                        "path": o["url"],
                        "operation": o["name"],
                        "summary": null,
                        "description": null,
                    })
                })
                .collect();
            json!({"title": null, "version": null, "description": null, "operations": operations})
        }
    };
    docs["api"] = json!(name);
    docs["path"] = api["path"].clone();
    Ok(docs)
}

/// Forgets the docs of a deleted API.
pub fn delete(conn: &Conn, api: &str) -> Result<(), DbError> {
    conn.execute("DELETE FROM api_docs WHERE api = ?1", &[api.into()])?;
    Ok(())
}
