//! Bytes in, encoded variants out (`compress_image`): a pure function with no AWS types, shared by
//! the Lambda handler, the `compress` example, tests and benchmarks.
//!
//! Order of work: decode (`decode/`: detect the format from the bytes; read only the header and
//! refuse too many pixels (the screen's and every frame's) and an estimated peak over the memory
//! budget (`memory_budget`) before any pixel buffer exists; decode under an allocation limit, JPEGs
//! reduced while decoding to no less than the largest variant needs, lossy WebPs resampled straight
//! to it; reject truncated and damaged files; apply the EXIF orientation); then `render_variants`:
//! flatten alpha onto the background (`colour`); resize with a SIMD Lanczos filter, each variant
//! from the next larger one (`resize`); convert colours from an embedded ICC profile to sRGB; encode
//! each format (`encode/`). Nothing from the source file (EXIF, GPS, ICC, comments) is copied into
//! the output. A decoder panic is contained and reported.

use std::panic::{catch_unwind, AssertUnwindSafe};

use domain::image::{fit_within, VariantSpec};
use fast_image_resize::images::Image;
use fast_image_resize::Resizer;

use crate::colour::{flatten, srgb_transform, ToSrgb};
use crate::decode::{self, DecodeLimits, Source};
use crate::encode::jpeg::choose_encoding;
pub use crate::encode::jpeg::Optimize;
pub use crate::encode::EncodedVariant;
use crate::encode::{self, avif};
pub use crate::error::ImageError;
use crate::memory_budget::{self, Work};
use crate::resize::{lanczos3, resize, SPLIT_RESIZE_PIXELS};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineConfig {
    pub variants: Vec<VariantSpec>,
    pub jpeg_quality: u8,
    /// Smallest output at the quality, or fastest processing (`JPEG_OPTIMIZE`).
    pub optimize: Optimize,
    /// Also a WebP of each variant, at this quality (`FORMATS` lists webp; `WEBP_QUALITY`).
    pub webp_quality: Option<u8>,
    /// Also an AVIF of each variant, at this quality (`FORMATS` lists avif; `AVIF_QUALITY`).
    pub avif_quality: Option<u8>,
    pub max_pixels: u64,
    /// At most this many pixels per byte of the file (`MAX_PIXELS_PER_BYTE`): no real encoder
    /// compresses further, so a file past it is a decompression bomb (a 35-byte GIF announcing an
    /// 11254x4097 canvas), refused from its header before any pixel buffer exists.
    pub max_pixels_per_byte: u64,
    pub max_decode_bytes: u64,
    /// What transparent pixels become in a JPEG.
    pub background: [u8; 3],
    /// The most one image may hold at its peak, from the object's bytes to the encoded variants
    /// (`memory_budget::image_budget` of the function's memory): an image whose estimated peak is
    /// over it is refused from its header.
    pub memory_budget: u64,
}

impl Default for PipelineConfig {
    /// What the function runs with when no setting is given (`from_env` of an empty environment):
    /// the default variants, JPEG q85 optimised for size with WebP and AVIF beside it, the default
    /// limits and the budget of the template's memory size.
    fn default() -> Self {
        PipelineConfig {
            variants: domain::image::parse_variants(domain::image::DEFAULT_VARIANTS)
                .unwrap_or_default(),
            jpeg_quality: 85,
            optimize: Optimize::Size,
            webp_quality: Some(encode::webp::DEFAULT_QUALITY),
            avif_quality: Some(avif::DEFAULT_QUALITY),
            max_pixels: crate::limits::DEFAULT_MAX_PIXELS,
            max_pixels_per_byte: crate::limits::DEFAULT_MAX_PIXELS_PER_BYTE,
            max_decode_bytes: crate::limits::DEFAULT_MAX_DECODE_BYTES,
            background: [255, 255, 255],
            memory_budget: memory_budget::image_budget(memory_budget::DEFAULT_FUNCTION_MEMORY_MB),
        }
    }
}

impl PipelineConfig {
    /// What the decoders need: the bounds, and how far JPEG and WebP may be reduced while decoding
    /// (to no less than the variants need).
    fn decode_limits(&self) -> DecodeLimits {
        let largest = self.variants.iter().map(|v| v.max_edge).max();
        DecodeLimits {
            max_pixels: self.max_pixels,
            max_pixels_per_byte: self.max_pixels_per_byte,
            max_decode_bytes: self.max_decode_bytes,
            reduce_to_edge: largest.map_or(u32::MAX, |edge| match self.optimize {
                // 1.5x: a 4096-px photo stays at half size (not full) for a 1200-px variant.
                Optimize::Size => edge.saturating_add(edge / 2),
                Optimize::Speed => edge,
            }),
            largest_edge: largest.unwrap_or(u32::MAX),
            work: self.work(),
            background: self.background,
        }
    }

