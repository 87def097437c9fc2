//! Queues and the topic that record what was sent: expiries, payment requests, events, parked messages.

use std::sync::Mutex;

use crate::order::{OrderEvent, PaymentRequest};
use crate::ports::{DeadLetters, ExpiryQueue, Notifier, PaymentQueue, TraceHeader};
use crate::settlement::OrderExpiry;
use crate::PortError;

use super::faults::{lock, Faults};

/// Records every expiry scheduled, with its delay.
#[derive(Default, Debug)]
pub struct RecordingExpiryQueue {
    pub scheduled: Mutex<Vec<(OrderExpiry, std::time::Duration)>>,
    pub faults: Faults,
}

impl RecordingExpiryQueue {
    pub fn scheduled(&self) -> Vec<(OrderExpiry, std::time::Duration)> {
        lock(&self.scheduled).clone()
    }
}

impl ExpiryQueue for RecordingExpiryQueue {
    async fn schedule_expiry(
        &self,
        expiry: &OrderExpiry,
        delay: std::time::Duration,
        _trace: Option<&TraceHeader>,
    ) -> Result<(), PortError> {
        self.faults.enter("schedule_expiry")?;
        lock(&self.scheduled).push((expiry.clone(), delay));
        Ok(())
    }
}

/// Records every payment request sent.
#[derive(Default, Debug)]
pub struct RecordingPaymentQueue {
    pub sent: Mutex<Vec<PaymentRequest>>,
    /// The trace header each request was sent with.
    pub traces: Mutex<Vec<Option<TraceHeader>>>,
    pub faults: Faults,
}

impl RecordingPaymentQueue {
    pub fn sent(&self) -> Vec<PaymentRequest> {
        lock(&self.sent).clone()
    }
}

impl PaymentQueue for RecordingPaymentQueue {
    async fn request_payment(
        &self,
        request: &PaymentRequest,
        trace: Option<&TraceHeader>,
    ) -> Result<(), PortError> {
        self.faults.enter("request_payment")?;
        lock(&self.sent).push(request.clone());
        lock(&self.traces).push(trace.cloned());
        Ok(())
    }
}

/// Records every event published.
#[derive(Default, Debug)]
pub struct RecordingNotifier {
    pub published: Mutex<Vec<OrderEvent>>,
    pub faults: Faults,
}

impl RecordingNotifier {
    pub fn published(&self) -> Vec<OrderEvent> {
        lock(&self.published).clone()
    }
}

impl Notifier for RecordingNotifier {
    async fn publish(
        &self,
        event: &OrderEvent,
        _trace: Option<&TraceHeader>,
    ) -> Result<(), PortError> {
        self.faults.enter("publish")?;
        lock(&self.published).push(event.clone());
        Ok(())
    }
}

/// A parked message: body, source message id, reason code, reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    pub body: String,
    pub message_id: String,
    pub reason_code: String,
    pub reason: String,
}

#[derive(Default, Debug)]
pub struct RecordingDeadLetters {
    pub parked: Mutex<Vec<Parked>>,
    pub faults: Faults,
}

impl RecordingDeadLetters {
    pub fn parked(&self) -> Vec<Parked> {
        lock(&self.parked).clone()
    }
}

impl DeadLetters for RecordingDeadLetters {
    async fn park(
        &self,
        body: &str,
        source_message_id: &str,
        reason_code: &str,
        reason: &str,
    ) -> Result<(), PortError> {
        self.faults.enter("park")?;
        lock(&self.parked).push(Parked {
            body: body.to_string(),
            message_id: source_message_id.to_string(),
            reason_code: reason_code.to_string(),
            reason: reason.to_string(),
        });
        Ok(())
    }
}
