//! The log layer, its filter and debug sampling, end to end through a `tracing` subscriber.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

use settings::Env;

use crate::*;

/// What `log_layer` writes while `work` runs, with `env` and the `sampled` flag.
fn logged(service: &str, env: &Env, sampled: Arc<AtomicBool>, work: impl FnOnce()) -> CapturedLogs {
    let logs = CapturedLogs::default();
    let subscriber =
        tracing_subscriber::registry().with(log_layer(service, logs.clone(), env, sampled));
    tracing::subscriber::with_default(subscriber, work);
    logs
}

#[test]
fn log_lines_are_json_with_invocation_fields() {
    let buffer = CapturedLogs::default();
    let subscriber = tracing_subscriber::registry()
        .with(LevelFilter::INFO)
        .with(JsonLogLayer::new("user-api", buffer.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!(
            "invocation",
            function_request_id = "req-1",
            cold_start = true,
            xray_trace_id = "Root=1-abc"
        );
        let _guard = span.enter();
        tracing::info!(status = 201, "user created");
        tracing::debug!("filtered out");
    });
    let text = buffer.text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(line["message"], "user created");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["service"], "user-api");
    assert_eq!(line["function_request_id"], "req-1");
    assert_eq!(line["cold_start"], true);
    assert_eq!(line["xray_trace_id"], "Root=1-abc");
    assert_eq!(line["status"], 201);
    assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn level_comes_from_lambda_then_log_level() {
    use tracing::Level;
    let f = log_filter(&Env::from_pairs(&[
        ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
        ("LOG_LEVEL", "error"),
    ]));
    assert!(f.would_enable("user_api::handler", &Level::DEBUG));
    assert!(!f.would_enable("user_api::handler", &Level::TRACE));
    // Dependencies log at warn at the most, whatever the suite's own level.
    assert!(f.would_enable("aws_smithy_runtime", &Level::WARN));
    assert!(!f.would_enable("aws_smithy_runtime", &Level::INFO));
    assert!(!f.would_enable("hyper_util::client", &Level::DEBUG));

    let f = log_filter(&Env::from_pairs(&[("LOG_LEVEL", "error")]));
    // Dependencies are never more verbose than the suite's own level.
    assert!(f.would_enable("order_processor", &Level::ERROR));
    assert!(!f.would_enable("order_processor", &Level::WARN));
    assert!(!f.would_enable("aws_smithy_runtime", &Level::WARN));

    let f = log_filter(&Env::from_pairs(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]));
    assert!(f.would_enable("domain", &Level::ERROR));
    assert!(!f.would_enable("domain", &Level::WARN));

    let f = log_filter(&Env::from_pairs(&[("LOG_LEVEL", "not a level!")]));
    assert!(f.would_enable("user_api", &Level::INFO));
    assert!(!f.would_enable("user_api", &Level::DEBUG));
}

#[test]
fn directives_are_taken_as_they_are_and_unreadable_ones_mean_info() {
    use tracing::Level;
    let f = log_filter(&Env::from_pairs(&[(
        "LOG_LEVEL",
        "error,aws_smithy_runtime=debug",
    )]));
    assert!(f.would_enable("aws_smithy_runtime::client", &Level::DEBUG));
    assert!(!f.would_enable("user_api", &Level::WARN));
    let f = log_filter(&Env::from_pairs(&[(
        "LOG_LEVEL",
        " warn , user_api=debug ,",
    )]));
    assert!(f.would_enable("user_api", &Level::DEBUG));
    assert!(!f.would_enable("aws_smithy_runtime", &Level::INFO));
    // Span and field directives are not a target and a level: the filter falls back to info
    // rather than taking `[invocation]` for a target and silencing everything else.
    for unreadable in [
        "[invocation]=debug",
        "user_api[handle{id=1}]=trace",
        "user_api=loud",
    ] {
        let f = log_filter(&Env::from_pairs(&[("LOG_LEVEL", unreadable)]));
        assert_eq!(f.default_level(), Some(LevelFilter::INFO), "{unreadable}");
        assert!(
            f.would_enable("aws_smithy_runtime", &Level::INFO),
            "{unreadable}"
        );
        assert!(!f.would_enable("user_api", &Level::DEBUG), "{unreadable}");
    }
}

