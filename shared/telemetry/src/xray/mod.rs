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

mod export;
mod propagation;
mod segment;

pub use export::{daemon_address, SpanExport};
pub use propagation::{continue_trace, header_to_send, outgoing_header};

use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::filter::{DynFilterFn, LevelFilter};
use tracing_subscriber::layer::Filter;

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
    use std::net::SocketAddr;

    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use opentelemetry_aws::trace::XrayPropagator;
    use settings::Env;

    use super::propagation::HeaderCarrier;
    use super::segment::{annotation_key, segment_name};

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
