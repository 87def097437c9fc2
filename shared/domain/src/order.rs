//! Orders: the SQS message, exact money, validation and the order record with its side-effect progress.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::HashSet;
use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::validation::ValidationErrors;

pub const MAX_ITEMS: usize = 50;
pub const MAX_QUANTITY: u32 = 1000;
pub const MAX_ID_CHARS: usize = 128;
/// Ten billion in major units: far above any real order, far below `i64` overflow.
pub const MAX_MINOR_UNITS: i64 = 1_000_000_000_000;

/// An amount of money in minor units (cents). Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Money(pub i64);

impl Money {
    /// Parses `59.90`, `"59.90"`, `59.9`, `59` (at most two decimals, no sign, no exponent).
    pub fn parse_decimal(text: &str) -> Result<Money, String> {
        const FORMAT: &str = "must be a non-negative amount with at most 2 decimals, like 59.90";
        let (whole, fraction) = match text.split_once('.') {
            Some((w, f)) => (w, f),
            None => (text, ""),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (text.contains('.') && !digits(fraction)) || fraction.len() > 2 {
            return Err(FORMAT.into());
        }
        if whole.len() > 15 {
            return Err("is too large".into());
        }
        let whole: i64 = whole.parse().map_err(|_| FORMAT.to_string())?;
        let cents: i64 = match fraction.len() {
            0 => 0,
            1 => fraction.parse::<i64>().map_err(|_| FORMAT.to_string())? * 10,
            _ => fraction.parse::<i64>().map_err(|_| FORMAT.to_string())?,
        };
        let minor = whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(cents))
            .filter(|m| *m <= MAX_MINOR_UNITS)
            .ok_or_else(|| "is too large".to_string())?;
        Ok(Money(minor))
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: String,
    pub quantity: u32,
}

/// A validated order request, as parsed from one SQS message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    pub order_id: String,
    pub user_id: String,
    pub items: Vec<OrderLine>,
    pub total: Money,
}

#[derive(Deserialize)]
struct WireOrder<'a> {
    order_id: Option<serde_json::Value>,
    user_id: Option<serde_json::Value>,
    items: Option<serde_json::Value>,
    #[serde(borrow)]
    total_amount: Option<&'a RawValue>,
}

/// Why a message can never be processed (it goes to the dead-letter queue, not back to the queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoisonReason {
    InvalidJson(String),
    InvalidOrder(ValidationErrors),
}

impl PoisonReason {
    pub fn code(&self) -> &'static str {
        match self {
            PoisonReason::InvalidJson(_) => "INVALID_JSON",
            PoisonReason::InvalidOrder(_) => "INVALID_ORDER",
        }
    }
}

impl std::fmt::Display for PoisonReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PoisonReason::InvalidJson(m) => write!(f, "message body is not valid JSON: {m}"),
            PoisonReason::InvalidOrder(e) => write!(f, "invalid order: {e}"),
        }
    }
}

/// Parses and validates one order message. Unknown fields are ignored (producers may add some).
pub fn parse_order_message(body: &str) -> Result<OrderRequest, PoisonReason> {
    let wire: WireOrder = serde_json::from_str(body).map_err(|e| {
        PoisonReason::InvalidJson(format!(
            "{} at line {}, column {}",
            classify(&e),
            e.line(),
            e.column()
        ))
    })?;
    let mut errors = ValidationErrors::new();
    let order_id = id_field(wire.order_id.as_ref(), "order_id", &mut errors);
    let user_id = id_field(wire.user_id.as_ref(), "user_id", &mut errors);
    let items = items_field(wire.items.as_ref(), &mut errors);
    let total = match wire.total_amount {
        None => {
            errors.add("total_amount", "is required");
            None
        }
        Some(raw) => {
            let text = raw.get();
            let parsed =
                if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                    Money::parse_decimal(inner)
                } else if text.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
                    Money::parse_decimal(text)
                } else {
                    Err("must be a number or a string holding a decimal amount".to_string())
                };
            match parsed {
                Ok(m) => Some(m),
                Err(message) => {
                    errors.add("total_amount", message);
                    None
                }
            }
        }
    };
    match (order_id, user_id, items, total) {
        (Some(order_id), Some(user_id), Some(items), Some(total)) if errors.is_empty() => {
            Ok(OrderRequest {
                order_id,
                user_id,
                items,
                total,
            })
        }
        _ => Err(PoisonReason::InvalidOrder(errors)),
    }
}

fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Data => "not an order object",
        serde_json::error::Category::Eof => "unexpected end of input",
        _ => "syntax error",
    }
}

fn id_field(
    value: Option<&serde_json::Value>,
    field: &str,
    errors: &mut ValidationErrors,
) -> Option<String> {
    match value {
        None | Some(serde_json::Value::Null) => {
            errors.add(field, "is required");
            None
        }
        Some(serde_json::Value::String(s)) => match validate_id(s) {
            Ok(()) => Some(s.clone()),
            Err(m) => {
                errors.add(field, m);
                None
            }
        },
        Some(_) => {
            errors.add(field, "must be a string");
            None
        }
    }
}

/// Ids are 1–128 visible characters (they become DynamoDB keys and SQS deduplication ids).
pub fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.chars().count() > MAX_ID_CHARS {
        return Err(format!("must be at most {MAX_ID_CHARS} characters"));
    }
    if !id.chars().all(|c| c.is_ascii_graphic()) {
        return Err("must contain only visible ASCII characters".into());
    }
    Ok(())
}

fn items_field(
    value: Option<&serde_json::Value>,
    errors: &mut ValidationErrors,
) -> Option<Vec<OrderLine>> {
    let list = match value {
        Some(serde_json::Value::Array(list)) => list,
        None | Some(serde_json::Value::Null) => {
            errors.add("items", "is required");
            return None;
        }
        Some(_) => {
            errors.add("items", "must be an array");
            return None;
        }
    };
    if list.is_empty() || list.len() > MAX_ITEMS {
        errors.add("items", format!("must hold 1 to {MAX_ITEMS} items"));
        return None;
    }
    let mut lines = Vec::with_capacity(list.len());
    let mut seen = HashSet::new();
    let before = errors.errors.len();
    for (i, item) in list.iter().enumerate() {
        let at = |f: &str| format!("items[{i}].{f}");
        let Some(obj) = item.as_object() else {
            errors.add(&format!("items[{i}]"), "must be an object");
            continue;
        };
        let product_id = id_field(obj.get("product_id"), &at("product_id"), errors);
        let quantity = match obj.get("quantity").and_then(|q| q.as_u64()) {
            Some(q) if (1..=u64::from(MAX_QUANTITY)).contains(&q) => Some(q as u32),
            _ => {
                errors.add(
                    &at("quantity"),
                    format!("must be a whole number from 1 to {MAX_QUANTITY}"),
                );
                None
            }
        };
        if let Some(pid) = &product_id {
            if !seen.insert(pid.clone()) {
                errors.add(&at("product_id"), "appears more than once in the order");
            }
        }
        if let (Some(product_id), Some(quantity)) = (product_id, quantity) {
            lines.push(OrderLine {
                product_id,
                quantity,
            });
        }
    }
    (errors.errors.len() == before).then_some(lines)
}

/// Where an order is in its life. An order is created either `PendingPayment` (stock reserved,
/// payment requested) or `CancelledInsufficientInventory` (nothing reserved); a pending order ends
/// exactly once, as `Paid`, `PaymentFailed` or `Expired` (the last two give its stock back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    PaymentFailed,
    Expired,
    CancelledInsufficientInventory,
}

