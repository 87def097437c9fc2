//! Fault injection against the emulator: a proxy in front of moto refuses connections, hangs
//! (accepts, never answers: a stopped process) or throttles with each service's own error. The
//! functions must answer within their configured timeouts, report exactly what failed, and finish
//! the work once the dependency recovers, with no effect applied twice and no partial output.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use adapters::config::AwsSettings;
use adapters::dynamo_orders::DynamoOrderStore;
use adapters::dynamo_users::DynamoUserStore;
use adapters::s3::S3ObjectStore;
use adapters::sns::SnsNotifier;
use adapters::sqs::{SqsDeadLetters, SqsPaymentQueue};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_s3::primitives::ByteStream;
use domain::order::{OrderEvent, PaymentRequest};
use domain::ports::OrderStore;
use image_compressor::{Compressor, RecordOutcome};
use integration_tests as h;
use integration_tests::fault_proxy::{Fault, FaultProxy};
use integration_tests::fixtures::{api_event, test_image};
use lambda_http::Body;
use order_processor::Processor;
use serde_json::{json, Value};

const FAULTS: [Fault; 3] = [Fault::Refuse, Fault::Hang, Fault::Throttle];

/// The budget a faulted call may take: every attempt and backoff inside the operation timeout.
fn fast() -> AwsSettings {
    AwsSettings {
        connect_timeout: Duration::from_millis(500),
        attempt_timeout: Duration::from_millis(800),
        operation_timeout: Duration::from_secs(2),
        max_attempts: 2,
    }
}

/// Slack on top of the operation timeout for the handler's own work and scheduling on a busy machine.
const SLACK: Duration = Duration::from_secs(3);

async fn through(proxy: &FaultProxy) -> aws_config::SdkConfig {
    h::sdk_config_for(&proxy.endpoint, &fast()).await
}

