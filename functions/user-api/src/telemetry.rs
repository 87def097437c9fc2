//! What one request leaves behind: its `api_request` span (method, route, a pseudonym of the user,
//! status), the dependency a failure came from, the request count and latency metrics, and the
//! `request handled` line.

use std::time::Instant;

use domain::PortError;
use telemetry::metric_catalog as catalog;
use tracing::Span;

use crate::problem::ApiError;
use crate::routes::{route_name, Route};

/// One request's telemetry, from routing to the response.
pub(crate) struct RequestTelemetry {
    span: Span,
    started: Instant,
    method: String,
    route: &'static str,
}

impl RequestTelemetry {
    /// Opens the request's span once the route is known.
    pub(crate) fn start(method: &str, route: Option<&Route>) -> Self {
        let route_name = route_name(route);
        // The user id is personal data: the span carries a pseudonym, enough to group one user's requests.
        let span = tracing::info_span!(
            "api_request",
            http.request.method = %method,
            http.route = route_name,
            user = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        if let Some(Route::Item(id)) = route {
            span.record("user", telemetry::xray::pseudonym(id).as_str());
        }
        tracing::debug!(parent: &span, method = %method, route = route_name, "request routed");
        Self {
            span,
            started: Instant::now(),
            method: method.to_string(),
            route: route_name,
        }
    }

    /// The span the request's work runs in.
    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Where a failure came from, for a fix or a support case: never the message or the input.
    pub(crate) fn failed(&self, error: &ApiError) {
        if let Some(origin) = error.cause().and_then(PortError::origin) {
            tracing::error!(
                parent: &self.span,
                aws_service = origin.service,
                error_code = origin.code,
                aws_request_id = origin.request_id,
                "a dependency failed the request"
            );
        }
    }

    /// Records the answer's status on the span, the request in the metrics, and the log line.
    pub(crate) fn answered(self, status: u16) {
        let _inside = self.span.enter();
        self.span.record("http.response.status_code", status);
        if status >= 500 {
            self.span.record("otel.status_code", "ERROR");
        }
        let status_class = match status {
            500.. => "5xx",
            400..=499 => "4xx",
            300..=399 => "3xx",
            _ => "2xx",
        };
        metrics::counter!(catalog::API_REQUESTS, catalog::ROUTE => self.route, catalog::STATUS_CLASS => status_class)
            .increment(1);
        metrics::histogram!(catalog::API_LATENCY, catalog::ROUTE => self.route)
            .record(self.started.elapsed().as_secs_f64() * 1000.0);
        tracing::info!(
            method = %self.method,
            route = self.route,
            status,
            duration_us = self.started.elapsed().as_micros() as u64,
            "request handled"
        );
    }
}