impl OrderStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "PENDING_PAYMENT",
            OrderStatus::Paid => "PAID",
            OrderStatus::PaymentFailed => "PAYMENT_FAILED",
            OrderStatus::Expired => "EXPIRED",
            OrderStatus::CancelledInsufficientInventory => "CANCELLED_INSUFFICIENT_INVENTORY",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        [
            OrderStatus::PendingPayment,
            OrderStatus::Paid,
            OrderStatus::PaymentFailed,
            OrderStatus::Expired,
            OrderStatus::CancelledInsufficientInventory,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }

    /// Why an order in this status is cancelled (`None` when it is not cancelled).
    pub fn cancel_reason(&self) -> Option<&'static str> {
        match self {
            OrderStatus::CancelledInsufficientInventory => Some("INSUFFICIENT_INVENTORY"),
            OrderStatus::PaymentFailed => Some("PAYMENT_FAILED"),
            OrderStatus::Expired => Some("PAYMENT_TIMEOUT"),
            OrderStatus::PendingPayment | OrderStatus::Paid => None,
        }
    }

    /// The event announcing that an order reached this status.
    pub fn event_type(&self) -> EventType {
        match self {
            OrderStatus::PendingPayment => EventType::OrderCreated,
            OrderStatus::Paid => EventType::OrderPaid,
            OrderStatus::PaymentFailed
            | OrderStatus::Expired
            | OrderStatus::CancelledInsufficientInventory => EventType::OrderCancelled,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    OrderCreated,
    OrderPaid,
    OrderCancelled,
    /// A payment succeeded for an order that had already ended without it: the money must go back.
    PaymentRefundRequired,
}

impl EventType {
    pub fn as_str(&self) -> &'static str {
        match self {
            EventType::OrderCreated => "ORDER_CREATED",
            EventType::OrderPaid => "ORDER_PAID",
            EventType::OrderCancelled => "ORDER_CANCELLED",
            EventType::PaymentRefundRequired => "PAYMENT_REFUND_REQUIRED",
        }
    }
}

/// The stored order, including which side effects are done (so a redelivery finishes only the rest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub user_id: String,
    pub items: Vec<OrderLine>,
    pub total: Money,
    pub status: OrderStatus,
    /// Products whose stock could not cover the order (cancelled orders only).
    pub short_items: Vec<String>,
    pub created_at: String,
    pub payment_requested: bool,
    /// The order's first event (`ORDER_CREATED`, or `ORDER_CANCELLED` for short stock) is published.
    pub notification_sent: bool,
    /// The event of how a pending order ended (`ORDER_PAID` or `ORDER_CANCELLED`) is published.
    pub outcome_notified: bool,
}

impl Order {
    pub fn new(
        request: &OrderRequest,
        status: OrderStatus,
        short_items: Vec<String>,
        created_at: String,
    ) -> Order {
        Order {
            order_id: request.order_id.clone(),
            user_id: request.user_id.clone(),
            items: request.items.clone(),
            total: request.total,
            status,
            short_items,
            created_at,
            payment_requested: false,
            notification_sent: false,
            outcome_notified: false,
        }
    }

    /// A payment request is due while the order waits for its payment and none is recorded as
    /// sent. It is sent again on every redelivery until recorded: the payment service
    /// deduplicates by the idempotency key (the order id), so a repeat never charges twice.
    pub fn needs_payment(&self) -> bool {
        self.status == OrderStatus::PendingPayment && !self.payment_requested
    }

    pub fn needs_notification(&self) -> bool {
        !self.notification_sent
    }

    /// The type of the order's first event: created, or cancelled for short stock.
    pub fn first_event_type(&self) -> EventType {
        match self.status {
            OrderStatus::CancelledInsufficientInventory => EventType::OrderCancelled,
            _ => EventType::OrderCreated,
        }
    }

    /// The id of the order's first event. Stable per order and event type, so consumers can drop
    /// duplicates.
    pub fn event_id(&self) -> String {
        event_id(self.first_event_type(), &self.order_id)
    }

    /// When a pending order expires unless paid: `created_at + timeout` (`None` when `created_at`
    /// cannot be read).
    pub fn expires_at(&self, timeout: Duration) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(&self.created_at, &Rfc3339)
            .ok()
            .map(|created| created + timeout)
    }

    /// The fields in which `request` differs from this stored order (empty when it is the same
    /// order: same user, same lines in any order, same total). Names only, never values.
    pub fn differences_from(&self, request: &OrderRequest) -> Vec<&'static str> {
        fn sorted(lines: &[OrderLine]) -> Vec<(&str, u32)> {
            let mut lines: Vec<(&str, u32)> = lines
                .iter()
                .map(|l| (l.product_id.as_str(), l.quantity))
                .collect();
            lines.sort_unstable();
            lines
        }
        let mut differ = Vec::new();
        if self.user_id != request.user_id {
            differ.push("user_id");
        }
        if sorted(&self.items) != sorted(&request.items) {
            differ.push("items");
        }
        if self.total != request.total {
            differ.push("total_amount");
        }
        differ
    }
}

