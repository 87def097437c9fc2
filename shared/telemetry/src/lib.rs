//! Structured JSON logs and CloudWatch Embedded Metric Format metrics for every function.
//!
//! Every log line is one JSON object with `timestamp`, `level`, `message`, `service`, `target`, the
//! fields of the spans it is inside (the invocation span adds `function_request_id`, `cold_start` and
//! `xray_trace_id`) and the event's own fields. Metrics use the `metrics` facade and are flushed as EMF
//! after each invocation. Spans are exported to X-Ray when Lambda's active tracing is on
//! (`xray`).
//!
//! Log controls are Lambda's: `AWS_LAMBDA_LOG_LEVEL` (else `LOG_LEVEL`) sets the level and
//! `AWS_LAMBDA_LOG_FORMAT` (`JSON`, the default, or `Text`) the shape of a line. On top,
//! `LOG_DEBUG_SAMPLE_RATE` (0 to 1, default 0) logs a share of invocations at debug level whatever
//! the level, chosen per request id, so one slow request's story can be read without turning debug
//! logging on for all of them; such lines carry `debug_sampled: true`.
//!
//! The process-wide fix this crate also holds: `trace_id_env`, the `setenv` that keeps the X-Ray
//! trace id of every invocation in one buffer instead of leaking it (each `main` checks it is in
//! effect).

mod invocation;
mod json_logs;
mod log_filter;
pub mod metric_catalog;
pub mod trace_id_env;
pub mod xray;

pub use invocation::{current_request_id, report_cold_start, Telemetry, METRICS_NAMESPACE};
pub use json_logs::{CapturedLogs, JsonLogLayer, LogFormat};
pub use log_filter::{
    debug_sample_rate, debug_sampled, log_filter, log_layer, read_env, DEBUG_SAMPLE_RATE,
};

/// Held by the unit tests that measure the process's heap, and by those that allocate a lot.
#[cfg(test)]
pub(crate) static HEAP_QUIET: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests;
