//! Structured JSON logs and CloudWatch Embedded Metric Format metrics for every function.
//!
//! Every log line is one JSON object with `timestamp`, `level`, `message`, `service`, `target`, the
//! fields of the spans it is inside (the invocation span adds `function_request_id`, `cold_start` and
//! `xray_trace_id`) and the event's own fields. Metrics use the `metrics` facade and are flushed as EMF
//! after each invocation.

use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use metrics_cloudwatch_embedded::Collector;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Instrument, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::Env;
use crate::metric_catalog::{COLD_START, INVOCATION_DURATION};

/// CloudWatch namespace for the suite's metrics.
pub const METRICS_NAMESPACE: &str = "ServerlessSuite";

/// Fields collected from a span, kept in its extensions.
struct SpanFields(Map<String, Value>);

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(rename(field.name()), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(rename(field.name()), Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(rename(field.name()), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(rename(field.name()), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(rename(field.name()), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(rename(field.name()), Value::from(value));
    }
}

/// The runtime's own span names its fields in camelCase; logs use one spelling.
fn rename(name: &str) -> String {
    match name {
        "requestId" => "function_request_id".into(),
        "xrayTraceId" => "xray_trace_id".into(),
        other => other.to_string(),
    }
}

/// A `tracing` layer writing one JSON object per event.
pub struct JsonLogLayer<W> {
    service: String,
    writer: W,
}

impl<W> JsonLogLayer<W> {
    pub fn new(service: &str, writer: W) -> Self {
        Self {
            service: service.to_string(),
            writer,
        }
    }
}

impl<S, W> Layer<S> for JsonLogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<SpanFields>() {
                values.record(&mut JsonVisitor(&mut fields.0));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(now_rfc3339()));
        line.insert(
            "level".into(),
            Value::String(event.metadata().level().to_string()),
        );
        line.insert("service".into(), Value::String(self.service.clone()));
        line.insert(
            "target".into(),
            Value::String(event.metadata().target().to_string()),
        );
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    for (k, v) in &fields.0 {
                        line.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        if !line.contains_key("message") {
            line.insert("message".into(), Value::String(String::new()));
        }
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        // A log line that cannot be written is dropped: logging must never fail an invocation.
        let _ = self.writer.make_writer().write_all(text.as_bytes());
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The log filter: `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's JSON logging config), else `LOG_LEVEL`,
/// else `info`; SDK internals stay at `warn` unless directives say otherwise.
pub fn log_filter(env: &Env) -> EnvFilter {
    let level = env
        .get("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|| env.get("LOG_LEVEL"))
        .unwrap_or_else(|| "info".into())
        .to_lowercase();
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let directives = if level.contains('=') || level.contains(',') {
        level
    } else {
        // A bare word that is not a level would parse as a target name: fall back to info.
        let level = if LEVELS.contains(&level.as_str()) {
            level
        } else {
            "info".into()
        };
        format!("{level},aws_config=warn,aws_smithy_runtime=warn,aws_sdk_s3=warn,hyper=warn,rustls=warn,h2=warn")
    };
    EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Logs a failed cold start (invalid configuration) as an error line before `main` returns it, so the
/// reason is in the function's log group, not only in the runtime's init error.
pub fn report_cold_start<T, E: std::fmt::Display>(result: Result<T, E>) -> Result<T, E> {
    if let Err(e) = &result {
        tracing::error!(error = %e, "cold start failed");
    }
    result
}

/// Per-process telemetry: logging installed, metrics collector ready.
pub struct Telemetry {
    service: &'static str,
    metrics: Option<&'static Collector>,
    cold: AtomicBool,
}

impl Telemetry {
    /// Installs the JSON logger (stdout) and the EMF metrics recorder. Call once, first thing in `main`.
    pub fn init(service: &'static str) -> Telemetry {
        let env = Env::process();
        let _ = tracing_subscriber::registry()
            .with(log_filter(&env))
            .with(JsonLogLayer::new(service, std::io::stdout))
            .try_init();
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
            cold: AtomicBool::new(true),
        }
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Runs one invocation inside a span carrying the request id, cold-start flag and trace id, then
    /// records its duration and flushes the invocation's metrics as EMF.
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
        let span = tracing::info_span!(
            "invocation",
            function_request_id = request_id,
            cold_start,
            xray_trace_id = xray_trace_id.unwrap_or(""),
        );
        let started = Instant::now();
        let output = work.instrument(span).await;
        metrics::histogram!(INVOCATION_DURATION).record(started.elapsed().as_secs_f64() * 1000.0);
        if let Some(collector) = self.metrics {
            collector.set_property("function_request_id", request_id.to_string());
            let _ = collector.flush(std::io::stdout().lock());
        }
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    #[test]
    fn log_lines_are_json_with_invocation_fields() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::registry()
            .with(EnvFilter::new("info"))
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
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
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
        let f = log_filter(&Env::from_pairs(&[
            ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
            ("LOG_LEVEL", "error"),
        ]));
        use tracing_subscriber::filter::LevelFilter;
        assert_eq!(f.max_level_hint(), Some(LevelFilter::DEBUG));
        let f = log_filter(&Env::from_pairs(&[("LOG_LEVEL", "error")]));
        // SDK targets stay at warn, so the most verbose directive is warn.
        assert_eq!(f.max_level_hint(), Some(LevelFilter::WARN));
        let f = log_filter(&Env::from_pairs(&[("LOG_LEVEL", "not a level!")]));
        assert_eq!(f.max_level_hint(), Some(LevelFilter::INFO));
    }
}
