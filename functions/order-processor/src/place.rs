//! One order's whole story: parsed or parked, stock reserved (or the order cancelled) by one
//! transaction, then its expiry, payment request and event sent, each recorded once done.

use std::time::Duration;

use domain::order::{
    parse_order_message, Order, OrderEvent, OrderRequest, OrderStatus, ParkReason, PaymentRequest,
    PoisonReason, Reservation,
};
use domain::ports::{DeadLetters, ExpiryQueue, Notifier, OrderStore, PaymentQueue, TraceHeader};
use domain::settlement::OrderExpiry;
use domain::PortError;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::outcome::Outcome;
use crate::processor::Processor;
use crate::telemetry;

/// A message body parsed into an order, or the reason it never can be.
pub(crate) type Parsed = Result<OrderRequest, PoisonReason>;

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

impl<O, P, N, D, E> Processor<O, P, N, D, E>
where
    O: OrderStore,
    P: PaymentQueue,
    N: Notifier,
    D: DeadLetters,
    E: ExpiryQueue,
{
    /// The whole story of one message body.
    pub async fn place_order_message(&self, message_id: &str, body: &str) -> Outcome {
        self.place_order(message_id, body, parse_order_message(body), None)
            .await
    }

    pub(crate) async fn place_order(
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
                telemetry::parked(code);
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
