//! One ended span as an X-Ray segment (or subsegment) document.

use super::*;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::Value as OtelValue;
use opentelemetry_sdk::trace::SpanData;
use serde_json::{json, Map, Value};

/// X-Ray's trace id (`1-` eight hex digits of time `-` 24 more) from OpenTelemetry's 32.
pub(super) fn xray_trace_id(span: &SpanData) -> String {
    let hex = span.span_context.trace_id().to_string();
    format!("1-{}-{}", &hex[..8], &hex[8..])
}

pub(super) fn seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub(super) fn json_value(value: &OtelValue) -> Value {
    match value {
        OtelValue::Bool(b) => Value::from(*b),
        OtelValue::I64(i) => Value::from(*i),
        OtelValue::F64(f) => Value::from(*f),
        other => Value::from(other.as_str().into_owned()),
    }
}

/// A name X-Ray accepts: letters, digits, spaces and `_.:/%&#=+\-@`, at most 200 characters.
pub(super) fn segment_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == ' ' || "_.:/%&#=+-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    if clean.is_empty() {
        "span".into()
    } else {
        clean
    }
}

/// An annotation key X-Ray accepts: letters, digits and underscores.
pub(super) fn annotation_key(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// One span as an X-Ray segment document: a segment for a service's own work (server spans), a
/// subsegment otherwise; an AWS call in the `aws` namespace with its operation and request id.
pub(super) fn segment_document(span: &SpanData, service: &str, log_group: Option<&str>) -> Value {
    let attribute = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    };
    let text = |key: &str| attribute(key).map(|v| v.as_str().into_owned());
    let aws_call = text("rpc.system").as_deref() == Some("aws-api");
    let segment = span.span_kind == SpanKind::Server;
    let name = if segment {
        service.to_string()
    } else if aws_call {
        text("rpc.service").unwrap_or_else(|| span.name.to_string())
    } else {
        span.name.to_string()
    };
    let mut doc = Map::new();
    doc.insert("name".into(), Value::from(segment_name(&name)));
    doc.insert(
        "id".into(),
        Value::from(span.span_context.span_id().to_string()),
    );
    doc.insert("trace_id".into(), Value::from(xray_trace_id(span)));
    if span.parent_span_id != SpanId::INVALID {
        doc.insert(
            "parent_id".into(),
            Value::from(span.parent_span_id.to_string()),
        );
    }
    doc.insert("start_time".into(), Value::from(seconds(span.start_time)));
    doc.insert("end_time".into(), Value::from(seconds(span.end_time)));
    if !segment {
        doc.insert("type".into(), Value::from("subsegment"));
    }
    let mut aws = Map::new();
    if aws_call {
        doc.insert("namespace".into(), Value::from("aws"));
        if let Some(operation) = text("rpc.method") {
            aws.insert("operation".into(), Value::from(operation));
        }
        if let Some(id) = text("aws.request_id") {
            aws.insert("request_id".into(), Value::from(id));
        }
    }
    if let (true, Some(group)) = (segment, log_group) {
        aws.insert("cloudwatch_logs".into(), json!([{ "log_group": group }]));
    }
    if !aws.is_empty() {
        doc.insert("aws".into(), Value::Object(aws));
    }
    let status = attribute("http.response.status_code").and_then(|v| match v {
        OtelValue::I64(i) => Some(*i),
        other => other.as_str().parse().ok(),
    });
    let mut http = Map::new();
    if let Some(method) = text("http.request.method") {
        http.insert("request".into(), json!({ "method": method }));
    }
    if let Some(status) = status {
        http.insert("response".into(), json!({ "status": status }));
    }
    if !http.is_empty() {
        doc.insert("http".into(), Value::Object(http));
    }
    // X-Ray's flags: fault for a server-side failure, error for a client one.
    let failed = matches!(span.status, Status::Error { .. });
    match status {
        Some(s) if s >= 500 => {
            doc.insert("fault".into(), Value::from(true));
        }
        Some(s) if s >= 400 => {
            doc.insert("error".into(), Value::from(true));
        }
        _ if failed => {
            doc.insert("fault".into(), Value::from(true));
        }
        _ => {}
    }
    let mut annotations = Map::new();
    let mut metadata = Map::new();
    for kv in &span.attributes {
        let key = kv.key.as_str();
        if ANNOTATIONS.contains(&key) {
            annotations.insert(annotation_key(key), json_value(&kv.value));
        } else if !key.starts_with("otel.") && !key.starts_with("rpc.") && !key.starts_with("http.")
        {
            metadata.insert(key.to_string(), json_value(&kv.value));
        }
    }
    if !annotations.is_empty() {
        doc.insert("annotations".into(), Value::Object(annotations));
    }
    if !metadata.is_empty() {
        doc.insert("metadata".into(), json!({ "default": metadata }));
    }
    Value::Object(doc)
}
