//! The order's whole life against the moto server through the real adapters: order-processor
//! reserves and requests payment, the payment service's answers come back on their own queue,
//! order-settlement applies them; an unpaid order's expiry arrives through the delay queue.

use std::time::Duration;

use adapters::sns::SnsNotifier;
use adapters::sqs::{SqsDeadLetters, SqsExpiryQueue, SqsPaymentQueue};
use domain::order::{OrderStatus, PaymentRequest};
use domain::ports::OrderStore;
use integration_tests as h;
use order_processor::{Outcome, Processor};
use order_settlement::Settler;
use serde_json::json;

fn order_body(id: &str, quantity: u32) -> String {
    json!({"order_id": id, "user_id": "u1",
        "items": [{"product_id": "widget", "quantity": quantity}], "total_amount": "5.00"})
    .to_string()
}

/// The SQS event Lambda builds from `url`'s messages, stamped with the queue they came from.
async fn delivered(
    config: &aws_config::SdkConfig,
    url: &str,
    arn: &str,
) -> aws_lambda_events::event::sqs::SqsEvent {
    let mut event = h::sqs_event(&h::drain(config, url).await);
    for record in &mut event.records {
        record.event_source_arn = Some(arn.to_string());
    }
    event
}

#[tokio::test]
async fn orders_are_paid_declined_and_expired_with_stock_restored_once() {
    let config = h::sdk_config().await;
    let stack = h::create_order_stack(&config).await;
    let store = stack.store(&config);
    store.set_stock("widget", 10).await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&config);
    let expiry_url = h::create_queue(&config, "expiries", false).await;
    let results_url = h::create_queue(&config, "payment-results", false).await;
    let (expiry_arn, results_arn) = (
        h::queue_arn(&config, &expiry_url).await,
        h::queue_arn(&config, &results_url).await,
    );
    // The payment timeout is a setting (PAYMENT_TIMEOUT_SECS); 2 s here so the delay queue's
    // delivery can be watched. Its default is checked with a simulated clock in batch.rs.
    let processor = Processor::new(
        store.clone(),
        SqsPaymentQueue::new(sqs.clone(), &stack.payment_url),
        SnsNotifier::new(aws_sdk_sns::Client::new(&config), &stack.topic),
        SqsDeadLetters::new(sqs.clone(), &stack.dlq_url),
    )
    .with_expiry(SqsExpiryQueue::new(sqs.clone(), &expiry_url))
    .with_payment_timeout(Duration::from_secs(2));
    let settler = Settler::new(
        store.clone(),
        SnsNotifier::new(aws_sdk_sns::Client::new(&config), &stack.topic),
        &results_arn,
        &expiry_arn,
    );

    for (id, quantity) in [("ord-paid", 2), ("ord-declined", 3), ("ord-abandoned", 4)] {
        assert_eq!(
            processor
                .place_order_message(id, &order_body(id, quantity))
                .await,
            Outcome::Reserved
        );
    }
    assert_eq!(store.stock("widget").await.unwrap(), Some(1));

    // The payment service (played by the test) reads the requests and answers two of them.
    let requests = h::drain(&config, &stack.payment_url).await;
    assert_eq!(requests.len(), 3);
    for m in &requests {
        let request: PaymentRequest = serde_json::from_str(m.body().unwrap()).unwrap();
        assert_eq!(
            m.message_attributes().unwrap()["idempotency_key"].string_value(),
            Some(request.order_id.as_str())
        );
        let outcome = match request.order_id.as_str() {
            "ord-paid" => "SUCCEEDED",
            "ord-declined" => "FAILED",
            _ => continue,
        };
        sqs.send_message()
            .queue_url(&results_url)
            .message_body(
                json!({"order_id": request.order_id, "idempotency_key": request.idempotency_key,
                    "outcome": outcome})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
    }
    let results = delivered(&config, &results_url, &results_arn).await;
    assert_eq!(results.records.len(), 2);
    // Delivered twice: the second changes nothing.
    for _ in 0..2 {
        let response = settler.handle_batch(results.clone()).await;
        assert!(response.batch_item_failures.is_empty());
    }
    let status = |id: &'static str| {
        let store = store.clone();
        async move { store.get(id).await.unwrap().unwrap().status }
    };
    assert_eq!(status("ord-paid").await, OrderStatus::Paid);
    assert_eq!(status("ord-declined").await, OrderStatus::PaymentFailed);
    assert_eq!(
        store.stock("widget").await.unwrap(),
        Some(4),
        "3 back, once"
    );

    // Nobody pays for the third: its expiry arrives once the timeout has passed, not before.
    let early = delivered(&config, &expiry_url, &expiry_arn).await;
    assert!(early.records.is_empty(), "held back by its delay");
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let expiries = delivered(&config, &expiry_url, &expiry_arn).await;
    assert_eq!(expiries.records.len(), 3, "one expiry per pending order");
    let response = settler.handle_batch(expiries).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(status("ord-abandoned").await, OrderStatus::Expired);
    assert_eq!(
        status("ord-paid").await,
        OrderStatus::Paid,
        "a paid order does not expire"
    );
    assert_eq!(
        store.stock("widget").await.unwrap(),
        Some(8),
        "4 back, once"
    );

    // The payment for the abandoned order succeeds after all: a refund is asked for.
    sqs.send_message()
        .queue_url(&results_url)
        .message_body(
            json!({"order_id": "ord-abandoned", "idempotency_key": "ord-abandoned",
                "outcome": "SUCCEEDED"})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let late = delivered(&config, &results_url, &results_arn).await;
    assert!(settler
        .handle_batch(late)
        .await
        .batch_item_failures
        .is_empty());
    assert_eq!(status("ord-abandoned").await, OrderStatus::Expired);
    assert_eq!(store.stock("widget").await.unwrap(), Some(8));

    let mut events: Vec<(String, String, Option<String>)> = h::drain(&config, &stack.events_url)
        .await
        .iter()
        .map(|m| {
            let envelope: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
            let event: serde_json::Value =
                serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
            (
                event["event_type"].as_str().unwrap().to_string(),
                event["order_id"].as_str().unwrap().to_string(),
                event["reason"].as_str().map(str::to_string),
            )
        })
        .collect();
    events.sort();
    let e =
        |t: &str, id: &str, r: Option<&str>| (t.to_string(), id.to_string(), r.map(str::to_string));
    assert_eq!(
        events,
        [
            e("ORDER_CANCELLED", "ord-abandoned", Some("PAYMENT_TIMEOUT")),
            e("ORDER_CANCELLED", "ord-declined", Some("PAYMENT_FAILED")),
            e("ORDER_CREATED", "ord-abandoned", None),
            e("ORDER_CREATED", "ord-declined", None),
            e("ORDER_CREATED", "ord-paid", None),
            e("ORDER_PAID", "ord-paid", None),
            e(
                "PAYMENT_REFUND_REQUIRED",
                "ord-abandoned",
                Some("PAID_WHILE_EXPIRED")
            ),
        ]
    );
}
