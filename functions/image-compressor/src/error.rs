//! Why an image cannot be made into variants: one error type for every decoder, encoder and limit.
//! A leaf: it depends on nothing else in the crate.

/// Why an image cannot be processed. All of these are permanent: retrying cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("the object is empty")]
    Empty,
    #[error("the object is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: u64, limit: u64 },
    #[error("not a supported image (JPEG, PNG, WebP, GIF, BMP or TIFF)")]
    Unsupported,
    #[error("{width}x{height} is over the {limit}-pixel limit")]
    TooManyPixels { width: u32, height: u32, limit: u64 },
    #[error(
        "{width}x{height} pixels from a {bytes}-byte file is over {limit} pixels per byte (a decompression bomb?)"
    )]
    TooManyPixelsPerByte {
        width: u32,
        height: u32,
        bytes: u64,
        limit: u64,
    },
    #[error("decoding would need more memory than the {0}-byte limit")]
    TooMuchMemory(u64),
    #[error(
        "processing would hold about {needed} bytes at its peak, over the {budget} bytes one image may use in this function's memory"
    )]
    TooLargeForMemory { needed: u64, budget: u64 },
    #[error("the image is truncated (an incomplete upload?)")]
    Truncated,
    #[error("the image is corrupt: {0}")]
    Corrupt(String),
    #[error("the decoder failed unexpectedly on this file")]
    DecoderPanic,
    #[error("encoding failed: {0}")]
    Encode(String),
}

impl ImageError {
    /// A short stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ImageError::Empty => "EMPTY",
            ImageError::TooLarge { .. } => "TOO_LARGE",
            ImageError::Unsupported => "UNSUPPORTED_FORMAT",
            ImageError::TooManyPixels { .. } => "TOO_MANY_PIXELS",
            ImageError::TooManyPixelsPerByte { .. } => "TOO_MANY_PIXELS_PER_BYTE",
            ImageError::TooMuchMemory(_) => "TOO_MUCH_MEMORY",
            ImageError::TooLargeForMemory { .. } => "IMAGE_TOO_LARGE_FOR_MEMORY",
            ImageError::Truncated => "TRUNCATED",
            ImageError::Corrupt(_) => "CORRUPT",
            ImageError::DecoderPanic => "DECODER_PANIC",
            ImageError::Encode(_) => "ENCODE_FAILED",
        }
    }
}
