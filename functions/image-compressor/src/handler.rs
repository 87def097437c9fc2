//! The handler: one S3 notification event in, each upload's variants and manifest written to the
//! destination bucket, one outcome per record out (recorded by `telemetry`).

use std::sync::Arc;

use domain::image::variant_key;
use domain::ports::{NewObject, ObjectInfo, ObjectStore};
use domain::PortError;
use serde_json::Value;

use crate::encode::{OutputFormat, AVIF, BESIDE_JPEG, JPEG, WEBP};
use crate::event::{self, metadata_value, records, variant_metadata, Record, Upload};
use crate::manifest::{self, manifest_key, SourceImage, StoredVariant, MANIFEST_CONTENT_TYPE};
pub use crate::outcome::RecordOutcome;
use crate::outputs::{listed, unsettled, Described, Output};
use crate::pipeline::{compress_image, Compressed, ImageError, PipelineConfig};
use crate::telemetry;

/// What the handler needs to know (the rest of `config::Config` is for building AWS clients).
#[derive(Debug, Clone)]
pub struct Settings {
    pub destination_bucket: String,
    pub max_object_bytes: u64,
    pub cache_control: String,
    pub pipeline: PipelineConfig,
}

/// The image work for one object: `pipeline::compress_image`.
pub type Pipeline = fn(&[u8], &PipelineConfig) -> Result<Compressed, ImageError>;

pub struct Compressor<S> {
    pub store: S,
    pub settings: Arc<Settings>,
    /// `compress_image`; a field so a test can put a pipeline that really panics in its place.
    pub pipeline: Pipeline,
}

/// At least one record met a transient failure: Lambda should retry the event.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} records failed transiently; the event will be retried")]
pub struct RetryableFailure {
    pub failed: usize,
    pub total: usize,
}

impl<S: ObjectStore> Compressor<S> {
    pub fn new(store: S, settings: Settings) -> Self {
        Self {
            store,
            settings: Arc::new(settings),
            pipeline: compress_image,
        }
    }

