//! The one place the handler's outcomes become logs, metrics and spans: an upload's span
//! (`image`, with its outcome), each outcome's log line and counter, and the figures of the work
//! done (variants written, bytes in and out, processing time). The handler decides; this records.

use telemetry::metric_catalog as catalog;
use tracing::Instrument;

use crate::event::Upload;
use crate::outcome::RecordOutcome;
use crate::pipeline::ColourHandling;

/// Runs `compress` (the work for one upload) inside the upload's span, then records its outcome on
/// the span and logs it.
pub(crate) async fn observe_upload(
    upload: &Upload,
    compress: impl std::future::Future<Output = RecordOutcome>,
) -> RecordOutcome {
    let span = tracing::info_span!(
        "image",
        bucket = %upload.bucket,
        key = %upload.key,
        outcome = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let outcome = compress.instrument(span.clone()).await;
    span.record("outcome", outcome.label());
    if matches!(outcome, RecordOutcome::Failed(_)) {
        span.record("otel.status_code", "ERROR");
    }
    let _inside = span.enter();
    match &outcome {
        RecordOutcome::Skipped(reason) => {
            tracing::error!(bucket = %upload.bucket, key = %upload.key, reason = %reason, "image skipped, not retried");
        }
        RecordOutcome::Failed(e) => {
            metrics::counter!(catalog::IMAGES_FAILED_TRANSIENTLY).increment(1);
            tracing::warn!(bucket = %upload.bucket, key = %upload.key, error = %e, "image failed, will be retried");
        }
        RecordOutcome::AlreadyDone => {
            tracing::info!(key = %upload.key, "all variants exist for this version; nothing to do")
        }
        _ => {}
    }
    outcome
}

/// A record that is not an object creation.
pub(crate) fn record_ignored(why: &str) {
    tracing::info!(reason = %why, "record ignored");
}

/// A record that cannot be read (it is skipped).
pub(crate) fn record_malformed(why: &str) {
    tracing::error!(reason = %why, "malformed S3 record skipped");
}

/// An upload whose variants were written: counted once.
pub(crate) fn image_written() {
    metrics::counter!(catalog::IMAGES_PROCESSED).increment(1);
}

/// A record skipped for good, counted by its reason code.
pub(crate) fn record_skipped(code: &'static str) {
    metrics::counter!(catalog::IMAGES_SKIPPED, catalog::REASON => code).increment(1);
}

/// The object was replaced during a round: the current one is processed next.
pub(crate) fn object_replaced(upload: &Upload, read: &str, current: &str) {
    tracing::info!(
        key = %upload.key,
        read = %read,
        current = %current,
        "the object was replaced while it was processed; processing the current one"
    );
}

pub(crate) fn manifest_written(upload: &Upload, key: &str, variants: usize, bytes: usize) {
    tracing::info!(source_key = %upload.key, key = %key, variants = variants, bytes = bytes as u64, "manifest written");
}

pub(crate) fn source_read(bytes: usize) {
    tracing::debug!(bytes = bytes as u64, "source object read");
}

/// One file of a variant written.
pub(crate) fn variant_written(
    upload: &Upload,
    variant: &crate::pipeline::EncodedVariant,
    key: &str,
    original_size: usize,
    compressed: usize,
) {
    tracing::info!(
        source_key = %upload.key,
        variant = %variant.name,
        key = %key,
        width = variant.width,
        height = variant.height,
        original_bytes = original_size as u64,
        compressed_bytes = compressed as u64,
        compression_ratio = (original_size as f64 / compressed.max(1) as f64 * 100.0).round() / 100.0,
        "variant written"
    );
}

/// What one round of writing variants did.
pub(crate) struct ImageWritten<'a> {
    pub upload: &'a Upload,
    pub source_etag: &'a str,
    /// The source's format, colour handling and upright size.
    pub format: &'static str,
    pub colour: ColourHandling,
    pub width: u32,
    pub height: u32,
    pub original_size: usize,
    pub written: usize,
    pub bytes_out: usize,
    pub elapsed_ms: u64,
}

pub(crate) fn image_processed(done: &ImageWritten) {
    metrics::counter!(catalog::VARIANTS_WRITTEN).increment(done.written as u64);
    metrics::counter!(catalog::IMAGE_BYTES_IN).increment(done.original_size as u64);
    metrics::counter!(catalog::IMAGE_BYTES_OUT).increment(done.bytes_out as u64);
    metrics::histogram!(catalog::IMAGE_PROCESSING_MS).record(done.elapsed_ms as f64);
    tracing::info!(
        source_key = %done.upload.key,
        source_etag = %done.source_etag,
        format = done.format,
        colour = done.colour.as_str(),
        width = done.width,
        height = done.height,
        variants_written = done.written,
        processing_ms = done.elapsed_ms,
        "image processed"
    );
}
