//! image-compressor: S3 `ObjectCreated` → download → JPEG variants → upload to the destination bucket.
//!
//! Each record stands alone: a bad image is logged and skipped (retrying cannot help), an object
//! that is already done (every variant carries its source ETag) costs only HEAD requests, and a
//! transient S3 failure makes the invocation fail so Lambda's async retries and the `OnFailure`
//! destination apply; finished variants are skipped on the retry.

pub mod config;
pub mod event;
mod jpeg;
pub mod memory_budget;
pub mod pipeline;
mod webp;

use std::collections::BTreeMap;
use std::sync::Arc;

use adapters::metric_catalog as catalog;
use domain::image::variant_key;
use domain::ports::{NewObject, ObjectStore};
use domain::PortError;
use serde_json::Value;
use tracing::Instrument;

use crate::event::{metadata_value, records, Record, Upload};
use crate::pipeline::{process_image, ImageError, PipelineConfig, Processed};

/// What the handler needs to know (the rest of `config::Config` is for building AWS clients).
#[derive(Debug, Clone)]
pub struct Settings {
    pub destination_bucket: String,
    pub max_object_bytes: u64,
    pub cache_control: String,
    pub pipeline: PipelineConfig,
}

/// The image work for one object: `pipeline::process_image`.
pub type Pipeline = fn(&[u8], &PipelineConfig) -> Result<Processed, ImageError>;

pub struct Compressor<S> {
    pub store: S,
    pub settings: Arc<Settings>,
    /// `process_image`; a field so a test can put a pipeline that really panics in its place.
    pub pipeline: Pipeline,
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Objects written (the count: one per variant, two with WebP); others may have existed already.
    Written(usize),
    /// Every variant already exists for this version of the object.
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

/// At least one record met a transient failure: Lambda should retry the event.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} records failed transiently; the event will be retried")]
pub struct RetryableFailure {
    pub failed: usize,
    pub total: usize,
}

/// An output format: key extension and `Content-Type`.
struct OutputFormat {
    extension: &'static str,
    content_type: &'static str,
}

const JPEG: OutputFormat = OutputFormat {
    extension: "jpg",
    content_type: "image/jpeg",
};
const WEBP: OutputFormat = OutputFormat {
    extension: "webp",
    content_type: "image/webp",
};

impl<S: ObjectStore> Compressor<S> {
    pub fn new(store: S, settings: Settings) -> Self {
        Self {
            store,
            settings: Arc::new(settings),
            pipeline: process_image,
        }
    }

    /// JPEG always; WebP too when `WEBP_QUALITY` is set.
    fn formats(&self) -> impl Iterator<Item = &'static OutputFormat> {
        let webp = self.settings.pipeline.webp_quality.is_some();
        [&JPEG].into_iter().chain(webp.then_some(&WEBP))
    }

    /// Handles one S3 notification event (any JSON: unknown shapes are ignored, not failed).
    pub async fn handle(&self, event: Value) -> Result<Vec<RecordOutcome>, RetryableFailure> {
        let mut outcomes = Vec::new();
        for record in records(&event) {
            let outcome = match record {
                Record::Created(upload) => self.process(&upload).await,
                Record::Ignored(why) => {
                    tracing::info!(reason = %why, "record ignored");
                    RecordOutcome::Ignored
                }
                Record::Malformed(why) => {
                    tracing::error!(reason = %why, "malformed S3 record skipped");
                    skipped("MALFORMED_RECORD", why)
                }
            };
            outcomes.push(outcome);
        }
        let failed = outcomes
            .iter()
            .filter(|o| matches!(o, RecordOutcome::Failed(_)))
            .count();
        if failed > 0 {
            return Err(RetryableFailure {
                failed,
                total: outcomes.len(),
            });
        }
        Ok(outcomes)
    }

