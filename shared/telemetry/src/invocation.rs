//! Per process: logging, span export and metrics installed once; per invocation: one span with the
//! request id, cold-start flag and trace id, its duration recorded and its metrics flushed as EMF.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use metrics_cloudwatch_embedded::Collector;
use tracing::field::Empty;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use settings::Env;

use crate::log_filter::{debug_sample_rate, debug_sampled, log_layer};
use crate::metric_catalog::{COLD_START, INVOCATION_DURATION};
use crate::xray::{self, SpanExport};

/// CloudWatch namespace for the suite's metrics.
pub const METRICS_NAMESPACE: &str = "ServerlessSuite";

/// Logs a failed cold start (invalid configuration) as an error line before `main` returns it, so the
/// reason is in the function's log group, not only in the runtime's init error.
pub fn report_cold_start<T, E: std::fmt::Display>(result: Result<T, E>) -> Result<T, E> {
    if let Err(e) = &result {
        tracing::error!(error = %e, "cold start failed");
    }
    result
}

/// The request id of the invocation running now (Lambda runs one at a time per process), for spans
/// that start a trace of their own, such as an order continuing its message's trace.
static CURRENT_REQUEST_ID: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// The request id of the invocation running now (empty outside one).
pub fn current_request_id() -> String {
    CURRENT_REQUEST_ID
        .lock()
        .map(|id| id.clone())
        .unwrap_or_default()
}

fn set_current_request_id(request_id: &str) {
    if let Ok(mut current) = CURRENT_REQUEST_ID.lock() {
        current.clear();
        current.push_str(request_id);
    }
}

/// Per-process telemetry: logging installed, spans exported when traced, metrics collector ready.
pub struct Telemetry {
    service: &'static str,
    metrics: Option<&'static Collector>,
    /// Kept for the life of the process: its provider ends and sends every span.
    _spans: Option<SpanExport>,
    cold: AtomicBool,
    debug_rate: f64,
    debug_now: Arc<AtomicBool>,
}

impl Telemetry {
    /// Installs the log layer (stdout), the span exporter when Lambda's X-Ray daemon is there, and
    /// the EMF metrics recorder. Call once, first thing in `main`.
    pub fn init(service: &'static str) -> Telemetry {
        let env = Env::from_process();
        let debug_now = Arc::new(AtomicBool::new(false));
        let (spans, span_error) = match SpanExport::from_env(&env, service) {
            Ok(spans) => (spans, None),
            Err(e) => (None, Some(e)),
        };
        let _ = tracing_subscriber::registry()
            .with(log_layer(service, std::io::stdout, &env, debug_now.clone()))
            .with(spans.as_ref().map(|s| s.layer()))
            .try_init();
        if let Some(e) = span_error {
            tracing::warn!(error = %e, "spans are not exported");
        }
        let debug_rate = debug_sample_rate(&env)
            .map_err(|e| tracing::warn!(error = %e, "debug log sampling setting refused"))
            .unwrap_or(0.0);
        let metrics = metrics_cloudwatch_embedded::Builder::new()
            .cloudwatch_namespace(METRICS_NAMESPACE)
            .with_dimension("service", service)
            .init()
            .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
            .ok();
        metrics::describe_histogram!(
            INVOCATION_DURATION,
            metrics::Unit::Milliseconds,
            "handler time per invocation"
        );
        Telemetry {
            service,
            metrics,
            _spans: spans,
            cold: AtomicBool::new(true),
            debug_rate,
            debug_now,
        }
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Runs one invocation inside a span carrying the request id, cold-start flag and trace id (and
    /// continuing that X-Ray trace), then records its duration and flushes the invocation's metrics
    /// as EMF.
    pub async fn invocation<F: Future>(
        &self,
        request_id: &str,
        xray_trace_id: Option<&str>,
        work: F,
    ) -> F::Output {
        let cold_start = self.cold.swap(false, Ordering::Relaxed);
        if cold_start {
            metrics::counter!(COLD_START).increment(1);
        }
        set_current_request_id(request_id);
        let sampled = debug_sampled(request_id, self.debug_rate);
        self.debug_now.store(sampled, Ordering::Relaxed);
        let span = tracing::info_span!(
            "invocation",
            function_request_id = request_id,
            cold_start,
            xray_trace_id = xray_trace_id.unwrap_or(""),
            debug_sampled = Empty,
        );
        if sampled {
            span.record("debug_sampled", true);
        }
        if let Some(header) = xray_trace_id {
            xray::continue_trace(&span, header);
        }
        let started = Instant::now();
        let output = work.instrument(span).await;
        self.debug_now.store(false, Ordering::Relaxed);
        set_current_request_id("");
        metrics::histogram!(INVOCATION_DURATION).record(started.elapsed().as_secs_f64() * 1000.0);
        if let Some(collector) = self.metrics {
            collector.set_property("function_request_id", request_id.to_string());
            let _ = collector.flush(std::io::stdout().lock());
        }
        output
    }
}
