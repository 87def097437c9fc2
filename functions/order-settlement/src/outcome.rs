//! What happened to one message: what settling returns, and what `telemetry` records.

use domain::settlement::Settlement;
use domain::PortError;

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The order is now `PAID` and announced.
    Paid,
    /// The order ended without payment (`PAYMENT_FAILED`, `EXPIRED`), its stock restored, announced.
    Released(Settlement),
    /// A payment succeeded for an order that had already ended: a refund was asked for.
    RefundRequested,
    /// The order had already ended this way or another: nothing changed (a repeat, or an expiry
    /// that lost to the payment).
    AlreadySettled,
    /// Can never apply; delivered again until the queue moves it to its dead-letter queue.
    Invalid(String),
    /// An expiry that arrived before its time; delivered again after the visibility timeout.
    Early,
    /// A dependency failed; SQS should deliver this message again.
    Retry(PortError),
}

impl Outcome {
    /// Whether SQS must deliver the message again.
    pub fn retried(&self) -> bool {
        matches!(
            self,
            Outcome::Invalid(_) | Outcome::Early | Outcome::Retry(_)
        )
    }
}
