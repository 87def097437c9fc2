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

use std::time::Duration;

use adapters::budget::BatchBudget;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use domain::order::{
    parse_order_message, Order, OrderEvent, OrderRequest, OrderStatus, ParkReason, PaymentRequest,
    PoisonReason, Reservation,
};
use domain::ports::{DeadLetters, ExpiryQueue, Notifier, OrderStore, PaymentQueue, TraceHeader};
use domain::settlement::{OrderExpiry, MAX_EXPIRY_DELAY_SECS};
use domain::{Deadline, PortError};
use futures::future::join_all;
use telemetry::metric_catalog as catalog;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tracing::Instrument;

/// A message body parsed into an order, or the reason it never can be.
type Parsed = Result<OrderRequest, PoisonReason>;

/// The ports the processor works through, built once per cold start.
pub struct Processor<O, P, N, D, E = ExpiryNotScheduled> {
    pub orders: O,
    pub payments: P,
    pub notifier: N,
    pub dead_letters: D,
    pub expiries: E,
    pub clock: fn() -> OffsetDateTime,
    /// How long a pending order waits for its payment before it expires (`PAYMENT_TIMEOUT_SECS`).
    pub payment_timeout: Duration,
}

/// Fifteen minutes: a checkout's usual hold, and the longest delay an SQS message can carry.
pub const DEFAULT_PAYMENT_TIMEOUT: Duration = Duration::from_secs(MAX_EXPIRY_DELAY_SECS);

/// The expiry port of a processor built without one (`Processor::new`): tools and tests that
/// look only at how orders are created. The function itself always has a queue (`with_expiry`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ExpiryNotScheduled;

impl ExpiryQueue for ExpiryNotScheduled {
    async fn schedule_expiry(
        &self,
        _: &OrderExpiry,
        _: Duration,
        _: Option<&TraceHeader>,
    ) -> Result<(), PortError> {
        Ok(())
    }
}

/// Time kept back from the invocation's deadline to return the batch response: building the list
/// of failures, the telemetry of the batch and the post to the runtime API are local work
/// (milliseconds); the rest is room for a slow scheduler on a busy host. Past the deadline Lambda
/// kills the invocation and SQS redelivers the whole batch, the finished messages with the rest.
pub const REPORT_RESERVE: Duration = Duration::from_secs(1);

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

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

impl<O, P, N, D> Processor<O, P, N, D> {
    pub fn new(orders: O, payments: P, notifier: N, dead_letters: D) -> Self {
        Self {
            orders,
            payments,
            notifier,
            dead_letters,
            expiries: ExpiryNotScheduled,
            clock: OffsetDateTime::now_utc,
            payment_timeout: DEFAULT_PAYMENT_TIMEOUT,
        }
    }
}

impl<O, P, N, D, E> Processor<O, P, N, D, E> {
    /// The same processor, scheduling each pending order's expiry on `expiries`.
    pub fn with_expiry<X: ExpiryQueue>(self, expiries: X) -> Processor<O, P, N, D, X> {
        Processor {
            orders: self.orders,
            payments: self.payments,
            notifier: self.notifier,
            dead_letters: self.dead_letters,
            expiries,
            clock: self.clock,
            payment_timeout: self.payment_timeout,
        }
    }

