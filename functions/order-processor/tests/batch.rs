//! Every outcome of order-processor over in-memory ports, driven by `events/order-processor/`.

use aws_lambda_events::event::sqs::SqsEvent;
use domain::order::{EventType, OrderStatus};
use domain::testing::{
    InMemoryOrderStore, RecordingDeadLetters, RecordingExpiryQueue, RecordingNotifier,
    RecordingPaymentQueue,
};
use domain::PortError;
use order_processor::{Outcome, Processor};
use serde_json::json;

type P =
    Processor<InMemoryOrderStore, RecordingPaymentQueue, RecordingNotifier, RecordingDeadLetters>;

fn processor() -> P {
    let p = Processor::new(
        InMemoryOrderStore::default(),
        RecordingPaymentQueue::default(),
        RecordingNotifier::default(),
        RecordingDeadLetters::default(),
    );
    p.orders.set_stock("widget", 10);
    p.orders.set_stock("gadget", 10);
    p.orders.set_stock("gizmo", 5);
    p
}

fn sample(name: &str) -> SqsEvent {
    let path = format!(
        "{}/../../events/order-processor/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn failures(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

fn order_body(id: &str, items: &[(&str, u32)]) -> String {
    let items: Vec<_> = items
        .iter()
        .map(|(p, q)| json!({"product_id": p, "quantity": q}))
        .collect();
    json!({"order_id": id, "user_id": "u1", "items": items, "total_amount": "10.00"}).to_string()
}

#[tokio::test]
async fn mixed_batch_good_short_duplicate_and_poison() {
    let p = processor();
    let response = p.handle_batch(sample("mixed-batch.json")).await;
    assert!(
        failures(&response).is_empty(),
        "nothing to retry: {:?}",
        failures(&response)
    );

    assert_eq!(
        p.orders.stock("widget"),
        Some(8),
        "deducted once despite the duplicate"
    );
    assert_eq!(p.orders.stock("gadget"), Some(9));
    assert_eq!(
        p.orders.stock("gizmo"),
        Some(5),
        "short order deducts nothing"
    );

    let confirmed = p.orders.order("ord-1001").unwrap();
    assert_eq!(confirmed.status, OrderStatus::PendingPayment);
    assert_eq!(confirmed.total.0, 5990, "59.90 parsed exactly");
    assert!(confirmed.payment_requested && confirmed.notification_sent);
    let cancelled = p.orders.order("ord-1002").unwrap();
    assert_eq!(
        cancelled.status,
        OrderStatus::CancelledInsufficientInventory
    );
    assert_eq!(cancelled.short_items, ["gizmo"]);
    assert_eq!(p.orders.order_count(), 2);

    let payments = p.payments.sent();
    assert_eq!(payments.len(), 1);
    assert_eq!(
        (payments[0].order_id.as_str(), payments[0].amount_minor),
        ("ord-1001", 5990)
    );
    let events: Vec<(EventType, String)> = p
        .notifier
        .published()
        .into_iter()
        .map(|e| (e.event_type, e.order_id))
        .collect();
    assert_eq!(
        events,
        [
            (EventType::OrderCreated, "ord-1001".to_string()),
            (EventType::OrderCancelled, "ord-1002".to_string())
        ]
    );
    let parked = p.dead_letters.parked();
    let codes: Vec<(&str, &str)> = parked
        .iter()
        .map(|d| (d.message_id.as_str(), d.reason_code.as_str()))
        .collect();
    assert_eq!(
        codes,
        [
            ("9f1c2d3e-0004-4a5b-8c7d-000000000004", "INVALID_JSON"),
            ("9f1c2d3e-0005-4a5b-8c7d-000000000005", "INVALID_ORDER")
        ]
    );
    assert!(parked[1].reason.contains("items") && parked[1].reason.contains("total_amount"));
}

#[tokio::test]
async fn only_transiently_failed_messages_are_retried_and_redelivery_completes_them() {
    let p = processor();
    p.orders
        .faults
        .fail_next("reserve", PortError::Throttled("dynamodb".into()));
    let event = sample("mixed-batch.json");
    let response = p.handle_batch(event.clone()).await;
    // The first message hit throttling; its duplicate (message 3) still created the order.
    assert_eq!(
        failures(&response),
        ["9f1c2d3e-0001-4a5b-8c7d-000000000001"]
    );
    assert_eq!(p.orders.stock("widget"), Some(8));
    // SQS redelivers the failed message: already processed, nothing applied twice.
    let mut redelivery = event.clone();
    redelivery.records.truncate(1);
    let response = p.handle_batch(redelivery).await;
    assert!(failures(&response).is_empty());
    assert_eq!(p.orders.stock("widget"), Some(8));
    assert_eq!(p.payments.sent().len(), 1);
    assert_eq!(
        p.notifier
            .published()
            .iter()
            .filter(|e| e.order_id == "ord-1001")
            .count(),
        1
    );
}

#[tokio::test]
async fn crash_between_payment_and_notification_is_repaired_on_redelivery() {
    let p = processor();
    p.notifier
        .faults
        .fail_next("publish", PortError::Unavailable("sns timeout".into()));
    let body = order_body("o-77", &[("widget", 3)]);
    assert!(matches!(
        p.place_order_message("m1", &body).await,
        Outcome::Retry(PortError::Unavailable(_))
    ));
    let stored = p.orders.order("o-77").unwrap();
    assert!(
        stored.payment_requested,
        "the payment that went out is recorded"
    );
    assert!(!stored.notification_sent);
    assert_eq!(
        p.place_order_message("m1", &body).await,
        Outcome::AlreadyProcessed
    );
    assert_eq!(p.payments.sent().len(), 1, "payment not requested twice");
    assert_eq!(
        p.notifier.published().len(),
        1,
        "notification sent on redelivery"
    );
    assert_eq!(p.orders.stock("widget"), Some(7));
    assert!(p.orders.order("o-77").unwrap().notification_sent);
}

#[tokio::test]
async fn failure_to_record_progress_is_retried_without_deducting_again() {
    let p = processor();
    p.orders
        .faults
        .fail_next("mark_done", PortError::Throttled("dynamodb".into()));
    let body = order_body("o-88", &[("gadget", 2)]);
    assert!(matches!(
        p.place_order_message("m", &body).await,
        Outcome::Retry(_)
    ));
    assert_eq!(
        p.place_order_message("m", &body).await,
        Outcome::AlreadyProcessed
    );
    assert_eq!(
        p.orders.stock("gadget"),
        Some(8),
        "stock deducted exactly once"
    );
    let stored = p.orders.order("o-88").unwrap();
    assert!(stored.payment_requested && stored.notification_sent);
    // Without a record of the first sends they go out again; the FIFO queue's deduplication id
    // (the order id) and the event id let consumers drop the copies.
    assert_eq!(
        p.payments
            .sent()
            .iter()
            .filter(|r| r.order_id == "o-88")
            .count(),
        2
    );
}

#[tokio::test]
async fn a_poison_message_that_cannot_be_parked_is_not_acknowledged() {
    let p = processor();
    p.dead_letters
        .faults
        .fail_next("park", PortError::Unavailable("sqs down".into()));
    assert!(matches!(
        p.place_order_message("m", "{oops").await,
        Outcome::Retry(_)
    ));
    assert!(p.dead_letters.parked().is_empty());
    assert_eq!(p.place_order_message("m", "{oops").await, Outcome::Parked);
    assert_eq!(p.dead_letters.parked().len(), 1);
}

#[tokio::test]
async fn unknown_products_and_partial_shortages_cancel_the_whole_order() {
    let p = processor();
    let body = order_body("o-9", &[("widget", 1), ("gizmo", 6), ("nonexistent", 1)]);
    assert_eq!(p.place_order_message("m", &body).await, Outcome::Cancelled);
    let order = p.orders.order("o-9").unwrap();
    assert_eq!(order.short_items, ["gizmo", "nonexistent"]);
    assert_eq!(
        p.orders.stock("widget"),
        Some(10),
        "no line deducted when any line is short"
    );
    assert!(p.payments.sent().is_empty());
    assert_eq!(p.notifier.published()[0].event_id, "ORDER_CANCELLED:o-9");
}

#[tokio::test]
async fn happy_path_costs_one_transaction_one_send_one_publish_one_progress_write() {
    let p = processor();
    assert_eq!(
        p.place_order_message("m", &order_body("o-1", &[("widget", 1)]))
            .await,
        Outcome::Reserved
    );
    assert_eq!(p.orders.faults.calls("reserve"), 1);
    assert_eq!(p.orders.faults.calls("mark_done"), 1);
    assert_eq!(p.orders.faults.total_calls(), 2);
    assert_eq!(p.payments.faults.calls("request_payment"), 1);
    assert_eq!(p.notifier.faults.calls("publish"), 1);
}

#[tokio::test]
async fn store_errors_of_any_kind_are_retried_not_dropped() {
    let p = processor();
    p.orders
        .faults
        .fail_next("reserve", PortError::Rejected("ValidationException".into()));
    let body = order_body("o-2", &[("widget", 1)]);
    assert!(matches!(
        p.place_order_message("m", &body).await,
        Outcome::Retry(PortError::Rejected(_))
    ));
    assert_eq!(p.place_order_message("m", &body).await, Outcome::Reserved);
}

#[tokio::test]
async fn every_message_of_a_batch_can_fail_independently() {
    let p = processor();
    p.payments
        .faults
        .fail_next("request_payment", PortError::Throttled("sqs".into()));
    let mut event = sample("single-order.json");
    let mut second = event.records[0].clone();
    second.message_id = Some("second".into());
    second.body = Some(order_body("o-3", &[("gadget", 1)]));
    event.records.push(second);
    let response = p.handle_batch(event).await;
    assert_eq!(failures(&response).len(), 1);
}

thread_local! {
    /// Seconds the simulated clock is ahead of real time (tokio tests run on one thread).
    static CLOCK_AHEAD: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

fn simulated_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::seconds(CLOCK_AHEAD.with(|c| c.get()))
}

fn advance_clock(seconds: i64) {
    CLOCK_AHEAD.with(|c| c.set(c.get() + seconds));
}

type WithExpiry = Processor<
    InMemoryOrderStore,
    RecordingPaymentQueue,
    RecordingNotifier,
    RecordingDeadLetters,
    RecordingExpiryQueue,
>;

fn processor_with_expiry() -> WithExpiry {
    let mut p = processor().with_expiry(RecordingExpiryQueue::default());
    p.clock = simulated_now;
    p
}

#[tokio::test]
async fn a_payment_is_sent_again_on_every_delivery_while_the_order_is_pending() {
    let p = processor_with_expiry();
    let body = order_body("ord-resend", &[("widget", 1)]);
    // The payment goes out, then the flag write fails on two deliveries in a row.
    for _ in 0..2 {
        p.orders
            .faults
            .fail_next("mark_done", PortError::Throttled("dynamodb".into()));
    }
    for (delivery, at) in [(1, 0), (2, 185), (3, 185)] {
        advance_clock(at);
        let outcome = p.place_order_message("m1", &body).await;
        if delivery < 3 {
            assert!(matches!(outcome, Outcome::Retry(_)), "{outcome:?}");
        } else {
            assert_eq!(outcome, Outcome::AlreadyProcessed);
        }
    }
    // Sent on each delivery, however late, each carrying the order id as its idempotency key:
    // the payment service charges once.
    let sent = p.payments.sent();
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|r| r.idempotency_key == "ord-resend"));
    assert!(
        p.dead_letters.parked().is_empty(),
        "never parked because time passed"
    );
    let order = p.orders.order("ord-resend").unwrap();
    assert!(order.payment_requested && order.notification_sent);
    assert_eq!(order.status, OrderStatus::PendingPayment);
    assert_eq!(p.orders.stock("widget"), Some(9), "deducted once");
}

