//! The X-Ray trace header: continued from an invocation or a message, passed on with what is sent.

use super::*;
use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_aws::trace::XrayPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub(super) struct HeaderCarrier<'a>(pub(super) &'a str);

impl Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        key.eq_ignore_ascii_case(TRACE_HEADER).then_some(self.0)
    }
    fn keys(&self) -> Vec<&str> {
        vec![TRACE_HEADER]
    }
}

/// Makes `span` a child of the X-Ray trace in `header` (`Root=1-…;Parent=…;Sampled=…`). Does
/// nothing when spans are not exported or the header holds no valid trace.
pub fn continue_trace(span: &Span, header: &str) {
    let context = XrayPropagator::default().extract(&HeaderCarrier(header));
    if context.span().span_context().is_valid() {
        // An error only means no exporter is installed: there is no trace to continue.
        let _ = span.set_parent(context);
    }
}

pub(super) struct HeaderSink(HashMap<String, String>);

impl Injector for HeaderSink {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_ascii_lowercase(), value);
    }
}

/// The X-Ray header for a message sent from inside the current span: the same trace and sampling
/// decision, with the current span as the parent, so the consumer's spans hang below this one.
/// `None` when spans are not exported (the caller then passes on the header it received).
pub fn outgoing_header() -> Option<String> {
    let context = Span::current().context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut sink = HeaderSink(HashMap::new());
    XrayPropagator::default().inject_context(&context, &mut sink);
    sink.0.remove(TRACE_HEADER)
}

/// The trace header for a message sent on behalf of one that arrived with `received`: the current
/// span's (same trace, this span as the parent) when spans are exported, else `received` as it was.
pub fn header_to_send(received: Option<&domain::ports::TraceHeader>) -> Option<String> {
    outgoing_header().or_else(|| received.map(|t| t.as_str().to_string()))
}
