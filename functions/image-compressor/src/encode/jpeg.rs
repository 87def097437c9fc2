//! JPEG out through mozjpeg (libjpeg-turbo's SIMD codec with Mozilla's encoder): baseline or
//! progressive JPEG with the standard (Annex K) quantisation tables at the configured quality, so
//! `JPEG_QUALITY` means what it means to libjpeg and Pillow, with optimised Huffman tables and, when
//! asked for size, trellis quantisation, which spends CPU to drop the bits that buy the least
//! quality. Which of those a variant gets is chosen here too (`choose_encoding`).

use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

use mozjpeg_sys::{
    jpeg_compress_struct, jpeg_destination_mgr, jpeg_error_mgr, JINT_COMPRESS_PROFILE_VALUE,
    J_BOOLEAN_PARAM, J_COLOR_SPACE, J_FLOAT_PARAM, J_INT_PARAM,
};

use crate::error::ImageError;
use crate::libjpeg::{self, VecDestination};

/// The one trade-off between CPU and bytes (`JPEG_OPTIMIZE`; measured in BENCHMARKS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Optimize {
    /// The default. Progressive JPEG for large variants, trellis quantisation for variants at most
    /// a quarter of the picture's pixels where its cost is small next to the rest of the work (see
    /// `LARGE_VARIANT_PIXELS`), and JPEGs reduced while decoding to no less than 1.5 times the
    /// largest variant: fewer bytes than Pillow at an SSIM no lower, still ahead of libvips, and a
    /// large photo never decoded at full size for the seed variants.
    Size,
    /// libjpeg's plain quantisation (what Pillow and libjpeg-turbo write), and JPEGs reduced while
    /// decoding down to the largest variant itself (libvips' choice): the least CPU and memory,
    /// bytes on a par with Pillow's at a slightly lower SSIM.
    Speed,
}

impl Optimize {
    pub fn as_str(self) -> &'static str {
        match self {
            Optimize::Size => "size",
            Optimize::Speed => "speed",
        }
    }
}

/// With `Optimize::Size`, a variant is written with trellis quantisation only when the picture
/// has at least this many times its pixels. Trellis costs 2 to 6 times the encoder's CPU for 1 to
/// 3% fewer bytes. On a variant about the picture's size (an avatar, an icon, a screenshot or a
/// product shot kept as it is), the encoder is most of the work, and plain quantisation writes the
/// bytes Pillow writes in a fraction of the time (BENCHMARKS.md, "Upload corpus").
pub const TRELLIS_MIN_REDUCTION: u64 = 4;

/// A variant of at least this many pixels (an 800-px photo variant has 350,000 to 550,000) is a
/// large one: written as a progressive JPEG, and trellis-quantised only when decoding the picture
/// was itself costly (anything but a baseline JPEG). Trellis runs at about 30 MP/s on one core: 10
/// to 25 ms for an 800-px variant, as much as a baseline JPEG photo of 2 to 4 MP takes to decode
/// (reduced) and resize, and more than Pillow's whole pipeline leaves room for on some (BENCHMARKS.md,
/// "JPEG photos"). On a smaller variant (the 150- and 300-px thumbnails) it costs a few milliseconds.
pub const LARGE_VARIANT_PIXELS: u64 = 200_000;

/// Progressive scans hold the same coefficients (so the same pixels) as one sequential scan, in 2
/// to 6% fewer bytes once the file is large; under about this size their extra headers and Huffman
/// tables cost more than they save, so a plain progressive variant this small is also written
/// sequentially and the smaller file kept (a second encoding of a few milliseconds).
pub const PROGRESSIVE_CHECK_BYTES: usize = 48 * 1024;

/// How `optimize` writes a variant of `variant` size from a picture of `picture` size.
pub(crate) fn choose_encoding(
    optimize: Optimize,
    (width, height): (u32, u32),
    (w, h): (u32, u32),
    cheap_decode: bool,
) -> Encoding {
    let pixels = u64::from(w) * u64::from(h);
    let large = pixels >= LARGE_VARIANT_PIXELS;
    match optimize {
        Optimize::Speed => Encoding::PLAIN,
        Optimize::Size => Encoding {
            trellis: u64::from(width) * u64::from(height) >= TRELLIS_MIN_REDUCTION * pixels
                && !(large && cheap_decode),
            progressive: large,
        },
    }
}

/// A variant's JPEG as `encoding` says, or the sequential one where that is smaller.
pub(crate) fn encode_smallest(
    pixels: &[u8],
    (w, h): (u32, u32),
    grey: bool,
    quality: u8,
    encoding: Encoding,
) -> Result<Vec<u8>, ImageError> {
    let jpeg = encode(pixels, w, h, grey, quality, encoding)?;
    if encoding.progressive && !encoding.trellis && jpeg.len() < PROGRESSIVE_CHECK_BYTES {
        let sequential = encode(pixels, w, h, grey, quality, Encoding::PLAIN)?;
        if sequential.len() < jpeg.len() {
            return Ok(sequential);
        }
    }
    Ok(jpeg)
}

