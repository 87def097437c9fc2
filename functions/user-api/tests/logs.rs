//! No personal data in user-api's info-level logs: a whole profile lifecycle and rejected inputs,
//! with the production JSON log layer writing into a buffer. The only test in this binary, so no
//! other thread can spoil `tracing`'s callsite interest cache while it runs.

mod common;

use common::*;
use serde_json::{json, Value};

const OTHER: &str = "5d4c3b2a-1f0e-4a9b-8c7d-6e5f4a3b2c1d";

#[tokio::test]
async fn info_logs_carry_no_personal_data() {
    use tracing_subscriber::layer::SubscriberExt;
    let logs = telemetry::CapturedLogs::default();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(telemetry::JsonLogLayer::new("user-api", logs.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);

    let api = api();
    let secrets = ["Grace Brewster Hopper", "grace.private@example.com"];
    let body = json!({"name": secrets[0], "email": secrets[1]}).to_string();
    let created = call(
        &api,
        &custom("POST", "/users", Some(&body), Some(MEMBER), false),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let item = format!("/users/{MEMBER}");
    call(&api, &custom("GET", &item, None, Some(MEMBER), false)).await;
    // A rejected value must not be logged either: an invalid email, a taken one, bad JSON.
    let invalid = json!({"email": "not-an-email grace.private"}).to_string();
    call(
        &api,
        &custom("PATCH", &item, Some(&invalid), Some(MEMBER), false),
    )
    .await;
    call(
        &api,
        &custom("POST", "/users", Some(&body), Some(ADMIN), true),
    )
    .await;
    let broken = format!("{{\"name\": \"{}\"", secrets[0]);
    call(
        &api,
        &custom("POST", "/users", Some(&broken), Some(OTHER), false),
    )
    .await;
    // A failing dependency: the cause is logged (service, error code, request id), not its message,
    // which here quotes an address.
    api.store.faults.fail_next(
        "get",
        domain::PortError::Rejected(
            "dynamodb: ValidationException request-id=REQ-7 bad key grace.private@example.com"
                .into(),
        ),
    );
    let failed = call(&api, &custom("GET", &item, None, Some(MEMBER), false)).await;
    assert_eq!(failed.status, 500);
    api.store.faults.fail_next(
        "get",
        domain::PortError::Throttled("dynamodb: ThrottlingException request-id=REQ-8".into()),
    );
    let throttled = call(&api, &custom("GET", &item, None, Some(MEMBER), false)).await;
    assert_eq!(throttled.status, 503);
    call(&api, &custom("DELETE", &item, None, Some(MEMBER), false)).await;

    let text = logs.text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
        .collect();
    assert!(lines.len() >= 6, "each request logged: {text}");
    assert!(lines
        .iter()
        .all(|l| l["level"] == "INFO" || l["level"] == "WARN" || l["level"] == "ERROR"));
    let causes: Vec<(&str, &str, &str)> = lines
        .iter()
        .filter(|l| l["level"] == "ERROR")
        .map(|l| {
            (
                l["aws_service"].as_str().unwrap_or_default(),
                l["error_code"].as_str().unwrap_or_default(),
                l["aws_request_id"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        causes,
        [
            ("dynamodb", "ValidationException", "REQ-7"),
            ("dynamodb", "ThrottlingException", "REQ-8")
        ],
        "every 5xx logs its cause: {text}"
    );
    for secret in secrets
        .iter()
        .chain(&["Brewster", "grace.private", "not-an-email"])
    {
        assert!(
            !text.contains(secret),
            "{secret:?} leaked into logs: {text}"
        );
    }
}
