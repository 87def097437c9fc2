//! The memory one image may take, and what an image would take at its peak, worked out from its
//! header before any pixel buffer exists.
//!
//! The function's memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, set by Lambda from `MemorySize`) is the
//! hard limit of the whole process. What the runtime, the SDK and the allocator need is set aside
//! ([`image_budget`]); the rest is the budget for one image: the downloaded object, every buffer
//! the decoder, the colour and alpha conversions, the resizer and the encoders hold at once, and the
//! encoded variants. Each decoding path lists its allocations in the order it makes them
//! ([`Peak`]), the most alive at any point is the image's peak, and an image whose peak is over
//! the budget is refused (`IMAGE_TOO_LARGE_FOR_MEMORY`) before its pixels are decoded.
//!
//! The figures are the libraries' own allocations, read from their code: a decoder that keeps a
//! private copy (the TIFF decoder's whole picture, libwebp's 32-bit pixels for a lossless file,
//! libjpeg's coefficients of a progressive file, mozjpeg's two coefficient arrays per variant) is
//! counted with it. `tests/memory_limit.rs` runs every test and corpus file in a child process
//! whose address space is limited to the deployed `MemorySize`.

use domain::image::fit_within;

use crate::error::ImageError;

/// The function's memory when `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` is not set (a local run): the
/// template's `MemorySize`.
pub const DEFAULT_FUNCTION_MEMORY_MB: u64 = 1024;

/// Set aside for the rest of the process: the runtime, the SDK's clients and connections, telemetry
/// and the executable itself (11 MiB after a cold start, BENCHMARKS.md), with room to spare.
pub const RUNTIME_RESERVE_BYTES: u64 = 64 << 20;

/// Set aside, as a share of the function's memory, for what the allocator holds beyond the bytes
/// asked for (freed chunks it keeps for the next image, rounding, fragmentation): 1/16.
pub const ALLOCATOR_SLACK_DIVISOR: u64 = 16;

/// Small allocations every image makes whatever its size (tables, colour transforms, filter
/// coefficients, libjpeg's and libwebp's row buffers and state).
const FIXED_BYTES: u64 = 8 << 20;

/// What the listed buffers leave out grows with them (row buffers, allocator rounding, a library's
/// smaller arrays): 1/16 is added to their peak. Without it, the estimate for the corpus's four
/// largest files was up to 2% below the peak RSS of a child process processing them (its own 6-7
/// MiB included); with it, 4% to 6% above.
const PROPORTIONAL_MARGIN_DIVISOR: u64 = 16;

/// The bytes one image may use at its peak in a function of `function_memory_mb` MB (Lambda's MB
/// are MiB).
pub fn image_budget(function_memory_mb: u64) -> u64 {
    let total = function_memory_mb.saturating_mul(1 << 20);
    total.saturating_sub(RUNTIME_RESERVE_BYTES + total / ALLOCATOR_SLACK_DIVISOR)
}

/// Allocations in the order they are made: the most alive at once is the peak.
#[derive(Debug, Clone)]
pub(crate) struct Peak {
    live: u64,
    peak: u64,
}

impl Peak {
    /// An image's count starts with the object it was read from.
    pub fn new(input_bytes: usize) -> Peak {
        let live = (input_bytes as u64).saturating_add(FIXED_BYTES);
        Peak { live, peak: live }
    }

    pub fn alloc(&mut self, bytes: u64) -> &mut Peak {
        self.live = self.live.saturating_add(bytes);
        self.peak = self.peak.max(self.live);
        self
    }

    pub fn free(&mut self, bytes: u64) -> &mut Peak {
        self.live = self.live.saturating_sub(bytes);
        self
    }

    /// A buffer that exists only for a while.
    pub fn transient(&mut self, bytes: u64) -> &mut Peak {
        self.alloc(bytes).free(bytes)
    }

    /// The most alive at once, as listed.
    #[cfg(test)]
    pub fn peak(&self) -> u64 {
        self.peak
    }

    /// The estimate held to the budget: the peak and its margin.
    pub fn needed(&self) -> u64 {
        self.peak
            .saturating_add(self.peak / PROPORTIONAL_MARGIN_DIVISOR)
    }

    /// The bytes still free in the budget at the worst point so far.
    pub fn headroom(&self, budget: u64) -> u64 {
        budget.saturating_sub(self.needed())
    }

    pub fn check(&self, budget: u64) -> Result<(), ImageError> {
        let needed = self.needed();
        if needed > budget {
            return Err(ImageError::TooLargeForMemory { needed, budget });
        }
        Ok(())
    }
}

/// A decoded picture as the decoder hands it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    pub width: u32,
    pub height: u32,
    /// 1 grey, 2 grey and alpha, 3 RGB, 4 RGBA.
    pub channels: u8,
    /// 1, 2 (16-bit) or 4 (32-bit float).
    pub bytes_per_sample: u8,
}