fn event_id(event_type: EventType, order_id: &str) -> String {
    format!("{}:{order_id}", event_type.as_str())
}

/// Why an order was parked after it passed validation (reason code, reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParkReason {
    /// The order id is already stored for a different order: this message was not applied.
    OrderIdReused(Vec<&'static str>),
}

impl ParkReason {
    pub fn code(&self) -> &'static str {
        match self {
            ParkReason::OrderIdReused(_) => "ORDER_ID_REUSED",
        }
    }
}

impl std::fmt::Display for ParkReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParkReason::OrderIdReused(fields) => write!(
                f,
                "order id already names a different order (differs in {}); this message was not applied",
                fields.join(", ")
            ),
        }
    }
}

/// The message sent to the payment queue. The payment service must charge at most once per
/// `idempotency_key` (the order id), however many times the request arrives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRequest {
    pub order_id: String,
    pub idempotency_key: String,
    pub user_id: String,
    /// Minor units (cents).
    pub amount_minor: i64,
    pub amount: String,
}

impl PaymentRequest {
    pub fn for_order(order: &Order) -> PaymentRequest {
        PaymentRequest {
            order_id: order.order_id.clone(),
            idempotency_key: order.order_id.clone(),
            user_id: order.user_id.clone(),
            amount_minor: order.total.0,
            amount: order.total.to_string(),
        }
    }
}

/// The notification published for subscribers (filterable by `event_type`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub event_id: String,
    pub event_type: EventType,
    pub order_id: String,
    pub user_id: String,
    pub status: OrderStatus,
    /// Why the order was cancelled or needs a refund (`None` for created and paid orders).
    pub reason: Option<String>,
    pub total: String,
    pub items: Vec<OrderLine>,
    pub short_items: Vec<String>,
}

impl OrderEvent {
    fn of(
        order: &Order,
        event_type: EventType,
        status: OrderStatus,
        reason: Option<String>,
    ) -> Self {
        OrderEvent {
            event_id: event_id(event_type, &order.order_id),
            event_type,
            order_id: order.order_id.clone(),
            user_id: order.user_id.clone(),
            status,
            reason,
            total: order.total.to_string(),
            items: order.items.clone(),
            short_items: order.short_items.clone(),
        }
    }

    /// The order's first event: `ORDER_CREATED` (pending payment), or `ORDER_CANCELLED` for short stock.
    pub fn for_order(order: &Order) -> OrderEvent {
        let status = match order.status {
            OrderStatus::CancelledInsufficientInventory => order.status,
            _ => OrderStatus::PendingPayment,
        };
        OrderEvent::of(
            order,
            order.first_event_type(),
            status,
            status.cancel_reason().map(str::to_string),
        )
    }

    /// How a pending order ended: `ORDER_PAID`, or `ORDER_CANCELLED` with its reason.
    pub fn outcome(order: &Order) -> OrderEvent {
        OrderEvent::of(
            order,
            order.status.event_type(),
            order.status,
            order.status.cancel_reason().map(str::to_string),
        )
    }

    /// A payment succeeded for an order that had already ended without it (`EXPIRED`,
    /// `PAYMENT_FAILED`): the money must be refunded.
    pub fn refund_required(order: &Order) -> OrderEvent {
        OrderEvent::of(
            order,
            EventType::PaymentRefundRequired,
            order.status,
            Some(format!("PAID_WHILE_{}", order.status.as_str())),
        )
    }
}

/// What the atomic reservation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Stock deducted for every line and the order stored, in one transaction.
    Reserved,
    /// The order id is already stored: nothing was deducted now.
    AlreadyExists,
    /// These products lack stock (or do not exist): nothing was deducted.
    InsufficientStock(Vec<String>),
}

#[cfg(test)]
mod tests {
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
}
