//! SQS adapters: the payment queue, the expiry (delay) queue and the dead-letter queue for poison
//! messages.

use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
};
use std::time::Duration;

use domain::order::PaymentRequest;
use domain::ports::{DeadLetters, ExpiryQueue, PaymentQueue, TraceHeader};
use domain::settlement::{OrderExpiry, MAX_EXPIRY_DELAY_SECS};
use domain::PortError;

use crate::errors::classify;

/// SQS limits a message attribute value; reasons are cut to stay well inside it.
const MAX_REASON_CHARS: usize = 512;

fn string_attribute(value: &str) -> Result<MessageAttributeValue, PortError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| PortError::Rejected(format!("sqs: bad message attribute: {e}")))
}

/// IAM actions of both SQS adapters on their queue (plus `aws::KMS_ENCRYPTED_TARGET_ACTIONS` on the
/// queue's key: the suite's queues are KMS-encrypted).
pub const SQS_SEND_ACTIONS: &[&str] = &["sqs:SendMessage"];

#[derive(Debug, Clone)]
pub struct SqsPaymentQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsPaymentQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    fn is_fifo(&self) -> bool {
        self.queue_url.ends_with(".fifo")
    }
}

impl PaymentQueue for SqsPaymentQueue {
    async fn request_payment(
        &self,
        request: &PaymentRequest,
        trace: Option<&TraceHeader>,
    ) -> Result<(), PortError> {
        let body = serde_json::to_string(request)
            .map_err(|e| PortError::Rejected(format!("payment request not serialisable: {e}")))?;
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes("order_id", string_attribute(&request.order_id)?)
            // The payment service deduplicates by this key for as long as it keeps charges.
            .message_attributes(
                "idempotency_key",
                string_attribute(&request.idempotency_key)?,
            );
        if self.is_fifo() {
            // The order id is the deduplication key: a resend within SQS's 5-minute window is dropped.
            send = send
                .message_group_id(&request.order_id)
                .message_deduplication_id(&request.order_id);
        }
        if let Some(value) = trace_attribute(trace)? {
            send = send.message_system_attributes(
                MessageSystemAttributeNameForSends::AwsTraceHeader,
                value,
            );
        }
        send.send()
            .await
            .map(|_| ())
            .map_err(|e| classify("sqs", &e))
    }
}

/// The system attribute Lambda and X-Ray read to continue the trace in the consumer.
fn trace_attribute(
    trace: Option<&TraceHeader>,
) -> Result<Option<MessageSystemAttributeValue>, PortError> {
    telemetry::xray::header_to_send(trace)
        .map(|trace| {
            MessageSystemAttributeValue::builder()
                .data_type("String")
                .string_value(trace)
                .build()
                .map_err(|e| PortError::Rejected(format!("sqs: bad trace attribute: {e}")))
        })
        .transpose()
}

/// Expiry messages on a standard queue, each held back by its own `DelaySeconds`.
#[derive(Debug, Clone)]
pub struct SqsExpiryQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsExpiryQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

impl ExpiryQueue for SqsExpiryQueue {
    async fn schedule_expiry(
        &self,
        expiry: &OrderExpiry,
        delay: Duration,
        trace: Option<&TraceHeader>,
    ) -> Result<(), PortError> {
        let body = serde_json::to_string(expiry)
            .map_err(|e| PortError::Rejected(format!("expiry not serialisable: {e}")))?;
        // Rounded up, so the message never arrives before the order has expired.
        let seconds = delay
            .as_secs()
            .saturating_add(u64::from(delay.subsec_nanos() > 0))
            .min(MAX_EXPIRY_DELAY_SECS);
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(seconds as i32)
            .message_attributes("order_id", string_attribute(&expiry.order_id)?);
        if let Some(value) = trace_attribute(trace)? {
            send = send.message_system_attributes(
                MessageSystemAttributeNameForSends::AwsTraceHeader,
                value,
            );
        }
        send.send()
            .await
            .map(|_| ())
            .map_err(|e| classify("sqs", &e))
    }
}

#[derive(Debug, Clone)]
pub struct SqsDeadLetters {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsDeadLetters {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

impl DeadLetters for SqsDeadLetters {
    async fn park(
        &self,
        body: &str,
        source_message_id: &str,
        reason_code: &str,
        reason: &str,
    ) -> Result<(), PortError> {
        let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
        // An empty body cannot be sent to SQS; keep a marker so the message is still visible.
        let body = if body.is_empty() {
            "(empty message body)"
        } else {
            body
        };
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes("error_code", string_attribute(reason_code)?)
            .message_attributes("error_reason", string_attribute(&reason)?)
            .message_attributes("source_message_id", string_attribute(source_message_id)?)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("sqs", &e))
    }
}