#[tokio::test]
async fn the_expiry_is_scheduled_before_the_payment_and_counts_from_the_order_record() {
    let p = processor_with_expiry();
    let body = order_body("ord-expiry", &[("widget", 1)]);
    p.expiries
        .faults
        .fail_next("schedule_expiry", PortError::Throttled("sqs".into()));
    assert!(matches!(
        p.place_order_message("m1", &body).await,
        Outcome::Retry(_)
    ));
    assert!(
        p.payments.sent().is_empty(),
        "no payment request for an order that could never expire"
    );
    advance_clock(100);
    assert_eq!(
        p.place_order_message("m1", &body).await,
        Outcome::AlreadyProcessed
    );
    let scheduled = p.expiries.scheduled();
    assert_eq!(scheduled.len(), 1);
    let (expiry, delay) = &scheduled[0];
    let order = p.orders.order("ord-expiry").unwrap();
    let created = time::OffsetDateTime::parse(
        &order.created_at,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expires_at = time::OffsetDateTime::parse(
        &expiry.expires_at,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(expires_at - created, time::Duration::seconds(900));
    // Redelivered 100 s after the record was created: the delay is what is left of the timeout.
    let left = delay.as_secs_f64();
    assert!((799.0..=800.0).contains(&left), "{left}");
    assert_eq!(p.payments.sent().len(), 1);
}

#[tokio::test]
async fn no_payment_is_requested_for_an_order_that_has_ended() {
    use domain::ports::OrderSettlement;
    let p = processor_with_expiry();
    let body = order_body("ord-ended", &[("widget", 1)]);
    p.payments
        .faults
        .fail_next("request_payment", PortError::Unavailable("sqs".into()));
    assert!(matches!(
        p.place_order_message("m1", &body).await,
        Outcome::Retry(_)
    ));
    p.orders
        .settle("ord-ended", domain::settlement::Settlement::Expired)
        .await
        .unwrap();
    assert_eq!(
        p.place_order_message("m1", &body).await,
        Outcome::AlreadyProcessed
    );
    assert_eq!(p.payments.faults.calls("request_payment"), 1);
    assert!(p.payments.sent().is_empty());
    assert_eq!(p.orders.stock("widget"), Some(10), "given back once");
}

#[tokio::test]
async fn a_reused_order_id_with_other_contents_is_parked_not_dropped() {
    let p = processor();
    let first = order_body("ord-reused", &[("widget", 1), ("gadget", 2)]);
    assert_eq!(p.place_order_message("m1", &first).await, Outcome::Reserved);
    // The same order with its lines in another order is a duplicate, not a new order.
    let reordered = order_body("ord-reused", &[("gadget", 2), ("widget", 1)]);
    assert_eq!(
        p.place_order_message("m2", &reordered).await,
        Outcome::AlreadyProcessed
    );
    assert!(p.dead_letters.parked().is_empty());
    // Other lines under the same id: parked with the reason, nothing deducted or sent.
    let other = order_body("ord-reused", &[("widget", 5)]);
    assert_eq!(p.place_order_message("m3", &other).await, Outcome::Parked);
    let mut other_user: serde_json::Value = serde_json::from_str(&first).unwrap();
    other_user["user_id"] = "u2".into();
    other_user["total_amount"] = "99.00".into();
    let other_user = other_user.to_string();
    assert_eq!(
        p.place_order_message("m4", &other_user).await,
        Outcome::Parked
    );
    let parked = p.dead_letters.parked();
    assert_eq!(parked.len(), 2);
    assert_eq!(parked[0].reason_code, "ORDER_ID_REUSED");
    assert_eq!(parked[0].body, other);
    assert!(parked[0].reason.contains("items"), "{}", parked[0].reason);
    assert!(
        parked[1].reason.contains("user_id") && parked[1].reason.contains("total_amount"),
        "{}",
        parked[1].reason
    );
    assert!(
        !parked[1].reason.contains("u2") && !parked[1].reason.contains("99"),
        "names, not values"
    );
    assert_eq!(p.orders.stock("widget"), Some(9));
    assert_eq!(p.orders.stock("gadget"), Some(8));
    assert_eq!(p.payments.sent().len(), 1);
    assert_eq!(p.notifier.published().len(), 1);
}

#[tokio::test]
async fn the_order_trace_goes_on_with_the_payment_request() {
    let p = processor();
    let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let mut event = sample("single-order.json");
    event.records[0]
        .attributes
        .insert("AWSTraceHeader".into(), header.into());
    let response = p.handle_batch(event).await;
    assert!(failures(&response).is_empty());
    let traces = p.payments.traces.lock().unwrap().clone();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].as_ref().map(|t| t.as_str()), Some(header));
    // A header that is not X-Ray's shape is dropped, never a reason to fail the send.
    let q = processor();
    let mut event = sample("single-order.json");
    event.records[0]
        .attributes
        .insert("AWSTraceHeader".into(), "not a trace".into());
    assert!(failures(&q.handle_batch(event).await).is_empty());
    assert_eq!(*q.payments.traces.lock().unwrap(), [None]);
}

#[test]
fn the_metrics_emitted_are_the_catalogued_ones() {
    use telemetry::metric_catalog::{capture, emitted_by};
    let emitted = capture(async {
        // Confirmed, cancelled, a duplicate and two poison messages; then one retried.
        let p = processor();
        p.handle_batch(sample("mixed-batch.json")).await;
        p.orders
            .faults
            .fail_next("reserve", PortError::Throttled("dynamodb".into()));
        p.handle_batch(sample("single-order.json")).await;
    });
    assert_eq!(emitted.unwrap(), emitted_by("order-processor"));
}