    /// The same processor with another payment timeout (validated by `Config`).
    pub fn with_payment_timeout(mut self, timeout: Duration) -> Self {
        self.payment_timeout = timeout;
        self
    }
}

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
    pub async fn process_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        self.process_batch_by(event, None).await
    }

    /// `process_batch` with the invocation's deadline: the response is returned `REPORT_RESERVE`
    /// before it, whatever the dependencies do.
    ///
    /// No message starts once the budget is spent (by `clock` or by the runtime's timer); a message
    /// still running when it ends is dropped where it stands. Both are reported for redelivery. A
    /// message cut midway is safe to run again: the stock and the order are written by one
    /// transaction conditional on the order id being new (a redelivery finds the order and only
    /// finishes what its record says is not done), the payment request is deduplicated by the
    /// payment queue on the order id, and the order event is delivered at least once, as always.
    pub async fn process_batch_by(
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
                    tracing::warn!(
                        message_id = id,
                        "order message not started: the invocation's deadline is near"
                    );
                    metrics::counter!(catalog::MESSAGES_RETRIED).increment(1);
                    failed.push(failure(message));
                    continue;
                }
                let outcome = match budget.run(self.process_record(message, parsed)).await {
                    Some(outcome) => outcome,
                    None => {
                        tracing::warn!(
                            message_id = id,
                            "order message stopped at the invocation's deadline; it will be retried"
                        );
                        metrics::counter!(catalog::MESSAGES_RETRIED).increment(1);
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

    async fn process_record(&self, message: &SqsMessage, parsed: Parsed) -> Outcome {
        let id = message.message_id.as_deref().unwrap_or("");
        let body = message.body.as_deref().unwrap_or("");
        // The trace the order was sent in, passed on with the payment request and the event.
        let trace = message
            .attributes
            .get("AWSTraceHeader")
            .and_then(|raw| TraceHeader::parse(raw));
        // One span per order: it continues the message's trace, where the sender's spans are, so
        // it is a service of its own there (a segment in X-Ray); without one it is a part of the
        // invocation.
        let order_id = parsed.as_ref().map(|r| r.order_id.as_str()).unwrap_or("");
        let span = tracing::info_span!(
            "order",
            otel.kind = if trace.is_some() {
                "server"
            } else {
                "internal"
            },
            otel.status_code = tracing::field::Empty,
            message_id = id,
            order_id,
            // The invocation that ran it: in another trace when the order continues its message's.
            function_request_id = telemetry::current_request_id().as_str(),
            outcome = tracing::field::Empty,
        );
        if let Some(trace) = &trace {
            telemetry::xray::continue_trace(&span, trace.as_str());
        }
        let outcome = self
            .process_parsed(id, body, parsed, trace.as_ref())
            .instrument(span.clone())
            .await;
        let _inside = span.enter();
        let label = match &outcome {
            Outcome::Reserved => {
                metrics::counter!(catalog::ORDERS_CONFIRMED).increment(1);
                "reserved"
            }
            Outcome::Cancelled => {
                // Short stock is the one reason an order is cancelled.
                metrics::counter!(catalog::ORDERS_CANCELLED, catalog::REASON => "INSUFFICIENT_INVENTORY")
                    .increment(1);
                "cancelled"
            }
            Outcome::AlreadyProcessed => {
                metrics::counter!(catalog::ORDERS_ALREADY_PROCESSED).increment(1);
                "already processed"
            }
            // Counted with its reason where it was parked.
            Outcome::Parked => "parked",
            Outcome::Retry(_) => {
                metrics::counter!(catalog::MESSAGES_RETRIED).increment(1);
                "retry"
            }
        };
        span.record("outcome", label);
        if matches!(outcome, Outcome::Retry(_)) {
            span.record("otel.status_code", "ERROR");
        }
        match &outcome {
            Outcome::Retry(e) => {
                tracing::warn!(message_id = id, outcome = label, error = %e, "order message will be retried")
            }
            _ => tracing::info!(message_id = id, outcome = label, "order message processed"),
        }
        outcome
    }

    /// The whole story of one message body.
    pub async fn process_message(&self, message_id: &str, body: &str) -> Outcome {
        self.process_parsed(message_id, body, parse_order_message(body), None)
            .await
    }

    async fn process_parsed(
        &self,
        message_id: &str,
        body: &str,
        parsed: Parsed,
        trace: Option<&TraceHeader>,
    ) -> Outcome {
        let request = match parsed {
            Ok(request) => request,
            Err(reason) => {
                // The reason names fields, never their values: no personal data in logs.
                tracing::warn!(message_id, reason_code = reason.code(), reason = %reason, "poison message");
                return self
                    .park(message_id, body, reason.code(), &reason.to_string())
                    .await;
            }
        };
        let created_at = rfc3339((self.clock)());
        let order = Order::new(
            &request,
            OrderStatus::PendingPayment,
            Vec::new(),
            created_at,
        );
        let (order, fresh) = match self.orders.reserve(&order).await {
            Ok(Reservation::Reserved) => {
                tracing::debug!(
                    order_id = %order.order_id,
                    lines = order.items.len(),
                    "stock reserved and order recorded"
                );
                (order, true)
            }
            Ok(Reservation::AlreadyExists) => match self.existing(&order.order_id).await {
                Ok(existing) => (existing, false),
                Err(e) => return Outcome::Retry(e),
            },
            Ok(Reservation::InsufficientStock(short)) => {
                let cancelled = Order::new(
                    &request,
                    OrderStatus::CancelledInsufficientInventory,
                    short,
                    order.created_at.clone(),
                );
                match self.orders.record(&cancelled).await {
                    Ok(true) => (cancelled, true),
                    // A duplicate of this order got there first: finish whatever it stored.
                    Ok(false) => match self.existing(&order.order_id).await {
                        Ok(existing) => (existing, false),
                        Err(e) => return Outcome::Retry(e),
                    },
                    Err(e) => return Outcome::Retry(e),
                }
            }
            // Even a non-transient store error is retried: after maxReceiveCount the queue's redrive
            // moves the message to the dead-letter queue, so nothing is lost or half-applied.
            Err(e) => return Outcome::Retry(e),
        };
        let differences = order.differences_from(&request);
        if !differences.is_empty() {
            return self
                .park_order(message_id, body, ParkReason::OrderIdReused(differences))
                .await;
        }
        if let Err(e) = self.finish_side_effects(&order, trace).await {
            return Outcome::Retry(e);
        }
        match (fresh, order.status) {
            (true, OrderStatus::PendingPayment) => Outcome::Reserved,
            (true, OrderStatus::CancelledInsufficientInventory) => Outcome::Cancelled,
            _ => Outcome::AlreadyProcessed,
        }
    }

    /// Parks a validated message that must not be applied as it stands.
    async fn park_order(&self, message_id: &str, body: &str, reason: ParkReason) -> Outcome {
        tracing::error!(message_id, reason_code = reason.code(), reason = %reason, "order parked");
        self.park(message_id, body, reason.code(), &reason.to_string())
            .await
    }

    /// Parks a message on the dead-letter queue with its reason; acknowledged only once parked.
    async fn park(&self, message_id: &str, body: &str, code: &str, reason: &str) -> Outcome {
        match self.dead_letters.park(body, message_id, code, reason).await {
            Ok(()) => {
                metrics::counter!(catalog::MESSAGES_PARKED, catalog::REASON => code.to_string())
                    .increment(1);
                Outcome::Parked
            }
            // Not parked, so not acknowledged: it must not be lost.
            Err(e) => Outcome::Retry(e),
        }
    }

    async fn existing(&self, order_id: &str) -> Result<Order, PortError> {
        self.orders.get(order_id).await?.ok_or_else(|| {
            PortError::Unavailable("order reported as existing but not readable yet".into())
        })
    }

    /// Sends what the order record says is not yet done, then records what succeeded (even when a
    /// later step failed), so a redelivery repeats nothing that already happened.
    ///
    /// While the payment is due its expiry is scheduled first: no payment request goes out for an
    /// order that could then wait forever. A repeat of either message is harmless (the expiry is
    /// a conditional transition; the payment service deduplicates by the idempotency key).
    async fn finish_side_effects(
        &self,
        order: &Order,
        trace: Option<&TraceHeader>,
    ) -> Result<(), PortError> {
        let mut paid = false;
        let mut notified = false;
        let mut failure = None;
        if order.needs_payment() {
            failure = self.schedule_expiry(order, trace).await.err();
        }
        if failure.is_none() && order.needs_payment() {
            match self
                .payments
                .request_payment(&PaymentRequest::for_order(order), trace)
                .await
            {
                Ok(()) => {
                    tracing::debug!(order_id = %order.order_id, "payment requested");
                    paid = true
                }
                Err(e) => failure = Some(e),
            }
        }
        if failure.is_none() && order.needs_notification() {
            match self
                .notifier
                .publish(&OrderEvent::for_order(order), trace)
                .await
            {
                Ok(()) => {
                    tracing::debug!(order_id = %order.order_id, "order event published");
                    notified = true
                }
                Err(e) => failure = Some(e),
            }
        }
        if paid || notified {
            if let Err(e) = self.orders.mark_done(&order.order_id, paid, notified).await {
                failure.get_or_insert(e);
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Sends the order's expiry, due `payment_timeout` after its creation (now, when that has
    /// passed or `created_at` cannot be read).
    async fn schedule_expiry(
        &self,
        order: &Order,
        trace: Option<&TraceHeader>,
    ) -> Result<(), PortError> {
        let now = (self.clock)();
        let expires_at = order.expires_at(self.payment_timeout).unwrap_or(now);
        let delay = Duration::try_from(expires_at - now).unwrap_or(Duration::ZERO);
        let expiry = OrderExpiry {
            order_id: order.order_id.clone(),
            expires_at: rfc3339(expires_at),
        };
        self.expiries.schedule_expiry(&expiry, delay, trace).await
    }
}

fn failure(message: &SqsMessage) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = message.message_id.clone().unwrap_or_default();
    failure
}
