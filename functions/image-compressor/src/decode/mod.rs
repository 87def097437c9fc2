//! Decoders, one file per input format, behind one call: [`decode`] detects the format from the
//! bytes, reads only the header, refuses too many pixels (the screen's and every frame's) and an
//! estimated peak over the memory budget (`memory_budget`) before any pixel buffer exists, then
//! decodes under an allocation limit and hands back the upright picture ([`Source`]).
//!
//! JPEG and WebP are reduced while decoding, to no less than the variants need; PNG goes through
//! the `png` crate with its checksums verified and palette indices checked; a GIF's first frame is
//! composed straight to RGB; anything else the `image` crate reads goes through `generic`.

mod generic;
mod gif;
mod jpeg;
mod jpeg_layout;
pub(crate) mod png;
mod webp;
mod webp_riff;

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageFormat, ImageReader};

use crate::error::ImageError;
use crate::memory_budget::Work;

/// What the decoders need from the pipeline's configuration.
pub(crate) struct DecodeLimits {
    pub max_pixels: u64,
    pub max_pixels_per_byte: u64,
    pub max_decode_bytes: u64,
    /// The decoder may reduce the picture while its longest edge stays at least this long.
    pub reduce_to_edge: u32,
    /// The largest variant's longest edge (`u32::MAX`: no variant), for a decoder that resamples
    /// straight to the variant's size.
    pub largest_edge: u32,
    /// The work after decoding and the memory budget, for the estimate of the image's peak.
    pub work: Work,
    /// What transparent pixels become (a GIF's are composed straight onto it).
    pub background: [u8; 3],
}

impl DecodeLimits {
    /// The pixel bounds for a picture of this size read from a file of `input_bytes`.
    pub fn check_size(
        &self,
        width: u32,
        height: u32,
        input_bytes: usize,
    ) -> Result<(), ImageError> {
        crate::limits::check_pixels(
            width,
            height,
            input_bytes,
            self.max_pixels,
            self.max_pixels_per_byte,
        )
    }
}

#[cfg(test)]
impl DecodeLimits {
    /// The default pixel bounds, 1 GiB of decoder allocations and no memory budget, reducing to no
    /// less than `reduce_to_edge` for a largest variant of `largest_edge`: for the decoders' tests.
    pub fn for_tests(reduce_to_edge: u32, largest_edge: u32) -> DecodeLimits {
        DecodeLimits {
            max_pixels: crate::limits::DEFAULT_MAX_PIXELS,
            max_pixels_per_byte: crate::limits::DEFAULT_MAX_PIXELS_PER_BYTE,
            max_decode_bytes: 1 << 30,
            reduce_to_edge,
            largest_edge,
            work: Work::unbounded(),
            background: [255, 255, 255],
        }
    }
}

/// How a decoder hands over its pixels, 8 bits a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PixelLayout {
    Grey,
    Rgb,
    /// Straight alpha.
    Rgba,
}

/// A picture decoded by a codec of our own (JPEG, WebP), possibly reduced, not yet turned upright.
pub(crate) struct Decoded {
    pub pixels: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub layout: PixelLayout,
    /// The stored picture's full size (before scaling and orientation).
    pub full_width: u32,
    pub full_height: u32,
    pub orientation: Orientation,
    pub icc: Option<Vec<u8>>,
    /// Decoding took little work next to encoding a large variant (a baseline JPEG, reduced while
    /// decoding): see `encode::jpeg::choose_encoding`.
    pub cheap_decode: bool,
}

impl Decoded {
    /// The picture turned upright, sized as its full upright size says.
    fn into_source(self) -> Result<Source, ImageError> {
        let (width, height, pixels) = (self.width, self.height, self.pixels);
        let image = match self.layout {
            PixelLayout::Grey => {
                image::GrayImage::from_raw(width, height, pixels).map(DynamicImage::ImageLuma8)
            }
            PixelLayout::Rgb => {
                image::RgbImage::from_raw(width, height, pixels).map(DynamicImage::ImageRgb8)
            }
            PixelLayout::Rgba => {
                image::RgbaImage::from_raw(width, height, pixels).map(DynamicImage::ImageRgba8)
            }
        };
        let mut image = image
            .ok_or_else(|| ImageError::Corrupt("decoded picture of an unexpected size".into()))?;
        image.apply_orientation(self.orientation);
        let full = (self.full_width, self.full_height);
        let (width, height) = if turns(self.orientation) {
            (full.1, full.0)
        } else {
            full
        };
        Ok(Source {
            image,
            width,
            height,
            icc: self.icc,
            cheap_decode: self.cheap_decode,
        })
    }
}

/// A decoded picture on its way to the variants.
pub(crate) struct Source {
    /// Upright pixels; for a JPEG possibly already reduced (never below the largest variant).
    pub image: DynamicImage,
    /// The picture's full upright size: variants are fitted to this.
    pub width: u32,
    pub height: u32,
    pub icc: Option<Vec<u8>>,
    /// Decoding took little work next to encoding a large variant (a baseline JPEG, reduced while
    /// decoding): see `encode::jpeg::choose_encoding`.
    pub cheap_decode: bool,
}

/// The upright picture in `bytes` and its format's name, or why not.
pub(crate) fn decode(
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<(Source, &'static str), ImageError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    let format = reader.format().ok_or(ImageError::Unsupported)?;
    let name = format_name(format).ok_or(ImageError::Unsupported)?;
    let source = match format {
        ImageFormat::Png => png::decode_strictly(bytes, limits)?,
        ImageFormat::Jpeg => match jpeg::decode(bytes, limits)? {
            Some(decoded) => decoded.into_source()?,
            // CMYK and YCCK (already checked for completeness and size).
            None => generic::decode(reader, bytes, limits)?,
        },
        ImageFormat::WebP => match webp::decode(bytes, limits)? {
            Some(decoded) => decoded.into_source()?,
            // Animated: the first frame.
            None => generic::decode(reader, bytes, limits)?,
        },
        ImageFormat::Gif => gif::decode_first_frame(bytes, limits)?,
        _ => generic::decode(reader, bytes, limits)?,
    };
    Ok((source, name))
}

fn format_name(format: ImageFormat) -> Option<&'static str> {
    Some(match format {
        ImageFormat::Jpeg => "jpeg",
        ImageFormat::Png => "png",
        ImageFormat::WebP => "webp",
        ImageFormat::Gif => "gif",
        ImageFormat::Bmp => "bmp",
        ImageFormat::Tiff => "tiff",
        _ => return None,
    })
}

/// Whether an orientation swaps width and height (and so copies the picture).
pub(crate) fn turns(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// The smallest of libjpeg's fast scales (n/8 for n = 1, 2, 4, 8) that still leaves the longest
/// edge at least `target` pixels long, so every variant is a reduction of real picture detail
/// (the rule of every decoder that reduces while decoding).
pub(crate) fn scale_numerator(longest_edge: u32, target: u32) -> u8 {
    [1u8, 2, 4]
        .into_iter()
        .find(|&n| u64::from(longest_edge) * u64::from(n) >= u64::from(target) * 8)
        .unwrap_or(8)
}
