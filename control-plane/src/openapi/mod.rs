//! `POST /v1/apis/import?name=&path=[&backend=][&dry_run=true]`: an
//! OpenAPI 3.0 or 3.1 document (JSON or YAML) becomes an API with one
//! operation per method and route (`routes`), named by `operationId` (or
//! method and path). The backend is `?backend=`, else the document's first
//! server with its variables set to their defaults. The answer holds the
//! API and a report: operations in the document, imported, merged and
//! skipped, and a note (with its JSON pointer) for everything not taken as
//! it is. `dry_run=true` answers the same without writing.
//!
//! Parsing and planning (`prepare`) is CPU work on the document alone and
//! runs in the documents lane (`crate::state`); only `import` touches the
//! store. Re-importing an existing API replaces its operations and keeps
//! its policies and key settings (operation policies stay with operations
//! of the same name).

mod digest;
mod document;
mod routes;

use hyper::StatusCode;
use serde_json::{Value, json};

use self::document::{Document, Server};
use crate::{
    api::{Answer, http},
    error::ApiError,
    model::{ApiDoc, check_name},
    state::State,
    store::{Kind, resources},
};
use gateway_model::config::yaml;

/// An import, parsed and planned, ready to be written.
pub struct Prepared {
    api: ApiDoc,
    report: Value,
    dry_run: bool,
    /// The readable digest of the document (`digest`), kept for the docs
    /// pages.
    docs: Value,
}

/// Reads the query and the document, and plans the API: no store access.
pub fn prepare(query: Option<&str>, body: &[u8]) -> Result<Prepared, ApiError> {
    let param = |key: &str| http::query_param(query, key).filter(|v| !v.is_empty());
    let required = |key: &str| {
        param(key).ok_or_else(|| {
            ApiError::bad_request(format!(
                "missing ?{key}=; import with POST /v1/apis/import?name=NAME&path=/PREFIX[&backend=URL]"
            ))
        })
    };
    let (name, path) = (required("name")?, required("path")?);
    check_name("api", &name)?;
    let dry_run = match param("dry_run").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "dry_run={other:?}: use dry_run=true (report only) or dry_run=false"
            )));
        }
    };
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request(format!(
            "OpenAPI document: byte {} is not UTF-8; send the document as UTF-8 text",
            e.valid_up_to()
        ))
    })?;
    let (doc, format): (Document, _) = yaml::parse(text).map_err(|e| {
        let fix = if e.message.contains("; ") {
            ""
        } else {
            "; fix the document there"
        };
        ApiError::bad_request(format!("OpenAPI document ({}): {e}{fix}", e.format.name()))
    })?;
    let version = check_version(&doc)?;
    if doc.paths.is_none() {
        return Err(ApiError::bad_request(
            "OpenAPI document has no \"paths\" object; nothing to import (webhooks alone are requests the API sends)",
        ));
    }
    let plan = routes::plan(&doc);
    let mut notes = plan.notes;
    let (backend, backend_from) = match param("backend") {
        Some(url) => (url, "?backend=".to_string()),
        None => server_backend(doc.servers.as_deref().unwrap_or_default())?,
    };
    if let Some(servers) = &doc.servers
        && servers.len() > 1
    {
        notes.push(routes::Note {
            pointer: "/servers".into(),
            path: String::new(),
            method: None,
            note: format!(
                "{} more servers are not used: an API has one backend ({backend})",
                servers.len() - 1
            ),
        });
    }
    if let Some(hooks) = doc.webhooks.as_ref().filter(|h| !h.0.is_empty()) {
        notes.push(routes::Note {
            pointer: "/webhooks".into(),
            path: String::new(),
            method: None,
            note: format!(
                "{} webhooks are not imported: they are requests the API sends, not routes",
                hooks.0.len()
            ),
        });
    }
    let secured = doc.security.is_some()
        || doc
            .components
            .as_ref()
            .and_then(|c| c.security_schemes.as_ref())
            .is_some_and(|s| !s.0.is_empty());
    if secured {
        notes.push(routes::Note {
            pointer: "/components/securitySchemes".into(),
            path: String::new(),
            method: None,
            note: "security schemes are not imported: the API requires a subscription key (subscription_required) unless changed; add validate-jwt or check-header policies for the document's schemes".into(),
        });
    }
    if plan.operations.is_empty() {
        let first = notes.first().map_or(String::new(), |n| {
            format!(" (at {}: {})", n.pointer, n.note)
        });
        return Err(ApiError::bad_request(format!(
            "OpenAPI document has no operations under \"paths\" that the gateway can route; nothing to import{first}"
        )));
    }
    let report = json!({
        "format": format.name(),
        "openapi": version,
        "operations": {
            "in_document": plan.in_document,
            "imported": plan.operations.len(),
            "merged": plan.merged,
            "skipped": plan.skipped,
        },
        "backend": {"url": backend, "from": backend_from},
        "notes": notes,
    });
    let api = ApiDoc {
        name,
        path,
        host: None,
        backend,
        subscription_required: true,
        subscription_key: None,
        policies: None,
        operations: plan.operations,
        websocket: false,
        encoded_slashes: None,
    };
    let docs = if dry_run {
        Value::Null
    } else {
        digest::of(text)
    };
    Ok(Prepared {
        api,
        report,
        dry_run,
        docs,
    })
}

