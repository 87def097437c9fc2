//! Every outcome of order-settlement over in-memory ports, driven by `events/order-settlement/`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use domain::order::{EventType, Money, Order, OrderLine, OrderStatus};
use domain::ports::OrderStore;
use domain::settlement::Settlement;
use domain::testing::{InMemoryOrderStore, RecordingNotifier};
use domain::PortError;
use order_settlement::{Outcome, Settler};

const RESULTS: &str = "arn:aws:sqs:us-east-1:123456789012:rust-suite-dev-PaymentResultsQueue";
const EXPIRIES: &str = "arn:aws:sqs:us-east-1:123456789012:rust-suite-dev-ExpiryQueue";

type S = Settler<InMemoryOrderStore, RecordingNotifier>;

fn sample(name: &str) -> SqsEvent {
    let path = format!(
        "{}/../../events/order-settlement/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn failures(response: &SqsBatchResponse) -> usize {
    response.batch_item_failures.len()
}

/// A settler whose clock reads 2026-12-01T10:20:00Z, with `order_id` pending (2 widgets reserved
/// out of 10).
async fn settler_with_pending(order_ids: &[&str]) -> S {
    let mut s = Settler::new(
        InMemoryOrderStore::default(),
        RecordingNotifier::default(),
        RESULTS,
        EXPIRIES,
    );
    s.clock = || time::macros::datetime!(2026-12-01 10:20:00 UTC);
    s.orders.set_stock("widget", 10);
    for id in order_ids {
        let order = Order {
            order_id: id.to_string(),
            user_id: "user-42".into(),
            items: vec![OrderLine {
                product_id: "widget".into(),
                quantity: 2,
            }],
            total: Money(5990),
            status: OrderStatus::PendingPayment,
            short_items: vec![],
            created_at: "2026-12-01T10:00:00Z".into(),
            payment_requested: true,
            notification_sent: true,
            outcome_notified: false,
        };
        s.orders.reserve(&order).await.unwrap();
    }
    s
}

fn events(s: &S) -> Vec<(EventType, String, Option<String>)> {
    s.notifier
        .published()
        .into_iter()
        .map(|e| (e.event_type, e.order_id, e.reason))
        .collect()
}

#[tokio::test]
async fn a_successful_payment_makes_the_order_paid_once() {
    let s = settler_with_pending(&["ord-1001"]).await;
    for _ in 0..2 {
        assert_eq!(
            failures(&s.handle_batch(sample("payment-succeeded.json")).await),
            0
        );
    }
    let order = s.orders.order("ord-1001").unwrap();
    assert_eq!(order.status, OrderStatus::Paid);
    assert!(order.outcome_notified);
    assert_eq!(s.orders.stock("widget"), Some(8), "the stock stays sold");
    assert_eq!(
        events(&s),
        [(EventType::OrderPaid, "ord-1001".into(), None)],
        "announced once"
    );
}

#[tokio::test]
async fn a_failed_payment_restores_the_stock_once() {
    let s = settler_with_pending(&["ord-1003"]).await;
    assert_eq!(s.orders.stock("widget"), Some(8));
    for _ in 0..3 {
        assert_eq!(
            failures(&s.handle_batch(sample("payment-failed.json")).await),
            0
        );
    }
    assert_eq!(
        s.orders.order("ord-1003").unwrap().status,
        OrderStatus::PaymentFailed
    );
    assert_eq!(
        s.orders.stock("widget"),
        Some(10),
        "given back exactly once"
    );
    assert_eq!(
        events(&s),
        [(
            EventType::OrderCancelled,
            "ord-1003".into(),
            Some("PAYMENT_FAILED".into())
        )]
    );
}

#[tokio::test]
async fn a_due_expiry_releases_a_pending_order_and_loses_to_a_payment() {
    let s = settler_with_pending(&["ord-1004", "ord-1001"]).await;
    assert_eq!(
        failures(&s.handle_batch(sample("order-expired.json")).await),
        0
    );
    assert_eq!(
        s.orders.order("ord-1004").unwrap().status,
        OrderStatus::Expired
    );
    assert_eq!(
        s.orders.stock("widget"),
        Some(8),
        "ord-1004's 2 back, ord-1001's still held"
    );
    // A paid order is not expired by its expiry.
    assert_eq!(
        failures(&s.handle_batch(sample("payment-succeeded.json")).await),
        0
    );
    let body = r#"{"order_id":"ord-1001","expires_at":"2026-12-01T10:15:00Z"}"#;
    assert_eq!(s.apply_expiry(body, None).await, Outcome::AlreadySettled);
    assert_eq!(
        s.orders.order("ord-1001").unwrap().status,
        OrderStatus::Paid
    );
    assert_eq!(s.orders.stock("widget"), Some(8));
}

#[tokio::test]
async fn an_expiry_that_arrives_early_is_delivered_again_not_applied() {
    let s = settler_with_pending(&["ord-1004"]).await;
    let body = r#"{"order_id":"ord-1004","expires_at":"2026-12-01T10:25:00Z"}"#;
    assert_eq!(s.apply_expiry(body, None).await, Outcome::Early);
    assert_eq!(
        s.orders.order("ord-1004").unwrap().status,
        OrderStatus::PendingPayment
    );
}

#[tokio::test]
async fn a_success_for_an_ended_order_asks_for_a_refund() {
    for ended in [Settlement::Expired, Settlement::PaymentFailed] {
        let s = settler_with_pending(&["ord-1001"]).await;
        use domain::ports::OrderSettlement;
        s.orders.settle("ord-1001", ended).await.unwrap();
        assert_eq!(
            failures(&s.handle_batch(sample("payment-succeeded.json")).await),
            0
        );
        let order = s.orders.order("ord-1001").unwrap();
        assert_eq!(order.status, ended.status(), "an ended order stays ended");
        assert_eq!(
            s.orders.stock("widget"),
            Some(10),
            "its stock stays on sale"
        );
        let refund = s
            .notifier
            .published()
            .into_iter()
            .find(|e| e.event_type == EventType::PaymentRefundRequired)
            .expect("a refund request");
        assert_eq!(refund.event_id, "PAYMENT_REFUND_REQUIRED:ord-1001");
        assert_eq!(refund.total, "59.90");
    }
}

#[tokio::test]
async fn invalid_messages_and_unknown_sources_are_delivered_again_until_dead_lettered() {
    let s = settler_with_pending(&["ord-1001"]).await;
    assert_eq!(
        failures(&s.handle_batch(sample("invalid-result.json")).await),
        1
    );
    let mut stray = sample("payment-succeeded.json");
    stray.records[0].event_source_arn = Some("arn:aws:sqs:us-east-1:1:other".into());
    assert_eq!(failures(&s.handle_batch(stray).await), 1);
    let mut unknown = sample("payment-failed.json");
    unknown.records[0].body =
        Some(r#"{"order_id":"nope","idempotency_key":"nope","outcome":"FAILED"}"#.into());
    assert_eq!(failures(&s.handle_batch(unknown).await), 1);
    assert_eq!(
        s.orders.order("ord-1001").unwrap().status,
        OrderStatus::PendingPayment
    );
    assert!(s.notifier.published().is_empty());
}

#[tokio::test]
async fn a_lost_event_is_published_by_the_redelivery() {
    let s = settler_with_pending(&["ord-1003"]).await;
    s.notifier
        .faults
        .fail_next("publish", PortError::Throttled("sns".into()));
    assert_eq!(
        failures(&s.handle_batch(sample("payment-failed.json")).await),
        1
    );
    assert_eq!(
        s.orders.stock("widget"),
        Some(10),
        "restored with the status change"
    );
    assert_eq!(
        failures(&s.handle_batch(sample("payment-failed.json")).await),
        0
    );
    assert_eq!(s.orders.stock("widget"), Some(10), "not restored again");
    assert_eq!(events(&s).len(), 1);
    assert!(s.orders.order("ord-1003").unwrap().outcome_notified);
    // Store failures are retried too.
    let t = settler_with_pending(&["ord-1001"]).await;
    t.orders
        .faults
        .fail_next("settle", PortError::Unavailable("dynamodb".into()));
    assert_eq!(
        failures(&t.handle_batch(sample("payment-succeeded.json")).await),
        1
    );
    assert_eq!(
        failures(&t.handle_batch(sample("payment-succeeded.json")).await),
        0
    );
}

#[test]
fn the_metrics_emitted_are_the_catalogued_ones() {
    use telemetry::metric_catalog::{capture, emitted_by};
    let emitted = capture(async {
        // Paid, released, a refund, an invalid message.
        let s = settler_with_pending(&["ord-1001", "ord-1003"]).await;
        s.handle_batch(sample("payment-succeeded.json")).await;
        s.handle_batch(sample("payment-failed.json")).await;
        let mut late_success = sample("payment-succeeded.json");
        late_success.records[0].body = Some(
            r#"{"order_id":"ord-1003","idempotency_key":"ord-1003","outcome":"SUCCEEDED"}"#.into(),
        );
        s.handle_batch(late_success).await;
        s.handle_batch(sample("invalid-result.json")).await;
    });
    assert_eq!(emitted.unwrap(), emitted_by("order-settlement"));
}
