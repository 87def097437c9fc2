//! PNG through the `png` crate directly, checksums verified and palette indices checked.

use std::io::Cursor;

use image::DynamicImage;

use super::{DecodeLimits, Source};
use crate::error::ImageError;
use crate::memory_budget::{self, Peak, Shape};

/// PNG through the `png` crate directly, with the zlib Adler-32 checksum verified (the generic
/// decoder skips it, so a corrupt stream would decode into a damaged picture).
pub(super) fn decode_strictly(bytes: &[u8], limits: &DecodeLimits) -> Result<Source, ImageError> {
    let corrupt = |e: png::DecodingError| match e {
        png::DecodingError::LimitsExceeded => ImageError::TooMuchMemory(limits.max_decode_bytes),
        png::DecodingError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageError::Truncated
        }
        other => ImageError::Corrupt(other.to_string()),
    };
    let mut options = png::DecodeOptions::default();
    options.set_ignore_adler32(false);
    let mut decoder = png::Decoder::new_with_options(Cursor::new(bytes), options);
    decoder.set_limits(png::Limits {
        bytes: usize::try_from(limits.max_decode_bytes).unwrap_or(usize::MAX),
    });
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(corrupt)?;
    let (width, height) = (reader.info().width, reader.info().height);
    limits.check_size(width, height, bytes.len())?;
    let icc = reader.info().icc_profile.as_ref().map(|p| p.to_vec());
    let size = reader
        .output_buffer_size()
        .ok_or(ImageError::TooMuchMemory(limits.max_decode_bytes))?;
    if size as u64 > limits.max_decode_bytes {
        return Err(ImageError::TooMuchMemory(limits.max_decode_bytes));
    }
    let info = reader.info();
    // A row as stored (before 8-bit expansion), with its filter byte.
    let row =
        (u64::from(width) * u64::from(info.color_type.samples() as u8) * info.bit_depth as u64)
            .div_ceil(8)
            + 1;
    let (colour, _) = reader.output_color_type();
    let decoded = Shape {
        width,
        height,
        channels: colour.samples() as u8,
        bytes_per_sample: 1,
    };
    let mut peak = Peak::new(bytes.len());
    // The palette check's indices, freed before the picture exists.
    if info.color_type == png::ColorType::Indexed {
        peak.transient(row * u64::from(height));
    }
    // The picture, and the decoder's rows (the current and the previous one, and an interlaced
    // pass's).
    peak.alloc(size as u64).transient(3 * row);
    memory_budget::check(peak, decoded, (width, height), &limits.work)?;
    // Only once the bounds hold: the check decodes the indices.
    check_palette_indices(bytes, reader.info(), limits, &corrupt)?;
    let mut buffer = vec![0; size];
    let frame = reader.next_frame(&mut buffer).map_err(corrupt)?;
    buffer.truncate(frame.buffer_size());
    let image = match frame.color_type {
        png::ColorType::Grayscale => {
            image::GrayImage::from_raw(width, height, buffer).map(DynamicImage::ImageLuma8)
        }
        png::ColorType::GrayscaleAlpha => {
            image::GrayAlphaImage::from_raw(width, height, buffer).map(DynamicImage::ImageLumaA8)
        }
        png::ColorType::Rgb => {
            image::RgbImage::from_raw(width, height, buffer).map(DynamicImage::ImageRgb8)
        }
        png::ColorType::Rgba => {
            image::RgbaImage::from_raw(width, height, buffer).map(DynamicImage::ImageRgba8)
        }
        png::ColorType::Indexed => None,
    };
    let image = image.ok_or_else(|| ImageError::Corrupt("unexpected PNG pixel layout".into()))?;
    Ok(Source {
        image,
        width,
        height,
        icc,
        cheap_decode: false,
    })
}

#[cfg(test)]
thread_local! {
    /// Index decodes started by `check_palette_indices` on this thread, for tests.
    pub(crate) static PALETTE_CHECKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Refuses an indexed PNG whose pixels point past the end of its palette: decoders quietly paint
/// those pixels black, which is a damaged picture, not the uploaded one.
///
/// Only a palette shorter than its bit depth can address needs the check (a full one cannot be
/// overrun); then the indices are decoded once more, untransformed, and each is compared.
fn check_palette_indices(
    bytes: &[u8],
    info: &png::Info,
    limits: &DecodeLimits,
    corrupt: &dyn Fn(png::DecodingError) -> ImageError,
) -> Result<(), ImageError> {
    if info.color_type != png::ColorType::Indexed {
        return Ok(());
    }
    let entries = info.palette.as_ref().map_or(0, |p| p.len() / 3);
    let depth = info.bit_depth as u32;
    if entries >= 1 << depth {
        return Ok(());
    }
    #[cfg(test)]
    PALETTE_CHECKS.with(|n| n.set(n.get() + 1));
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_limits(png::Limits {
        bytes: usize::try_from(limits.max_decode_bytes).unwrap_or(usize::MAX),
    });
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().map_err(corrupt)?;
    let mut indices =
        vec![
            0;
            reader
                .output_buffer_size()
                .ok_or_else(|| ImageError::Corrupt("PNG too large to check".into()))?
        ];
    let frame = reader.next_frame(&mut indices).map_err(corrupt)?;
    let per_byte = 8 / depth;
    let mask = ((1u32 << depth) - 1) as u8;
    let width = frame.width as usize;
    for row in indices[..frame.buffer_size()].chunks(frame.line_size) {
        for x in 0..width {
            let byte = row[x / per_byte as usize];
            let shift = 8 - depth * (x as u32 % per_byte + 1);
            let index = (byte >> shift) & mask;
            if usize::from(index) >= entries {
                return Err(ImageError::Corrupt(format!(
                    "palette index {index} is outside the {entries}-colour palette"
                )));
            }
        }
    }
    Ok(())
}
