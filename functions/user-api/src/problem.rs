//! The API's one error type and its single mapping to HTTP (RFC 9457 problem details).

use domain::user::Forbidden;
use domain::validation::ValidationErrors;
use domain::PortError;
use http::StatusCode;
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    Validation(ValidationErrors),
    PayloadTooLarge,
    Unauthorized,
    Forbidden(&'static str),
    NotFound(&'static str),
    MethodNotAllowed(&'static [&'static str]),
    Conflict(String),
    PreconditionFailed,
    UnsupportedMediaType,
    /// A request with this `Idempotency-Key` is still running.
    IdempotencyInProgress,
    /// This `Idempotency-Key` was used with another payload.
    IdempotencyKeyReused,
    /// A dependency is throttling or unreachable: retry after the given seconds.
    Unavailable {
        retry_after: u32,
        cause: PortError,
    },
    /// A dependency refused a request we built: our fault, not the caller's.
    Internal(PortError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::IdempotencyInProgress => StatusCode::CONFLICT,
            ApiError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::Validation(_) => ("validation-failed", "The request is not valid"),
            ApiError::PayloadTooLarge => ("payload-too-large", "The request body is too large"),
            ApiError::Unauthorized => ("unauthorized", "Authentication is required"),
            ApiError::Forbidden(_) => ("forbidden", "Not allowed"),
            ApiError::NotFound(_) => ("not-found", "Not found"),
            ApiError::MethodNotAllowed(_) => ("method-not-allowed", "Method not allowed"),
            ApiError::Conflict(_) => ("conflict", "Conflict"),
            ApiError::PreconditionFailed => ("precondition-failed", "The user has changed"),
            ApiError::UnsupportedMediaType => ("unsupported-media-type", "Unsupported media type"),
            ApiError::IdempotencyInProgress => (
                "idempotency-in-progress",
                "A request with this Idempotency-Key is in progress",
            ),
            ApiError::IdempotencyKeyReused => (
                "idempotency-key-reused",
                "This Idempotency-Key was used with another request",
            ),
            ApiError::Unavailable { .. } => ("unavailable", "Temporarily unavailable"),
            ApiError::Internal(_) => ("internal", "Internal error"),
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::Validation(e) => e.to_string(),
            ApiError::PayloadTooLarge => format!(
                "the body must be at most {} bytes",
                domain::user::MAX_BODY_BYTES
            ),
            ApiError::Unauthorized => "no verified identity came with the request".into(),
            ApiError::Forbidden(why) => (*why).into(),
            ApiError::NotFound(what) => (*what).into(),
            ApiError::MethodNotAllowed(allowed) => {
                format!("this resource allows {}", allowed.join(", "))
            }
            ApiError::Conflict(why) => why.clone(),
            ApiError::PreconditionFailed => {
                "If-Match does not match the user's current ETag; fetch it again".into()
            }
            ApiError::UnsupportedMediaType => "send the body as application/json".into(),
            ApiError::IdempotencyInProgress => {
                "the first request with this key has not finished; retry after Retry-After seconds"
                    .into()
            }
            ApiError::IdempotencyKeyReused => {
                "a key answers one request only; send a new Idempotency-Key for a different body"
                    .into()
            }
            ApiError::Unavailable { .. } => {
                "a dependency is busy or unreachable; retry shortly".into()
            }
            ApiError::Internal(_) => "the request could not be completed".into(),
        }
    }

    /// The dependency failure behind a 5xx, for the log (never for the response body).
    pub fn cause(&self) -> Option<&PortError> {
        match self {
            ApiError::Unavailable { cause, .. } | ApiError::Internal(cause) => Some(cause),
            _ => None,
        }
    }

    /// The `application/problem+json` document.
    pub fn body(&self) -> Value {
        let (slug, title) = self.slug_and_title();
        let mut doc = json!({
            "type": format!("urn:problem:user-api:{slug}"),
            "title": title,
            "status": self.status().as_u16(),
            "detail": self.detail(),
        });
        if let ApiError::Validation(e) = self {
            doc["errors"] = json!(e.errors);
        }
        doc
    }
}

impl From<Forbidden> for ApiError {
    fn from(f: Forbidden) -> Self {
        ApiError::Forbidden(f.0)
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(e: ValidationErrors) -> Self {
        ApiError::Validation(e)
    }
}

impl From<PortError> for ApiError {
    fn from(e: PortError) -> Self {
        match e {
            PortError::NotFound => ApiError::NotFound("no user with this id"),
            PortError::AlreadyExists(what) if what == "email" => {
                ApiError::Conflict("another user already has this email".into())
            }
            PortError::AlreadyExists(_) => {
                ApiError::Conflict("a user with this id already exists".into())
            }
            PortError::VersionMismatch => ApiError::PreconditionFailed,
            PortError::Throttled(_) => ApiError::Unavailable {
                retry_after: 1,
                cause: e,
            },
            PortError::Unavailable(_) => ApiError::Unavailable {
                retry_after: 2,
                cause: e,
            },
            PortError::Rejected(_) => ApiError::Internal(e),
        }
    }
}