impl Shape {
    pub fn rgb8(width: u32, height: u32) -> Shape {
        Shape {
            width,
            height,
            channels: 3,
            bytes_per_sample: 1,
        }
    }

    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    pub fn bytes(&self) -> u64 {
        self.pixels() * u64::from(self.channels) * u64::from(self.bytes_per_sample)
    }

    pub fn from_color(width: u32, height: u32, colour: image::ColorType) -> Shape {
        let channels = colour.channel_count();
        Shape {
            width,
            height,
            channels,
            bytes_per_sample: colour.bytes_per_pixel() / channels.max(1),
        }
    }
}

/// What the pipeline makes from a decoded picture (from `PipelineConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Work {
    /// The variants' longest edges, largest first.
    pub edges: Vec<u32>,
    pub webp: bool,
    pub avif: bool,
    /// Bytes one image may use (`image_budget`).
    pub budget: u64,
}

#[cfg(test)]
impl Work {
    /// No variant and no limit, for the decoders' own tests.
    pub fn unbounded() -> Work {
        Work {
            edges: Vec::new(),
            webp: false,
            avif: false,
            budget: u64::MAX,
        }
    }
}

/// libjpeg's whole-picture coefficient arrays for encoding a picture of this size: optimised
/// Huffman tables and trellis quantisation keep every coefficient (two bytes each) twice in mozjpeg
/// (`whole_image` and `whole_image_uq`), colour as 4:2:0 in 16-pixel MCUs.
fn jpeg_encoder_bytes(width: u32, height: u32, grey: bool) -> u64 {
    let (w, h) = (u64::from(width), u64::from(height));
    let samples = if grey {
        w.div_ceil(8) * 8 * h.div_ceil(8) * 8
    } else {
        let (mw, mh) = (w.div_ceil(16) * 16, h.div_ceil(16) * 16);
        mw * mh * 3 / 2
    };
    2 * 2 * samples
}

/// libwebp's encoder: the picture as YUV 4:2:0, per-macroblock state and the token buffer, counted
/// generously (a variant is small next to the decoded picture).
fn webp_encoder_bytes(width: u32, height: u32) -> u64 {
    u64::from(width) * u64::from(height) * 8
}

/// libavif with libaom at speed 6: the picture as YUV 4:2:0, libaom's frame buffers, look-ahead and
/// per-superblock state. Measured as the growth of a process's peak RSS when a variant's AVIF is
/// encoded: 20 MB for 1200x1200, 44 MB for 2048x2048 (the largest that gets one, `avif::MAX_PIXELS`),
/// 59 MB for 2400x2400 (10 to 14 bytes a pixel, the smallest the most per pixel); counted as 8 MiB
/// and 12 bytes a pixel, above each.
pub(crate) fn avif_encoder_bytes(width: u32, height: u32) -> u64 {
    (8 << 20) + u64::from(width) * u64::from(height) * 12
}

/// The work after decoding (`pipeline::render_variants`), step by step: 8-bit conversion, alpha flattening,
/// each reduction with the resizer's scratch image, the colour conversion, each variant's encoders
/// and its files (kept until the end).
pub(crate) fn finish(peak: &mut Peak, decoded: Shape, full: (u32, u32), work: &Work) {
    let pixels = decoded.pixels();
    let grey = decoded.channels <= 2;
    let alpha = decoded.channels % 2 == 0;
    let out_channels: u64 = if grey { 1 } else { 3 };
    let mut current = decoded.bytes();
    if alpha {
        if decoded.bytes_per_sample != 1 {
            // To 8-bit grey+alpha or RGBA first.
            let eight = pixels * u64::from(decoded.channels);
            peak.alloc(eight).free(current);
            current = eight;
        }
        peak.alloc(pixels * out_channels).free(current);
    } else if decoded.bytes_per_sample != 1 {
        peak.alloc(pixels * out_channels).free(current);
    }
    let channels = out_channels;
    let (mut width, mut height) = (decoded.width, decoded.height);
    current = pixels * channels;
    let mut scratch = 0u64;
    let mut first = true;
    let mut previous: Option<((u32, u32), u64)> = None;
    for &edge in &work.edges {
        let (w, h) = fit_within(full.0, full.1, edge);
        let target = u64::from(w) * u64::from(h) * channels;
        if (w, h) != (width, height) {
            let split = first && u64::from(w) * u64::from(h) >= crate::resize::SPLIT_RESIZE_PIXELS;
            if split {
                // Down (one direction only: no scratch), then across.
                let tall = u64::from(width) * u64::from(h) * channels;
                peak.alloc(tall).free(current);
                peak.alloc(target).free(tall);
            } else {
                // The resizer keeps its scratch image (source width x result height) between calls.
                let needed = u64::from(width) * u64::from(h) * channels + channels;
                if needed > scratch {
                    peak.alloc(needed - scratch);
                    scratch = needed;
                }
                peak.alloc(target).free(current);
            }
            (width, height, current) = (w, h, target);
        }
        if first {
            // The conversion from an embedded profile to sRGB (counted whether or not there is one).
            peak.transient(current);
        }
        first = false;
        let files = match previous {
            // The same size as the variant before: its files serve again (copied).
            Some((size, files)) if size == (w, h) => files,
            _ => {
                peak.transient(jpeg_encoder_bytes(w, h, grey));
                // The JPEG's buffer grows by doubling from an eighth of the pixels' bytes.
                let mut files = 2 * target;
                if work.webp {
                    let copy = if grey {
                        u64::from(w) * u64::from(h) * 3
                    } else {
                        0
                    };
                    peak.transient(copy + webp_encoder_bytes(w, h));
                    files += 2 * u64::from(w) * u64::from(h) * 3;
                }
                if work.avif && crate::encode::avif::fits(w, h) {
                    // The encoder converts the pixels itself (grey ones are copied to one plane).
                    peak.transient(avif_encoder_bytes(w, h));
                    // Smaller than the raw pixels at any quality an AVIF is written at.
                    files += u64::from(w) * u64::from(h) * 3;
                }
                files
            }
        };
        peak.alloc(files);
        previous = Some(((w, h), files));
    }
}

