//! What happened to one record: what the handler returns, and what `telemetry` records.

use domain::PortError;

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Variant files written (the count: each variant's JPEG, and its AVIF and WebP where written;
    /// the manifest is not counted); others may have existed already.
    Written(usize),
    /// Every variant already exists for this version of the object (its manifest is written if it
    /// was missing).
    AlreadyDone,
    /// Not processable, permanently (bad image, too large, malformed record...): logged, not retried.
    Skipped(String),
    /// Not an object creation: nothing to do.
    Ignored,
    /// A dependency failed; the invocation must be retried.
    Failed(PortError),
}

impl RecordOutcome {
    /// The outcome's name in spans.
    pub fn label(&self) -> &'static str {
        match self {
            RecordOutcome::Written(_) => "written",
            RecordOutcome::AlreadyDone => "already_done",
            RecordOutcome::Skipped(_) => "skipped",
            RecordOutcome::Ignored => "ignored",
            RecordOutcome::Failed(_) => "failed",
        }
    }
}