/// Trellis quantisation weighs bits against distortion with this (log2) factor. mozjpeg's default,
/// 14.75, is tuned for its own tables and, at libjpeg's, costs visible SSIM for its savings. Over
/// the benchmark photos, 17.5 is where SSIM stops rising (17: 0.99262, 17.5: 0.99264, 18: 0.99262
/// for the seed-A variant) and the output is still about 3% smaller than Pillow's (BENCHMARKS.md).
const TRELLIS_LAMBDA_LOG_SCALE1: f32 = 17.5;

#[cfg(test)]
thread_local! {
    /// Encoder calls on this thread, for tests that count the work done.
    pub(crate) static ENCODES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How a variant's JPEG is written: which of the ways to spend CPU on fewer bytes it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Encoding {
    /// Trellis quantisation: rounds each block's coefficients to what costs the fewest bits for
    /// the distortion (2 to 6 times the encoder's CPU; different pixels from libjpeg's).
    pub trellis: bool,
    /// Progressive scans instead of one sequential scan: the same coefficients, so the same
    /// pixels, in fewer bytes (each scan gets its own Huffman tables), for more entropy-coding work.
    pub progressive: bool,
}

impl Encoding {
    /// libjpeg-turbo's own output with optimised Huffman tables (what Pillow writes with
    /// `optimize=True`).
    pub const PLAIN: Encoding = Encoding {
        trellis: false,
        progressive: false,
    };
}

/// A JPEG of 8-bit RGB (or grey) pixels, rows top to bottom.
pub(crate) fn encode(
    pixels: &[u8],
    width: u32,
    height: u32,
    grey: bool,
    quality: u8,
    encoding: Encoding,
) -> Result<Vec<u8>, ImageError> {
    #[cfg(test)]
    ENCODES.with(|n| n.set(n.get() + 1));
    super::check_size(pixels, width, height, grey, 65_500, "a JPEG")?;
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the buffer holds exactly `height` rows of `width * channels` bytes (checked above).
        unsafe { encode_unchecked(pixels, width, height, grey, quality, encoding) }
    }))
    .map_err(|payload| ImageError::Encode(libjpeg::panic_text(payload)))
}

/// Owns the compressor and everything libjpeg points into, and releases them however the
/// encoding ends (an error unwinds through here).
struct Compressor {
    cinfo: Box<jpeg_compress_struct>,
    _error: Box<jpeg_error_mgr>,
    destination: *mut VecDestination,
}

impl Drop for Compressor {
    fn drop(&mut self) {
        // SAFETY: `cinfo` was created by `jpeg_create_compress` (destroying frees its pools and is
        // a no-op on a zeroed struct); `destination` came from `Box::into_raw` and is released once.
        unsafe {
            mozjpeg_sys::jpeg_destroy_compress(&mut self.cinfo);
            drop(Box::from_raw(self.destination));
        }
    }
}

