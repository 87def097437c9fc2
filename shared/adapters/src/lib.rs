//! AWS SDK implementations of the domain ports, the SDK clients built once per cold start with their
//! timeouts and retries, and one span per AWS call (`aws_call_spans`).

pub mod aws;
pub mod aws_call_spans;
pub mod budget;
pub mod config;
pub mod dynamo;
pub mod dynamo_idempotency;
pub mod dynamo_orders;
pub mod dynamo_users;
pub mod errors;
pub mod s3;
pub mod secrets;
pub mod sns;
pub mod sqs;
