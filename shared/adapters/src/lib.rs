//! AWS SDK implementations of the domain ports, typed configuration from the environment, and
//! telemetry (JSON logs and CloudWatch Embedded Metric Format metrics) shared by the three functions.

pub mod aws;
pub mod budget;
pub mod call_spans;
pub mod config;
pub mod dynamo;
pub mod dynamo_idempotency;
pub mod dynamo_orders;
pub mod dynamo_users;
pub mod errors;
pub mod metric_catalog;
pub mod s3;
pub mod secrets;
pub mod sns;
pub mod sqs;
pub mod telemetry;
pub mod trace_env;
pub mod trace_export;

pub use config::{ConfigError, Env};

/// Held by the unit tests that measure the process's heap, and by those that allocate a lot.
#[cfg(test)]
pub(crate) static HEAP_QUIET: std::sync::Mutex<()> = std::sync::Mutex::new(());
