//! A batch of order messages: copies of one order one after another, different orders at once,
//! within the invocation's deadline; the response lists exactly the messages SQS must deliver again.

use adapters::budget::{BatchBudget, REPORT_RESERVE};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use domain::order::parse_order_message;
use domain::ports::{DeadLetters, ExpiryQueue, Notifier, OrderStore, PaymentQueue, TraceHeader};
use domain::{Deadline, PortError};
use futures::future::join_all;
use tracing::Instrument;

use crate::outcome::Outcome;
use crate::place::Parsed;
use crate::processor::Processor;
use crate::telemetry::{self, OrderSpan};

impl<O, P, N, D, E> Processor<O, P, N, D, E>
where
    O: OrderStore,
    P: PaymentQueue,
    N: Notifier,
    D: DeadLetters,
    E: ExpiryQueue,
{
    /// Processes a batch; the response lists exactly the messages SQS must deliver again.
    ///
    /// Different orders run concurrently; copies of one order (duplicates in the same batch) run one
    /// after another, so the second sees the first's recorded side effects and repeats none.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        self.handle_batch_within(event, None).await
    }

    /// `handle_batch` with the invocation's deadline: the response is returned `REPORT_RESERVE`
    /// before it, whatever the dependencies do.
    ///
    /// No message starts once the budget is spent (by `clock` or by the runtime's timer); a message
    /// still running when it ends is dropped where it stands. Both are reported for redelivery. A
    /// message cut midway is safe to run again: the stock and the order are written by one
    /// transaction conditional on the order id being new (a redelivery finds the order and only
    /// finishes what its record says is not done), the payment request is deduplicated by the
    /// payment queue on the order id, and the order event is delivered at least once, as always.
    pub async fn handle_batch_within(
        &self,
        event: SqsEvent,
        deadline: Option<Deadline>,
    ) -> SqsBatchResponse {
        let budget = BatchBudget::start(deadline, self.clock, REPORT_RESERVE);
        // Each body is parsed once: the order id groups copies, and the parsed order is processed.
        let mut groups: Vec<(String, Vec<(&SqsMessage, Parsed)>)> = Vec::new();
        for (index, message) in event.records.iter().enumerate() {
            let parsed = parse_order_message(message.body.as_deref().unwrap_or(""));
            let key = match &parsed {
                Ok(request) => request.order_id.clone(),
                Err(_) => format!("unparsable message #{index}"),
            };
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push((message, parsed)),
                None => groups.push((key, vec![(message, parsed)])),
            }
        }
        let budget = &budget;
        let results = join_all(groups.into_iter().map(|(_, members)| async move {
            let mut failed = Vec::new();
            for (message, parsed) in members {
                let id = message.message_id.as_deref().unwrap_or("");
                if !budget.time_left() {
                    telemetry::not_started(id);
                    failed.push(failure(message));
                    continue;
                }
                let outcome = match budget.run(self.handle_record(message, parsed)).await {
                    Some(outcome) => outcome,
                    None => {
                        telemetry::stopped_at_deadline(id);
                        Outcome::Retry(PortError::Unavailable(
                            "stopped at the invocation's deadline".into(),
                        ))
                    }
                };
                if let Outcome::Retry(_) = outcome {
                    failed.push(failure(message));
                }
            }
            failed
        }))
        .await;
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = results.into_iter().flatten().collect();
        response
    }

    /// One message, in its order's span: placed, then its outcome recorded.
    async fn handle_record(&self, message: &SqsMessage, parsed: Parsed) -> Outcome {
        let id = message.message_id.as_deref().unwrap_or("");
        let body = message.body.as_deref().unwrap_or("");
        // The trace the order was sent in, passed on with the payment request and the event.
        let trace = message
            .attributes
            .get("AWSTraceHeader")
            .and_then(|raw| TraceHeader::parse(raw));
        let order_id = parsed.as_ref().map(|r| r.order_id.as_str()).unwrap_or("");
        let span = OrderSpan::start(id, order_id, trace.as_ref());
        let outcome = self
            .place_order(id, body, parsed, trace.as_ref())
            .instrument(span.span().clone())
            .await;
        span.record(id, &outcome);
        outcome
    }
}

fn failure(message: &SqsMessage) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = message.message_id.clone().unwrap_or_default();
    failure
}
