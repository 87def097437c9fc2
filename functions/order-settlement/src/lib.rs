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

use adapters::budget::BatchBudget;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use domain::order::{Order, OrderEvent};
use domain::ports::{Notifier, OrderSettlement, TraceHeader};
use domain::settlement::{
    parse_expiry_message, parse_payment_result, refund_needed, Settled, Settlement,
};
use domain::{Deadline, PortError};
use std::time::Duration;
use telemetry::metric_catalog as catalog;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Time kept back from the invocation's deadline to return the batch response (local work: the
/// list of failures and the post to the runtime API). Past the deadline Lambda kills the
/// invocation and SQS redelivers the whole batch, the finished messages with the rest.
pub const REPORT_RESERVE: Duration = Duration::from_secs(1);

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
    fn retried(&self) -> bool {
        matches!(
            self,
            Outcome::Invalid(_) | Outcome::Early | Outcome::Retry(_)
        )
    }
}

/// The ports and the two source queues, built once per cold start.
pub struct Settler<S, N> {
    pub orders: S,
    pub notifier: N,
    pub payment_results_queue_arn: String,
    pub expiry_queue_arn: String,
    pub clock: fn() -> OffsetDateTime,
}

impl<S: OrderSettlement, N: Notifier> Settler<S, N> {
    pub fn new(
        orders: S,
        notifier: N,
        payment_results_queue_arn: impl Into<String>,
        expiry_queue_arn: impl Into<String>,
    ) -> Self {
        Settler {
            orders,
            notifier,
            payment_results_queue_arn: payment_results_queue_arn.into(),
            expiry_queue_arn: expiry_queue_arn.into(),
            clock: OffsetDateTime::now_utc,
        }
    }

    /// Processes a batch; the response lists exactly the messages SQS must deliver again.
    pub async fn process_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        self.process_batch_by(event, None).await
    }

    /// `process_batch` with the invocation's deadline: the response is returned `REPORT_RESERVE`
    /// before it, whatever the dependencies do. No message starts once the budget is spent, and a
    /// message still running when it ends is dropped where it stands; both are reported for
    /// redelivery. A message cut midway is safe to apply again: the status change and the stock
    /// are one conditional transaction, and a repeat finds the order ended and publishes again.
    pub async fn process_batch_by(
        &self,
        event: SqsEvent,
        deadline: Option<Deadline>,
    ) -> SqsBatchResponse {
        let budget = BatchBudget::start(deadline, self.clock, REPORT_RESERVE);
        let mut response = SqsBatchResponse::default();
        // One after another: a batch may hold a result and an expiry of the same order.
        for message in &event.records {
            let retried = if !budget.time_left() {
                tracing::warn!(
                    message_id = message.message_id.as_deref().unwrap_or(""),
                    "settlement message not started: the invocation's deadline is near"
                );
                true
            } else {
                match budget.run(self.process_record(message)).await {
                    Some(outcome) => outcome.retried(),
                    None => {
                        tracing::warn!(
                            message_id = message.message_id.as_deref().unwrap_or(""),
                            "settlement message stopped at the invocation's deadline; it will be retried"
                        );
                        true
                    }
                }
            };
            if retried {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = message.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    async fn process_record(&self, message: &SqsMessage) -> Outcome {
        let id = message.message_id.as_deref().unwrap_or("");
        let body = message.body.as_deref().unwrap_or("");
        let trace = message
            .attributes
            .get("AWSTraceHeader")
            .and_then(|raw| TraceHeader::parse(raw));
        let source = message.event_source_arn.as_deref().unwrap_or("");
        let outcome = if source == self.payment_results_queue_arn {
            self.apply_payment_result(body, trace.as_ref()).await
        } else if source == self.expiry_queue_arn {
            self.apply_expiry(body, trace.as_ref()).await
        } else {
            Outcome::Invalid(format!("record from an unknown queue {source:?}"))
        };
        record(id, &outcome);
        outcome
    }

    /// The whole story of one payment result.
    pub async fn apply_payment_result(&self, body: &str, trace: Option<&TraceHeader>) -> Outcome {
        match parse_payment_result(body) {
            Ok(result) => {
                self.settle(&result.order_id, result.settlement(), trace)
                    .await
            }
            Err(reason) => Outcome::Invalid(reason.to_string()),
        }
    }

    /// The whole story of one expiry.
    pub async fn apply_expiry(&self, body: &str, trace: Option<&TraceHeader>) -> Outcome {
        let expiry = match parse_expiry_message(body) {
            Ok(expiry) => expiry,
            Err(reason) => return Outcome::Invalid(reason.to_string()),
        };
        match OffsetDateTime::parse(&expiry.expires_at, &Rfc3339) {
            Ok(due) if (self.clock)() >= due => {
                self.settle(&expiry.order_id, Settlement::Expired, trace)
                    .await
            }
            Ok(_) => Outcome::Early,
            Err(e) => Outcome::Invalid(format!("expires_at: {e}")),
        }
    }

    async fn settle(&self, order_id: &str, to: Settlement, trace: Option<&TraceHeader>) -> Outcome {
        let order = match self.orders.settle(order_id, to).await {
            Ok(Settled::Applied(order)) => order,
            Ok(Settled::Unchanged(order)) => return self.unchanged(order, to, trace).await,
            Ok(Settled::NotFound) => {
                return Outcome::Invalid("no order has this order id".to_string())
            }
            Err(e) => return Outcome::Retry(e),
        };
        if let Err(e) = self.announce(&order, trace).await {
            return Outcome::Retry(e);
        }
        match to {
            Settlement::Paid => Outcome::Paid,
            other => Outcome::Released(other),
        }
    }

    /// The order had already left `PENDING_PAYMENT`.
    async fn unchanged(
        &self,
        order: Order,
        to: Settlement,
        trace: Option<&TraceHeader>,
    ) -> Outcome {
        if to == Settlement::Paid && refund_needed(&order) {
            // The event id is stable per order: a redelivery's repeat is dropped by consumers.
            return match self
                .notifier
                .publish(&OrderEvent::refund_required(&order), trace)
                .await
            {
                Ok(()) => Outcome::RefundRequested,
                Err(e) => Outcome::Retry(e),
            };
        }
        // A repeat of the transition that applied, whose event may not have gone out yet.
        if order.status == to.status() && !order.outcome_notified {
            if let Err(e) = self.announce(&order, trace).await {
                return Outcome::Retry(e);
            }
        }
        Outcome::AlreadySettled
    }

    /// Publishes how the order ended, then records that it did.
    async fn announce(&self, order: &Order, trace: Option<&TraceHeader>) -> Result<(), PortError> {
        self.notifier
            .publish(&OrderEvent::outcome(order), trace)
            .await?;
        self.orders.mark_outcome_notified(&order.order_id).await
    }
}

/// The one place outcomes become logs and metrics.
fn record(message_id: &str, outcome: &Outcome) {
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
