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

impl PortError {
    /// True when retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, PortError::Throttled(_) | PortError::Unavailable(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
