//! Structured JSON logs and CloudWatch Embedded Metric Format metrics for every function.
//!
//! Every log line is one JSON object with `timestamp`, `level`, `message`, `service`, `target`, the
//! fields of the spans it is inside (the invocation span adds `function_request_id`, `cold_start` and
//! `xray_trace_id`) and the event's own fields. Metrics use the `metrics` facade and are flushed as EMF
//! after each invocation. Spans are exported to X-Ray when Lambda's active tracing is on
//! (`trace_export`).
//!
//! Log controls are Lambda's: `AWS_LAMBDA_LOG_LEVEL` (else `LOG_LEVEL`) sets the level and
//! `AWS_LAMBDA_LOG_FORMAT` (`JSON`, the default, or `Text`) the shape of a line. On top,
//! `LOG_DEBUG_SAMPLE_RATE` (0 to 1, default 0) logs a share of invocations at debug level whatever
//! the level, chosen per request id, so one slow request's story can be read without turning debug
//! logging on for all of them; such lines carry `debug_sampled: true`.

use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use metrics_cloudwatch_embedded::Collector;
use serde_json::{Map, Value};
use tracing::field::Empty;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Instrument, Level, Metadata, Subscriber};
use tracing_subscriber::filter::{DynFilterFn, FilterExt, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::Env;
use crate::metric_catalog::{COLD_START, INVOCATION_DURATION};
use crate::trace_export::{self, is_ours, SpanExport};

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

/// The shape of a log line, as Lambda's `AWS_LAMBDA_LOG_FORMAT` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One JSON object per line (the default, and what the template configures).
    #[default]
    Json,
    /// `timestamp LEVEL request-id message key=value ...`, for a function set to Lambda's text format.
    Text,
}

impl LogFormat {
    pub fn from_env(env: &Env) -> LogFormat {
        match env.get("AWS_LAMBDA_LOG_FORMAT") {
            Some(v) if v.trim().eq_ignore_ascii_case("text") => LogFormat::Text,
            _ => LogFormat::Json,
        }
    }
}

/// A `tracing` layer writing one line per event: a JSON object, or text (`LogFormat`).
pub struct JsonLogLayer<W> {
    service: String,
    writer: W,
    format: LogFormat,
}

impl<W> JsonLogLayer<W> {
    pub fn new(service: &str, writer: W) -> Self {
        Self {
            service: service.to_string(),
            writer,
            format: LogFormat::Json,
        }
    }

    pub fn with_format(self, format: LogFormat) -> Self {
        Self { format, ..self }
    }
}

/// The text form of a line: the fixed fields first, then the rest as `key=value`.
fn text_line(line: &Map<String, Value>) -> String {
    let plain = |key: &str| match line.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "-".into(),
    };
    let mut text = format!(
        "{} {} {} {}",
        plain("timestamp"),
        plain("level"),
        plain("function_request_id"),
        plain("message")
    );
    for (key, value) in line {
        if !["timestamp", "level", "function_request_id", "message"].contains(&key.as_str()) {
            text.push(' ');
            text.push_str(key);
            text.push('=');
            match value {
                Value::String(s) => text.push_str(s),
                other => text.push_str(&other.to_string()),
            }
        }
    }
    text
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
        let mut text = match self.format {
            LogFormat::Json => Value::Object(line).to_string(),
            LogFormat::Text => text_line(&line),
        };
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