unsafe fn encode_unchecked(
    pixels: &[u8],
    width: u32,
    height: u32,
    grey: bool,
    quality: u8,
    encoding: Encoding,
) -> Vec<u8> {
    let mut error = Box::new(libjpeg::error_manager(libjpeg::ignore_message));
    // SAFETY (whole function): libjpeg is driven in its documented order on a struct it created;
    // every pointer it keeps (error manager, destination, rows) outlives the calls that use it.
    let mut cinfo: Box<jpeg_compress_struct> = Box::new(unsafe { std::mem::zeroed() });
    cinfo.common.err = &mut *error;
    let destination = Box::into_raw(Box::new(VecDestination {
        manager: jpeg_destination_mgr {
            next_output_byte: std::ptr::null_mut(),
            free_in_buffer: 0,
            init_destination: Some(libjpeg::destination_init),
            empty_output_buffer: Some(libjpeg::destination_full),
            term_destination: Some(libjpeg::destination_term),
        },
        chunk: [0; libjpeg::CHUNK_BYTES],
        out: Vec::with_capacity(pixels.len() / 8),
    }));
    let mut c = Compressor {
        cinfo,
        _error: error,
        destination,
    };
    unsafe {
        mozjpeg_sys::jpeg_create_compress(&mut *c.cinfo);
        c.cinfo.dest = destination.cast::<jpeg_destination_mgr>();
        c.cinfo.image_width = width;
        c.cinfo.image_height = height;
        c.cinfo.input_components = if grey { 1 } else { 3 };
        c.cinfo.in_color_space = if grey {
            J_COLOR_SPACE::JCS_GRAYSCALE
        } else {
            J_COLOR_SPACE::JCS_RGB
        };
        if encoding.trellis {
            // mozjpeg's defaults: trellis quantisation, optimised Huffman tables, progressive scans
            // chosen by trying several scripts.
            mozjpeg_sys::jpeg_set_defaults(&mut c.cinfo);
            // One fixed script (below) or none: trying scripts costs several encodings.
            mozjpeg_sys::jpeg_c_set_bool_param(
                &mut c.cinfo,
                J_BOOLEAN_PARAM::JBOOLEAN_OPTIMIZE_SCANS,
                0,
            );
            mozjpeg_sys::jpeg_c_set_float_param(
                &mut c.cinfo,
                J_FLOAT_PARAM::JFLOAT_LAMBDA_LOG_SCALE1,
                TRELLIS_LAMBDA_LOG_SCALE1,
            );
            // DC trellis: a tenth of the trellis's time for no bytes on the benchmark photos.
            mozjpeg_sys::jpeg_c_set_bool_param(
                &mut c.cinfo,
                J_BOOLEAN_PARAM::JBOOLEAN_TRELLIS_QUANT_DC,
                0,
            );
        } else if encoding.progressive {
            // mozjpeg's profile for its progressive scan script, with libjpeg's quantisation:
            // no trellis, no deringing of the input.
            mozjpeg_sys::jpeg_set_defaults(&mut c.cinfo);
            for param in [
                J_BOOLEAN_PARAM::JBOOLEAN_OPTIMIZE_SCANS,
                J_BOOLEAN_PARAM::JBOOLEAN_TRELLIS_QUANT,
                J_BOOLEAN_PARAM::JBOOLEAN_TRELLIS_QUANT_DC,
                J_BOOLEAN_PARAM::JBOOLEAN_OVERSHOOT_DERINGING,
            ] {
                mozjpeg_sys::jpeg_c_set_bool_param(&mut c.cinfo, param, 0);
            }
        } else {
            // libjpeg-turbo's behaviour exactly (what Pillow writes with `optimize=True`).
            mozjpeg_sys::jpeg_c_set_int_param(
                &mut c.cinfo,
                J_INT_PARAM::JINT_COMPRESS_PROFILE,
                JINT_COMPRESS_PROFILE_VALUE::JCP_FASTEST as c_int,
            );
            mozjpeg_sys::jpeg_set_defaults(&mut c.cinfo);
            c.cinfo.optimize_coding = 1;
        }
        // libjpeg's (Annex K) tables, so the quality number means what it does elsewhere.
        mozjpeg_sys::jpeg_c_set_int_param(&mut c.cinfo, J_INT_PARAM::JINT_BASE_QUANT_TBL_IDX, 0);
        mozjpeg_sys::jpeg_set_quality(&mut c.cinfo, c_int::from(quality.clamp(1, 100)), 1);
        if encoding.progressive {
            // mozjpeg's fixed script (tuned with jpgcrush): in tests on the benchmark photos, 1 to
            // 2% smaller than libjpeg's, and as fast.
            mozjpeg_sys::jpeg_simple_progression(&mut c.cinfo);
        } else {
            c.cinfo.scan_info = std::ptr::null();
            c.cinfo.num_scans = 0;
        }
        mozjpeg_sys::jpeg_start_compress(&mut c.cinfo, 1);
        let stride = width as usize * if grey { 1 } else { 3 };
        for row in pixels.chunks_exact(stride) {
            let rows = [row.as_ptr()];
            mozjpeg_sys::jpeg_write_scanlines(&mut c.cinfo, rows.as_ptr(), 1);
        }
        mozjpeg_sys::jpeg_finish_compress(&mut c.cinfo);
        std::mem::take(&mut (*destination).out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRELLIS: Encoding = Encoding {
        trellis: true,
        progressive: false,
    };

    #[test]
    fn encoder_refuses_impossible_input_without_panicking() {
        assert!(matches!(
            encode(&[0; 5], 2, 2, false, 85, TRELLIS),
            Err(ImageError::Encode(_))
        ));
        assert!(matches!(
            encode(&[], 0, 0, true, 85, TRELLIS),
            Err(ImageError::Encode(_))
        ));
        assert!(matches!(
            encode(&vec![0; 70_000 * 3], 70_000, 1, false, 85, Encoding::PLAIN),
            Err(ImageError::Encode(_))
        ));
    }

    #[test]
    fn large_outputs_span_several_chunks() {
        // Noise does not compress: the output is many times the 16 KiB chunk.
        let (w, h) = (300u32, 300u32);
        let mut state = 12345u32;
        let pixels: Vec<u8> = (0..w * h * 3)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (state >> 16) as u8
            })
            .collect();
        let jpeg = encode(&pixels, w, h, false, 100, TRELLIS).unwrap();
        assert!(jpeg.len() > 4 * 16 * 1024, "{}", jpeg.len());
        assert!(jpeg.ends_with(&[0xFF, 0xD9]));
        let back = image::load_from_memory(&jpeg).unwrap().into_rgb8();
        assert_eq!(back.dimensions(), (w, h));
    }
}
