//! No personal data in the logs at the most verbose level: a user's profile lifecycle and an order,
//! through the real SDK against the emulator, logged by the production log layer with
//! `AWS_LAMBDA_LOG_LEVEL=TRACE`. The only test in this binary, so no other thread can spoil
//! `tracing`'s callsite interest cache while it runs.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use integration_tests as h;
use integration_tests::fixtures::api_event;
use serde_json::{json, Value};
use settings::Env;
use tracing_subscriber::layer::SubscriberExt;

#[tokio::test]
async fn trace_level_logs_carry_no_personal_data() {
    let config = h::sdk_config().await;
    let users = h::create_users_table(&config).await;
    let api = user_api::Api::new(
        adapters::dynamo_users::DynamoUserStore::new(
            adapters::aws::dynamodb_client(&config),
            users,
        ),
        vec!["https://app.example.com".into()],
        "secret",
    );
    let resources = h::create_order_stack(&config).await;
    resources
        .store(&config)
        .set_stock("widget", 5)
        .await
        .unwrap();
    let processor = resources.processor(&config);

    let me = uuid::Uuid::new_v4().to_string();
    let name = "Katherine Coleman Johnson";
    let email = "katherine.private@example.com";
    let customer = "customer-secret-7781";
    let logs = telemetry::CapturedLogs::default();
    let env = Env::from_pairs(&[("AWS_LAMBDA_LOG_LEVEL", "TRACE")]);
    let subscriber = tracing_subscriber::registry().with(telemetry::log_layer(
        "suite",
        logs.clone(),
        &env,
        Arc::new(AtomicBool::new(false)),
    ));
    {
        let _guard = tracing::subscriber::set_default(subscriber);
        let body = json!({"name": name, "email": email}).to_string();
        let item = format!("/users/{me}");
        let invalid = json!({"email": format!("not-an-email {email}")}).to_string();
        for (method, path, body) in [
            ("POST", "/users", Some(body.as_str())),
            ("GET", item.as_str(), None),
            ("PATCH", item.as_str(), Some(invalid.as_str())),
            ("DELETE", item.as_str(), None),
        ] {
            let event = api_event(method, path, body, Some(&me), false);
            let request = lambda_http::request::from_str(&event.to_string()).unwrap();
            let status = user_api::handle(&api, request).await.status().as_u16();
            assert!(status < 500, "{method} {path}: {status}");
        }
        let mut order = aws_lambda_events::event::sqs::SqsMessage::default();
        order.message_id = Some("m-1".into());
        order.body = Some(
            json!({"order_id": "ord-debug", "user_id": customer,
                "items": [{"product_id": "widget", "quantity": 1}], "total_amount": "2.50"})
            .to_string(),
        );
        let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
        event.records.push(order);
        let failures = processor.handle_batch(event).await.batch_item_failures;
        assert!(failures.is_empty());
    }

    let text = logs.text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
        .collect();
    // The run really was verbose: both functions' debug lines are there (from the crate or one
    // of its modules).
    for target in ["user_api", "order_processor"] {
        let from_crate = |t: &str| t == target || t.starts_with(&format!("{target}::"));
        assert!(
            lines
                .iter()
                .any(|l| l["level"] == "DEBUG" && l["target"].as_str().is_some_and(from_crate)),
            "a DEBUG line from {target}: {text}"
        );
    }
    for secret in [
        name,
        "Coleman",
        email,
        "katherine.private",
        customer,
        "not-an-email",
    ] {
        assert!(
            !text.contains(secret),
            "{secret:?} leaked into logs: {text}"
        );
    }
}
