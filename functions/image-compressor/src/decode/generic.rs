//! Any format the `image` crate reads (BMP, TIFF, CMYK JPEG, animated WebP...), under the allocation
//! limit and the memory budget.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use super::{turns, DecodeLimits, Source};
use crate::error::ImageError;
use crate::memory_budget::{self, Peak, Shape};

/// Any format the `image` crate reads, under the allocation limit and the memory budget.
pub(super) fn decode(
    mut reader: ImageReader<Cursor<&[u8]>>,
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<Source, ImageError> {
    let format = reader.format();
    let mut allocation = Limits::default();
    allocation.max_alloc = Some(limits.max_decode_bytes);
    reader.limits(allocation.clone());
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| map_decode_error(e, limits))?;
    let (width, height) = decoder.dimensions();
    limits.check_size(width, height, bytes.len())?;
    // Not every decoder honours `max_alloc`; the decoded size is known from the header.
    if decoder.total_bytes() > limits.max_decode_bytes {
        return Err(ImageError::TooMuchMemory(limits.max_decode_bytes));
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let turned = turns(orientation);
    let decoded = Shape::from_color(width, height, decoder.color_type());
    let pixels = decoded.pixels();
    // What each decoder holds besides the picture it hands over (see `memory_budget`).
    let private = match format {
        // The TIFF decoder decodes into a whole picture of its own, then copies it out; each strip
        // or tile on its way is bounded by the limit set below.
        Some(ImageFormat::Tiff) => {
            let bits = u64::from(decoder.original_color_type().bits_per_pixel());
            (pixels * bits).div_ceil(8)
        }
        // CMYK and YCCK: every coefficient of four components (two bytes each), and the CMYK
        // samples before their conversion.
        Some(ImageFormat::Jpeg) => pixels * 4 * 2 + pixels * 4,
        // Animated: the canvas (RGBA) besides the picture, and the first frame's buffers.
        Some(ImageFormat::WebP) => pixels * 4 + super::webp_riff::first_frame_bytes(bytes),
        _ => decoded.bytes(),
    };
    let mut peak = Peak::new(bytes.len());
    peak.alloc(decoded.bytes()).transient(private);
    if turned {
        peak.transient(decoded.bytes());
    }
    let full = if turned {
        (height, width)
    } else {
        (width, height)
    };
    let work = &limits.work;
    memory_budget::finish(&mut peak, decoded, full, work);
    peak.check(work.budget)?;
    if format == Some(ImageFormat::Tiff) {
        // Whatever the TIFF decoder needs beyond its own picture (a strip's or a tile's samples)
        // must fit in what the budget has left.
        allocation.max_alloc = Some(
            limits.max_decode_bytes.min(
                // The decoder's picture as the `image` crate counts it (a 1-bit picture as
                // 8-bit), and what is left.
                private
                    .max(decoded.bytes())
                    .saturating_add(peak.headroom(work.budget)),
            ),
        );
        decoder
            .set_limits(allocation)
            .map_err(|e| map_decode_error(e, limits))?;
    }
    let icc = decoder.icc_profile().ok().flatten();
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| map_decode_error(e, limits))?;
    image.apply_orientation(orientation);
    Ok(Source {
        width: image.width(),
        height: image.height(),
        image,
        icc,
        cheap_decode: false,
    })
}

pub(super) fn map_decode_error(e: image::ImageError, limits: &DecodeLimits) -> ImageError {
    match e {
        image::ImageError::Limits(_) => ImageError::TooMuchMemory(limits.max_decode_bytes),
        image::ImageError::Unsupported(_) => ImageError::Unsupported,
        image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageError::Truncated
        }
        other => {
            let text = other.to_string();
            if text.contains("end of file")
                || text.contains("EOF")
                || text.contains("unexpected end")
            {
                ImageError::Truncated
            } else {
                ImageError::Corrupt(text)
            }
        }
    }
}
