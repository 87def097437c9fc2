//! order-processor: SQS batches of orders → one DynamoDB transaction per order (deduct every line and
//! store the order as `PENDING_PAYMENT`) → expiry scheduled → payment request → `ORDER_CREATED`
//! event. Correct under redelivery, duplicates and concurrency: the transaction is the only place
//! stock is deducted, and it refuses an order id it has seen. How a pending order ends (paid,
//! payment failed, expired) is order-settlement's work.
//!
//! Per message: poison (invalid JSON or order) is parked on the dead-letter queue with its reason and
//! acknowledged; a transient failure is reported in `batchItemFailures` so SQS redelivers only that
//! message; a redelivered order finishes only the side effects its record says are not yet done.
//!
//! A payment request is sent again on every delivery until its flag is recorded, for as long as the
//! order is pending: it carries an idempotency key (the order id) by which the payment service
//! deduplicates, so a repeat never charges twice (the FIFO queue's 5-minute deduplication is a
//! first line only). An order id already stored for a different order is parked (not applied).

pub mod config;

mod batch;
mod outcome;
mod place;
mod processor;
mod telemetry;

pub use adapters::budget::REPORT_RESERVE;
pub use outcome::Outcome;
pub use processor::{ExpiryNotScheduled, Processor, DEFAULT_PAYMENT_TIMEOUT};
