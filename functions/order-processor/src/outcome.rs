//! What happened to one message: what placing an order returns, and what `telemetry` records.

use domain::PortError;

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stock reserved, order pending payment, expiry scheduled, payment requested, event published.
    Reserved,
    /// Not enough stock: recorded as cancelled and announced; nothing deducted.
    Cancelled,
    /// The order already existed: nothing deducted again; missing side effects finished.
    AlreadyProcessed,
    /// Can never succeed: parked on the dead-letter queue and acknowledged.
    Parked,
    /// A dependency failed; SQS should redeliver this message.
    Retry(PortError),
}

impl Outcome {
    /// The outcome's name in spans and log lines.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Reserved => "reserved",
            Outcome::Cancelled => "cancelled",
            Outcome::AlreadyProcessed => "already processed",
            Outcome::Parked => "parked",
            Outcome::Retry(_) => "retry",
        }
    }
}
