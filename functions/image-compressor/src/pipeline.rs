//! Bytes in, JPEG variants out: a pure function with no AWS types, shared by the Lambda handler, the
//! `compress` example, tests and benchmarks.
//!
//! Order of work: detect the format from the bytes; read only the header and refuse too many pixels
//! before any pixel buffer exists; decode under an allocation limit; reject truncated JPEGs; apply the
//! EXIF orientation; flatten alpha onto the background; resize with a SIMD Lanczos filter, each variant
//! from the next larger one; encode baseline JPEG. Nothing from the source
//! file (EXIF, GPS, ICC, comments) is copied into the output. A decoder panic is contained and reported.

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use domain::image::{fit_within, VariantSpec};
use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineConfig {
    pub variants: Vec<VariantSpec>,
    pub jpeg_quality: u8,
    pub max_pixels: u64,
    pub max_decode_bytes: u64,
    /// What transparent pixels become in a JPEG.
    pub background: [u8; 3],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedVariant {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub jpeg: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    pub format: &'static str,
    /// Display size, after EXIF orientation.
    pub width: u32,
    pub height: u32,
    pub variants: Vec<EncodedVariant>,
}

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
    #[error("decoding would need more memory than the {0}-byte limit")]
    TooMuchMemory(u64),
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
            ImageError::TooMuchMemory(_) => "TOO_MUCH_MEMORY",
            ImageError::Truncated => "TRUNCATED",
            ImageError::Corrupt(_) => "CORRUPT",
            ImageError::DecoderPanic => "DECODER_PANIC",
            ImageError::Encode(_) => "ENCODE_FAILED",
        }
    }
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

/// Makes every variant of `bytes`, or says precisely why not. Never panics.
pub fn process_image(bytes: &[u8], config: &PipelineConfig) -> Result<Processed, ImageError> {
    catch_unwind(AssertUnwindSafe(|| process(bytes, config)))
        .unwrap_or(Err(ImageError::DecoderPanic))
}

