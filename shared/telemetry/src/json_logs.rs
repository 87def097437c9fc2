//! One log line per `tracing` event: a JSON object (or Lambda's text form) with the fields of the
//! spans the event is inside, and a writer that keeps lines for tests.

use std::io::Write;
use std::sync::Arc;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use settings::Env;

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