    /// What the memory estimate needs to know of the work after decoding.
    pub(crate) fn work(&self) -> Work {
        let mut edges: Vec<u32> = self.variants.iter().map(|v| v.max_edge).collect();
        edges.sort_by_key(|edge| std::cmp::Reverse(*edge));
        Work {
            edges,
            webp: self.webp_quality.is_some(),
            avif: self.avif_quality.is_some(),
            budget: self.memory_budget,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compressed {
    pub format: &'static str,
    /// Display size, after EXIF orientation.
    pub width: u32,
    pub height: u32,
    pub colour: ColourHandling,
    pub variants: Vec<EncodedVariant>,
}

/// What became of the source's colour profile (the output is always sRGB without a profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColourHandling {
    /// No profile: the pixels are taken as sRGB, as browsers do.
    Untagged,
    /// Converted from the embedded ICC profile to sRGB.
    Converted,
    /// The embedded profile is sRGB (what most cameras and editors embed): nothing to convert.
    AlreadySrgb,
    /// A profile that cannot be applied (unreadable, or not RGB): the pixels are taken as they are.
    Ignored,
}

impl ColourHandling {
    pub fn as_str(self) -> &'static str {
        match self {
            ColourHandling::Untagged => "untagged",
            ColourHandling::Converted => "converted to sRGB",
            ColourHandling::AlreadySrgb => "sRGB profile",
            ColourHandling::Ignored => "profile ignored",
        }
    }
}

/// Makes every variant of `bytes`, or says precisely why not. Never panics.
pub fn compress_image(bytes: &[u8], config: &PipelineConfig) -> Result<Compressed, ImageError> {
    catch_unwind(AssertUnwindSafe(|| decode_and_render(bytes, config)))
        .unwrap_or(Err(ImageError::DecoderPanic))
}

fn decode_and_render(bytes: &[u8], config: &PipelineConfig) -> Result<Compressed, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let (source, format_name) = decode::decode(bytes, &config.decode_limits())?;
    render_variants(source, format_name, config)
}

