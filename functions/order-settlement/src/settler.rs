//! A batch of payment results and expiries, one message after another within the invocation's
//! deadline: each a conditional transition of its order (stock restored in the same transaction
//! when it ends unpaid), announced once applied.

use adapters::budget::{BatchBudget, REPORT_RESERVE};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use domain::order::{Order, OrderEvent};
use domain::ports::{Notifier, OrderSettlement, TraceHeader};
use domain::settlement::{
    parse_expiry_message, parse_payment_result, refund_needed, Settled, Settlement,
};
use domain::{Deadline, PortError};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::outcome::Outcome;
use crate::telemetry;

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
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        self.handle_batch_within(event, None).await
    }

    /// `handle_batch` with the invocation's deadline: the response is returned `REPORT_RESERVE`
    /// before it, whatever the dependencies do. No message starts once the budget is spent, and a
    /// message still running when it ends is dropped where it stands; both are reported for
    /// redelivery. A message cut midway is safe to apply again: the status change and the stock
    /// are one conditional transaction, and a repeat finds the order ended and publishes again.
    pub async fn handle_batch_within(
        &self,
        event: SqsEvent,
        deadline: Option<Deadline>,
    ) -> SqsBatchResponse {
        let budget = BatchBudget::start(deadline, self.clock, REPORT_RESERVE);
        let mut response = SqsBatchResponse::default();
        // One after another: a batch may hold a result and an expiry of the same order.
        for message in &event.records {
            let retried = if !budget.time_left() {
                telemetry::not_started(message.message_id.as_deref().unwrap_or(""));
                true
            } else {
                match budget.run(self.handle_record(message)).await {
                    Some(outcome) => outcome.retried(),
                    None => {
                        telemetry::stopped_at_deadline(message.message_id.as_deref().unwrap_or(""));
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

    /// One message, told apart by its source queue, applied, and its outcome recorded.
    async fn handle_record(&self, message: &SqsMessage) -> Outcome {
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
        telemetry::record(id, &outcome);
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
