//! Spans exported to AWS X-Ray, and the X-Ray trace continued across the pipeline.
//!
//! The code's `tracing` spans (one per invocation, per order, per upload, per API request and per
//! AWS call) become OpenTelemetry spans (`tracing-opentelemetry`); the OpenTelemetry SDK ends them
//! and `opentelemetry-aws` turns each into an X-Ray segment document sent over UDP to the X-Ray
//! daemon, which Lambda runs beside every function with active tracing and names in
//! `AWS_XRAY_DAEMON_ADDRESS`. Nothing to add to the function: no layer, no sidecar, no collector.
//!
//! Each span is sent when it ends (a simple processor): Lambda freezes the process once the
//! response is posted, so nothing is left waiting in a buffer, and a local UDP datagram costs a few
//! microseconds. Only the code's own spans are exported, never log events (they stay in the logs,
//! where the no-PII rules are tested).
//!
//! Trace ids follow X-Ray: the invocation continues the trace Lambda gives it (`_X_AMZN_TRACE_ID`),
//! an order continues the trace its SQS message carries (`AWSTraceHeader`), and a trace that starts
//! here gets an X-Ray id (time-prefixed). Sampling is X-Ray's: a parent that was not sampled
//! (`Sampled=0`) exports nothing.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_aws::trace::{XrayIdGenerator, XrayPropagator};
use opentelemetry_aws::xray_exporter::daemon_client::XrayDaemonClient;
use opentelemetry_aws::xray_exporter::{SegmentTranslator, XrayExporter};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::subscriber::Interest;
use tracing::{Metadata, Span, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{DynFilterFn, LevelFilter};
use tracing_subscriber::layer::Layer;
use tracing_subscriber::registry::LookupSpan;

use crate::config::Env;

/// Where Lambda's X-Ray daemon listens (`169.254.79.129:2000`, or `udp:… tcp:…`).
pub const DAEMON_ADDRESS: &str = "AWS_XRAY_DAEMON_ADDRESS";
/// OpenTelemetry's own switch: `true` turns span export off.
pub const SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
/// The header X-Ray trace context travels in (and the key the X-Ray propagator reads).
const TRACE_HEADER: &str = "x-amzn-trace-id";

/// The crates whose spans are exported (and whose spans carry fields into log lines).
pub const OUR_TARGETS: [&str; 5] = [
    "adapters",
    "domain",
    "order_processor",
    "user_api",
    "image_compressor",
];

/// Span fields indexed as X-Ray annotations, so traces can be searched by them
/// (`annotation.order_id = "…"`, `annotation.outcome = "failed"`).
pub const ANNOTATIONS: [&str; 9] = [
    "function_request_id",
    "cold_start",
    "message_id",
    "order_id",
    "bucket",
    "key",
    "user",
    "http.route",
    "outcome",
];

/// Whether `target` is one of this suite's crates (or a module of one).
pub fn is_ours(target: &str) -> bool {
    OUR_TARGETS.iter().any(|crate_name| {
        target
            .strip_prefix(crate_name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// The daemon's UDP address from `AWS_XRAY_DAEMON_ADDRESS`: `host:port`, or Lambda's two-address
/// form `tcp:host:port udp:host:port` (the UDP one is used).
pub fn daemon_address(raw: &str) -> Option<SocketAddr> {
    let raw = raw.trim();
    let udp = if raw.contains(' ') {
        raw.split_whitespace()
            .find_map(|part| part.strip_prefix("udp:"))?
    } else {
        raw.strip_prefix("udp:").unwrap_or(raw)
    };
    udp.to_socket_addrs().ok()?.next()
}

/// The span exporter of one process.
pub struct SpanExport {
    provider: SdkTracerProvider,
    service: &'static str,
}

impl SpanExport {
    /// Export to the daemon named by `AWS_XRAY_DAEMON_ADDRESS`; `None` when it is unset (no
    /// active tracing) or `OTEL_SDK_DISABLED=true`. A set but unusable address is an error naming it.
    pub fn from_env(env: &Env, service: &'static str) -> Result<Option<SpanExport>, String> {
        if env
            .get(SDK_DISABLED)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        {
            return Ok(None);
        }
        let Some(raw) = env.get(DAEMON_ADDRESS).filter(|v| !v.trim().is_empty()) else {
            return Ok(None);
        };
        let address = daemon_address(&raw)
            .ok_or_else(|| format!("{DAEMON_ADDRESS}={raw:?} is not a host:port address"))?;
        Self::to_daemon(address, service, env.get("AWS_LAMBDA_LOG_GROUP_NAME"))
            .map(Some)
            .map_err(|e| format!("{DAEMON_ADDRESS}={raw:?}: {e}"))
    }

    /// Export to the X-Ray daemon (or anything that reads its UDP protocol) at `address`; the
    /// function's log group, when given, links each trace to its logs in the console.
    pub fn to_daemon(
        address: SocketAddr,
        service: &'static str,
        log_group: Option<String>,
    ) -> std::io::Result<SpanExport> {
        let client = XrayDaemonClient::new(address)?;
        // What a span says of its work is searchable (annotations); whatever else it carries is
        // kept as metadata.
        let mut translator = SegmentTranslator::new()
            .with_indexed_attrs(ANNOTATIONS.iter().map(|a| a.to_string()))
            .metadata_all_attrs();
        if let Some(group) = log_group {
            translator = translator.with_log_group_name(group);
        }
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(XrayExporter::new(client).with_translator(translator))
            .with_id_generator(XrayIdGenerator::default())
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
            .with_resource(Resource::builder().with_service_name(service).build())
            .build();
        Ok(SpanExport { provider, service })
    }

    /// The `tracing` layer that turns this suite's spans (never events) into exported spans.
    pub fn layer<S>(&self) -> impl Layer<S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let ours =
            DynFilterFn::new(|meta: &Metadata<'_>, _| meta.is_span() && is_ours(meta.target()))
                .with_callsite_filter(|meta| {
                    if meta.is_span() && is_ours(meta.target()) {
                        Interest::always()
                    } else {
                        Interest::never()
                    }
                })
                .with_max_level_hint(LevelFilter::TRACE);
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer(self.service))
            .with_tracked_inactivity(false)
            .with_location(false)
            .with_threads(false)
            .with_filter(ours)
    }

    /// Sends whatever is still held (nothing, with the simple processor; kept for the shutdown path).
    pub fn flush(&self) {
        let _ = self.provider.force_flush();
    }
}

struct HeaderCarrier<'a>(&'a str);

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

struct HeaderSink(HashMap<String, String>);

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

/// A stable, one-way stand-in for personal data in spans: the first 16 hex digits of its SHA-256.
pub fn pseudonym(value: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(value.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemon_address_takes_both_of_lambdas_forms() {
        let one: SocketAddr = "169.254.79.129:2000".parse().unwrap();
        assert_eq!(daemon_address("169.254.79.129:2000"), Some(one));
        assert_eq!(daemon_address("udp:169.254.79.129:2000"), Some(one));
        assert_eq!(
            daemon_address("tcp:127.0.0.1:2001 udp:169.254.79.129:2000"),
            Some(one)
        );
        assert_eq!(daemon_address("tcp:127.0.0.1:2001 other"), None);
        assert_eq!(daemon_address("not an address"), None);
    }

    #[test]
    fn export_is_off_without_a_daemon_and_when_disabled_and_refuses_a_bad_address() {
        let _quiet = crate::HEAP_QUIET.lock().unwrap_or_else(|p| p.into_inner());
        assert!(SpanExport::from_env(&Env::from_pairs(&[]), "t")
            .unwrap()
            .is_none());
        assert!(SpanExport::from_env(
            &Env::from_pairs(&[(DAEMON_ADDRESS, "127.0.0.1:2000"), (SDK_DISABLED, "TRUE")]),
            "t"
        )
        .unwrap()
        .is_none());
        assert!(
            SpanExport::from_env(&Env::from_pairs(&[(DAEMON_ADDRESS, "127.0.0.1:2000")]), "t")
                .unwrap()
                .is_some()
        );
        let error = SpanExport::from_env(&Env::from_pairs(&[(DAEMON_ADDRESS, "nowhere")]), "t")
            .err()
            .unwrap();
        assert!(
            error.contains(DAEMON_ADDRESS) && error.contains("nowhere"),
            "{error}"
        );
    }

    #[test]
    fn a_pseudonym_is_stable_short_and_not_the_value() {
        let id = "5d4c3b2a-1f0e-4a9b-8c7d-6e5f4a3b2c1d";
        assert_eq!(pseudonym(id), pseudonym(id));
        assert_eq!(pseudonym(id).len(), 16);
        assert_ne!(
            pseudonym(id),
            pseudonym("5d4c3b2a-1f0e-4a9b-8c7d-6e5f4a3b2c1e")
        );
        assert!(!pseudonym(id).contains("5d4c3b2a"));
    }

    #[test]
    fn lambdas_trace_header_is_read_with_its_lineage_and_a_bad_one_is_not() {
        let read = |header: &str| {
            let cx = XrayPropagator::default().extract(&HeaderCarrier(header));
            let span = cx.span();
            let sc = span.span_context();
            (
                sc.is_valid(),
                sc.trace_id().to_string(),
                sc.span_id().to_string(),
                sc.is_sampled(),
            )
        };
        let lambda = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=1:a3b5c7d9:0";
        assert_eq!(
            read(lambda),
            (
                true,
                "5759e988bd862e3fe1be46a994272793".to_string(),
                "53995c3f42cd8ad8".to_string(),
                true
            )
        );
        assert!(
            !read("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0").3
        );
        assert!(!read("Root=garbage;Parent=53995c3f42cd8ad8").0);
        assert!(!read("").0);
    }

    #[test]
    fn only_this_suites_crates_are_ours() {
        for target in [
            "adapters",
            "adapters::aws",
            "order_processor",
            "user_api::routes",
        ] {
            assert!(is_ours(target), "{target}");
        }
        for target in [
            "adapters_extra",
            "aws_smithy_runtime",
            "lambda_runtime",
            "hyper::proto",
        ] {
            assert!(!is_ours(target), "{target}");
        }
    }
}