fn map_decode_error(e: image::ImageError, config: &PipelineConfig) -> ImageError {
    match e {
        image::ImageError::Limits(_) => ImageError::TooMuchMemory(config.max_decode_bytes),
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

/// Whether a JPEG holds a whole picture. Lenient decoders fill whatever is missing with grey; an
/// incomplete upload must be refused instead. Two checks on the marker structure:
/// - an end-of-image marker follows the last scan (a cut-off file has none);
/// - every coefficient of every component is finished by some scan (`Al = 0`), which is what a
///   progressive file with scans missing (but a tidy end marker) lacks.
pub fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let mut components: Vec<u8> = Vec::new();
    // finished[component index][coefficient]
    let mut finished: Vec<[bool; 64]> = Vec::new();
    let mut i = 2;
    let mut saw_end = false;
    while i + 2 <= bytes.len() {
        if bytes[i] != 0xFF {
            return false;
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        if marker == 0xD9 {
            saw_end = true;
            break;
        }
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            i += 2;
            continue;
        }
        let (Some(&high), Some(&low)) = (bytes.get(i + 2), bytes.get(i + 3)) else {
            return false;
        };
        let length = usize::from(u16::from_be_bytes([high, low]));
        let Some(segment) = bytes.get(i + 4..i + 2 + length) else {
            return false;
        };
        match marker {
            // Start of frame (any but the arithmetic/lossless oddities we never accept anyway).
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                let count = usize::from(*segment.get(5).unwrap_or(&0));
                components = (0..count)
                    .filter_map(|c| segment.get(6 + c * 3).copied())
                    .collect();
                finished = vec![[false; 64]; components.len()];
            }
            0xDA => {
                let count = usize::from(*segment.first().unwrap_or(&0));
                let tail = 1 + count * 2;
                let (Some(&ss), Some(&se), Some(&a)) = (
                    segment.get(tail),
                    segment.get(tail + 1),
                    segment.get(tail + 2),
                ) else {
                    return false;
                };
                if a & 0x0F == 0 {
                    for c in 0..count {
                        let id = segment.get(1 + c * 2).copied();
                        if let Some(index) = components.iter().position(|x| Some(*x) == id) {
                            // Ss and Se come from the file: clamp, so hostile values cannot index out of range.
                            let (first, last) = (usize::from(ss), usize::from(se.min(63)));
                            for done in finished[index].iter_mut().take(last + 1).skip(first) {
                                *done = true;
                            }
                        }
                    }
                }
                // Skip the entropy-coded data: it ends at a marker other than a stuffed 0xFF00 or a
                // restart marker.
                let mut j = i + 2 + length;
                while j + 1 < bytes.len()
                    && !(bytes[j] == 0xFF
                        && bytes[j + 1] != 0x00
                        && !(0xD0..=0xD7).contains(&bytes[j + 1]))
                {
                    j += 1;
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 2 + length;
    }
    saw_end && !finished.is_empty() && finished.iter().all(|c| c.iter().all(|done| *done))
}

fn process(bytes: &[u8], config: &PipelineConfig) -> Result<Processed, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    let format = reader.format().ok_or(ImageError::Unsupported)?;
    let format_name = format_name(format).ok_or(ImageError::Unsupported)?;
    if format == ImageFormat::Png {
        return finish(decode_png_strictly(bytes, config)?, format_name, config);
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(config.max_decode_bytes);
    let mut reader = reader;
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| map_decode_error(e, config))?;
    let (width, height) = decoder.dimensions();
    check_pixels(width, height, config)?;
    // Not every decoder honours `max_alloc`; the decoded size is known from the header.
    if decoder.total_bytes() > config.max_decode_bytes {
        return Err(ImageError::TooMuchMemory(config.max_decode_bytes));
    }
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(ImageError::Truncated);
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| map_decode_error(e, config))?;
    image.apply_orientation(orientation);
    finish(image, format_name, config)
}

fn check_pixels(width: u32, height: u32, config: &PipelineConfig) -> Result<(), ImageError> {
    if u64::from(width) * u64::from(height) > config.max_pixels {
        return Err(ImageError::TooManyPixels {
            width,
            height,
            limit: config.max_pixels,
        });
    }
    if width == 0 || height == 0 {
        return Err(ImageError::Corrupt("the image has no pixels".into()));
    }
    Ok(())
}

/// PNG through the `png` crate directly, with the zlib Adler-32 checksum verified (the generic
/// decoder skips it, so a corrupt stream would decode into a damaged picture).
fn decode_png_strictly(bytes: &[u8], config: &PipelineConfig) -> Result<DynamicImage, ImageError> {
    let corrupt = |e: png::DecodingError| match e {
        png::DecodingError::LimitsExceeded => ImageError::TooMuchMemory(config.max_decode_bytes),
        png::DecodingError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageError::Truncated
        }
        other => ImageError::Corrupt(other.to_string()),
    };
    let mut options = png::DecodeOptions::default();
    options.set_ignore_adler32(false);
    let mut decoder = png::Decoder::new_with_options(Cursor::new(bytes), options);
    decoder.set_limits(png::Limits {
        bytes: usize::try_from(config.max_decode_bytes).unwrap_or(usize::MAX),
    });
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(corrupt)?;
    let (width, height) = (reader.info().width, reader.info().height);
    check_pixels(width, height, config)?;
    let size = reader
        .output_buffer_size()
        .ok_or(ImageError::TooMuchMemory(config.max_decode_bytes))?;
    if size as u64 > config.max_decode_bytes {
        return Err(ImageError::TooMuchMemory(config.max_decode_bytes));
    }
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
    image.ok_or_else(|| ImageError::Corrupt("unexpected PNG pixel layout".into()))
}

