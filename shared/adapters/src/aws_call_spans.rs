//! One span per AWS call, made by an SDK interceptor on every client, so no call can be missed.
//!
//! The span is a child of whatever span the caller is in (the order, the upload, the API request)
//! and carries what X-Ray shows for an AWS call: the service and operation (`rpc.system = aws-api`,
//! `rpc.service`, `rpc.method`), AWS's request id, the HTTP status, the number of attempts (retries
//! show up as more than one) and the outcome. Never the request or response body.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use tracing::field::Empty;
use tracing::Span;

/// The request id AWS returned with a response, from either of the headers services use.
pub fn response_request_id(headers: &aws_smithy_runtime_api::http::Headers) -> Option<&str> {
    ["x-amzn-requestid", "x-amz-request-id"]
        .iter()
        .find_map(|name| headers.get(*name))
        .filter(|id| !id.is_empty() && !id.contains(char::is_whitespace))
}

/// The interceptor: add it to every client (see `aws::*_client`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CallSpans;

/// The open span of one operation (all its attempts), kept in the operation's config bag.
#[derive(Debug)]
struct CallSpan {
    span: Mutex<Option<Span>>,
    attempts: AtomicU32,
}

impl Storable for CallSpan {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CallSpans {
    fn name(&self) -> &'static str {
        "CallSpans"
    }

    // Not `read_before_execution`: a client's interceptors run that before the operation's
    // configuration (which names the service and operation) is in the bag.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_string(), m.name().to_string()))
            .unwrap_or_else(|| ("aws".into(), "unknown".into()));
        let name = format!("{service}.{operation}");
        let span = tracing::info_span!(
            "aws_call",
            otel.name = name.as_str(),
            otel.kind = "client",
            otel.status_code = Empty,
            rpc.system = "aws-api",
            rpc.service = %service,
            rpc.method = %operation,
            aws.request_id = Empty,
            http.response.status_code = Empty,
            aws.attempts = Empty,
            outcome = Empty,
        );
        cfg.interceptor_state().store_put(CallSpan {
            span: Mutex::new(Some(span)),
            attempts: AtomicU32::new(0),
        });
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(call) = cfg.load::<CallSpan>() {
            call.attempts.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(call) = cfg.load::<CallSpan>() else {
            return Ok(());
        };
        let Some(span) = call.span.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return Ok(());
        };
        span.record("aws.attempts", call.attempts.load(Ordering::Relaxed));
        if let Some(response) = context.response() {
            span.record("http.response.status_code", response.status().as_u16());
            if let Some(id) = response_request_id(response.headers()) {
                span.record("aws.request_id", id);
            }
        }
        let outcome = match context.output_or_error() {
            Some(Ok(_)) => "ok",
            Some(Err(e)) if e.is_operation_error() => "service_error",
            Some(Err(e)) if e.is_timeout_error() => "timeout",
            Some(Err(e)) if e.is_connector_error() => "dispatch_failure",
            Some(Err(_)) | None => "error",
        };
        span.record("outcome", outcome);
        if outcome != "ok" {
            span.record("otel.status_code", "ERROR");
        }
        // Dropping the last handle ends the span: its duration is the whole call, retries included.
        drop(span);
        Ok(())
    }
}
