//! OpenAPI 3 import through the real `edgegw-cp`: YAML and JSON documents
//! become APIs with their operations, which reach a gateway's bundle;
//! re-import keeps policies; bad documents change nothing.

use edgegw_tests::{
    cp::{ControlPlane, Store},
    process::TempDir,
};
use serde_json::{Value, json};

edgegw_tests::on_both_stores!(
    yaml_and_json_documents_become_apis_with_operations,
    bad_documents_are_refused_and_change_nothing
);

const PETSTORE_YAML: &str = r#"openapi: 3.0.3
info: {title: Petstore, version: "1.0"}
paths:
  /pets:
    get:
      operationId: listPets
    post:
      operationId: createPets
  /pets/{petId}:
    get:
      operationId: showPetById
      parameters:
        - {name: petId, in: path, required: true, schema: {type: string}}
    delete: {}
"#;

fn import(cp: &ControlPlane, query: &str, body: &str) -> (u16, Value) {
    let answer = cp.request(
        "POST",
        &format!("/v1/apis/import?{query}"),
        Some(&cp.admin_token),
        &[],
        Some(body.as_bytes()),
    );
    (
        answer.status,
        serde_json::from_str(&answer.body).unwrap_or(Value::Null),
    )
}

fn ops(api: &Value) -> Vec<(String, String, String)> {
    api["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_string(),
                o["method"].as_str().unwrap().to_string(),
                o["url"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn yaml_and_json_documents_become_apis_with_operations(store: Store) {
    let tmp = TempDir::new("cpimp");
    let cp = ControlPlane::launch(store, &tmp.0, &[]);
    let (status, api) = import(
        &cp,
        "name=petstore&path=%2Fpets-api&backend=http%3A%2F%2F127.0.0.1%3A9000",
        PETSTORE_YAML,
    );
    assert_eq!(status, 201, "{api}");
    let api = &api["api"];
    let want = [
        ("listPets", "GET", "/pets"),
        ("createPets", "POST", "/pets"),
        ("showPetById", "GET", "/pets/{petId}"),
        ("delete-pets-petId", "DELETE", "/pets/{petId}"),
    ]
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
    assert_eq!(ops(api), want);
    let (_, stored) = cp.admin("GET", "/v1/apis/petstore", None);
    assert_eq!(stored["path"], "/pets-api");
    assert_eq!(ops(&stored), want);

    // The same document as JSON.
    let doc: Value = serde_json::json!({
        "openapi": "3.1.0",
        "paths": {
            "/users/{id}": {"get": {"operationId": "get user!"}, "put": {}},
            "/users/{user-id}/files/{name}.json": {"get": {"operationId": "getFile"}}
        }
    });
    let (status, users) = import(
        &cp,
        "name=users&path=/users&backend=http://127.0.0.1:9001",
        &doc.to_string(),
    );
    assert_eq!(status, 201, "{users}");
    assert_eq!(
        ops(&users["api"]),
        [
            (
                "get-user".to_string(),
                "GET".to_string(),
                "/users/{id}".to_string()
            ),
            (
                "put-users-id".to_string(),
                "PUT".to_string(),
                "/users/{id}".to_string()
            ),
            // Converted to whole-segment parameters the gateway routes.
            (
                "getFile".to_string(),
                "GET".to_string(),
                "/users/{user_id}/files/{name}".to_string()
            ),
        ]
    );

    // Served to a gateway it is assigned to.
    let (status, gw) = cp.admin(
        "POST",
        "/v1/gateways",
        Some(&json!({"name": "g", "apis": ["petstore"]})),
    );
    assert_eq!(status, 201, "{gw}");
    let bundle = cp
        .gateway(
            gw["token"].as_str().unwrap(),
            "GET",
            "/v1/gateway/config",
            &[],
            None,
        )
        .json();
    assert_eq!(bundle["apis"][0]["name"], "petstore");
    assert_eq!(bundle["apis"][0]["operations"].as_array().unwrap().len(), 4);

    // Policies added afterwards survive a re-import of a changed document.
    let mut with_policy = stored.clone();
    with_policy["operations"][2]["policies"] =
        json!({"inbound": [{"rewrite-uri": {"template": "/v2/pets/{petId}"}}]});
    assert_eq!(
        cp.admin("PUT", "/v1/apis/petstore", Some(&with_policy)).0,
        200
    );
    let (status, again) = import(
        &cp,
        "name=petstore&path=/pets-api&backend=http://127.0.0.1:9000",
        &PETSTORE_YAML.replace("    delete: {}\n", ""),
    );
    assert_eq!(status, 200, "{again}");
    let again = &again["api"];
    assert_eq!(again["operations"].as_array().unwrap().len(), 3);
    assert_eq!(
        again["operations"][2]["policies"]["inbound"][0]["rewrite-uri"]["template"],
        "/v2/pets/{petId}"
    );
}

fn bad_documents_are_refused_and_change_nothing(store: Store) {
    let tmp = TempDir::new("cpimpbad");
    let cp = ControlPlane::launch(store, &tmp.0, &[]);
    let q = "name=p&path=/p&backend=http://127.0.0.1:9000";
    for (query, body, want) in [
        (
            q,
            "swagger: '2.0'\npaths: {}\n",
            "Swagger 2.0 documents are not imported: convert",
        ),
        (q, "openapi: 3.0.0\ninfo: {}\n", "no \"paths\" object"),
        (q, "openapi: 3.0.0\npaths: {}\n", "no operations"),
        (
            q,
            "openapi: [3.0\n  paths",
            "OpenAPI document (YAML): line 1 column ",
        ),
        (
            q,
            "{\"openapi\": \"3.0.0\",\n \"paths\": {,}}",
            "OpenAPI document (JSON): line 2 column 12: ",
        ),
        (
            "path=/p&backend=http://x",
            "openapi: 3.0.0\npaths: {}\n",
            "missing ?name=",
        ),
        (
            "name=p%20q&path=/p&backend=http://x",
            PETSTORE_YAML,
            "api name \"p q\" is not allowed",
        ),
        // The gateway's own validation: a path must start with '/'.
        (
            "name=p&path=p&backend=http://127.0.0.1:9000",
            PETSTORE_YAML,
            "must start with '/'",
        ),
        // A template the gateway cannot route.
        (
            q,
            "openapi: 3.0.0\npaths:\n  /a/*/b:\n    get: {}\n",
            "url template",
        ),
    ] {
        let (status, body) = import(&cp, query, body);
        assert!(status == 400 || status == 422, "{query}: {status} {body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(want), "want {want:?}: {message}");
        assert!(!message.contains('\n'), "{message}");
    }
    assert_eq!(cp.admin("GET", "/v1/apis", None).1, json!([]));
}