/// From a decoded, upright image to the encoded variants.
fn finish(
    image: DynamicImage,
    format_name: &'static str,
    config: &PipelineConfig,
) -> Result<Processed, ImageError> {
    let (width, height) = (image.width(), image.height());

    let (pixels, pixel_type, colour) = flatten(image, config.background);
    let mut source = Image::from_vec_u8(width, height, pixels, pixel_type)
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;

    let mut order: Vec<&VariantSpec> = config.variants.iter().collect();
    order.sort_by_key(|spec| std::cmp::Reverse(spec.max_edge));
    let mut resizer = Resizer::new();
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    let mut encoded = Vec::with_capacity(order.len());
    for spec in order {
        let (w, h) = fit_within(width, height, spec.max_edge);
        if (w, h) != (source.width(), source.height()) {
            let mut target = Image::new(w, h, pixel_type);
            resizer
                .resize(&source, &mut target, &options)
                .map_err(|e| ImageError::Encode(e.to_string()))?;
            // The next (smaller) variant starts from this one: far fewer pixels to filter.
            source = target;
        }
        let jpeg = encode_jpeg(source.buffer(), w, h, colour, config.jpeg_quality)?;
        encoded.push(EncodedVariant {
            name: spec.name.clone(),
            width: w,
            height: h,
            jpeg,
        });
    }
    // Report variants in configuration order.
    encoded.sort_by_key(|v| config.variants.iter().position(|s| s.name == v.name));
    Ok(Processed {
        format: format_name,
        width,
        height,
        variants: encoded,
    })
}

/// 8-bit pixels: grey stays grey (smaller JPEGs), colour becomes RGB, alpha is blended onto the
/// background, 16-bit and palette images are converted.
fn flatten(
    image: DynamicImage,
    background: [u8; 3],
) -> (Vec<u8>, PixelType, jpeg_encoder::ColorType) {
    let colour = image.color();
    let grey = !colour.has_color();
    match (grey, colour.has_alpha()) {
        (true, false) => (
            image.into_luma8().into_raw(),
            PixelType::U8,
            jpeg_encoder::ColorType::Luma,
        ),
        (true, true) => {
            let la = image.into_luma_alpha8();
            let bg = u32::from(
                ((u32::from(background[0]) * 299
                    + u32::from(background[1]) * 587
                    + u32::from(background[2]) * 114)
                    / 1000) as u8,
            );
            let pixels = la
                .pixels()
                .map(|p| {
                    let a = u32::from(p[1]);
                    ((u32::from(p[0]) * a + bg * (255 - a) + 127) / 255) as u8
                })
                .collect();
            (pixels, PixelType::U8, jpeg_encoder::ColorType::Luma)
        }
        (false, false) => (
            image.into_rgb8().into_raw(),
            PixelType::U8x3,
            jpeg_encoder::ColorType::Rgb,
        ),
        (false, true) => {
            let rgba = image.into_rgba8();
            let mut pixels = Vec::with_capacity(rgba.width() as usize * rgba.height() as usize * 3);
            for p in rgba.pixels() {
                let a = u32::from(p[3]);
                for c in 0..3 {
                    pixels.push(
                        ((u32::from(p[c]) * a + u32::from(background[c]) * (255 - a) + 127) / 255)
                            as u8,
                    );
                }
            }
            (pixels, PixelType::U8x3, jpeg_encoder::ColorType::Rgb)
        }
    }
}

fn encode_jpeg(
    pixels: &[u8],
    width: u32,
    height: u32,
    colour: jpeg_encoder::ColorType,
    quality: u8,
) -> Result<Vec<u8>, ImageError> {
    let (w, h) = (
        u16::try_from(width).map_err(|_| ImageError::Encode("too wide for JPEG".into()))?,
        u16::try_from(height).map_err(|_| ImageError::Encode("too tall for JPEG".into()))?,
    );
    let mut out = Vec::with_capacity(pixels.len() / 8);
    // Standard Huffman tables: the encoder's optimised tables come out in a form that the `image`
    // crate's decoder (zune-jpeg) misreads, though libjpeg-turbo reads them. Every decoder must read
    // what we publish; `outputs_decode_the_same_in_independent_decoders` checks it.
    let encoder = jpeg_encoder::Encoder::new(&mut out, quality);
    encoder
        .encode(pixels, w, h, colour)
        .map_err(|e| ImageError::Encode(e.to_string()))?;
    Ok(out)
}
