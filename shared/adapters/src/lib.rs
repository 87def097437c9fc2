//! AWS SDK implementations of the domain ports, typed configuration from the environment, and
//! telemetry (JSON logs and CloudWatch Embedded Metric Format metrics) shared by the three functions.

pub mod aws;
pub mod config;
pub mod dynamo;
pub mod dynamo_orders;
pub mod dynamo_users;
pub mod errors;
pub mod metric_catalog;
pub mod s3;
pub mod sns;
pub mod sqs;
pub mod telemetry;
pub mod trace_env;

pub use config::{ConfigError, Env};