/// From a decoded, upright image to the encoded variants: 8-bit pixels with alpha flattened, each
/// variant resized from the next larger one, colours converted to sRGB once, every format encoded.
fn render_variants(
    source: Source,
    format_name: &'static str,
    config: &PipelineConfig,
) -> Result<Compressed, ImageError> {
    let Source {
        image,
        width,
        height,
        icc,
        cheap_decode,
    } = source;
    let (decoded_width, decoded_height) = (image.width(), image.height());
    let (pixels, pixel_type, grey) = flatten(image, config.background);
    let mut current = Image::from_vec_u8(decoded_width, decoded_height, pixels, pixel_type)
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;

    let (mut to_srgb, colour) = match icc {
        None => (None, ColourHandling::Untagged),
        Some(profile) => match srgb_transform(&profile, grey) {
            ToSrgb::Transform(transform) => (Some(transform), ColourHandling::Converted),
            ToSrgb::Nothing => (None, ColourHandling::AlreadySrgb),
            ToSrgb::Unusable => (None, ColourHandling::Ignored),
        },
    };
    let mut order: Vec<&VariantSpec> = config.variants.iter().collect();
    order.sort_by_key(|spec| std::cmp::Reverse(spec.max_edge));
    let mut resizer = Resizer::new();
    let options = lanczos3();
    let mut encoded = Vec::with_capacity(order.len());
    let mut first = true;
    for spec in order {
        let (w, h) = fit_within(width, height, spec.max_edge);
        if (w, h) != (current.width(), current.height()) {
            // The next (smaller) variant starts from this one: far fewer pixels to filter.
            // Only the first reduction (from the decoded picture) sets the peak, and splitting
            // it pays where the result is large (see `resize`).
            let split = first && u64::from(w) * u64::from(h) >= SPLIT_RESIZE_PIXELS;
            first = false;
            current = resize(&mut resizer, current, (w, h), &options, split)?;
        }
        // Once, on the largest variant (fewer pixels than the source); the rest derive from it.
        if let Some(transform) = to_srgb.take() {
            let mut converted = vec![0; current.buffer().len()];
            transform
                .transform(current.buffer(), &mut converted)
                .map_err(|e| ImageError::Encode(format!("colour conversion failed: {e}")))?;
            current.buffer_mut().copy_from_slice(&converted);
        }
        // A variant no larger than the picture keeps its size: when the one before has the same
        // size it has the same pixels, so its files serve again (a 128-px upload is encoded once
        // for the four default variants, not four times).
        let same = encoded
            .last()
            .filter(|v: &&EncodedVariant| (v.width, v.height) == (w, h));
        let (jpeg, webp, avif) = match same {
            Some(previous) => (
                previous.jpeg.clone(),
                previous.webp.clone(),
                previous.avif.clone(),
            ),
            None => {
                let files = encode::encode_files(
                    current.buffer(),
                    (w, h),
                    grey,
                    &encode::Request {
                        jpeg_quality: config.jpeg_quality,
                        jpeg_encoding: choose_encoding(
                            config.optimize,
                            (width, height),
                            (w, h),
                            cheap_decode,
                        ),
                        webp_quality: config.webp_quality,
                        avif_quality: config.avif_quality,
                    },
                )?;
                (files.jpeg, files.webp, files.avif)
            }
        };
        encoded.push(EncodedVariant {
            name: spec.name.clone(),
            width: w,
            height: h,
            jpeg,
            webp,
            avif,
        });
    }
    // Report variants in configuration order.
    encoded.sort_by_key(|v| config.variants.iter().position(|s| s.name == v.name));
    Ok(Compressed {
        format: format_name,
        width,
        height,
        colour,
        variants: encoded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encodes_for(width: u32, height: u32, variants: &str) -> (usize, Compressed) {
        use image::ImageEncoder;
        let mut png = Vec::new();
        let pixels: Vec<u8> = (0..width * height * 3).map(|i| (i % 251) as u8).collect();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(&pixels, width, height, image::ExtendedColorType::Rgb8)
            .unwrap();
        let config = PipelineConfig {
            variants: domain::image::parse_variants(variants).unwrap(),
            webp_quality: Some(80),
            avif_quality: Some(80),
            max_decode_bytes: 1 << 30,
            memory_budget: u64::MAX,
            ..PipelineConfig::default()
        };
        let before = encode::jpeg::ENCODES.with(|n| n.get());
        let out = compress_image(&png, &config).unwrap();
        (encode::jpeg::ENCODES.with(|n| n.get()) - before, out)
    }

    #[test]
    fn an_indexed_bomb_is_refused_before_its_indices_are_checked() {
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/bad/png-palette-bomb-50000x50000.png"
        ))
        .unwrap();
        let config = PipelineConfig {
            variants: domain::image::parse_variants("t:150").unwrap(),
            webp_quality: None,
            avif_quality: None,
            max_decode_bytes: 1 << 30,
            memory_budget: u64::MAX,
            ..PipelineConfig::default()
        };
        let before = crate::decode::png::PALETTE_CHECKS.with(|n| n.get());
        let error = compress_image(&bytes, &config).unwrap_err();
        assert_eq!(error.code(), "TOO_MANY_PIXELS");
        assert_eq!(
            crate::decode::png::PALETTE_CHECKS.with(|n| n.get()),
            before,
            "no index decode began"
        );
        // A small indexed picture with a short palette is checked (once).
        let small = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/good/png-palette-2bit-3-colours-padding-bits-set.png"
        ))
        .unwrap();
        compress_image(&small, &config).unwrap();
        assert_eq!(
            crate::decode::png::PALETTE_CHECKS.with(|n| n.get()),
            before + 1
        );
    }

    #[test]
    fn a_variant_over_four_megapixels_gets_no_avif() {
        let (_, out) = encodes_for(2100, 2000, "big:2100,small:300");
        let big = &out.variants[0];
        assert_eq!((big.width, big.height), (2100, 2000));
        assert!(big.avif.is_none() && big.webp.is_some());
        assert!(out.variants[1].avif.is_some());
    }

    #[test]
    fn variants_of_one_size_are_encoded_once() {
        let defaults = "thumbnail:150,small:300,medium:600,large:1200";
        // Smaller than every box: four variants, one picture, one encoding (JPEG and WebP).
        let (encodes, out) = encodes_for(128, 85, defaults);
        assert_eq!(encodes, 1);
        assert_eq!(out.variants.len(), 4);
        for v in &out.variants {
            assert_eq!((v.width, v.height), (128, 85));
            assert_eq!(v.jpeg, out.variants[0].jpeg);
            assert_eq!(v.webp, out.variants[0].webp);
            assert!(v.webp.is_some());
            assert_eq!(v.avif, out.variants[0].avif);
            assert!(v.avif.is_some());
        }
        // 400 px: thumbnail, small, and one picture for medium and large.
        let (encodes, out) = encodes_for(400, 300, defaults);
        assert_eq!(encodes, 3);
        let sizes: Vec<_> = out.variants.iter().map(|v| (v.width, v.height)).collect();
        assert_eq!(sizes, [(150, 113), (300, 225), (400, 300), (400, 300)]);
        // Larger than every box: one encoding per variant.
        assert_eq!(encodes_for(1300, 700, defaults).0, 4);
    }
}
