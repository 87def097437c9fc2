//! order-settlement: how a pending order ends. Two SQS sources feed it, told apart by the queue a
//! record comes from:
//!
//! - **payment results** from the payment service: `SUCCEEDED` → `PAID` (`ORDER_PAID`); `FAILED` →
//!   `PAYMENT_FAILED` with the stock restored (`ORDER_CANCELLED`, reason `PAYMENT_FAILED`);
//! - **expiries** that order-processor scheduled with a delay of `PAYMENT_TIMEOUT_SECS`: a still
//!   pending order becomes `EXPIRED` with its stock restored (`ORDER_CANCELLED`, `PAYMENT_TIMEOUT`).
//!
//! Each transition is `OrderSettlement::settle`: a conditional write that happens once, the stock
//! restored in the same transaction. A success that arrives for an order that has already ended
//! without it is never dropped: it publishes `PAYMENT_REFUND_REQUIRED` and counts
//! `PaymentRefundsRequired`. A message that can never apply (malformed, unknown order, unknown
//! queue) and a failed dependency are batch item failures: SQS delivers them again and, after
//! `maxReceiveCount`, moves them to the queue's dead-letter queue (which raises an alarm).

pub mod config;

mod outcome;
mod settler;
mod telemetry;

pub use adapters::budget::REPORT_RESERVE;
pub use outcome::Outcome;
pub use settler::Settler;
