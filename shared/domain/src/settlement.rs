//! How a pending order ends: a payment result or its expiry, each applied at most once.
//!
//! An order waits in `PENDING_PAYMENT` with its stock reserved. It leaves that status exactly once:
//! `PAID` on a successful payment, `PAYMENT_FAILED` on a declined one, `EXPIRED` when no result came
//! within the payment timeout. The last two give the stock back in the same atomic write that
//! changes the status, so stock is restored once whatever is redelivered or raced. A successful
//! payment that arrives for an order that has already ended without it is never dropped: it asks
//! for a refund.

use serde::{Deserialize, Serialize};

use crate::order::{validate_id, Order, OrderStatus, PoisonReason};
use crate::validation::ValidationErrors;

/// The longest delay SQS can hold a message for (`DelaySeconds`), and so the longest payment
/// timeout an expiry message can carry.
pub const MAX_EXPIRY_DELAY_SECS: u64 = 900;

/// A transition out of `PENDING_PAYMENT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    Paid,
    PaymentFailed,
    Expired,
}

impl Settlement {
    pub fn status(&self) -> OrderStatus {
        match self {
            Settlement::Paid => OrderStatus::Paid,
            Settlement::PaymentFailed => OrderStatus::PaymentFailed,
            Settlement::Expired => OrderStatus::Expired,
        }
    }

    /// Whether this transition gives the order's stock back.
    pub fn restores_stock(&self) -> bool {
        !matches!(self, Settlement::Paid)
    }
}

/// What a settlement did to the stored order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The order was pending and now has the new status (stock restored where that applies).
    Applied(Order),
    /// The order had already left `PENDING_PAYMENT` (or never entered it): nothing changed.
    Unchanged(Order),
    /// No order has this id.
    NotFound,
}

/// Whether a successful payment for `order`, as it is now, must be refunded: the order ended
/// without the payment (its stock is back on sale).
pub fn refund_needed(order: &Order) -> bool {
    matches!(
        order.status,
        OrderStatus::Expired | OrderStatus::PaymentFailed
    )
}

/// What the payment service answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentOutcome {
    Succeeded,
    Failed,
}

/// One message on the payment results queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentResult {
    pub order_id: String,
    /// The request's idempotency key (the order id).
    pub idempotency_key: String,
    pub outcome: PaymentOutcome,
    /// The payment service's reason for a failure (a code, never card data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl PaymentResult {
    pub fn settlement(&self) -> Settlement {
        match self.outcome {
            PaymentOutcome::Succeeded => Settlement::Paid,
            PaymentOutcome::Failed => Settlement::PaymentFailed,
        }
    }
}

fn json_poison(e: &serde_json::Error) -> PoisonReason {
    PoisonReason::InvalidJson(format!("{e}"))
}

/// Parses and validates a payment result: ids as order ids are validated, the idempotency key
/// must be the order id it answers for.
pub fn parse_payment_result(body: &str) -> Result<PaymentResult, PoisonReason> {
    let result: PaymentResult = serde_json::from_str(body).map_err(|e| json_poison(&e))?;
    let mut errors = ValidationErrors::new();
    if let Err(m) = validate_id(&result.order_id) {
        errors.add("order_id", m);
    }
    if result.idempotency_key != result.order_id {
        errors.add(
            "idempotency_key",
            "must be the order id the payment was requested for",
        );
    }
    if result
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > 256)
    {
        errors.add("reason", "must be at most 256 characters");
    }
    if errors.is_empty() {
        Ok(result)
    } else {
        Err(PoisonReason::InvalidOrder(errors))
    }
}

/// The message that expires an order unless it was paid: delivered (by the queue's delay) once
/// the payment timeout has passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderExpiry {
    pub order_id: String,
    /// RFC 3339; the order's `created_at` plus the payment timeout.
    pub expires_at: String,
}

pub fn parse_expiry_message(body: &str) -> Result<OrderExpiry, PoisonReason> {
    let expiry: OrderExpiry = serde_json::from_str(body).map_err(|e| json_poison(&e))?;
    let mut errors = ValidationErrors::new();
    if let Err(m) = validate_id(&expiry.order_id) {
        errors.add("order_id", m);
    }
    let parsed = time::OffsetDateTime::parse(
        &expiry.expires_at,
        &time::format_description::well_known::Rfc3339,
    );
    if parsed.is_err() {
        errors.add("expires_at", "must be an RFC 3339 time");
    }
    if errors.is_empty() {
        Ok(expiry)
    } else {
        Err(PoisonReason::InvalidOrder(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_payment_failures_and_expiries_restore_stock() {
        assert!(!Settlement::Paid.restores_stock());
        assert!(Settlement::PaymentFailed.restores_stock());
        assert!(Settlement::Expired.restores_stock());
        assert_eq!(Settlement::Expired.status(), OrderStatus::Expired);
    }

    #[test]
    fn payment_results_are_validated() {
        let ok = parse_payment_result(
            r#"{"order_id":"o1","idempotency_key":"o1","outcome":"SUCCEEDED"}"#,
        )
        .unwrap();
        assert_eq!(ok.settlement(), Settlement::Paid);
        let failed = parse_payment_result(
            r#"{"order_id":"o1","idempotency_key":"o1","outcome":"FAILED","reason":"CARD_DECLINED"}"#,
        )
        .unwrap();
        assert_eq!(failed.settlement(), Settlement::PaymentFailed);
        assert_eq!(
            parse_payment_result(r#"{"order_id":"o1","idempotency_key":"o2","outcome":"FAILED"}"#)
                .unwrap_err()
                .code(),
            "INVALID_ORDER"
        );
        for bad in [
            "{",
            r#"{"order_id":"o1","idempotency_key":"o1","outcome":"MAYBE"}"#,
            r#"{"order_id":"o1","outcome":"SUCCEEDED"}"#,
        ] {
            assert_eq!(
                parse_payment_result(bad).unwrap_err().code(),
                "INVALID_JSON",
                "{bad}"
            );
        }
    }

    #[test]
    fn expiry_messages_are_validated() {
        assert!(
            parse_expiry_message(r#"{"order_id":"o1","expires_at":"2026-12-01T10:15:00Z"}"#)
                .is_ok()
        );
        assert_eq!(
            parse_expiry_message(r#"{"order_id":"","expires_at":"soon"}"#)
                .unwrap_err()
                .code(),
            "INVALID_ORDER"
        );
    }
}