/// The operations of an OpenAPI 3.0 or 3.1 document (JSON or YAML), as
/// `POST /v1/apis/import` plans them: the APIOps import's specifications.
pub fn operations_of(text: &str) -> Result<Vec<crate::model::OperationDoc>, String> {
    let (doc, _): (Document, _) =
        yaml::parse(text).map_err(|e| format!("OpenAPI document ({}): {e}", e.format.name()))?;
    check_version(&doc).map_err(|e| e.message)?;
    let plan = routes::plan(&doc);
    if plan.operations.is_empty() {
        return Err(
            "the OpenAPI document has no operations under \"paths\" that the gateway can route"
                .into(),
        );
    }
    Ok(plan.operations)
}

/// The OpenAPI version, when it is one the import reads (3.0 or 3.1).
fn check_version(doc: &Document) -> Result<String, ApiError> {
    if let Some(swagger) = &doc.swagger {
        return Err(ApiError::bad_request(format!(
            "Swagger {} documents are not imported: convert the document to OpenAPI 3 first (e.g. with swagger2openapi or the Swagger Editor) and import the result",
            swagger.0
        )));
    }
    let version = doc.openapi.as_ref().map(|v| v.0.clone()).ok_or_else(|| {
        ApiError::bad_request(
            "not an OpenAPI 3 document: the \"openapi\" field (e.g. \"3.1.0\") is missing at the top level",
        )
    })?;
    if version.starts_with("3.0") || version.starts_with("3.1") {
        Ok(version)
    } else {
        Err(ApiError::bad_request(format!(
            "not an OpenAPI 3 document: \"openapi\" is \"{version}\"; the import reads OpenAPI 3.0 and 3.1"
        )))
    }
}

/// The backend from the document's first server, its variables set to
/// their defaults; relative URLs need `?backend=`.
fn server_backend(servers: &[Server]) -> Result<(String, String), ApiError> {
    let missing =
        |why: String| ApiError::bad_request(format!("{why}; give the backend with ?backend=URL"));
    let Some(server) = servers.first() else {
        return Err(missing("the document names no servers".into()));
    };
    let mut url = server.url.clone();
    for (name, variable) in server.variables.iter().flat_map(|v| &v.0) {
        let default = variable.default.as_ref().ok_or_else(|| {
            missing(format!(
                "at /servers/0/variables/{}: server variable \"{name}\" has no default",
                routes::escape(name)
            ))
        })?;
        url = url.replace(&format!("{{{name}}}"), &default.0);
    }
    if url.contains('{') {
        return Err(missing(format!(
            "at /servers/0/url: \"{url}\" has a variable the server does not define"
        )));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(missing(format!(
            "at /servers/0/url: \"{url}\" is relative to where the document is served"
        )));
    }
    Ok((url, "servers[0]".into()))
}

