//! Bytes in, JPEG variants out: a pure function with no AWS types, shared by the Lambda handler, the
//! `compress` example, tests and benchmarks.
//!
//! Order of work: detect the format from the bytes; read only the header and refuse too many pixels
//! (the screen's and every frame's) and an estimated peak over the memory budget (`memory_budget`)
//! before any pixel buffer exists; decode under an allocation limit (JPEGs reduced while decoding to
//! no less than the largest variant needs, lossy WebPs resampled straight to it); reject truncated and damaged files; apply the EXIF
//! orientation; flatten alpha onto the background; resize with a SIMD Lanczos filter, each variant
//! from the next larger one; convert colours from an embedded ICC profile to sRGB; encode baseline
//! JPEG. Nothing from the source file (EXIF, GPS, ICC, comments) is copied into the output. A
//! decoder panic is contained and reported.

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use domain::image::{fit_within, VariantSpec};
use fast_image_resize::images::Image;
use fast_image_resize::Resizer;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use crate::colour::{flatten, srgb_transform, ToSrgb};
use crate::encode::jpeg::choose_encoding;
pub use crate::encode::jpeg::Optimize;
pub use crate::encode::EncodedVariant;
use crate::encode::{self, avif};
pub use crate::error::ImageError;
use crate::limits::check_pixels;
use crate::memory_budget::{self, Peak, Shape, Work};
use crate::resize::{lanczos3, resize, SPLIT_RESIZE_PIXELS};
use crate::{jpeg, webp};

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
    /// The pixel bounds for a picture of this size read from a file of `input_bytes`.
    fn check_size(&self, width: u32, height: u32, input_bytes: usize) -> Result<(), ImageError> {
        check_pixels(
            width,
            height,
            input_bytes,
            self.max_pixels,
            self.max_pixels_per_byte,
        )
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
pub struct Processed {
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

/// A decoded picture on its way to the variants.
struct Source {
    /// Upright pixels; for a JPEG possibly already reduced (never below the largest variant).
    image: DynamicImage,
    /// The picture's full upright size: variants are fitted to this.
    width: u32,
    height: u32,
    icc: Option<Vec<u8>>,
    /// Decoding took little work next to encoding a large variant (a baseline JPEG, reduced while
    /// decoding): see `jpeg_encoding`.
    cheap_decode: bool,
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

/// Makes the allocator keep freed memory for the next image (glibc; a no-op elsewhere). Returns
/// whether the settings took.
///
/// With glibc's defaults, a buffer of 128 KiB or more is a mapping of its own, unmapped when it is
/// freed, and the heap is trimmed whenever 128 KiB lies free at its top. Every image then faults
/// in fresh zeroed pages for its pixels: a quarter of the time of a small image went to the kernel
/// (perf, an 807x606 GIF). An instance processes one image after another, so buffers up to 32 MiB
/// (glibc's largest threshold) come from the heap, and what is freed stays there for the next
/// image. Peak RSS is the same: that memory was in use at the peak anyway.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes glibc's malloc parameters; it is safe at any time.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
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

fn process(bytes: &[u8], config: &PipelineConfig) -> Result<Processed, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    let format = reader.format().ok_or(ImageError::Unsupported)?;
    let format_name = format_name(format).ok_or(ImageError::Unsupported)?;
    // JPEG and WebP are reduced while decoding, to no less than the variants need.
    let largest = config.variants.iter().map(|v| v.max_edge).max();
    let limits = jpeg::DecodeLimits {
        max_pixels: config.max_pixels,
        max_pixels_per_byte: config.max_pixels_per_byte,
        max_decode_bytes: config.max_decode_bytes,
        reduce_to_edge: largest.map_or(u32::MAX, |edge| match config.optimize {
            // 1.5x: a 4096-px photo stays at half size (not full) for a 1200-px variant.
            Optimize::Size => edge.saturating_add(edge / 2),
            Optimize::Speed => edge,
        }),
        largest_edge: largest.unwrap_or(u32::MAX),
        work: config.work(),
    };
    let source = match format {
        ImageFormat::Png => decode_png_strictly(bytes, config)?,
        ImageFormat::Jpeg => match jpeg::decode(bytes, &limits)? {
            Some(d) => {
                let image = if d.grey {
                    image::GrayImage::from_raw(d.width, d.height, d.pixels)
                        .map(DynamicImage::ImageLuma8)
                } else {
                    image::RgbImage::from_raw(d.width, d.height, d.pixels)
                        .map(DynamicImage::ImageRgb8)
                };
                Source {
                    cheap_decode: !d.progressive,
                    ..upright(image, (d.full_width, d.full_height), d.orientation, d.icc)?
                }
            }
            // CMYK and YCCK (already checked for completeness and size).
            None => decode_generic(reader, bytes, config)?,
        },
        ImageFormat::WebP => match webp::decode(bytes, &limits)? {
            Some(d) => {
                let image = if d.alpha {
                    image::RgbaImage::from_raw(d.width, d.height, d.pixels)
                        .map(DynamicImage::ImageRgba8)
                } else {
                    image::RgbImage::from_raw(d.width, d.height, d.pixels)
                        .map(DynamicImage::ImageRgb8)
                };
                upright(image, (d.full_width, d.full_height), d.orientation, d.icc)?
            }
            // Animated: the first frame.
            None => decode_generic(reader, bytes, config)?,
        },
        ImageFormat::Gif => decode_gif_first_frame(bytes, config)?,
        _ => decode_generic(reader, bytes, config)?,
    };
    finish(source, format_name, config)
}

/// A picture decoded at reduced scale, turned upright; `full` is its stored size.
fn upright(
    image: Option<DynamicImage>,
    full: (u32, u32),
    orientation: Orientation,
    icc: Option<Vec<u8>>,
) -> Result<Source, ImageError> {
    let mut image =
        image.ok_or_else(|| ImageError::Corrupt("decoded picture of an unexpected size".into()))?;
    image.apply_orientation(orientation);
    let turned = turns(orientation);
    let (width, height) = if turned { (full.1, full.0) } else { full };
    Ok(Source {
        image,
        width,
        height,
        icc,
        cheap_decode: false,
    })
}

/// Any format the `image` crate reads, under the allocation limit and the memory budget.
fn decode_generic(
    mut reader: ImageReader<Cursor<&[u8]>>,
    bytes: &[u8],
    config: &PipelineConfig,
) -> Result<Source, ImageError> {
    let format = reader.format();
    let mut limits = Limits::default();
    limits.max_alloc = Some(config.max_decode_bytes);
    reader.limits(limits.clone());
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| map_decode_error(e, config))?;
    let (width, height) = decoder.dimensions();
    config.check_size(width, height, bytes.len())?;
    // Not every decoder honours `max_alloc`; the decoded size is known from the header.
    if decoder.total_bytes() > config.max_decode_bytes {
        return Err(ImageError::TooMuchMemory(config.max_decode_bytes));
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
        Some(ImageFormat::WebP) => pixels * 4 + webp::first_frame_bytes(bytes),
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
    let work = config.work();
    memory_budget::finish(&mut peak, decoded, full, &work);
    peak.check(work.budget)?;
    if format == Some(ImageFormat::Tiff) {
        // Whatever the TIFF decoder needs beyond its own picture (a strip's or a tile's samples)
        // must fit in what the budget has left.
        limits.max_alloc = Some(
            config.max_decode_bytes.min(
                // The decoder's picture as the `image` crate counts it (a 1-bit picture as
                // 8-bit), and what is left.
                private
                    .max(decoded.bytes())
                    .saturating_add(peak.headroom(work.budget)),
            ),
        );
        decoder
            .set_limits(limits)
            .map_err(|e| map_decode_error(e, config))?;
    }
    let icc = decoder.icc_profile().ok().flatten();
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| map_decode_error(e, config))?;
    image.apply_orientation(orientation);
    Ok(Source {
        width: image.width(),
        height: image.height(),
        image,
        icc,
        cheap_decode: false,
    })
}

/// Whether an orientation swaps width and height (and so copies the picture).
fn turns(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// A GIF's first frame, as the generic decoder composes it (on its logical screen, transparent
/// where the frame has no pixel), straight to RGB on the background: palette indices are looked up
/// once, with no RGBA canvas to allocate and then flatten, which cost small GIFs more than the
/// rest of their processing.
fn decode_gif_first_frame(bytes: &[u8], config: &PipelineConfig) -> Result<Source, ImageError> {
    let error = |e: gif::DecodingError| match e {
        gif::DecodingError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageError::Truncated
        }
        other => ImageError::Corrupt(other.to_string()),
    };
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    options.set_memory_limit(gif::MemoryLimit::Bytes(
        std::num::NonZeroU64::new(config.max_decode_bytes).unwrap_or(std::num::NonZeroU64::MIN),
    ));
    let mut decoder = options.read_info(Cursor::new(bytes)).map_err(error)?;
    let (width, height) = (u32::from(decoder.width()), u32::from(decoder.height()));
    config.check_size(width, height, bytes.len())?;
    if u64::from(width) * u64::from(height) * 3 > config.max_decode_bytes {
        return Err(ImageError::TooMuchMemory(config.max_decode_bytes));
    }
    // Every frame's own rectangle is held to the pixel bounds, not just the screen: a frame may be
    // far larger than the screen it is shown on, and its buffer is the frame's size.
    for (frame_width, frame_height) in gif_frame_sizes(bytes) {
        if frame_width > 0 && frame_height > 0 {
            config.check_size(frame_width, frame_height, bytes.len())?;
        }
    }
    let global = decoder.global_palette().map(<[u8]>::to_vec);
    let frame = decoder
        .next_frame_info()
        .map_err(error)?
        .ok_or_else(|| ImageError::Corrupt("a GIF without a frame".into()))?;
    let (frame_width, frame_height) = (u32::from(frame.width), u32::from(frame.height));
    config.check_size(frame_width, frame_height, bytes.len())?;
    let (left, top) = (usize::from(frame.left), usize::from(frame.top));
    let (palette, transparent) = (frame.palette.clone(), frame.transparent);
    // The frame's indices (one byte a pixel), then the screen as RGB.
    let mut peak = Peak::new(bytes.len());
    peak.alloc(u64::from(frame_width) * u64::from(frame_height));
    let screen = Shape::rgb8(width, height);
    peak.alloc(screen.bytes());
    peak.free(u64::from(frame_width) * u64::from(frame_height));
    memory_budget::check(peak, screen, (width, height), &config.work())?;
    let mut indices = vec![0; decoder.buffer_size()];
    decoder.read_into_buffer(&mut indices).map_err(error)?;
    let palette = palette.as_deref().or(global.as_deref()).unwrap_or(&[]);
    let background = config.background;
    // Each index's colour. A transparent index, or one past the palette (no colour), shows the
    // background, as does the screen outside the frame.
    let mut colours = [background; 256];
    for (colour, rgb) in colours.iter_mut().zip(palette.chunks_exact(3)) {
        colour.copy_from_slice(rgb);
    }
    if let Some(transparent) = transparent {
        colours[usize::from(transparent)] = background;
    }
    let (screen_width, screen_height) = (width as usize, height as usize);
    let mut pixels = background.repeat(screen_width * screen_height);
    let frame_width = frame_width as usize;
    let visible = frame_width.min(screen_width.saturating_sub(left));
    if visible > 0 {
        let rows = indices.chunks_exact(frame_width);
        for (y, row) in rows.take(screen_height.saturating_sub(top)).enumerate() {
            let start = ((top + y) * screen_width + left) * 3;
            let out = &mut pixels[start..start + visible * 3];
            for (rgb, &index) in out.chunks_exact_mut(3).zip(&row[..visible]) {
                rgb.copy_from_slice(&colours[usize::from(index)]);
            }
        }
    }
    drop(indices);
    let image = image::RgbImage::from_raw(width, height, pixels)
        .map(DynamicImage::ImageRgb8)
        .ok_or_else(|| ImageError::Corrupt("decoded picture of an unexpected size".into()))?;
    Ok(Source {
        image,
        width,
        height,
        icc: None,
        cheap_decode: false,
    })
}

/// The size of every frame of a GIF, from its image descriptors (the data blocks are skipped, not
/// decoded). Stops where the structure ends or breaks: the decoder reports what is wrong.
fn gif_frame_sizes(bytes: &[u8]) -> Vec<(u32, u32)> {
    let mut sizes = Vec::new();
    // Header and logical screen descriptor, then the global colour table if flagged.
    let Some(&flags) = bytes.get(10) else {
        return sizes;
    };
    let mut at = 13;
    if flags & 0x80 != 0 {
        at += 3 << ((flags & 7) + 1);
    }
    // Skips a chain of sub-blocks (each a length byte and its bytes, ending with a 0 length).
    let skip_blocks = |mut at: usize| -> Option<usize> {
        loop {
            let length = usize::from(*bytes.get(at)?);
            at += 1;
            if length == 0 {
                return Some(at);
            }
            at += length;
        }
    };
    while let Some(&introducer) = bytes.get(at) {
        let next = match introducer {
            // Extension: label, then sub-blocks.
            0x21 => skip_blocks(at + 2),
            // Image descriptor: position, size, flags, a local colour table, LZW code size, data.
            0x2C => bytes.get(at + 1..at + 10).and_then(|d| {
                let width = u16::from_le_bytes([d[4], d[5]]);
                let height = u16::from_le_bytes([d[6], d[7]]);
                sizes.push((u32::from(width), u32::from(height)));
                let mut data = at + 10;
                if d[8] & 0x80 != 0 {
                    data += 3 << ((d[8] & 7) + 1);
                }
                skip_blocks(data + 1)
            }),
            _ => None,
        };
        match next {
            Some(next) => at = next,
            None => break,
        }
    }
    sizes
}

/// PNG through the `png` crate directly, with the zlib Adler-32 checksum verified (the generic
/// decoder skips it, so a corrupt stream would decode into a damaged picture).
fn decode_png_strictly(bytes: &[u8], config: &PipelineConfig) -> Result<Source, ImageError> {
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
    config.check_size(width, height, bytes.len())?;
    let icc = reader.info().icc_profile.as_ref().map(|p| p.to_vec());
    let size = reader
        .output_buffer_size()
        .ok_or(ImageError::TooMuchMemory(config.max_decode_bytes))?;
    if size as u64 > config.max_decode_bytes {
        return Err(ImageError::TooMuchMemory(config.max_decode_bytes));
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
    memory_budget::check(peak, decoded, (width, height), &config.work())?;
    // Only once the bounds hold: the check decodes the indices.
    check_palette_indices(bytes, reader.info(), config, &corrupt)?;
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
    static PALETTE_CHECKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Refuses an indexed PNG whose pixels point past the end of its palette: decoders quietly paint
/// those pixels black, which is a damaged picture, not the uploaded one.
///
/// Only a palette shorter than its bit depth can address needs the check (a full one cannot be
/// overrun); then the indices are decoded once more, untransformed, and each is compared.
fn check_palette_indices(
    bytes: &[u8],
    info: &png::Info,
    config: &PipelineConfig,
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
        bytes: usize::try_from(config.max_decode_bytes).unwrap_or(usize::MAX),
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

/// From a decoded, upright image to the encoded variants.
fn finish(
    source: Source,
    format_name: &'static str,
    config: &PipelineConfig,
) -> Result<Processed, ImageError> {
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
    Ok(Processed {
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

    #[test]
    fn a_gif_decodes_to_the_pixels_the_generic_decoder_gives_flattened() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut gifs = Vec::new();
        for dir in [root.join("testdata/good"), root.join("../../bench/corpus")] {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "gif") {
                    gifs.push(path);
                }
            }
        }
        assert!(gifs.len() >= 8, "{gifs:?}");
        let config = PipelineConfig {
            background: [250, 40, 120],
            ..PipelineConfig::default()
        };
        for path in gifs {
            let bytes = std::fs::read(&path).unwrap();
            let fast = decode_gif_first_frame(&bytes, &config).unwrap();
            let reader = ImageReader::new(Cursor::new(&bytes[..]))
                .with_guessed_format()
                .unwrap();
            let generic = decode_generic(reader, &bytes, &config).unwrap();
            assert_eq!(
                (fast.width, fast.height),
                (generic.width, generic.height),
                "{path:?}"
            );
            let (want, _, _) = flatten(generic.image, config.background);
            let (got, _, _) = flatten(fast.image, config.background);
            assert!(got == want, "{path:?}: pixels differ");
        }
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn a_pixel_buffer_comes_from_the_heap_once_freed_memory_is_kept() {
        // glibc marks a chunk that is a mapping of its own with bit 1 of its size word.
        fn is_own_mapping(buffer: &[u8]) -> bool {
            // SAFETY: every glibc chunk has its size word just before the pointer malloc returned.
            let size_word = unsafe { *buffer.as_ptr().cast::<usize>().offset(-1) };
            size_word & 2 != 0
        }
        assert!(keep_freed_memory());
        let pixels = vec![1u8; 4 << 20];
        assert!(
            !is_own_mapping(&pixels),
            "a 4 MiB buffer is still a mapping of its own"
        );
    }

    fn encodes_for(width: u32, height: u32, variants: &str) -> (usize, Processed) {
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
        let out = process_image(&png, &config).unwrap();
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
        let before = PALETTE_CHECKS.with(|n| n.get());
        let error = process_image(&bytes, &config).unwrap_err();
        assert_eq!(error.code(), "TOO_MANY_PIXELS");
        assert_eq!(
            PALETTE_CHECKS.with(|n| n.get()),
            before,
            "no index decode began"
        );
        // A small indexed picture with a short palette is checked (once).
        let small = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/good/png-palette-2bit-3-colours-padding-bits-set.png"
        ))
        .unwrap();
        process_image(&small, &config).unwrap();
        assert_eq!(PALETTE_CHECKS.with(|n| n.get()), before + 1);
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
