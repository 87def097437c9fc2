//! Encoders, one file per output format, and the one place output formats are registered.
//!
//! Every variant is written as a JPEG (the fallback every client reads); each format registered in
//! [`BESIDE_JPEG`] is written beside it where `FORMATS` lists it, and kept only where it is smaller.
//! An encoder takes 8-bit RGB (or grey) rows and returns the file; [`check_size`] is the bounds
//! check they share.
//!
//! Adding an output format: its encoder in `encode/<format>.rs`, and its registration here (an
//! [`OutputFormat`] in [`BESIDE_JPEG`], a field of [`EncodedVariant`] and its arm in
//! [`EncodedVariant::file`] and [`encode_files`]). The handler writes, lists and checks every
//! format registered here without naming any. Outside this folder, its setting is read in
//! `config.rs` (`FORMATS`, a quality) into a `PipelineConfig` field (and `PipelineConfig::writes`),
//! and its encoder's memory is counted in `memory_budget`.

pub(crate) mod avif;
pub(crate) mod jpeg;
pub(crate) mod webp;

use crate::error::ImageError;

/// An output format: its key extension and `Content-Type`.
#[derive(Debug, PartialEq, Eq)]
pub struct OutputFormat {
    pub extension: &'static str,
    pub content_type: &'static str,
}

pub const JPEG: OutputFormat = OutputFormat {
    extension: "jpg",
    content_type: "image/jpeg",
};
pub const WEBP: OutputFormat = OutputFormat {
    extension: "webp",
    content_type: "image/webp",
};
pub const AVIF: OutputFormat = OutputFormat {
    extension: "avif",
    content_type: "image/avif",
};

/// The formats written beside each JPEG, in the order a variant's files are written (the JPEG
/// last: its metadata records what was written beside it).
pub const BESIDE_JPEG: [&OutputFormat; 2] = [&AVIF, &WEBP];

/// Every output format, the JPEG last.
pub const ALL: [&OutputFormat; 3] = [&AVIF, &WEBP, &JPEG];

/// One variant's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedVariant {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub jpeg: Vec<u8>,
    /// When `webp_quality` is set: written only where it is smaller than the JPEG (`smaller`).
    pub webp: Option<Vec<u8>>,
    /// When `avif_quality` is set and the variant has at most `avif::MAX_PIXELS`: written only where
    /// it is smaller than the JPEG (`smaller`).
    pub avif: Option<Vec<u8>>,
}

impl EncodedVariant {
    /// `file` (this variant's WebP or AVIF) when it is smaller than the JPEG: the settings were
    /// chosen for a quality no lower than the JPEG's, so a smaller file is the better one to send.
    pub fn smaller<'a>(&self, file: &'a Option<Vec<u8>>) -> Option<&'a [u8]> {
        file.as_deref().filter(|f| f.len() < self.jpeg.len())
    }

    /// This variant's file in a format written beside the JPEG (`None` for the JPEG itself).
    pub fn file(&self, format: &OutputFormat) -> &Option<Vec<u8>> {
        match format.extension {
            "avif" => &self.avif,
            "webp" => &self.webp,
            _ => &None,
        }
    }
}

/// The files of one variant: what the encoders need to know.
pub(crate) struct Request {
    pub jpeg_quality: u8,
    pub jpeg_encoding: jpeg::Encoding,
    pub webp_quality: Option<u8>,
    pub avif_quality: Option<u8>,
}

/// A variant's files: the JPEG, and each format beside it that was asked for.
pub(crate) struct Files {
    pub jpeg: Vec<u8>,
    pub webp: Option<Vec<u8>>,
    pub avif: Option<Vec<u8>>,
}

/// A variant's JPEG, and its file in each format beside it that is asked for.
pub(crate) fn encode_files(
    pixels: &[u8],
    (w, h): (u32, u32),
    grey: bool,
    request: &Request,
) -> Result<Files, ImageError> {
    Ok(Files {
        jpeg: jpeg::encode_smallest(
            pixels,
            (w, h),
            grey,
            request.jpeg_quality,
            request.jpeg_encoding,
        )?,
        webp: request
            .webp_quality
            .map(|quality| webp::encode(pixels, w, h, grey, quality))
            .transpose()?,
        avif: request
            .avif_quality
            .filter(|_| avif::fits(w, h))
            .map(|quality| avif::encode(pixels, w, h, grey, quality))
            .transpose()?,
    })
}

/// The bounds every encoder checks first: a size the format can hold (`1..=max_side` a side), and
/// a buffer of exactly `height` rows of `width` RGB (or grey) pixels.
pub(crate) fn check_size(
    pixels: &[u8],
    width: u32,
    height: u32,
    grey: bool,
    max_side: u32,
    what: &str,
) -> Result<(), ImageError> {
    if width == 0 || height == 0 || width > max_side || height > max_side {
        return Err(ImageError::Encode(format!(
            "{width}x{height} cannot be {what} (at most {max_side} a side)"
        )));
    }
    let channels: usize = if grey { 1 } else { 3 };
    if pixels.len() != width as usize * height as usize * channels {
        return Err(ImageError::Encode("pixel buffer of the wrong size".into()));
    }
    Ok(())
}
