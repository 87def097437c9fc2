//! The one error type every port returns. Each variant tells the caller what it can do.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PortError {
    /// The item or object does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken (the value names what is already taken).
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// An optimistic-concurrency condition (version) did not hold.
    #[error("the stored version changed")]
    VersionMismatch,
    /// The dependency asked us to slow down. Retrying later helps.
    #[error("throttled by {0}")]
    Throttled(String),
    /// The dependency timed out, was unreachable or failed on its side. Retrying later helps.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The dependency refused the request for a reason retrying cannot fix (bad request, access denied).
    #[error("rejected: {0}")]
    Rejected(String),
}

/// Where a dependency failure came from, without its free-text message (which could quote data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    /// `dynamodb`, `s3`, `sqs`, `sns`; `-` when the text names none.
    pub service: &'a str,
    /// The service's error code (`ThrottlingException`) or the SDK's failure kind (`Timeout`); `-` if none.
    pub code: &'a str,
    /// The service's request id, for a support case; `-` when the request never got an answer.
    pub request_id: &'a str,
}

impl PortError {
    /// True when retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, PortError::Throttled(_) | PortError::Unavailable(_))
    }

    /// Service, error code and request id of a dependency failure. Adapters write the text as
    /// `<service>: <Code> request-id=<id> <message>`; the code is the word after the service when it
    /// starts with a capital letter, and the request id is read only from its `request-id=` label.
    pub fn origin(&self) -> Option<Origin<'_>> {
        let text = match self {
            PortError::Throttled(t) | PortError::Unavailable(t) | PortError::Rejected(t) => t,
            _ => return None,
        };
        let (service, rest) = match text.split_once(": ") {
            Some((service, rest)) if !service.is_empty() && !service.contains(' ') => {
                (service, rest)
            }
            _ => ("-", text.as_str()),
        };
        let code = rest
            .split_whitespace()
            .next()
            .filter(|w| w.starts_with(|c: char| c.is_ascii_uppercase()))
            .filter(|w| w.chars().all(|c| c.is_ascii_alphanumeric()))
            .unwrap_or("-");
        let request_id = rest
            .split_whitespace()
            .find_map(|w| w.strip_prefix("request-id="))
            .filter(|id| !id.is_empty())
            .unwrap_or("-");
        Some(Origin {
            service,
            code,
            request_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_keeps_service_code_and_request_id_but_never_the_message() {
        let e = PortError::Rejected(
            "dynamodb: ValidationException request-id=R2D2 value ada@example.com is invalid".into(),
        );
        assert_eq!(
            e.origin(),
            Some(Origin {
                service: "dynamodb",
                code: "ValidationException",
                request_id: "R2D2"
            })
        );
        let timeout = PortError::Unavailable("sqs: Timeout request-id=- timed out".into());
        let o = timeout.origin().unwrap();
        assert_eq!((o.service, o.code, o.request_id), ("sqs", "Timeout", "-"));
        // Hand-written texts keep their service; a lower-case word is not a code.
        let cancelled = PortError::Throttled("dynamodb: transaction cancelled".into());
        let o = cancelled.origin().unwrap();
        assert_eq!((o.service, o.code, o.request_id), ("dynamodb", "-", "-"));
        let plain = PortError::Unavailable("no service here".into());
        let o = plain.origin().unwrap();
        assert_eq!((o.service, o.code), ("-", "-"));
        assert_eq!(PortError::NotFound.origin(), None);
    }

    #[test]
    fn only_throttling_and_unavailability_are_transient() {
        assert!(PortError::Throttled("dynamodb".into()).is_transient());
        assert!(PortError::Unavailable("timeout".into()).is_transient());
        assert!(!PortError::NotFound.is_transient());
        assert!(!PortError::AlreadyExists("x".into()).is_transient());
        assert!(!PortError::VersionMismatch.is_transient());
        assert!(!PortError::Rejected("denied".into()).is_transient());
    }
}
