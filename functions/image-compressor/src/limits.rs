//! The bounds an image is held to before any pixel buffer exists, and their defaults. It depends
//! only on the error type.

use crate::error::ImageError;

pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 50 * 1024 * 1024;
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;
pub const DEFAULT_MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;
/// Twice the most any real encoder reaches: deflate expands at most 1032:1, so a 1-bit PNG holds at
/// most about 8,300 pixels per byte (GIF's LZW and JPEG far fewer). Degenerate files beyond it, such
/// as a blank lossless WebP of many megapixels, are refused too.
pub const DEFAULT_MAX_PIXELS_PER_BYTE: u64 = 16_384;

/// The bounds every decoder checks as soon as it knows the size, before allocating pixels.
pub(crate) fn check_pixels(
    width: u32,
    height: u32,
    input_bytes: usize,
    max_pixels: u64,
    max_pixels_per_byte: u64,
) -> Result<(), ImageError> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(ImageError::TooManyPixels {
            width,
            height,
            limit: max_pixels,
        });
    }
    let bytes = input_bytes as u64;
    if pixels > max_pixels_per_byte.saturating_mul(bytes) {
        return Err(ImageError::TooManyPixelsPerByte {
            width,
            height,
            bytes,
            limit: max_pixels_per_byte,
        });
    }
    if width == 0 || height == 0 {
        return Err(ImageError::Corrupt("the image has no pixels".into()));
    }
    Ok(())
}
