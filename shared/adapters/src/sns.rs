//! `Notifier` on Amazon SNS: order events with an `event_type` attribute for subscription filters.

use aws_sdk_sns::types::MessageAttributeValue;
use domain::order::OrderEvent;
use domain::ports::{Notifier, TraceHeader};
use domain::PortError;

use crate::errors::classify;

/// The message attribute carrying the order's trace header (`AWSTraceHeader`, as SQS names it).
pub const TRACE_ATTRIBUTE: &str = "AWSTraceHeader";

/// IAM actions of this adapter on its topic (plus `aws::KMS_ENCRYPTED_TARGET_ACTIONS` on the topic's
/// key: the topic is KMS-encrypted).
pub const SNS_PUBLISH_ACTIONS: &[&str] = &["sns:Publish"];

#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

fn attribute(value: &str) -> Result<MessageAttributeValue, PortError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| PortError::Rejected(format!("sns: bad message attribute: {e}")))
}

impl Notifier for SnsNotifier {
    async fn publish(
        &self,
        event: &OrderEvent,
        trace: Option<&TraceHeader>,
    ) -> Result<(), PortError> {
        let message = serde_json::to_string(event)
            .map_err(|e| PortError::Rejected(format!("order event not serialisable: {e}")))?;
        let mut publish = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(message)
            .message_attributes("event_type", attribute(event.event_type.as_str())?)
            .message_attributes("event_id", attribute(&event.event_id)?);
        // SNS has no system attribute for it: subscribers read it as a message attribute.
        if let Some(trace) = telemetry::xray::header_to_send(trace) {
            publish = publish.message_attributes(TRACE_ATTRIBUTE, attribute(&trace)?);
        }
        publish
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("sns", &e))
    }
}
