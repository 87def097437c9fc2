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
    crate::aws_call_spans::response_request_id(response.headers()).unwrap_or("-")
}

/// The text of every classified error, `<service>: <Code> request-id=<id> <message>`: the one
/// place that writes the shape `PortError::origin` reads.
fn describe(service: &str, code: &str, request_id: &str, message: &str) -> String {
    let head = format!("{service}: {code} request-id={request_id}");
    if message.is_empty() {
        head
    } else {
        format!("{head} {message}")
    }
}

/// Classifies any SDK error: throttling and server/transport failures are transient, the rest are
/// rejections naming the service's error code. A caller can log where a failure came from without
/// the message (`PortError::origin`).
pub fn classify<E>(service: &str, error: &SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error,
{
    match error {
        SdkError::TimeoutError(_) => {
            PortError::Unavailable(describe(service, "Timeout", "-", "timed out"))
        }
        SdkError::DispatchFailure(e) => PortError::Unavailable(describe(
            service,
            "DispatchFailure",
            "-",
            &format!("could not send the request ({e:?})"),
        )),
        SdkError::ResponseError(ctx) => PortError::Unavailable(describe(
            service,
            "ResponseError",
            request_id(ctx.raw()),
            "unreadable response",
        )),
        SdkError::ServiceError(ctx) => {
            let err = ctx.err();
            let code = err.code().unwrap_or("Unknown");
            let id = request_id(ctx.raw());
            let status = ctx.raw().status().as_u16();
            if is_throttling_code(code) || status == 429 {
                PortError::Throttled(describe(service, code, id, ""))
            } else {
                let text = describe(service, code, id, err.message().unwrap_or(""));
                if status >= 500 {
                    PortError::Unavailable(text)
                } else {
                    PortError::Rejected(text)
                }
            }
        }
        SdkError::ConstructionFailure(_) => PortError::Rejected(describe(
            service,
            "ConstructionFailure",
            "-",
            "the request could not be built",
        )),
        _ => PortError::Unavailable(describe(service, "Unknown", "-", &error.to_string())),
    }
}
