//! A request in, a response out: routed within the invocation's deadline, every error turned into
//! its problem response, CORS applied, and the request's telemetry recorded once.

use domain::ports::{IdempotencyStore, UserStore};
use lambda_http::{Body, Request, Response};
use tracing::Instrument;

use crate::api::Api;
use crate::budget;
use crate::cors::apply_cors;
use crate::request::header;
use crate::responses::problem_response;
use crate::routes::{dispatch, route, stage};
use crate::telemetry::RequestTelemetry;

/// Handles one request. Never fails: every outcome is a response.
pub async fn handle<S: UserStore, I: IdempotencyStore>(
    api: &Api<S, I>,
    request: Request,
) -> Response<Body> {
    handle_by(api, request, None).await
}

/// Handles one request whose answer is due by `deadline` (the invocation's): work still running
/// `budget::ANSWER_RESERVE` before it is stopped and answered 503 with `Retry-After`.
pub async fn handle_by<S: UserStore, I: IdempotencyStore>(
    api: &Api<S, I>,
    request: Request,
    deadline: Option<domain::Deadline>,
) -> Response<Body> {
    let route = route(request.uri().path(), stage(&request).as_deref());
    let telemetry = RequestTelemetry::start(request.method().as_str(), route.as_ref());
    let result = budget::within(
        deadline,
        (api.clock)(),
        dispatch(api, &request, route.as_ref(), deadline).instrument(telemetry.span().clone()),
    )
    .await;
    let mut response = result.unwrap_or_else(|e| {
        telemetry.failed(&e);
        problem_response(&e)
    });
    apply_cors(
        &mut response,
        header(&request, "origin"),
        &api.allowed_origins,
    );
    telemetry.answered(response.status().as_u16());
    response
}
