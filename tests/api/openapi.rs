//! `GET /openapi.json` against the routes and the parsers: every route of the table is in the
//! document and nothing else is; every action's documented example is accepted as written,
//! refused with 400 without any one of the fields its schema calls required (or with a field
//! it does not name), and accepted without any one it leaves optional.

use jobdeck::model::{AlertCall, Call, ErrorCall, JobCall, TaskCall};
use jobdeck::server::http::json_routes;
use jobdeck::server::http::openapi::action_doc;
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::*;

fn every_call() -> Vec<Call> {
    JobCall::ALL
        .into_iter()
        .map(Call::Job)
        .chain(TaskCall::ALL.into_iter().map(Call::Task))
        .chain(ErrorCall::ALL.into_iter().map(Call::Error))
        .chain(AlertCall::ALL.into_iter().map(Call::Alert))
        .collect()
}

#[sqlx::test]
async fn the_document_names_every_route_and_nothing_else(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    // Public: a client generator needs no token.
    let response = reqwest::get(app.url("/openapi.json")).await.unwrap();
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = document["paths"].as_object().unwrap();
    let routes = json_routes();
    let mut documented = 0;
    for route in routes.table() {
        let method = route.method.as_str().to_ascii_lowercase();
        let operation = &paths[route.path][&method];
        let summary = operation["summary"].as_str().unwrap_or_default();
        assert!(
            !summary.is_empty() && summary != "undocumented",
            "{method} {} is not documented",
            route.path
        );
        documented += 1;
    }
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        operations, documented,
        "the document has routes the portal does not"
    );
    // Each action is one branch of its route's request body.
    for call in every_call() {
        let body = &paths[call.route()]["post"]["requestBody"];
        let text = body.to_string();
        assert!(
            text.contains(&format!("\"const\":\"{}\"", call.name())),
            "{} missing from {}",
            call.name(),
            call.route()
        );
    }
}

#[sqlx::test]
async fn every_documented_example_is_accepted_and_every_required_field_is_required(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for call in every_call() {
        let doc = action_doc(call);
        let (status, body) = call_api(&app, call, doc.example.clone()).await;
        // The job named in an example need not exist: 404 and 409 come after the parse.
        assert!(
            (200..300).contains(&status) || [404, 409].contains(&status),
            "{}: its example was refused: {status} {body}",
            call.name()
        );
        // A field the schema does not name is refused.
        let mut unknown = doc.example.clone();
        unknown["no_such_field"] = Value::Bool(true);
        if doc.data["additionalProperties"] == Value::Bool(false) {
            let (status, body) = call_api(&app, call, unknown).await;
            assert_eq!(status, 400, "{} with an unknown field: {body}", call.name());
        }
        let required: Vec<String> = doc.data["required"]
            .as_array()
            .map(|r| r.iter().map(|f| f.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        for field in &required {
            let mut without = doc.example.clone();
            assert!(
                without.as_object_mut().unwrap().remove(field).is_some(),
                "{}: the example lacks required {field}",
                call.name()
            );
            let (status, body) = call_api(&app, call, without).await;
            assert_eq!(status, 400, "{} without {field}: {body}", call.name());
        }
        // And one the schema leaves optional may be left out.
        for field in doc.example.as_object().unwrap().keys() {
            if required.contains(field) {
                continue;
            }
            let mut without = doc.example.clone();
            without.as_object_mut().unwrap().remove(field);
            let (status, body) = call_api(&app, call, without).await;
            assert_ne!(
                status,
                400,
                "{} without optional {field}: {body}",
                call.name()
            );
        }
    }
}

async fn call_api(app: &TestApp, action: Call, data: Value) -> (u16, Value) {
    call(app, &app.client, action.route(), action.name(), data).await
}
