//! What one order message leaves behind: its `order` span (continuing the message's X-Ray trace),
//! the order metrics by outcome, and the `order message processed` / `will be retried` line; and
//! for a batch cut by the deadline, the messages not started or stopped.

use domain::ports::TraceHeader;
use telemetry::metric_catalog as catalog;
use tracing::Span;

use crate::outcome::Outcome;

/// One order's span, from its message to its outcome.
pub(crate) struct OrderSpan(Span);

impl OrderSpan {
    /// One span per order: it continues the message's trace, where the sender's spans are, so it
    /// is a service of its own there (a segment in X-Ray); without one it is a part of the
    /// invocation.
    pub(crate) fn start(message_id: &str, order_id: &str, trace: Option<&TraceHeader>) -> Self {
        let span = tracing::info_span!(
            "order",
            otel.kind = if trace.is_some() {
                "server"
            } else {
                "internal"
            },
            otel.status_code = tracing::field::Empty,
            message_id,
            order_id,
            // The invocation that ran it: in another trace when the order continues its message's.
            function_request_id = telemetry::current_request_id().as_str(),
            outcome = tracing::field::Empty,
        );
        if let Some(trace) = trace {
            telemetry::xray::continue_trace(&span, trace.as_str());
        }
        Self(span)
    }

    /// The span the order's work runs in.
    pub(crate) fn span(&self) -> &Span {
        &self.0
    }

    /// The outcome on the span, in the metrics and in the log line.
    pub(crate) fn record(&self, message_id: &str, outcome: &Outcome) {
        let span = &self.0;
        let _inside = span.enter();
        match outcome {
            Outcome::Reserved => metrics::counter!(catalog::ORDERS_CONFIRMED).increment(1),
            // Short stock is the one reason an order is cancelled.
            Outcome::Cancelled => {
                metrics::counter!(catalog::ORDERS_CANCELLED, catalog::REASON => "INSUFFICIENT_INVENTORY")
                    .increment(1)
            }
            Outcome::AlreadyProcessed => {
                metrics::counter!(catalog::ORDERS_ALREADY_PROCESSED).increment(1)
            }
            // Counted with its reason where it was parked (`parked`).
            Outcome::Parked => {}
            Outcome::Retry(_) => metrics::counter!(catalog::MESSAGES_RETRIED).increment(1),
        }
        let label = outcome.label();
        span.record("outcome", label);
        if matches!(outcome, Outcome::Retry(_)) {
            span.record("otel.status_code", "ERROR");
        }
        match outcome {
            Outcome::Retry(e) => {
                tracing::warn!(message_id, outcome = label, error = %e, "order message will be retried")
            }
            _ => tracing::info!(message_id, outcome = label, "order message processed"),
        }
    }
}

/// A message parked on the dead-letter queue, counted by its reason code.
pub(crate) fn parked(code: &str) {
    metrics::counter!(catalog::MESSAGES_PARKED, catalog::REASON => code.to_string()).increment(1);
}

/// A message not started because the invocation's deadline is near: reported for redelivery.
pub(crate) fn not_started(message_id: &str) {
    tracing::warn!(
        message_id,
        "order message not started: the invocation's deadline is near"
    );
    metrics::counter!(catalog::MESSAGES_RETRIED).increment(1);
}

/// A message stopped where it stood at the invocation's deadline: reported for redelivery.
pub(crate) fn stopped_at_deadline(message_id: &str) {
    tracing::warn!(
        message_id,
        "order message stopped at the invocation's deadline; it will be retried"
    );
    metrics::counter!(catalog::MESSAGES_RETRIED).increment(1);
}
