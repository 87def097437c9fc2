//! A payment request is retried for as long as its order is pending, never given up because time
//! passed: with the deployed orders queue (its `VisibilityTimeout` and `maxReceiveCount` read from
//! template.yaml) and a simulated clock, sends failing on the first two deliveries (0 s and 185 s)
//! still end in a payment request on the third (370 s), and a success result makes the order `PAID`.

use std::cell::Cell;

use domain::order::{OrderStatus, PaymentRequest};
use domain::testing::{
    InMemoryOrderStore, RecordingDeadLetters, RecordingExpiryQueue, RecordingNotifier,
    RecordingPaymentQueue,
};
use domain::PortError;
use integration_tests::workspace_root;
use order_processor::{Outcome, Processor};
use order_settlement::{Outcome as SettlementOutcome, Settler};
use serde_json::json;
use time::OffsetDateTime;

/// How long after a message becomes visible again Lambda's poller receives it (SQS long polling
/// by the event source mapping: a few seconds).
const POLL_LATENCY_SECS: u64 = 5;

/// The orders queue as deployed: (VisibilityTimeout, maxReceiveCount).
fn deployed_orders_queue() -> (u64, u64) {
    let text = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let template: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let queue = &template["Resources"]["OrdersQueue"]["Properties"];
    (
        queue["VisibilityTimeout"].as_u64().unwrap(),
        queue["RedrivePolicy"]["maxReceiveCount"].as_u64().unwrap(),
    )
}

thread_local! {
    static ELAPSED: Cell<u64> = const { Cell::new(0) };
}

/// A fixed start plus the simulated seconds elapsed.
fn simulated_now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap()
        + time::Duration::seconds(ELAPSED.with(Cell::get) as i64)
}

#[tokio::test]
async fn a_payment_failing_twice_goes_out_on_the_third_delivery_and_the_order_is_paid() {
    let (visibility, max_receives) = deployed_orders_queue();
    let mut p = Processor::new(
        InMemoryOrderStore::default(),
        RecordingPaymentQueue::default(),
        RecordingNotifier::default(),
        RecordingDeadLetters::default(),
    )
    .with_expiry(RecordingExpiryQueue::default());
    p.clock = simulated_now;
    p.orders.set_stock("widget", 5);
    let body = json!({"order_id": "ord-slow", "user_id": "u1",
        "items": [{"product_id": "widget", "quantity": 2}], "total_amount": "4.00"})
    .to_string();
    // The payment queue throttles on the first two deliveries.
    for _ in 0..2 {
        p.payments
            .faults
            .fail_next("request_payment", PortError::Throttled("sqs".into()));
    }

    // SQS as deployed: a failed message is received again once its visibility timeout has
    // passed, until maxReceiveCount receives have failed (then it is redriven to the DLQ).
    let mut deliveries = Vec::new();
    let mut outcome = Outcome::Parked;
    for receive in 1..=max_receives {
        deliveries.push(ELAPSED.with(Cell::get));
        outcome = p.place_order_message("m1", &body).await;
        if !matches!(outcome, Outcome::Retry(_)) {
            break;
        }
        assert!(
            receive < max_receives,
            "redriven to the DLQ before the payment went out"
        );
        ELAPSED.with(|e| e.set(e.get() + visibility + POLL_LATENCY_SECS));
    }
    let step = visibility + POLL_LATENCY_SECS;
    assert_eq!(
        deliveries,
        [0, step, 2 * step],
        "deliveries at 0 s, 185 s, 370 s as deployed"
    );
    assert_eq!(outcome, Outcome::AlreadyProcessed);
    assert!(
        p.dead_letters.parked().is_empty(),
        "never parked because time passed"
    );
    assert_eq!(p.payments.faults.calls("request_payment"), 3);
    let sent: Vec<PaymentRequest> = p.payments.sent();
    assert_eq!(sent.len(), 1, "the third send went out");
    assert_eq!(sent[0].idempotency_key, "ord-slow");
    let order = p.orders.order("ord-slow").unwrap();
    assert_eq!(order.status, OrderStatus::PendingPayment);
    assert!(order.payment_requested);

    // The payment service answers on the results queue; order-settlement applies it.
    let answer = json!({"order_id": "ord-slow", "idempotency_key": "ord-slow",
        "outcome": "SUCCEEDED"})
    .to_string();
    let settler = Settler::new(
        p.orders,
        RecordingNotifier::default(),
        "arn:aws:sqs:us-east-1:1:results",
        "arn:aws:sqs:us-east-1:1:expiries",
    );
    assert_eq!(
        settler.apply_payment_result(&answer, None).await,
        SettlementOutcome::Paid
    );
    assert_eq!(
        settler.orders.order("ord-slow").unwrap().status,
        OrderStatus::Paid
    );
    assert_eq!(
        settler.orders.stock("widget"),
        Some(3),
        "the stock stays sold"
    );
}
