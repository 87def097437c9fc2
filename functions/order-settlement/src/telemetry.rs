//! What one settlement message leaves behind: the order metrics by outcome and the log line; and
//! for a batch cut by the deadline, the messages not started or stopped.

use telemetry::metric_catalog as catalog;

use crate::outcome::Outcome;

/// The one place outcomes become logs and metrics.
pub(crate) fn record(message_id: &str, outcome: &Outcome) {
    match outcome {
        Outcome::Paid => metrics::counter!(catalog::ORDERS_PAID).increment(1),
        Outcome::Released(to) => {
            let reason = to.status().cancel_reason().unwrap_or("UNKNOWN");
            metrics::counter!(catalog::ORDERS_RELEASED, catalog::REASON => reason).increment(1)
        }
        Outcome::RefundRequested => {
            metrics::counter!(catalog::PAYMENT_REFUNDS_REQUIRED).increment(1)
        }
        Outcome::AlreadySettled => {}
        Outcome::Invalid(_) => {
            metrics::counter!(catalog::SETTLEMENT_MESSAGES_FAILED, catalog::REASON => "INVALID_MESSAGE")
                .increment(1)
        }
        Outcome::Early => {
            metrics::counter!(catalog::SETTLEMENT_MESSAGES_FAILED, catalog::REASON => "EARLY_EXPIRY")
                .increment(1)
        }
        Outcome::Retry(_) => {
            metrics::counter!(catalog::SETTLEMENT_MESSAGES_FAILED, catalog::REASON => "DEPENDENCY")
                .increment(1)
        }
    }
    match outcome {
        Outcome::Invalid(reason) => {
            tracing::error!(message_id, reason = %reason, "settlement message can never apply")
        }
        Outcome::Retry(e) => {
            tracing::warn!(message_id, error = %e, "settlement message will be retried")
        }
        Outcome::RefundRequested => {
            tracing::warn!(
                message_id,
                "payment succeeded for an order that had ended: refund requested"
            )
        }
        other => tracing::info!(message_id, outcome = ?other, "settlement message processed"),
    }
}

/// A message not started because the invocation's deadline is near: reported for redelivery.
pub(crate) fn not_started(message_id: &str) {
    tracing::warn!(
        message_id,
        "settlement message not started: the invocation's deadline is near"
    );
}

/// A message stopped where it stood at the invocation's deadline: reported for redelivery.
pub(crate) fn stopped_at_deadline(message_id: &str) {
    tracing::warn!(
        message_id,
        "settlement message stopped at the invocation's deadline; it will be retried"
    );
}
