//! The order record: its status through its life, the side effects it still owes (payment
//! request, event), how it compares with a redelivered message, and what the reservation did.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::event_type::{event_id, EventType};
use super::message::{OrderLine, OrderRequest};
use super::money::Money;

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