fn lines_of(buffer: &CapturedLogs) -> Vec<Value> {
    buffer
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn debug_sampling_is_per_request_id_and_keeps_to_its_rate() {
    assert!(!debug_sampled("req-1", 0.0));
    assert!(debug_sampled("req-1", 1.0));
    let id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";
    assert_eq!(debug_sampled(id, 0.5), debug_sampled(id, 0.5));
    let _quiet = crate::HEAP_QUIET.lock().unwrap_or_else(|p| p.into_inner());
    let n = 20_000;
    let mut id = String::with_capacity(16);
    let hits = (0..n)
        .filter(|i| {
            use std::fmt::Write as _;
            id.clear();
            let _ = write!(id, "req-{i}");
            debug_sampled(&id, 0.1)
        })
        .count();
    assert!((1_700..2_300).contains(&hits), "{hits} of {n} at 10%");
    assert_eq!(debug_sample_rate(&Env::from_pairs(&[])), Ok(0.0));
    assert_eq!(
        debug_sample_rate(&Env::from_pairs(&[(DEBUG_SAMPLE_RATE, "0.25")])),
        Ok(0.25)
    );
    for bad in ["1.5", "-0.1", "often", "NaN"] {
        let e = debug_sample_rate(&Env::from_pairs(&[(DEBUG_SAMPLE_RATE, bad)])).unwrap_err();
        assert!(e.contains(DEBUG_SAMPLE_RATE) && e.contains(bad), "{e}");
    }
}

#[test]
fn a_sampled_invocation_logs_this_suites_debug_lines_and_only_those() {
    let _quiet = crate::HEAP_QUIET.lock().unwrap_or_else(|p| p.into_inner());
    let sampled = Arc::new(AtomicBool::new(false));
    let env = Env::from_pairs(&[("AWS_LAMBDA_LOG_LEVEL", "WARN")]);
    let buffer = logged("order-processor", &env, sampled.clone(), || {
        let span = tracing::info_span!(target: "telemetry::invocation", "invocation", function_request_id = "req-7");
        let _inside = span.enter();
        tracing::debug!(target: "order_processor", step = 1, "not sampled: hidden");
        tracing::warn!(target: "order_processor", "a warning is always logged");
        sampled.store(true, Ordering::Relaxed);
        tracing::debug!(target: "order_processor", step = 2, "sampled: logged");
        tracing::trace!(target: "order_processor", "trace stays hidden");
        tracing::debug!(target: "aws_smithy_runtime", "the SDK's debug stays hidden");
        sampled.store(false, Ordering::Relaxed);
        tracing::debug!(target: "order_processor", step = 3, "not sampled again: hidden");
    });
    let lines = lines_of(&buffer);
    let messages: Vec<&str> = lines
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["a warning is always logged", "sampled: logged"]);
    // The invocation span is kept even though WARN hides INFO spans: every line has its request id.
    for line in &lines {
        assert_eq!(line["function_request_id"], "req-7", "{line}");
    }
}

#[test]
fn the_level_is_the_suites_own_and_dependencies_stay_at_warn() {
    let _quiet = crate::HEAP_QUIET.lock().unwrap_or_else(|p| p.into_inner());
    let env = Env::from_pairs(&[("AWS_LAMBDA_LOG_LEVEL", "TRACE")]);
    let buffer = logged("user-api", &env, Arc::new(AtomicBool::new(false)), || {
        tracing::trace!(target: "user_api", "ours at trace");
        tracing::debug!(target: "adapters::dynamo_users", "ours at debug");
        tracing::debug!(target: "aws_smithy_runtime_api::client", "sdk debug");
        tracing::trace!(target: "aws_sigv4::http_request", "canonical request");
        tracing::info!(target: "lambda_runtime", "runtime info");
        tracing::debug!(target: "hyper_util::client", "connection");
        tracing::warn!(target: "aws_smithy_runtime", "sdk warning");
    });
    let lines = lines_of(&buffer);
    let messages: Vec<&str> = lines
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["ours at trace", "ours at debug", "sdk warning"]);
}

#[test]
fn text_format_puts_time_level_request_id_and_message_first() {
    let _quiet = crate::HEAP_QUIET.lock().unwrap_or_else(|p| p.into_inner());
    let env = Env::from_pairs(&[("AWS_LAMBDA_LOG_FORMAT", "Text")]);
    assert_eq!(LogFormat::from_env(&env), LogFormat::Text);
    assert_eq!(LogFormat::from_env(&Env::from_pairs(&[])), LogFormat::Json);
    let buffer = logged("user-api", &env, Arc::new(AtomicBool::new(false)), || {
        let span = tracing::info_span!(target: "telemetry::invocation", "invocation", function_request_id = "req-9");
        let _inside = span.enter();
        tracing::info!(target: "user_api", status = 201, "request handled");
    });
    let text = buffer.text();
    let line = text.trim_end();
    let parts: Vec<&str> = line.splitn(4, ' ').collect();
    assert!(parts[0].ends_with('Z'), "{line}");
    assert_eq!(&parts[1..3], ["INFO", "req-9"], "{line}");
    assert!(parts[3].starts_with("request handled "), "{line}");
    assert!(
        line.contains(" status=201") && line.contains(" service=user-api"),
        "{line}"
    );
    assert!(
        serde_json::from_str::<Value>(line).is_err(),
        "not JSON: {line}"
    );
}
