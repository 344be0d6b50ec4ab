//! `POST /v1/apis/import?name=&path=&backend=`: an OpenAPI 3 document
//! (JSON or YAML) becomes an API with one operation per path and method,
//! named by `operationId` (or method and path). Path templates are
//! converted to the gateway's: parameter names keep letters, digits and
//! '_' (`{pet-id}` becomes `{pet_id}`), and a segment mixing text and
//! parameters (`{name}.json`) matches as one parameter named after its
//! first (`{name}`), since the gateway matches whole segments.
//! Re-importing an existing API replaces its operations and keeps its
//! policies and key settings (operation policies stay with operations of
//! the same name).

use hyper::StatusCode;
use serde_json::Value;

use crate::{
    api::{AdminRequest, Answer},
    error::ApiError,
    model::{ApiDoc, MAX_NAME, OperationDoc, check_name},
    state::State,
    store::{Kind, resources},
};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

pub fn import(state: &State, req: &AdminRequest) -> Result<Answer, ApiError> {
    let param = |key: &str| {
        req.query(key).filter(|v| !v.is_empty()).ok_or_else(|| {
            ApiError::bad_request(format!(
                "missing ?{key}=; import with POST /v1/apis/import?name=NAME&path=/PREFIX&backend=URL"
            ))
        })
    };
    let (name, path, backend) = (param("name")?, param("path")?, param("backend")?);
    check_name("api", &name)?;
    let document: Value = serde_yaml::from_slice(&req.body).map_err(|e| {
        ApiError::bad_request(format!("OpenAPI document is neither JSON nor YAML: {e}"))
    })?;
    let operations = operations(&document)?;
    let mut api = ApiDoc {
        name: name.clone(),
        path,
        host: None,
        backend,
        subscription_required: true,
        subscription_key: None,
        policies: None,
        operations,
    };
    let created = state.write(|tx| {
        let old = resources::get(tx, Kind::Api, &name)?
            .and_then(|d| serde_json::from_value::<ApiDoc>(d).ok());
        if let Some(old) = &old {
            api.host = old.host.clone();
            api.subscription_required = old.subscription_required;
            api.subscription_key = old.subscription_key.clone();
            api.policies = old.policies.clone();
            for op in &mut api.operations {
                if let Some(o) = old.operations.iter().find(|o| o.name == op.name) {
                    op.policies = o.policies.clone();
                }
            }
        }
        let doc = serde_json::to_value(&api).expect("documents serialise");
        resources::put(tx, Kind::Api, &name, &doc)?;
        Ok(old.is_none())
    })?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Some(serde_json::to_value(&api).expect("documents serialise")),
    ))
}

/// The operations of an OpenAPI 3 document, in document order.
fn operations(document: &Value) -> Result<Vec<OperationDoc>, ApiError> {
    let version = document["openapi"].as_str().unwrap_or_default();
    if !version.starts_with("3.") {
        return Err(ApiError::bad_request(format!(
            "not an OpenAPI 3 document: \"openapi\" is {}; convert Swagger 2.0 documents to OpenAPI 3 first",
            document
                .get("openapi")
                .map_or("missing".to_string(), |v| v.to_string())
        )));
    }
    let paths = document["paths"].as_object().ok_or_else(|| {
        ApiError::bad_request("OpenAPI document has no \"paths\" object; nothing to import")
    })?;
    let mut out: Vec<OperationDoc> = Vec::new();
    for (url, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let base = op["operationId"]
                .as_str()
                .map(sanitise)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| sanitise(&format!("{method}{url}")));
            let mut name = base.clone();
            let mut n = 2;
            while out.iter().any(|o| o.name == name) {
                let suffix = format!("-{n}");
                name = format!("{}{suffix}", truncate(&base, MAX_NAME - suffix.len()));
                n += 1;
            }
            out.push(OperationDoc {
                name,
                method: method.to_ascii_uppercase(),
                url: convert_template(url),
                policies: None,
            });
        }
    }
    if out.is_empty() {
        return Err(ApiError::bad_request(
            "OpenAPI document has no operations under \"paths\"; nothing to import",
        ));
    }
    Ok(out)
}

/// An OpenAPI path template as a gateway URL template.
fn convert_template(path: &str) -> String {
    let segments: Vec<String> = path
        .split('/')
        .map(|segment| {
            let Some(open) = segment.find('{') else {
                return segment.to_string();
            };
            let name: String = segment[open + 1..]
                .chars()
                .take_while(|c| *c != '}')
                .map(|c| {
                    if c.is_alphanumeric() || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("{{{name}}}")
        })
        .collect();
    segments.join("/")
}

/// An operation name from free text: runs of other characters become one
/// '-', at most 64 characters.
fn sanitise(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    truncate(out.trim_matches('-'), MAX_NAME).to_string()
}

fn truncate(text: &str, max: usize) -> &str {
    &text[..text.len().min(max)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_from_yaml_paths() {
        let doc: Value = serde_yaml::from_str(
            "openapi: 3.0.3\npaths:\n  /pets/{petId}:\n    get: {operationId: showPetById}\n    delete: {}\n  /pets:\n    get: {operationId: 'list pets!'}\n",
        )
        .unwrap();
        let ops = operations(&doc).unwrap();
        let got: Vec<(&str, &str, &str)> = ops
            .iter()
            .map(|o| (o.name.as_str(), o.method.as_str(), o.url.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("showPetById", "GET", "/pets/{petId}"),
                ("delete-pets-petId", "DELETE", "/pets/{petId}"),
                ("list-pets", "GET", "/pets"),
            ]
        );
    }

    #[test]
    fn templates_become_whole_segment_parameters() {
        for (from, to) in [
            ("/pets/{petId}", "/pets/{petId}"),
            (
                "/users/{user-id}/files/{name}.json",
                "/users/{user_id}/files/{name}",
            ),
            ("/v{major}.{minor}/x", "/{major}/x"),
            ("/plain/", "/plain/"),
        ] {
            assert_eq!(convert_template(from), to, "{from}");
        }
    }

    #[test]
    fn swagger_2_is_refused() {
        let doc: Value = serde_json::json!({"swagger": "2.0", "paths": {}});
        let err = operations(&doc).unwrap_err();
        assert!(err.message.contains("not an OpenAPI 3"), "{}", err.message);
    }
}
