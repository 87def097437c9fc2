//! Spans exported to AWS X-Ray, and the X-Ray trace continued across the pipeline.
//!
//! The code's `tracing` spans (one per invocation, per order, per upload, per API request and per
//! AWS call) become OpenTelemetry spans (`tracing-opentelemetry`), with X-Ray's ids and propagation
//! (`opentelemetry-aws`); the OpenTelemetry SDK ends them and an exporter here writes each as an
//! X-Ray segment document sent over UDP to the X-Ray daemon, which Lambda runs beside every function
//! with active tracing and names in `AWS_XRAY_DAEMON_ADDRESS`. Nothing to add to the function: no
//! layer, no sidecar, no collector.
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
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanId, SpanKind, Status, TraceContextExt, TracerProvider as _};
use opentelemetry::Value as OtelValue;
use opentelemetry_aws::trace::{XrayIdGenerator, XrayPropagator};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use serde_json::{json, Map, Value};
use tracing::subscriber::Interest;
use tracing::{Metadata, Span, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{DynFilterFn, LevelFilter};
use tracing_subscriber::layer::{Filter, Layer};
use tracing_subscriber::registry::LookupSpan;

use settings::Env;

/// Where Lambda's X-Ray daemon listens (`169.254.79.129:2000`, or `udp:… tcp:…`).
pub const DAEMON_ADDRESS: &str = "AWS_XRAY_DAEMON_ADDRESS";
/// OpenTelemetry's own switch: `true` turns span export off.
pub const SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
/// The header X-Ray trace context travels in (and the key the X-Ray propagator reads).
const TRACE_HEADER: &str = "x-amzn-trace-id";

/// The crates whose spans are exported, whose spans carry fields into log lines, and whose events
/// log at the configured level (dependencies stay at warn). Every function's crate is here: a test
/// reads `functions/`.
pub const OUR_TARGETS: [&str; 8] = [
    "adapters",
    "telemetry",
    "settings",
    "domain",
    "order_processor",
    "order_settlement",
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

/// Passes this suite's spans (at any level) and nothing else: no event, no dependency's span.
pub fn our_spans<S: Subscriber>() -> impl Filter<S> + Send + Sync + 'static {
    DynFilterFn::new(|meta: &Metadata<'_>, _| meta.is_span() && is_ours(meta.target()))
        .with_callsite_filter(|meta| {
            if meta.is_span() && is_ours(meta.target()) {
                Interest::always()
            } else {
                Interest::never()
            }
        })
        .with_max_level_hint(LevelFilter::TRACE)
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
        let exporter = XrayUdpExporter::connect(address, service, log_group)?;
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter)
            .with_id_generator(XrayIdGenerator::default())
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
            .with_resource(Resource::builder_empty().with_service_name(service).build())
            .build();
        Ok(SpanExport { provider, service })
    }

    /// The `tracing` layer that turns this suite's spans (never events) into exported spans.
    pub fn layer<S>(&self) -> impl Layer<S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer(self.service))
            .with_tracked_inactivity(false)
            .with_location(false)
            .with_threads(false)
            .with_filter(our_spans())
    }
}

/// Writes each span as an X-Ray segment document and sends it to the daemon, one UDP datagram per
/// span (`{"format": "json", "version": 1}`, a newline, the document).
///
/// The suite's own, not `opentelemetry-aws`'s exporter: that one checks every name against a
/// Unicode regular expression whose compilation costs 1.2 MiB of resident memory per process
/// (measured: a tenth of user-api's peak), where this needs a character test.
#[derive(Debug)]
struct XrayUdpExporter {
    socket: UdpSocket,
    service: &'static str,
    log_group: Option<String>,
}

const DAEMON_HEADER: &str = "{\"format\": \"json\", \"version\": 1}\n";

impl XrayUdpExporter {
    fn connect(
        address: SocketAddr,
        service: &'static str,
        log_group: Option<String>,
    ) -> std::io::Result<XrayUdpExporter> {
        let local: SocketAddr = if address.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(local)?;
        // A datagram to the local daemon never waits; one that cannot be sent is dropped.
        socket.set_nonblocking(true)?;
        socket.connect(address)?;
        Ok(XrayUdpExporter {
            socket,
            service,
            log_group,
        })
    }
}

impl SpanExporter for XrayUdpExporter {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        for span in &batch {
            let mut datagram = String::from(DAEMON_HEADER);
            datagram.push_str(
                &segment_document(span, self.service, self.log_group.as_deref()).to_string(),
            );
            // Telemetry never fails the work it describes: an unsent span is lost, nothing else.
            let _ = self.socket.send(datagram.as_bytes());
        }
        std::future::ready(Ok(()))
    }
}

/// X-Ray's trace id (`1-` eight hex digits of time `-` 24 more) from OpenTelemetry's 32.
fn xray_trace_id(span: &SpanData) -> String {
    let hex = span.span_context.trace_id().to_string();
    format!("1-{}-{}", &hex[..8], &hex[8..])
}

fn seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn json_value(value: &OtelValue) -> Value {
    match value {
        OtelValue::Bool(b) => Value::from(*b),
        OtelValue::I64(i) => Value::from(*i),
        OtelValue::F64(f) => Value::from(*f),
        other => Value::from(other.as_str().into_owned()),
    }
}

/// A name X-Ray accepts: letters, digits, spaces and `_.:/%&#=+\-@`, at most 200 characters.
fn segment_name(name: &str) -> String {
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
fn annotation_key(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// One span as an X-Ray segment document: a segment for a service's own work (server spans), a
/// subsegment otherwise; an AWS call in the `aws` namespace with its operation and request id.
fn segment_document(span: &SpanData, service: &str, log_group: Option<&str>) -> Value {
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
    fn names_and_annotation_keys_are_made_acceptable_to_x_ray() {
        assert_eq!(segment_name("order-processor"), "order-processor");
        assert_eq!(segment_name("GET /users/{id}"), "GET /users/_id_");
        assert_eq!(segment_name(""), "span");
        assert_eq!(segment_name(&"x".repeat(300)).len(), 200);
        assert_eq!(annotation_key("http.route"), "http_route");
        assert_eq!(annotation_key("order_id"), "order_id");
    }

    #[test]
    fn every_function_crate_is_ours() {
        let functions = concat!(env!("CARGO_MANIFEST_DIR"), "/../../functions");
        let mut seen = 0;
        for entry in std::fs::read_dir(functions).unwrap() {
            let entry = entry.unwrap();
            if entry.path().join("Cargo.toml").exists() {
                let krate = entry.file_name().to_string_lossy().replace('-', "_");
                assert!(is_ours(&krate), "{krate} is not in OUR_TARGETS");
                seen += 1;
            }
        }
        assert!(seen >= 4, "found {seen} function crates in {functions}");
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