/// The log filter: `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's logging config), else `LOG_LEVEL`, else
/// `info`. The level is the suite's own: dependencies (the SDK, the HTTP stack, the runtime) log at
/// `warn` at the most, so no level can print what their debug output holds (headers, bodies).
/// A value with `=` or `,` is taken as `tracing` directives, as it is.
pub fn log_filter(env: &Env) -> EnvFilter {
    let level = env
        .get("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|| env.get("LOG_LEVEL"))
        .unwrap_or_else(|| "info".into())
        .to_lowercase();
    // Lambda's most severe level; `tracing` stops at error.
    let level = if level == "fatal" {
        "error".to_string()
    } else {
        level
    };
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
        let others = if level == "error" || level == "off" {
            level.as_str()
        } else {
            "warn"
        };
        let mut directives = others.to_string();
        for target in trace_export::OUR_TARGETS {
            directives.push_str(&format!(",{target}={level}"));
        }
        directives
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

/// `LOG_DEBUG_SAMPLE_RATE`: the share of invocations logged at debug level (0 to 1).
pub const DEBUG_SAMPLE_RATE: &str = "LOG_DEBUG_SAMPLE_RATE";

/// The debug sampling rate, or why the setting is refused (then sampling is off).
pub fn debug_sample_rate(env: &Env) -> Result<f64, String> {
    match env.get(DEBUG_SAMPLE_RATE) {
        None => Ok(0.0),
        Some(raw) => match raw.trim().parse::<f64>() {
            Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
            _ => Err(format!(
                "{DEBUG_SAMPLE_RATE}={raw:?} is not a number from 0 to 1; debug sampling is off"
            )),
        },
    }
}

/// Whether the invocation with this request id is one of the `rate` share logged at debug level:
/// a hash of the id, so the choice is the same wherever it is made.
pub fn debug_sampled(request_id: &str, rate: f64) -> bool {
    if rate <= 0.0 {
        return false;
    }
    if rate >= 1.0 {
        return true;
    }
    let fnv = request_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    // FNV's high bits barely move between similar ids: mix them all in (MurmurHash3's finaliser).
    let mut hash = fnv;
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    (hash as f64 / u64::MAX as f64) < rate
}

/// The log layer with its filter: events as the level says, plus this suite's debug events while a
/// sampled invocation runs (`sampled`), plus this suite's spans at any level, so that a line keeps
/// its invocation's fields even when the level hides the spans' own level.
pub fn log_layer<S, W>(
    service: &str,
    writer: W,
    env: &Env,
    sampled: Arc<AtomicBool>,
) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    let ours_at_debug =
        |meta: &Metadata<'_>| *meta.level() <= Level::DEBUG && is_ours(meta.target());
    let sampled_debug = DynFilterFn::new(move |meta: &Metadata<'_>, _| {
        meta.is_event() && sampled.load(Ordering::Relaxed) && ours_at_debug(meta)
    })
    .with_callsite_filter(move |meta| {
        if meta.is_event() && ours_at_debug(meta) {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    })
    .with_max_level_hint(LevelFilter::DEBUG);
    JsonLogLayer::new(service, writer)
        .with_format(LogFormat::from_env(env))
        .with_filter(
            log_filter(env)
                .or(sampled_debug)
                .or(trace_export::our_spans()),
        )
}

/// Reads every variable `Telemetry::init` reads (for checks that compare them with the template).
pub fn read_env(env: &Env) {
    let _ = log_filter(env);
    let _ = LogFormat::from_env(env);
    let _ = debug_sample_rate(env);
    let _ = SpanExport::from_env(env, "check");
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
        let env = Env::process();
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
            trace_export::continue_trace(&span, header);
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

/// A log writer that keeps what it is given, for tests that read the lines back.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything written so far.
    pub fn text(&self) -> String {
        self.0
            .lock()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::ErrorKind::Other)?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;
    fn make_writer(&'a self) -> CapturedLogs {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `log_layer` writes while `work` runs, with `env` and the `sampled` flag.
    fn logged(
        service: &str,
        env: &Env,
        sampled: Arc<AtomicBool>,
        work: impl FnOnce(),
    ) -> CapturedLogs {
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
        let f = log_filter(&Env::from_pairs(&[
            ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
            ("LOG_LEVEL", "error"),
        ]));
        use tracing_subscriber::filter::LevelFilter;
        assert_eq!(f.max_level_hint(), Some(LevelFilter::DEBUG));
        let f = log_filter(&Env::from_pairs(&[("LOG_LEVEL", "error")]));
        // Dependencies are never more verbose than the suite's own level.
        assert_eq!(f.max_level_hint(), Some(LevelFilter::ERROR));
        let f = log_filter(&Env::from_pairs(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]));
        assert_eq!(f.max_level_hint(), Some(LevelFilter::ERROR));
        let f = log_filter(&Env::from_pairs(&[("LOG_LEVEL", "not a level!")]));
        assert_eq!(f.max_level_hint(), Some(LevelFilter::INFO));
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
            let span = tracing::info_span!(target: "adapters::telemetry", "invocation", function_request_id = "req-7");
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
            let span = tracing::info_span!(target: "adapters::telemetry", "invocation", function_request_id = "req-9");
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
}
