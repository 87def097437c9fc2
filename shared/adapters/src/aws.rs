//! Building SDK configuration and clients once per cold start, with explicit timeouts and retries.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use crate::call_spans::CallSpans;
use crate::config::AwsSettings;

/// Loads region, credentials and endpoint overrides (`AWS_ENDPOINT_URL`, per-service variants) from the
/// environment, then applies our timeouts and retry policy.
pub async fn load_sdk_config(settings: &AwsSettings) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts(settings))
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts))
        .load()
        .await
}

/// What sending to (or receiving from) a KMS-encrypted queue or topic needs on its key.
pub const KMS_ENCRYPTED_TARGET_ACTIONS: &[&str] = &["kms:GenerateDataKey", "kms:Decrypt"];

pub fn timeouts(settings: &AwsSettings) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(settings.connect_timeout)
        .read_timeout(settings.attempt_timeout)
        .operation_attempt_timeout(settings.attempt_timeout)
        .operation_timeout(settings.operation_timeout)
        .build()
}

// Every client carries the `CallSpans` interceptor: one span per AWS call.

/// S3 client; path-style addressing when an endpoint override (a local emulator) is in use.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let local = config.endpoint_url().is_some();
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(local)
        .interceptor(CallSpans)
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

pub fn dynamodb_client(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(config)
            .interceptor(CallSpans)
            .build(),
    )
}

pub fn sqs_client(config: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(config)
            .interceptor(CallSpans)
            .build(),
    )
}

pub fn sns_client(config: &SdkConfig) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(config)
            .interceptor(CallSpans)
            .build(),
    )
}

pub fn secrets_client(config: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(config)
            .interceptor(CallSpans)
            .build(),
    )
}
