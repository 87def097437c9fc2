//! The kinds of order event, and the stable id each event of an order gets.

use serde::{Deserialize, Serialize};

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

pub(crate) fn event_id(event_type: EventType, order_id: &str) -> String {
    format!("{}:{order_id}", event_type.as_str())
}
