//! The OpenAPI document (`vmm/src/api/openapi.json`) against the server: the document's paths
//! and methods are exactly the server's routes; every operation, called on a running VM,
//! answers a documented status whose body matches the documented schema (checked by a small
//! JSON-schema validator below); documented 400s answer 400 with the Error schema; methods
//! the document does not list answer 405 and paths it does not list answer 404.
//! (The 409 and 500 answers need a stopped VM or a failing disk and are covered by
//! `api::action`'s unit tests.)

mod api_util;

use std::collections::BTreeSet;
use std::path::Path;

use api_util::*;
use serde_json::Value;

const DOC: &str = include_str!("../src/api/openapi.json");

/// Follows a `$ref` into `components`.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").expect("local ref");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_u64() || v.is_i64(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        other => panic!("schema type {other} not handled"),
    }
}

/// Checks `v` against `schema`; the errors name where.
fn validate(doc: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let s = resolve(doc, schema);
    let types: Vec<&str> = match &s["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() && !types.iter().any(|t| type_ok(t, v)) {
        errors.push(format!("{at}: {v} is not {types:?}"));
        return;
    }
    if let Some(options) = s["enum"].as_array().filter(|_| !v.is_null())
        && !options.contains(v)
    {
        errors.push(format!("{at}: {v} not in {options:?}"));
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        errors.push(format!("{at}: {v} is not {c}"));
    }
    if let (Some(min), Some(n)) = (s["minimum"].as_i64(), v.as_i64())
        && n < min
    {
        errors.push(format!("{at}: {n} < {min}"));
    }
    if let Value::Object(map) = v {
        for req in s["required"].as_array().into_iter().flatten() {
            if !map.contains_key(req.as_str().unwrap()) {
                errors.push(format!("{at}: missing {req}"));
            }
        }
        let props = s["properties"].as_object();
        for (k, val) in map {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => validate(doc, ps, val, &format!("{at}.{k}"), errors),
                None if s["additionalProperties"] == Value::Bool(false) || props.is_some() => {
                    errors.push(format!("{at}: undocumented field {k}"));
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (v, s.get("items")) {
        for (i, item) in items.iter().enumerate() {
            validate(doc, item_schema, item, &format!("{at}[{i}]"), errors);
        }
    }
}

/// Calls `method path` and checks the answer against the document's `responses`.
fn check(
    doc: &Value,
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&str>,
    want: u16,
) -> Value {
    let r = client::request(socket, method, path, body).unwrap();
    assert_eq!(r.status, want, "{method} {path}: {}", r.body);
    let op = &doc["paths"][path][method.to_lowercase()];
    let resp = &op["responses"][want.to_string()];
    assert!(
        resp.is_object(),
        "{method} {path} answered {want}, which the document does not list"
    );
    let content = resp["content"].as_object().expect("documented content");
    let (ctype, media) = content.iter().next().unwrap();
    assert!(
        r.content_type.starts_with(ctype.split(';').next().unwrap()),
        "{method} {path}: {} vs {ctype}",
        r.content_type
    );
    if ctype != "application/json" {
        return Value::String(r.body);
    }
    let v: Value = serde_json::from_str(&r.body).unwrap();
    let mut errors = Vec::new();
    validate(
        doc,
        &media["schema"],
        &v,
        &format!("{method} {path}"),
        &mut errors,
    );
    assert!(errors.is_empty(), "{errors:#?}\n{v}");
    v
}

#[test]
fn the_document_lists_exactly_the_servers_routes() {
    let doc: Value = serde_json::from_str(DOC).unwrap();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (p.clone(), m.to_uppercase()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = kvmpager_vmm::api::http::ROUTES
        .iter()
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
    assert_eq!(documented, served);
    assert_eq!(
        doc["info"]["version"],
        kvmpager_vmm::api::wire::API_VERSION.to_string()
    );
}

#[test]
fn every_documented_operation_answers_as_documented() {
    if skip_without_kvm() {
        return;
    }
    let doc: Value = serde_json::from_str(DOC).unwrap();
    let dir = TempDir::new("openapi");
    let socket = dir.join("vm.sock");
    let snap = dir.join("snap");
    let args = [
        "run",
        "--guest",
        "embedded:ticker",
        "--vcpus",
        "4",
        "--timeout",
        "60",
        "--snapshot-dir",
        snap.to_str().unwrap(),
    ];
    let vm = start(&args, &socket);
    let s = socket.as_path();
    for path in ["/vm", "/stats", "/pagers", "/metrics"] {
        check(&doc, s, "GET", path, None, 200);
    }
    assert_eq!(
        check(&doc, s, "PUT", "/vm/pause", None, 200)["state"],
        "paused"
    );
    let other = dir.join("other");
    let body = format!(r#"{{"path": "{}", "then": "continue"}}"#, other.display());
    check(&doc, s, "PUT", "/snapshot", Some(&body), 200);
    check(&doc, s, "PUT", "/snapshot", None, 200);
    assert!(snap.join("meta.json").exists() && other.join("meta.json").exists());
    assert_eq!(
        check(&doc, s, "PUT", "/vm/resume", Some("{}"), 200)["state"],
        "running"
    );

    // Documented 400s: a body that is not JSON.
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if op["responses"]["400"].is_object() {
                check(&doc, s, &method.to_uppercase(), path, Some("{\"oops"), 400);
            }
        }
    }
    // Methods the document does not list: 405 with Allow; paths it does not list: 404.
    let error_schema = serde_json::json!({"$ref": "#/components/schemas/Error"});
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
            if ops.get(method.to_lowercase()).is_none() {
                let r = client::request(s, method, path, None).unwrap();
                assert_eq!(r.status, 405, "{method} {path}");
                let mut errors = Vec::new();
                validate(
                    &doc,
                    &error_schema,
                    &serde_json::from_str(&r.body).unwrap(),
                    path,
                    &mut errors,
                );
                assert!(errors.is_empty(), "{errors:?}");
            }
        }
    }
    for path in [
        "/",
        "/vm/",
        "/vms",
        "/VM",
        "/snapshots",
        "/metrics/x",
        "/vm/pause/now",
        "/openapi.json",
    ] {
        let r = client::request(s, "GET", path, None).unwrap();
        assert_eq!(r.status, 404, "{path}");
        assert!(serde_json::from_str::<Value>(&r.body).unwrap()["error"].is_string());
    }
    assert_eq!(
        check(&doc, s, "PUT", "/vm/stop", None, 200)["state"],
        "stopped"
    );
    assert_eq!(vm.finish().0, Some(0));
}