/// The estimate (`Peak::needed`) for an image whose decoding is counted in `peak` (ending with
/// `decoded` alive) and whose full upright size is `full`, when it fits the budget; the error names
/// the estimate and the budget otherwise.
pub(crate) fn check(
    mut peak: Peak,
    decoded: Shape,
    full: (u32, u32),
    work: &Work,
) -> Result<u64, ImageError> {
    finish(&mut peak, decoded, full, work);
    peak.check(work.budget)?;
    Ok(peak.needed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(budget: u64) -> Work {
        Work {
            edges: vec![1200, 600, 300, 150],
            webp: false,
            avif: false,
            budget,
        }
    }

    #[test]
    fn the_budget_leaves_the_runtime_its_reserve() {
        assert_eq!(image_budget(1024), (1024 - 64 - 64) << 20);
        assert_eq!(image_budget(10240), (10240 - 64 - 640) << 20);
        assert_eq!(image_budget(64), 0);
    }

    #[test]
    fn sixteen_bit_alpha_counts_each_conversion_while_its_source_lives() {
        let shape = Shape {
            width: 1000,
            height: 1000,
            channels: 4,
            bytes_per_sample: 2,
        };
        let mut peak = Peak::new(0);
        peak.alloc(shape.bytes());
        finish(&mut peak, shape, (1000, 1000), &work(u64::MAX));
        // 8 MB of 16-bit RGBA alongside its 4 MB 8-bit copy, beyond the fixed allocations.
        assert_eq!(peak.peak(), FIXED_BYTES + 12_000_000);
    }

    #[test]
    fn the_avif_encoder_is_counted_at_its_measured_peak() {
        // A picture the variant's size: the encoders run while it is alive.
        let shape = Shape::rgb8(1200, 750);
        let peak_with = |avif: bool| {
            let mut peak = Peak::new(0);
            peak.alloc(shape.bytes());
            let work = Work {
                edges: vec![1200],
                avif,
                ..work(u64::MAX)
            };
            finish(&mut peak, shape, (1200, 750), &work);
            peak.peak()
        };
        // The measured growth of the peak RSS (see `avif_encoder_bytes`).
        assert!(avif_encoder_bytes(1200, 1200) >= 20_100_000);
        assert!(avif_encoder_bytes(2048, 2048) >= 44_200_000);
        assert!(avif_encoder_bytes(2400, 2400) >= 59_300_000);
        let while_encoding = shape.bytes() + avif_encoder_bytes(1200, 750);
        assert!(peak_with(true) >= while_encoding);
        assert!(peak_with(false) < while_encoding);
    }

    #[test]
    fn over_the_budget_is_refused_with_the_figures() {
        let shape = Shape::rgb8(8000, 8000);
        let mut peak = Peak::new(1000);
        peak.alloc(shape.bytes());
        let e = check(peak, shape, (8000, 8000), &work(100 << 20)).unwrap_err();
        assert_eq!(e.code(), "IMAGE_TOO_LARGE_FOR_MEMORY");
        assert!(matches!(e, ImageError::TooLargeForMemory { needed, budget }
            if needed > 192_000_000 && budget == 100 << 20));
    }
}