    /// The formats `FORMATS` lists, in the order a variant's files are written: WebP and AVIF
    /// first, the JPEG last (its metadata records what was written beside it).
    fn formats(&self) -> impl Iterator<Item = &'static OutputFormat> {
        let pipeline = &self.settings.pipeline;
        let avif = pipeline.avif_quality.is_some().then_some(&AVIF);
        let webp = pipeline.webp_quality.is_some().then_some(&WEBP);
        avif.into_iter().chain(webp).chain([&JPEG])
    }

    /// Handles one S3 notification event (any JSON: unknown shapes are ignored, not failed).
    pub async fn handle(&self, event: Value) -> Result<Vec<RecordOutcome>, RetryableFailure> {
        let mut outcomes = Vec::new();
        for record in records(&event) {
            let outcome = match record {
                Record::Created(upload) => {
                    telemetry::observe_upload(&upload, self.compress_upload(&upload)).await
                }
                Record::Ignored(why) => {
                    telemetry::record_ignored(&why);
                    RecordOutcome::Ignored
                }
                Record::Malformed(why) => {
                    telemetry::record_malformed(&why);
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

    /// Compresses the object that is current under the upload's key into its variants and manifest,
    /// until the variants' last writes are of the object still current (see `MAX_ROUNDS`).
    async fn compress_upload(&self, upload: &Upload) -> RecordOutcome {
        let s = &self.settings;
        if upload.bucket == s.destination_bucket {
            return skipped(
                "OWN_OUTPUT",
                "the object is in the destination bucket; refusing to process our own output"
                    .into(),
            );
        }
        let mut info = match self.current(upload).await {
            Ok(info) => info,
            Err(outcome) => return outcome,
        };
        let mut written = 0;
        for _ in 0..MAX_ROUNDS {
            let mut outputs = match self.outputs(upload, &info.etag).await {
                Ok(outputs) => outputs,
                Err(e) => return transient_or_skip(e),
            };
            let missing: Vec<String> = unsettled(&outputs);
            let mut completed = true;
            if !missing.is_empty() {
                match self.write_variants(upload, &info, &missing, &outputs).await {
                    Ok(n) => written += n,
                    Err(Interrupted::Replaced) => completed = false,
                    Err(Interrupted::Outcome(outcome)) => return outcome,
                }
                if completed {
                    // What the variants now say about themselves is what the manifest lists.
                    outputs = match self.outputs(upload, &info.etag).await {
                        Ok(outputs) => outputs,
                        Err(e) => return transient_or_skip(e),
                    };
                    completed = unsettled(&outputs).is_empty();
                }
            }
            let mut manifest_written = false;
            if completed {
                match self.write_manifest(upload, &info, &outputs).await {
                    Ok(wrote) => manifest_written = wrote,
                    Err(e) => return transient_or_skip(e),
                }
            }
            if missing.is_empty() && !manifest_written {
                return match written {
                    0 => RecordOutcome::AlreadyDone,
                    n => written_outcome(n),
                };
            }
            // Was the object replaced while its pixels were processed? A write of a replaced object's
            // pixels (or manifest) may have come after the replacement's own: process the current
            // object again.
            let now = match self.current(upload).await {
                Ok(now) => now,
                Err(outcome) => return outcome,
            };
            if completed && now.etag == info.etag {
                return match written {
                    0 => RecordOutcome::AlreadyDone,
                    n => written_outcome(n),
                };
            }
            telemetry::object_replaced(upload, &info.etag, &now.etag);
            info = now;
        }
        RecordOutcome::Failed(PortError::Unavailable(format!(
            "the object was replaced during each of {MAX_ROUNDS} rounds of processing"
        )))
    }

    /// `HeadObject` of the source, within the size limits.
    async fn current(&self, upload: &Upload) -> Result<ObjectInfo, RecordOutcome> {
        let s = &self.settings;
        let info = match self.store.head(&upload.bucket, &upload.key).await {
            Ok(Some(info)) => info,
            Ok(None) => return Err(skipped("NOT_FOUND", "the object no longer exists".into())),
            Err(e) => return Err(transient_or_skip(e)),
        };
        if info.size == 0 {
            return Err(skip(ImageError::Empty));
        }
        if info.size > s.max_object_bytes {
            return Err(skip(ImageError::TooLarge {
                size: info.size,
                limit: s.max_object_bytes,
            }));
        }
        Ok(info)
    }

    /// Every output of the upload (variant × format) and, for those that carry `etag` as their
    /// `source-etag` and say what the manifest needs, what they are (all asked at once).
    async fn outputs(&self, upload: &Upload, etag: &str) -> Result<Vec<Output>, PortError> {
        let s = &self.settings;
        let expected = metadata_value(etag);
        let outputs: Vec<(String, &'static OutputFormat, String)> = s
            .pipeline
            .variants
            .iter()
            .flat_map(|spec| {
                self.formats().map(|f| {
                    let key = variant_key(&spec.name, &upload.key, f.extension);
                    (spec.name.clone(), f, key)
                })
            })
            .collect();
        let heads = futures::future::join_all(
            outputs
                .iter()
                .map(|(_, _, key)| self.store.head(&s.destination_bucket, key)),
        )
        .await;
        let mut found = Vec::with_capacity(outputs.len());
        for ((variant, format, key), head) in outputs.into_iter().zip(heads) {
            let head = head?;
            let occupied = head.is_some();
            let stored = head
                .filter(|existing| {
                    existing.metadata.get("source-etag").map(String::as_str)
                        == Some(expected.as_str())
                })
                .and_then(|existing| Described::from_head(&existing));
            found.push(Output {
                variant,
                format,
                key,
                stored,
                occupied,
            });
        }
        Ok(found)
    }

    /// Writes the manifest of the version `info` describes, listing `outputs` (every one of them
    /// stored for that version), unless the manifest there already has this content for this
    /// version (`source-etag` and `content-sha256` in its metadata). `true` when it was written.
    async fn write_manifest(
        &self,
        upload: &Upload,
        info: &ObjectInfo,
        outputs: &[Output],
    ) -> Result<bool, PortError> {
        let s = &self.settings;
        let key = manifest_key(&upload.key);
        let mut source = None;
        let mut variants = Vec::with_capacity(outputs.len());
        for output in outputs.iter().filter(|o| listed(outputs, o)) {
            let Some(stored) = &output.stored else {
                return Err(PortError::Unavailable(format!(
                    "{} changed while the manifest was prepared",
                    output.key
                )));
            };
            source.get_or_insert((stored.source_width, stored.source_height));
            variants.push(StoredVariant {
                variant: output.variant.clone(),
                key: output.key.clone(),
                content_type: output.format.content_type.into(),
                width: stored.width,
                height: stored.height,
                bytes: stored.bytes,
            });
        }
        let (width, height) = source.unwrap_or_default();
        let manifest = manifest::build(
            &SourceImage {
                key: upload.key.clone(),
                etag: info.etag.clone(),
                width,
                height,
            },
            &variants,
        );
        let body = serde_json::to_vec(&manifest)
            .map_err(|e| PortError::Rejected(format!("the manifest did not serialise: {e}")))?;
        let bytes = body.len();
        let digest = manifest::body_sha256(&body);
        let etag = metadata_value(&info.etag);
        if let Some(existing) = self.store.head(&s.destination_bucket, &key).await? {
            // The same version with the same variants: the manifest there is this one.
            if existing.metadata.get("source-etag") == Some(&etag)
                && existing.metadata.get("content-sha256") == Some(&digest)
            {
                return Ok(false);
            }
        }
        self.store
            .put(NewObject {
                bucket: s.destination_bucket.clone(),
                key: key.clone(),
                body,
                content_type: MANIFEST_CONTENT_TYPE.into(),
                cache_control: s.cache_control.clone(),
                metadata: [
                    ("source-etag".to_string(), etag),
                    ("content-sha256".to_string(), digest),
                ]
                .into(),
            })
            .await?;
        telemetry::manifest_written(upload, &key, variants.len(), bytes);
        Ok(true)
    }

    /// Downloads the version `info` describes (`If-Match` its ETag), runs the pipeline and writes the
    /// `missing` variants labelled with that ETag: for each, its WebP and AVIF where smaller than its
    /// JPEG (or where a key holds another version's file, which must not outlive it), then the JPEG
    /// recording them. Returns how many objects were written.
    async fn write_variants(
        &self,
        upload: &Upload,
        info: &ObjectInfo,
        missing: &[String],
        outputs: &[Output],
    ) -> Result<usize, Interrupted> {
        let s = &self.settings;
        let bytes = match self
            .store
            .get(
                &upload.bucket,
                &upload.key,
                s.max_object_bytes,
                Some(&info.etag),
            )
            .await
        {
            Ok(bytes) => bytes,
            // Replaced (or deleted) since the HEAD: the caller looks at what is current now.
            Err(PortError::VersionMismatch | PortError::NotFound) => {
                return Err(Interrupted::Replaced)
            }
            Err(e) => return Err(Interrupted::Outcome(transient_or_skip(e))),
        };
        let original_size = bytes.len();
        telemetry::source_read(original_size);
        // CPU-bound work off the async executor; a panic there is contained by the pipeline.
        let (settings, pipeline) = (self.settings.clone(), self.pipeline);
        let started = std::time::Instant::now();
        let processed =
            match tokio::task::spawn_blocking(move || pipeline(&bytes, &settings.pipeline)).await {
                Ok(Ok(processed)) => processed,
                Ok(Err(e)) => return Err(Interrupted::Outcome(skip(e))),
                Err(_) => return Err(Interrupted::Outcome(skip(ImageError::DecoderPanic))),
            };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let mut written = 0;
        let mut bytes_out = 0;
        for variant in processed.variants {
            if !missing.contains(&variant.name) {
                continue;
            }
            let mut written_formats = Vec::new();
            let mut tried_formats = Vec::new();
            let mut files = Vec::new();
            for format in BESIDE_JPEG {
                let file = variant.file(format);
                let Some(body) = file else { continue };
                tried_formats.push(format.extension);
                let output = outputs
                    .iter()
                    .find(|o| o.variant == variant.name && o.format.extension == format.extension);
                let stored = output.is_some_and(|o| o.stored.is_some());
                // Another version's file under this key would go on being served to every URL
                // handed out for it: replaced by this version's, smaller or not.
                let stale = output.is_some_and(|o| o.occupied && o.stored.is_none());
                if stored || stale || variant.smaller(file).is_some() {
                    written_formats.push(format.extension);
                    if !stored {
                        files.push((format, body.clone()));
                    }
                }
            }
            written_formats.push(JPEG.extension);
            tried_formats.push(JPEG.extension);
            files.push((&JPEG, variant.jpeg.clone()));
            for (format, body) in files {
                let key = variant_key(&variant.name, &upload.key, format.extension);
                let compressed = body.len();
                let mut metadata = variant_metadata(
                    &upload.key,
                    &info.etag,
                    original_size,
                    compressed,
                    variant.width,
                    variant.height,
                    (processed.width, processed.height),
                );
                if format.extension == JPEG.extension {
                    event::add_formats(
                        &mut metadata,
                        &upload.key,
                        &written_formats.join("."),
                        &tried_formats.join("."),
                    );
                }
                let put = NewObject {
                    bucket: s.destination_bucket.clone(),
                    key: key.clone(),
                    body,
                    content_type: format.content_type.into(),
                    cache_control: s.cache_control.clone(),
                    metadata,
                };
                if let Err(e) = self.store.put(put).await {
                    return Err(Interrupted::Outcome(transient_or_skip(e)));
                }
                written += 1;
                bytes_out += compressed;
                telemetry::variant_written(upload, &variant, &key, original_size, compressed);
            }
        }
        telemetry::image_processed(&telemetry::ImageWritten {
            upload,
            source_etag: &info.etag,
            format: processed.format,
            colour: processed.colour,
            width: processed.width,
            height: processed.height,
            original_size,
            written,
            bytes_out,
            elapsed_ms,
        });
        Ok(written)
    }
}

/// Why a round of `write_variants` stopped before writing.
enum Interrupted {
    /// The object was replaced or deleted after its HEAD: look again at what is current.
    Replaced,
    /// The record ends here (skipped or failed).
    Outcome(RecordOutcome),
}

/// How many rounds (HEAD, download of that version, variants written, HEAD again) a record may take.
/// A round after the first happens only when the object was replaced during the one before, so a
/// re-upload arriving while a record is processed costs one more round; an object replaced during
/// every round fails the record for Lambda's retry, and each replacement's own record follows.
pub const MAX_ROUNDS: usize = 4;

fn written_outcome(written: usize) -> RecordOutcome {
    telemetry::image_written();
    RecordOutcome::Written(written)
}

/// A record skipped for good, counted by its reason code (a bounded set: the codes of `ImageError`,
/// `MALFORMED_RECORD`, `OWN_OUTPUT`, `NOT_FOUND`, `REJECTED`).
fn skipped(code: &'static str, why: String) -> RecordOutcome {
    telemetry::record_skipped(code);
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