/// Writes a prepared import (unless it is a dry run): 201 created, 200
/// replaced (or dry run), with the API and the report.
pub fn import(state: &State, prepared: Prepared) -> Result<Answer, ApiError> {
    let Prepared {
        mut api,
        report,
        dry_run,
        docs,
    } = prepared;
    let name = api.name.clone();
    let keep_settings = |old: &ApiDoc, api: &mut ApiDoc| {
        api.host = old.host.clone();
        api.subscription_required = old.subscription_required;
        api.subscription_key = old.subscription_key.clone();
        api.policies = old.policies.clone();
        for op in &mut api.operations {
            if let Some(o) = old.operations.iter().find(|o| o.name == op.name) {
                op.policies = o.policies.clone();
            }
        }
    };
    let stored = |doc: Option<Value>| doc.and_then(|d| serde_json::from_value::<ApiDoc>(d).ok());
    let created = if dry_run {
        let old = state.store.read(|c| resources::get(c, Kind::Api, &name))?;
        if let Some(old) = stored(old) {
            keep_settings(&old, &mut api);
        }
        false
    } else {
        state.write(|tx| {
            let old = stored(resources::get(tx, Kind::Api, &name)?);
            if let Some(old) = &old {
                keep_settings(old, &mut api);
            }
            let doc = serde_json::to_value(&api).expect("documents serialise");
            resources::put(tx, Kind::Api, &name, &doc)?;
            crate::web::docs::put(tx, &name, &docs)?;
            Ok(old.is_none())
        })?
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Some(json!({
            "api": api,
            "report": report,
            "dry_run": dry_run,
        })),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(query: &str, doc: &str) -> Result<Prepared, ApiError> {
        prepare(Some(query), doc.as_bytes())
    }

    #[test]
    fn versions_other_than_3_0_and_3_1_are_refused() {
        for (doc, want) in [
            (
                "swagger: '2.0'\npaths: {}\n",
                "Swagger 2.0 documents are not imported",
            ),
            ("{\"swagger\": \"2.0\", \"paths\": {}}", "Swagger 2.0"),
            ("info: {}\npaths: {}\n", "\"openapi\" field"),
            ("openapi: 2.5\npaths: {}\n", "\"2.5\""),
        ] {
            let err = prepared("name=a&path=/a&backend=http://b", doc)
                .err()
                .unwrap();
            assert!(err.message.contains(want), "{doc}: {}", err.message);
        }
    }

    #[test]
    fn unused_numbers_of_any_size_are_skipped() {
        for doc in [
            "openapi: 3.1.0\npaths:\n  /a:\n    get:\n      parameters: [{schema: {minimum: -9223372036854776000, maximum: 1e400, x: 123456789012345678901234567890}}]\n",
            r#"{"openapi": "3.1.0", "paths": {"/a": {"get": {"parameters": [{"schema": {"minimum": -9223372036854776000, "maximum": 1e400, "x": 123456789012345678901234567890}}]}}}}"#,
        ] {
            let p = prepared("name=a&path=/a&backend=http://b", doc).unwrap();
            assert_eq!(p.api.operations.len(), 1, "{doc}");
        }
    }

    #[test]
    fn backend_from_servers_with_variables() {
        let doc = "openapi: 3.0.0\nservers:\n  - url: 'https://{endpoint}/openai/{v}'\n    variables:\n      endpoint: {default: api.example.com}\n      v: {default: v1, enum: [v1, v2]}\n  - url: https://other\npaths:\n  /a: {get: {}}\n";
        let p = prepared("name=a&path=/a", doc).unwrap();
        assert_eq!(p.api.backend, "https://api.example.com/openai/v1");
        assert_eq!(p.report["backend"]["from"], "servers[0]");
        assert!(
            p.report["notes"][0]["note"]
                .as_str()
                .unwrap()
                .contains("1 more servers")
        );
        // ?backend= wins.
        let p = prepared("name=a&path=/a&backend=http://127.0.0.1:1", doc).unwrap();
        assert_eq!(p.api.backend, "http://127.0.0.1:1");
        for (servers, want) in [
            ("", "names no servers"),
            ("servers: [{url: /v1}]\n", "relative"),
            ("servers: [{url: 'https://{x}/'}]\n", "does not define"),
            (
                "servers: [{url: 'https://{x}/', variables: {x: {}}}]\n",
                "has no default",
            ),
        ] {
            let doc = format!("openapi: 3.0.0\n{servers}paths:\n  /a: {{get: {{}}}}\n");
            let err = prepared("name=a&path=/a", &doc).err().unwrap();
            assert!(err.message.contains(want), "{servers}: {}", err.message);
            assert!(err.message.contains("?backend="), "{}", err.message);
        }
    }
}