    async fn process(&self, upload: &Upload) -> RecordOutcome {
        let span = tracing::info_span!(
            "image",
            bucket = %upload.bucket,
            key = %upload.key,
            outcome = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let outcome = self.process_upload(upload).instrument(span.clone()).await;
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

    async fn process_upload(&self, upload: &Upload) -> RecordOutcome {
        let s = &self.settings;
        if upload.bucket == s.destination_bucket {
            return skipped(
                "OWN_OUTPUT",
                "the object is in the destination bucket; refusing to process our own output"
                    .into(),
            );
        }
        let info = match self.store.head(&upload.bucket, &upload.key).await {
            Ok(Some(info)) => info,
            Ok(None) => return skipped("NOT_FOUND", "the object no longer exists".into()),
            Err(e) => return transient_or_skip(e),
        };
        if info.size == 0 {
            return skip(ImageError::Empty);
        }
        if info.size > s.max_object_bytes {
            return skip(ImageError::TooLarge {
                size: info.size,
                limit: s.max_object_bytes,
            });
        }
        // Which outputs already exist for this exact version of the source? (All asked at once.)
        let outputs: Vec<(String, &'static str)> = s
            .pipeline
            .variants
            .iter()
            .flat_map(|spec| self.formats().map(|f| (spec.name.clone(), f.extension)))
            .collect();
        let heads = futures::future::join_all(outputs.iter().map(|(name, extension)| {
            let key = variant_key(name, &upload.key, extension);
            async move { self.store.head(&s.destination_bucket, &key).await }
        }))
        .await;
        let mut missing: Vec<(String, &'static str)> = Vec::new();
        for (output, head) in outputs.into_iter().zip(heads) {
            match head {
                Ok(Some(existing)) if existing.metadata.get("source-etag") == Some(&info.etag) => {}
                Ok(_) => missing.push(output),
                Err(e) => return transient_or_skip(e),
            }
        }
        if missing.is_empty() {
            return RecordOutcome::AlreadyDone;
        }
        let bytes = match self
            .store
            .get(&upload.bucket, &upload.key, s.max_object_bytes)
            .await
        {
            Ok(bytes) => bytes,
            Err(e) => return transient_or_skip(e),
        };
        let original_size = bytes.len();
        tracing::debug!(bytes = original_size as u64, "source object read");
        // CPU-bound work off the async executor; a panic there is contained by the pipeline.
        let (settings, pipeline) = (self.settings.clone(), self.pipeline);
        let started = std::time::Instant::now();
        let processed =
            match tokio::task::spawn_blocking(move || pipeline(&bytes, &settings.pipeline)).await {
                Ok(Ok(processed)) => processed,
                Ok(Err(e)) => return skip(e),
                Err(_) => return skip(ImageError::DecoderPanic),
            };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let mut written = 0;
        let mut bytes_out = 0;
        for variant in processed.variants {
            let outputs = [(&JPEG, Some(variant.jpeg)), (&WEBP, variant.webp)];
            for (format, body) in outputs {
                let Some(body) = body else { continue };
                if !missing.contains(&(variant.name.clone(), format.extension)) {
                    continue;
                }
                let key = variant_key(&variant.name, &upload.key, format.extension);
                let compressed = body.len();
                let metadata = BTreeMap::from([
                    ("original-size".to_string(), original_size.to_string()),
                    ("compressed-size".to_string(), compressed.to_string()),
                    ("source-key".to_string(), metadata_value(&upload.key)),
                    ("source-etag".to_string(), metadata_value(&info.etag)),
                    ("width".to_string(), variant.width.to_string()),
                    ("height".to_string(), variant.height.to_string()),
                ]);
                let put = NewObject {
                    bucket: s.destination_bucket.clone(),
                    key: key.clone(),
                    body,
                    content_type: format.content_type.into(),
                    cache_control: s.cache_control.clone(),
                    metadata,
                };
                if let Err(e) = self.store.put(put).await {
                    return transient_or_skip(e);
                }
                written += 1;
                bytes_out += compressed;
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
        }
        metrics::counter!(catalog::IMAGES_PROCESSED).increment(1);
        metrics::counter!(catalog::VARIANTS_WRITTEN).increment(written as u64);
        metrics::counter!(catalog::IMAGE_BYTES_IN).increment(original_size as u64);
        metrics::counter!(catalog::IMAGE_BYTES_OUT).increment(bytes_out as u64);
        metrics::histogram!(catalog::IMAGE_PROCESSING_MS).record(elapsed_ms as f64);
        tracing::info!(
            source_key = %upload.key,
            format = processed.format,
            colour = processed.colour.as_str(),
            width = processed.width,
            height = processed.height,
            variants_written = written,
            processing_ms = elapsed_ms,
            "image processed"
        );
        RecordOutcome::Written(written)
    }
}

/// A record skipped for good, counted by its reason code (a bounded set: the codes of `ImageError`,
/// `MALFORMED_RECORD`, `OWN_OUTPUT`, `NOT_FOUND`, `REJECTED`).
fn skipped(code: &'static str, why: String) -> RecordOutcome {
    metrics::counter!(catalog::IMAGES_SKIPPED, catalog::REASON => code).increment(1);
    RecordOutcome::Skipped(why)
}

fn skip(e: ImageError) -> RecordOutcome {
    skipped(e.code(), format!("{} ({})", e, e.code()))
}

/// Transient failures are retried; a rejected request (access denied, object too large to read)
/// will fail the same way again, so it is skipped with its reason.
fn transient_or_skip(e: PortError) -> RecordOutcome {
    if e.is_transient() {
        RecordOutcome::Failed(e)
    } else {
        skipped("REJECTED", e.to_string())
    }
}
