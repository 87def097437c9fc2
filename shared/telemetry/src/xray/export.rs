//! Spans to X-Ray: the OpenTelemetry provider and an exporter that sends each ended span as a
//! segment document over UDP to the daemon Lambda runs.

use super::segment::segment_document;
use super::*;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_aws::trace::XrayIdGenerator;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_subscriber::layer::Layer;
use tracing_subscriber::registry::LookupSpan;

use settings::Env;

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
pub(super) struct XrayUdpExporter {
    socket: UdpSocket,
    service: &'static str,
    log_group: Option<String>,
}

pub(super) const DAEMON_HEADER: &str = "{\"format\": \"json\", \"version\": 1}\n";

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
