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

/// Classifies any SDK error: throttling and server/transport failures are transient, the rest are
/// rejections naming the service's error code.
pub fn classify<E>(service: &str, error: &SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error,
{
    match error {
        SdkError::TimeoutError(_) => PortError::Unavailable(format!("{service}: timed out")),
        SdkError::DispatchFailure(e) => {
            PortError::Unavailable(format!("{service}: could not send the request ({e:?})"))
        }
        SdkError::ResponseError(_) => {
            PortError::Unavailable(format!("{service}: unreadable response"))
        }
        SdkError::ServiceError(ctx) => {
            let err = ctx.err();
            let code = err.code().unwrap_or("Unknown");
            let message = err.message().unwrap_or("");
            let status = Some(ctx.raw().status().as_u16());
            if is_throttling_code(code) || status == Some(429) {
                PortError::Throttled(format!("{service}: {code}"))
            } else if status.is_some_and(|s| s >= 500) {
                PortError::Unavailable(format!("{service}: {code} {message}"))
            } else {
                PortError::Rejected(format!("{service}: {code} {message}"))
            }
        }
        SdkError::ConstructionFailure(_) => {
            PortError::Rejected(format!("{service}: the request could not be built"))
        }
        _ => PortError::Unavailable(format!("{service}: {error}")),
    }
}
