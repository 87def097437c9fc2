//! What an order sends out: the payment request (keyed by the order id) and the order events,
//! each with a stable event id so a repeat is recognised downstream.

use serde::{Deserialize, Serialize};

use super::event_type::{event_id, EventType};
use super::message::OrderLine;
use super::record::{Order, OrderStatus};

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
