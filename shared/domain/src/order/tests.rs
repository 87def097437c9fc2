//! Orders end to end: money, message validation, the record and what it sends.

use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::*;

#[test]
fn money_is_exact() {
    assert_eq!(Money::parse_decimal("59.90"), Ok(Money(5990)));
    assert_eq!(Money::parse_decimal("59.9"), Ok(Money(5990)));
    assert_eq!(Money::parse_decimal("59"), Ok(Money(5900)));
    assert_eq!(Money::parse_decimal("0.07"), Ok(Money(7)));
    assert_eq!(Money::parse_decimal("0.10").unwrap().to_string(), "0.10");
    for bad in [
        "59.901",
        "-1",
        "1e3",
        "",
        ".5",
        "5.",
        "1,00",
        " 5",
        "NaN",
        "99999999999999999",
    ] {
        assert!(Money::parse_decimal(bad).is_err(), "{bad}");
    }
}

#[test]
fn total_as_number_or_string() {
    let n = parse_order_message(r#"{"order_id":"o1","user_id":"u1","items":[{"product_id":"p","quantity":2}],"total_amount":59.90}"#).unwrap();
    let s = parse_order_message(r#"{"order_id":"o1","user_id":"u1","items":[{"product_id":"p","quantity":2}],"total_amount":"59.90"}"#).unwrap();
    assert_eq!(n.total, Money(5990));
    assert_eq!(n, s);
    // 0.1 + 0.2 style inputs stay exact: 1234567.89 as f64 would print 1234567.8899999999.
    let big = parse_order_message(r#"{"order_id":"o","user_id":"u","items":[{"product_id":"p","quantity":1}],"total_amount":1234567.89}"#).unwrap();
    assert_eq!(big.total, Money(123456789));
}

#[test]
fn invalid_json_is_poison() {
    let e = parse_order_message("{not json").unwrap_err();
    assert_eq!(e.code(), "INVALID_JSON");
    let e = parse_order_message("[1]").unwrap_err();
    assert_eq!(e.code(), "INVALID_JSON");
}

fn invalid_fields(body: &str) -> Vec<String> {
    match parse_order_message(body) {
        Err(PoisonReason::InvalidOrder(e)) => e.errors.into_iter().map(|f| f.field).collect(),
        other => panic!("expected invalid order, got {other:?}"),
    }
}

#[test]
fn schema_rules_name_their_fields() {
    assert_eq!(
        invalid_fields("{}"),
        ["order_id", "user_id", "items", "total_amount"]
    );
    assert_eq!(
        invalid_fields(r#"{"order_id":"","user_id":7,"items":[],"total_amount":"1.234"}"#),
        ["order_id", "user_id", "items", "total_amount"]
    );
    assert_eq!(
        invalid_fields(
            r#"{"order_id":"o","user_id":"u","items":[{"product_id":"a","quantity":0},{"product_id":"b","quantity":1001},{"product_id":"a","quantity":1},{"quantity":1},5],"total_amount":1}"#
        ),
        [
            "items[0].quantity",
            "items[1].quantity",
            "items[2].product_id",
            "items[3].product_id",
            "items[4]"
        ]
    );
    let many: Vec<String> = (0..51)
        .map(|i| format!(r#"{{"product_id":"p{i}","quantity":1}}"#))
        .collect();
    let body = format!(
        r#"{{"order_id":"o","user_id":"u","items":[{}],"total_amount":1}}"#,
        many.join(",")
    );
    assert_eq!(invalid_fields(&body), ["items"]);
    let long = "x".repeat(129);
    assert_eq!(
        invalid_fields(&format!(
            r#"{{"order_id":"{long}","user_id":"u v","items":[{{"product_id":"p","quantity":1}}],"total_amount":true}}"#
        )),
        ["order_id", "user_id", "total_amount"]
    );
}

#[test]
fn side_effects_follow_status_and_progress() {
    let req = parse_order_message(r#"{"order_id":"o1","user_id":"u1","items":[{"product_id":"p","quantity":2}],"total_amount":"10"}"#).unwrap();
    let mut confirmed = Order::new(&req, OrderStatus::PendingPayment, vec![], "t".into());
    assert!(confirmed.needs_payment() && confirmed.needs_notification());
    confirmed.payment_requested = true;
    assert!(!confirmed.needs_payment());
    // Once the order has ended no payment is requested, recorded or not.
    let mut expired = confirmed.clone();
    expired.payment_requested = false;
    expired.status = OrderStatus::Expired;
    assert!(!expired.needs_payment());
    let cancelled = Order::new(
        &req,
        OrderStatus::CancelledInsufficientInventory,
        vec!["p".into()],
        "t".into(),
    );
    assert!(!cancelled.needs_payment());
    assert_eq!(cancelled.event_id(), "ORDER_CANCELLED:o1");
    assert_eq!(
        OrderEvent::for_order(&cancelled).event_type,
        EventType::OrderCancelled
    );
    let payment = PaymentRequest::for_order(&confirmed);
    assert_eq!(payment.amount, "10.00");
    assert_eq!(payment.idempotency_key, "o1");
}

fn stored(created_at: &str) -> Order {
    let request = OrderRequest {
        order_id: "o1".into(),
        user_id: "u1".into(),
        items: vec![
            OrderLine {
                product_id: "a".into(),
                quantity: 1,
            },
            OrderLine {
                product_id: "b".into(),
                quantity: 2,
            },
        ],
        total: Money(500),
    };
    Order::new(
        &request,
        OrderStatus::PendingPayment,
        Vec::new(),
        created_at.into(),
    )
}

#[test]
fn a_pending_order_expires_its_timeout_after_creation() {
    let order = stored("2026-12-01T10:00:00Z");
    let at = |t: &str| OffsetDateTime::parse(t, &Rfc3339).unwrap();
    assert_eq!(
        order.expires_at(Duration::from_secs(900)),
        Some(at("2026-12-01T10:15:00Z"))
    );
    assert_eq!(
        stored("yesterday").expires_at(Duration::from_secs(900)),
        None
    );
}

#[test]
fn every_status_round_trips_and_names_its_event() {
    for status in [
        OrderStatus::PendingPayment,
        OrderStatus::Paid,
        OrderStatus::PaymentFailed,
        OrderStatus::Expired,
        OrderStatus::CancelledInsufficientInventory,
    ] {
        assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(json, format!("\"{}\"", status.as_str()));
    }
    assert_eq!(OrderStatus::parse("CONFIRMED"), None);
    let mut order = stored("2026-12-01T10:00:00Z");
    order.status = OrderStatus::Expired;
    let event = OrderEvent::outcome(&order);
    assert_eq!(event.event_type, EventType::OrderCancelled);
    assert_eq!(event.reason.as_deref(), Some("PAYMENT_TIMEOUT"));
    assert_eq!(event.event_id, "ORDER_CANCELLED:o1");
    // The first event of the same order stays ORDER_CREATED, with its own id.
    assert_eq!(OrderEvent::for_order(&order).event_id, "ORDER_CREATED:o1");
    let refund = OrderEvent::refund_required(&order);
    assert_eq!(refund.event_type.as_str(), "PAYMENT_REFUND_REQUIRED");
    assert_eq!(refund.reason.as_deref(), Some("PAID_WHILE_EXPIRED"));
    order.status = OrderStatus::Paid;
    assert_eq!(OrderEvent::outcome(&order).event_id, "ORDER_PAID:o1");
    assert_eq!(OrderEvent::outcome(&order).reason, None);
}

#[test]
fn differences_name_fields_and_ignore_line_order() {
    let order = stored("2026-12-01T10:00:00Z");
    let mut request = OrderRequest {
        order_id: "o1".into(),
        user_id: "u1".into(),
        items: vec![
            OrderLine {
                product_id: "b".into(),
                quantity: 2,
            },
            OrderLine {
                product_id: "a".into(),
                quantity: 1,
            },
        ],
        total: Money(500),
    };
    assert!(order.differences_from(&request).is_empty());
    request.items[0].quantity = 3;
    request.user_id = "u2".into();
    request.total = Money(501);
    assert_eq!(
        order.differences_from(&request),
        ["user_id", "items", "total_amount"]
    );
    let reason = ParkReason::OrderIdReused(order.differences_from(&request));
    assert_eq!(reason.code(), "ORDER_ID_REUSED");
    assert!(!reason.to_string().contains("u2"));
}
