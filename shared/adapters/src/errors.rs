//! Turning SDK errors into the domain's `PortError`, once, for every adapter.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use domain::PortError;

/// Error codes AWS services use to ask callers to slow down.
const THROTTLING_CODES: [&str; 10] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "SlowDown",
    "TransactionConflictException",
];

pub fn is_throttling_code(code: &str) -> bool {
    THROTTLING_CODES.contains(&code)
}

/// The request id AWS returned with a response (`-` when there is none to give).
fn request_id(response: &HttpResponse) -> &str {
    ["x-amzn-requestid", "x-amz-request-id"]
        .iter()
        .find_map(|name| response.headers().get(*name))
        .filter(|id| !id.is_empty() && !id.contains(char::is_whitespace))
        .unwrap_or("-")
}

/// Classifies any SDK error: throttling and server/transport failures are transient, the rest are
/// rejections naming the service's error code.
///
/// The text is `<service>: <Code> request-id=<id> <message>`, the shape `PortError::origin` reads, so
/// a caller can log where a failure came from without the message.
pub fn classify<E>(service: &str, error: &SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error,
{
    match error {
        SdkError::TimeoutError(_) => {
            PortError::Unavailable(format!("{service}: Timeout request-id=- timed out"))
        }
        SdkError::DispatchFailure(e) => PortError::Unavailable(format!(
            "{service}: DispatchFailure request-id=- could not send the request ({e:?})"
        )),
        SdkError::ResponseError(ctx) => PortError::Unavailable(format!(
            "{service}: ResponseError request-id={} unreadable response",
            request_id(ctx.raw())
        )),
        SdkError::ServiceError(ctx) => {
            let err = ctx.err();
            let code = err.code().unwrap_or("Unknown");
            let message = err.message().unwrap_or("");
            let id = request_id(ctx.raw());
            let status = Some(ctx.raw().status().as_u16());
            if is_throttling_code(code) || status == Some(429) {
                PortError::Throttled(format!("{service}: {code} request-id={id}"))
            } else if status.is_some_and(|s| s >= 500) {
                PortError::Unavailable(format!("{service}: {code} request-id={id} {message}"))
            } else {
                PortError::Rejected(format!("{service}: {code} request-id={id} {message}"))
            }
        }
        SdkError::ConstructionFailure(_) => PortError::Rejected(format!(
            "{service}: ConstructionFailure request-id=- the request could not be built"
        )),
        _ => PortError::Unavailable(format!("{service}: Unknown request-id=- {error}")),
    }
}
