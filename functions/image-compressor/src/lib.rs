//! image-compressor: S3 `ObjectCreated` → download → JPEG variants (and AVIF, WebP where smaller,
//! per `FORMATS`) → upload to the destination bucket.
//!
//! Each record stands alone: a bad image is logged and skipped (retrying cannot help), an object
//! that is already done (every variant carries the current object's ETag) costs only HEAD requests,
//! and a transient S3 failure makes the invocation fail so Lambda's async retries and the
//! `OnFailure` destination apply; finished variants are skipped on the retry.
//!
//! A re-upload is never shadowed by an older upload's invocation finishing last: the source is
//! downloaded only if its ETag is still the one its HEAD gave (`If-Match`), so a variant's
//! `source-etag` always names the object its pixels come from; and after writing, the source is
//! asked again: if it was replaced meanwhile, the current object is processed in turn. Whichever
//! invocation writes a variant last has therefore seen, after that write, the object still current,
//! or has rewritten it from the newer one.
//!
//! Last of all, once every variant carries the current object's ETag, the upload's manifest
//! (`manifest.rs`) is written from what the variants say about themselves, with that ETag as its
//! `source-etag`: its presence means every variant it lists exists, and the round's final check of
//! the source covers it like a variant, so the manifest left last describes the current object.
//!
//! # Where things are
//!
//! - `handler`: the event in, each upload's variants and manifest out, one [`RecordOutcome`] per
//!   record; `outputs`: what the destination bucket already holds for an upload; `telemetry`: the
//!   one place outcomes become logs, metrics and spans; `event`, `manifest`: their formats.
//! - `pipeline`: bytes in, encoded variants out (`compress_image`), with no AWS type: `decode/`
//!   (one decoder per input format behind one `Decoded`), then `colour` (alpha, ICC to sRGB),
//!   `resize` and `encode/` (one encoder per output format).
//! - Leaves: `error` (the pipeline's one error type), `limits` (pixel bounds and their defaults),
//!   `memory_budget` (what an image may hold at its peak), `libjpeg` (libjpeg's FFI), `allocator`
//!   (malloc tuning, called once from `main`), `config` (settings from the environment).
//!
//! An output format is added in `encode/<format>.rs` and registered in `encode/mod.rs` (see there);
//! an input format in `decode/<format>.rs` and `decode::decode`'s dispatch.

pub mod allocator;
mod colour;
pub mod config;
mod decode;
pub mod encode;
pub mod error;
pub mod event;
mod handler;
mod libjpeg;
pub mod limits;
pub mod manifest;
pub mod memory_budget;
mod outcome;
mod outputs;
pub mod pipeline;
mod resize;
mod telemetry;

pub use handler::{Compressor, Pipeline, RecordOutcome, RetryableFailure, Settings, MAX_ROUNDS};