#[tokio::test]
async fn api_answers_503_with_retry_after_within_the_timeout_then_recovers() {
    let direct = h::sdk_config().await;
    let table = h::create_users_table(&direct).await;
    let proxy = FaultProxy::start(&h::emulator().endpoint).await;
    let store = DynamoUserStore::new(aws_sdk_dynamodb::Client::new(&through(&proxy).await), table);
    let api = user_api::Api::new(store, vec!["https://app.example.com".into()], "secret");
    let me = uuid::Uuid::new_v4().to_string();
    let path = format!("/users/{me}");

    let call = |event: Value| {
        let api = &api;
        async move {
            let request = lambda_http::request::from_str(&event.to_string()).expect("event");
            let response = user_api::handle(api, request).await;
            let body: Value = match response.body() {
                Body::Text(t) => serde_json::from_str(t).expect("JSON body"),
                _ => Value::Null,
            };
            (response.status().as_u16(), response.headers().clone(), body)
        }
    };
    let created = json!({"name": "Ada", "email": format!("{me}@example.com")}).to_string();
    let (status, _, body) = call(api_event(
        "POST",
        "/users",
        Some(&created),
        Some(&me),
        false,
    ))
    .await;
    assert_eq!(status, 201, "{body}");

    for fault in FAULTS {
        proxy.set(fault);
        for event in [
            api_event("GET", &path, None, Some(&me), false),
            api_event(
                "PATCH",
                &path,
                Some(r#"{"name":"Changed"}"#),
                Some(&me),
                false,
            ),
        ] {
            let started = Instant::now();
            let (status, headers, body) = call(event).await;
            let took = started.elapsed();
            assert_eq!(status, 503, "{fault:?}: {body}");
            assert!(
                headers.get("retry-after").is_some(),
                "{fault:?}: Retry-After"
            );
            assert_eq!(headers["content-type"], "application/problem+json");
            assert_eq!(
                headers["access-control-allow-origin"],
                "https://app.example.com"
            );
            assert!(
                took < fast().operation_timeout + SLACK,
                "{fault:?}: answered after {took:?}"
            );
        }
        if fault == Fault::Throttle {
            assert!(
                proxy.throttled() >= 2,
                "the SDK retried the throttled call before giving up"
            );
        }
        proxy.set(Fault::None);
        let (status, _, body) = call(api_event("GET", &path, None, Some(&me), false)).await;
        assert_eq!(status, 200, "{fault:?}: recovered: {body}");
        assert_eq!(body["name"], "Ada", "the faulted PATCH changed nothing");
    }
}

struct Orders {
    direct: aws_config::SdkConfig,
    store: DynamoOrderStore,
    stack: h::OrderStack,
}

async fn orders_stack() -> Orders {
    let direct = h::sdk_config().await;
    let stack = h::create_order_stack(&direct).await;
    let store = stack.store(&direct);
    Orders {
        direct,
        store,
        stack,
    }
}

fn order(id: &str, product: &str, quantity: u32) -> String {
    json!({"order_id": id, "user_id": "u-1", "items": [{"product_id": product, "quantity": quantity}], "total_amount": "5.00"}).to_string()
}

fn batch(messages: &[(&str, &str)]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for (id, body) in messages {
        let mut record = SqsMessage::default();
        record.message_id = Some((*id).to_string());
        record.body = Some((*body).to_string());
        event.records.push(record);
    }
    event
}

fn failed(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> BTreeSet<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

#[tokio::test]
async fn orders_report_exactly_the_affected_messages_and_complete_on_redelivery() {
    let s = orders_stack().await;
    s.store.set_stock("widget", 100).await.unwrap();
    let ddb = FaultProxy::start(&h::emulator().endpoint).await;
    let sqs = FaultProxy::start(&h::emulator().endpoint).await;
    let sns = FaultProxy::start(&h::emulator().endpoint).await;
    let store = s.stack.store(&through(&ddb).await);
    let processor = Processor::new(
        store,
        SqsPaymentQueue::new(
            aws_sdk_sqs::Client::new(&through(&sqs).await),
            &s.stack.payment_url,
        ),
        SnsNotifier::new(
            aws_sdk_sns::Client::new(&through(&sns).await),
            &s.stack.topic,
        ),
        SqsDeadLetters::new(aws_sdk_sqs::Client::new(&s.direct), &s.stack.dlq_url),
    );
    let done = order("done", "widget", 1);
    assert!(failed(&processor.handle_batch(batch(&[("m-done", &done)])).await).is_empty());

    // Each fault hits one dependency; each batch mixes messages it affects with a finished order's
    // redelivery and a poison message, which it must not.
    let mut confirmed = vec!["done".to_string()];
    let mut poison = 0;
    // With DynamoDB down even the finished order cannot be checked, so it is affected too.
    for (round, (proxy, fault, done_affected)) in [
        (&sns, Fault::Throttle, false),
        (&ddb, Fault::Refuse, true),
        (&sqs, Fault::Hang, false),
        (&ddb, Fault::Throttle, true),
        (&sns, Fault::Hang, false),
        (&sqs, Fault::Refuse, false),
        (&ddb, Fault::Hang, true),
    ]
    .into_iter()
    .enumerate()
    {
        let new_a = order(&format!("r{round}-a"), "widget", 2);
        let new_b = order(&format!("r{round}-b"), "widget", 3);
        let messages = [
            ("m-done", done.as_str()),
            ("m-a", new_a.as_str()),
            ("m-poison", "{not json"),
            ("m-b", new_b.as_str()),
        ];
        proxy.set(fault);
        let started = Instant::now();
        let response = processor.handle_batch(batch(&messages)).await;
        let took = started.elapsed();
        poison += 1;
        let mut affected = BTreeSet::from(["m-a".to_string(), "m-b".to_string()]);
        if done_affected {
            affected.insert("m-done".into());
        }
        assert_eq!(failed(&response), affected, "round {round} {fault:?}");
        assert!(
            took < 3 * fast().operation_timeout + SLACK,
            "round {round}: {took:?}"
        );
        proxy.set(Fault::None);
        // SQS delivers the failed ones again (and, here, the others too: a duplicate delivery).
        let again = processor.handle_batch(batch(&messages)).await;
        assert!(failed(&again).is_empty(), "round {round}: {again:?}");
        poison += 1;
        confirmed.push(format!("r{round}-a"));
        confirmed.push(format!("r{round}-b"));
    }

    // Stock deducted once per order; each order confirmed with both side effects recorded.
    let rounds = (confirmed.len() as i64 - 1) / 2;
    assert_eq!(
        s.store.stock("widget").await.unwrap(),
        Some(100 - 1 - rounds * 5)
    );
    for id in &confirmed {
        let o = s.store.get(id).await.unwrap().unwrap();
        assert!(o.payment_requested && o.notification_sent, "{o:?}");
    }
    let payments: Vec<String> = h::drain(&s.direct, &s.stack.payment_url)
        .await
        .iter()
        .map(|m| {
            serde_json::from_str::<PaymentRequest>(m.body().unwrap())
                .unwrap()
                .order_id
        })
        .collect();
    let mut sorted = payments.clone();
    sorted.sort();
    let mut expected = confirmed.clone();
    expected.sort();
    assert_eq!(sorted, expected, "exactly one payment request per order");
    let mut events: Vec<String> = h::drain(&s.direct, &s.stack.events_url)
        .await
        .iter()
        .map(|m| {
            let envelope: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            serde_json::from_str::<OrderEvent>(envelope["Message"].as_str().unwrap())
                .unwrap()
                .order_id
        })
        .collect();
    events.sort();
    events.dedup();
    assert_eq!(events, expected, "every order announced");
    assert_eq!(h::drain(&s.direct, &s.stack.dlq_url).await.len(), poison);
}

#[tokio::test]
async fn images_fail_for_retry_with_no_output_then_complete() {
    let direct = h::sdk_config().await;
    let s3 = adapters::aws::s3_client(&direct);
    let source = h::create_bucket(&direct, "uploads").await;
    let destination = h::create_bucket(&direct, "variants").await;
    let key = "photos/spring.png";
    s3.put_object()
        .bucket(&source)
        .key(key)
        .body(ByteStream::from(test_image(
            "good/spring-rgba-1600x1200.png",
        )))
        .send()
        .await
        .unwrap();
    let proxy = FaultProxy::start(&h::emulator().endpoint).await;
    let settings = h::fixtures::compressor_settings(&destination);
    let compressor = Compressor::new(
        S3ObjectStore::new(adapters::aws::s3_client(&through(&proxy).await)),
        settings,
    );
    let event = json!({"Records": [{
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": source}, "object": {"key": "photos/spring.png", "size": 1}}
    }]});
    let stored = || async {
        let listed = s3
            .list_objects_v2()
            .bucket(&destination)
            .send()
            .await
            .unwrap();
        listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect::<Vec<_>>()
    };
    for fault in FAULTS {
        proxy.set(fault);
        let started = Instant::now();
        let result = compressor.handle(event.clone()).await;
        let took = started.elapsed();
        let failure = result.expect_err("a transient failure is returned for Lambda to retry");
        assert_eq!((failure.failed, failure.total), (1, 1), "{fault:?}");
        assert!(
            took < fast().operation_timeout + SLACK,
            "{fault:?}: {took:?}"
        );
        assert!(stored().await.is_empty(), "{fault:?}: no output");
    }
    proxy.set(Fault::None);
    let outcomes = compressor.handle(event.clone()).await.unwrap();
    assert_eq!(outcomes, [RecordOutcome::Written(4)]);
    assert_eq!(stored().await.len(), 4 + 1, "the variants and the manifest");
    let again = compressor.handle(event).await.unwrap();
    assert_eq!(again, [RecordOutcome::AlreadyDone]);
}

/// Not a `tokio::test`: the metrics capture runs the work on a runtime of its own.
#[test]
fn a_reservation_lost_to_a_concurrent_one_is_counted_retried_and_applies_nothing() {
    let mut seen = (0, BTreeSet::new(), None);
    let metrics = telemetry::metric_catalog::capture(async {
        let s = orders_stack().await;
        s.store.set_stock("widget", 5).await.unwrap();
        let ddb = FaultProxy::start(&h::emulator().endpoint).await;
        ddb.set(Fault::TransactionConflict);
        let direct = aws_sdk_sqs::Client::new(&s.direct);
        let processor = Processor::new(
            s.stack.store(&through(&ddb).await),
            SqsPaymentQueue::new(direct.clone(), &s.stack.payment_url),
            SnsNotifier::new(aws_sdk_sns::Client::new(&s.direct), &s.stack.topic),
            SqsDeadLetters::new(direct, &s.stack.dlq_url),
        );
        let response = processor
            .handle_batch(batch(&[("m-raced", &order("raced", "widget", 2))]))
            .await;
        seen = (
            ddb.throttled(),
            failed(&response),
            s.store.stock("widget").await.unwrap(),
        );
    })
    .unwrap();
    let (cancellations, failures, stock) = seen;
    // The first attempt and the adapter's 4 retries all lose the race; the message is retried.
    assert_eq!(cancellations, 5);
    assert_eq!(failures, BTreeSet::from(["m-raced".to_string()]));
    assert_eq!(stock, Some(5), "nothing was reserved");
    assert!(
        metrics.contains(&(
            telemetry::metric_catalog::STOCK_RESERVATION_CONFLICTS.to_string(),
            vec![]
        )),
        "{metrics:?}"
    );
}
