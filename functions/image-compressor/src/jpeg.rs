//! JPEG in and out through mozjpeg (libjpeg-turbo's SIMD codec with Mozilla's encoder).
//!
//! - Decoding reduces while decoding: libjpeg's scaled inverse DCT produces the picture at 1/8, 1/4
//!   or 1/2 of its size when the variants need no more, which is both faster and smaller in memory
//!   than decoding every pixel and then throwing most of them away. When the variants are at most
//!   a quarter of the picture's edge, a progressive file is read without its last-bit AC scans:
//!   those are most of its bytes and decoding time, and change nothing such a variant shows.
//! - Encoding is baseline JPEG with the standard (Annex K) quantisation tables at the configured
//!   quality, so `JPEG_QUALITY` means what it means to libjpeg and Pillow, with optimised Huffman
//!   tables and, when asked for size, trellis quantisation, which spends CPU to drop the bits that
//!   buy the least quality.
//!
//! libjpeg reports fatal errors through a callback that must not return; here it unwinds with the
//! message, and every call into the library runs under `catch_unwind`, so a hostile file becomes an
//! `ImageError`, never a crash. The unsafe code is confined to this file.

use std::ffi::CStr;
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

use image::metadata::Orientation;
use mozjpeg::{ColorSpace, Decompress, Marker};
use mozjpeg_sys::{
    boolean, jpeg_common_struct, jpeg_compress_struct, jpeg_destination_mgr, jpeg_error_mgr,
    JINT_COMPRESS_PROFILE_VALUE, J_BOOLEAN_PARAM, J_COLOR_SPACE, J_FLOAT_PARAM, J_INT_PARAM,
};

use crate::error::ImageError;
use crate::memory_budget::{Peak, Shape};

/// Trellis quantisation weighs bits against distortion with this (log2) factor. mozjpeg's default,
/// 14.75, is tuned for its own tables and, at libjpeg's, costs visible SSIM for its savings. Over
/// the benchmark photos, 17.5 is where SSIM stops rising (17: 0.99262, 17.5: 0.99264, 18: 0.99262
/// for the seed-A variant) and the output is still about 3% smaller than Pillow's (BENCHMARKS.md).
const TRELLIS_LAMBDA_LOG_SCALE1: f32 = 17.5;

/// A progressive file's last bits of AC coefficients are skipped when the largest variant's edge is
/// at most the picture's divided by this. On the benchmark corpus's progressive photos, that left
/// every variant's SSIM within 0.0001 of the full decode (at 1/3 it was 0.0004 lower, at 1/2
/// 0.0015, at full size 0.024) and halved the decoding time, most of which is those scans.
const LAST_BITS_MIN_REDUCTION: u64 = 4;

/// A JPEG decoded at a reduced scale, upright pixels not yet applied.
pub(crate) struct Decoded {
    /// RGB (3 bytes a pixel) or grey (1).
    pub pixels: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub grey: bool,
    /// The stored picture's full size (before scaling and orientation).
    pub full_width: u32,
    pub full_height: u32,
    pub orientation: Orientation,
    pub icc: Option<Vec<u8>>,
    /// A progressive file: decoding it costs several times a baseline one's.
    pub progressive: bool,
}

/// What [`decode`] needs from the pipeline's configuration.
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
    pub work: crate::memory_budget::Work,
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

/// `Ok(None)`: a JPEG this path does not handle (CMYK, YCCK), for the generic decoder.
pub(crate) fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Option<Decoded>, ImageError> {
    DAMAGE.with(|d| d.set(None));
    let result = catch_unwind(AssertUnwindSafe(|| decode_unguarded(bytes, limits)));
    let damage = DAMAGE.with(|d| d.take());
    match result {
        Ok(Ok(decoded)) => match damage {
            // The library patched over damage (grey blocks, a fake end of file): refuse the result.
            Some(Damage::Truncated) => Err(ImageError::Truncated),
            Some(Damage::Corrupt(what)) => Err(ImageError::Corrupt(what.into())),
            None => Ok(decoded),
        },
        Ok(Err(e)) => Err(e),
        Err(payload) => Err(ImageError::Corrupt(panic_text(payload))),
    }
}

fn corrupt(e: std::io::Error) -> ImageError {
    ImageError::Corrupt(e.to_string())
}

/// A decoder over `bytes` that notes damage instead of patching over it silently, keeping the
/// `markers` asked for; the header is read.
fn open<'a>(bytes: &'a [u8], markers: &[Marker]) -> Result<Decompress<&'a [u8]>, ImageError> {
    Decompress::builder()
        .with_err(error_manager(note_damage))
        .with_markers(markers)
        .from_mem(bytes)
        .map_err(corrupt)
}

fn decode_unguarded(bytes: &[u8], limits: &DecodeLimits) -> Result<Option<Decoded>, ImageError> {
    let decompress = open(bytes, &[Marker::APP(1), Marker::APP(2)])?;
    let (full_width, full_height) = (decompress.width() as u32, decompress.height() as u32);
    limits.check_size(full_width, full_height, bytes.len())?;
    let grey = match decompress.color_space() {
        ColorSpace::JCS_GRAYSCALE => Some(true),
        ColorSpace::JCS_YCbCr | ColorSpace::JCS_RGB => Some(false),
        _ => None,
    };
    // Progressive files keep every coefficient of the picture (2 bytes each) while they decode.
    let coefficients: u64 = decompress
        .components()
        .iter()
        .map(|c| u64::from(c.width_in_blocks) * u64::from(c.height_in_blocks) * 64 * 2)
        .sum();
    if coefficients > limits.max_decode_bytes {
        return Err(ImageError::TooMuchMemory(limits.max_decode_bytes));
    }
    let Some(layout) = layout(bytes).filter(Layout::is_whole) else {
        return Err(ImageError::Truncated);
    };
    let Some(grey) = grey else {
        return Ok(None);
    };
    let mut orientation = Orientation::NoTransforms;
    let mut icc_chunks: Vec<(u8, &[u8])> = Vec::new();
    for marker in decompress.markers() {
        match marker.marker {
            Marker::APP(1) => {
                if let Some(tiff) = marker.data.strip_prefix(b"Exif\0\0") {
                    orientation = Orientation::from_exif_chunk(tiff).unwrap_or(orientation);
                }
            }
            Marker::APP(2) => {
                // ICC_PROFILE\0, then this chunk's number (from 1) and the count of chunks.
                if let Some([sequence, _count, data @ ..]) =
                    marker.data.strip_prefix(b"ICC_PROFILE\0")
                {
                    icc_chunks.push((*sequence, data));
                }
            }
            _ => {}
        }
    }
    icc_chunks.sort_by_key(|(sequence, _)| *sequence);
    let icc = (!icc_chunks.is_empty()).then(|| {
        icc_chunks
            .iter()
            .flat_map(|(_, data)| data.iter().copied())
            .collect()
    });

    let longest = full_width.max(full_height);
    // A variant at most a quarter of the picture's edge needs none of the AC coefficients' last
    // bits, and a progressive file sends those last, in its largest scans: decode without them.
    let reduced = (u64::from(longest) >= LAST_BITS_MIN_REDUCTION * u64::from(limits.largest_edge))
        .then(|| layout.without_last_ac_bits(bytes))
        .flatten();
    let numerator = scale_numerator(longest, limits.reduce_to_edge);
    // libjpeg's scaled size, rounded up.
    let scaled = |edge: u32| (u64::from(edge) * u64::from(numerator)).div_ceil(8) as u32;
    let decoded = Shape {
        width: scaled(full_width),
        height: scaled(full_height),
        channels: if grey { 1 } else { 3 },
        bytes_per_sample: 1,
    };
    // The file without its last-bit scans, a progressive file's coefficients, the pixels; a
    // quarter turn copies them.
    let mut peak = Peak::new(bytes.len());
    let private = reduced.as_ref().map_or(0, |r| r.len() as u64)
        + if layout.progressive { coefficients } else { 0 };
    peak.alloc(decoded.bytes()).transient(private);
    let turned = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    if turned {
        peak.transient(decoded.bytes());
    }
    let upright = if turned {
        (full_height, full_width)
    } else {
        (full_width, full_height)
    };
    crate::memory_budget::check(peak, decoded, upright, &limits.work)?;
    let (pixels, width, height) = match &reduced {
        Some(reduced) => {
            let mut without = open(reduced, &[])?;
            // Smoothing would estimate the missing bits block by block: slower, and no better.
            without.do_block_smoothing(false);
            read_pixels(without, numerator, grey, limits)?
        }
        None => read_pixels(decompress, numerator, grey, limits)?,
    };
    Ok(Some(Decoded {
        pixels,
        width,
        height,
        grey,
        full_width,
        full_height,
        orientation,
        icc,
        progressive: layout.progressive,
    }))
}

/// The pixels at scale `numerator`/8: RGB, or grey when `grey`.
fn read_pixels<R: std::io::BufRead>(
    mut decompress: Decompress<R>,
    numerator: u8,
    grey: bool,
    limits: &DecodeLimits,
) -> Result<(Vec<u8>, u32, u32), ImageError> {
    decompress.scale(numerator);
    let mut started = if grey {
        decompress.grayscale()
    } else {
        decompress.rgb()
    }
    .map_err(corrupt)?;
    let (width, height) = (started.width() as u32, started.height() as u32);
    let channels: u64 = if grey { 1 } else { 3 };
    if u64::from(width) * u64::from(height) * channels > limits.max_decode_bytes {
        return Err(ImageError::TooMuchMemory(limits.max_decode_bytes));
    }
    let pixels = started.read_scanlines::<u8>().map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ImageError::Truncated
        } else {
            corrupt(e)
        }
    })?;
    started.finish().map_err(corrupt)?;
    Ok((pixels, width, height))
}

/// One scan of a JPEG file: where its bytes are, and which bits of which coefficients it carries.
struct Scan {
    /// From its start-of-scan marker to the end of its entropy-coded data.
    bytes: std::ops::Range<usize>,
    /// Component ids.
    components: Vec<u8>,
    /// First and last coefficient (zigzag order), and the bit positions before and after it.
    ss: u8,
    se: u8,
    ah: u8,
    al: u8,
}

impl Scan {
    /// A successive-approximation scan that sends AC coefficients' last bit: nothing follows it
    /// for those coefficients, so a decoder may leave it out and keep every other scan valid.
    fn refines_last_ac_bit(&self) -> bool {
        self.ss > 0 && self.ah > 0 && self.al == 0
    }
}

/// A JPEG's frame and scans, read from its markers alone (no entropy decoding).
struct Layout {
    progressive: bool,
    /// Component ids, from the frame header.
    components: Vec<u8>,
    scans: Vec<Scan>,
    /// An end-of-image marker follows the last scan.
    ends: bool,
}

/// Walks the marker structure; `None` when a segment runs past the end of the file.
fn layout(bytes: &[u8]) -> Option<Layout> {
    let mut layout = Layout {
        progressive: false,
        components: Vec::new(),
        scans: Vec::new(),
        ends: false,
    };
    let mut i = 2;
    while i + 2 <= bytes.len() {
        if bytes[i] != 0xFF {
            // Extraneous bytes before a marker: libjpeg skips them (with a warning), and so do we.
            i += bytes[i..].iter().position(|&b| b == 0xFF)?;
            continue;
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        if marker == 0xD9 {
            layout.ends = true;
            break;
        }
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            i += 2;
            continue;
        }
        let (&high, &low) = (bytes.get(i + 2)?, bytes.get(i + 3)?);
        let length = usize::from(u16::from_be_bytes([high, low]));
        let segment = bytes.get(i + 4..i + 2 + length)?;
        match marker {
            // Start of frame (any but the arithmetic/lossless oddities we never accept anyway).
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                layout.progressive = matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE);
                let count = usize::from(*segment.get(5).unwrap_or(&0));
                layout.components = (0..count)
                    .filter_map(|c| segment.get(6 + c * 3).copied())
                    .collect();
            }
            0xDA => {
                let count = usize::from(*segment.first().unwrap_or(&0));
                let tail = 1 + count * 2;
                let (&ss, &se, &a) = (
                    segment.get(tail)?,
                    segment.get(tail + 1)?,
                    segment.get(tail + 2)?,
                );
                // The entropy-coded data ends at a marker other than a stuffed 0xFF00 or a restart
                // marker.
                let mut j = i + 2 + length;
                while j + 1 < bytes.len()
                    && !(bytes[j] == 0xFF
                        && bytes[j + 1] != 0x00
                        && !(0xD0..=0xD7).contains(&bytes[j + 1]))
                {
                    j += 1;
                }
                layout.scans.push(Scan {
                    bytes: i..j,
                    components: (0..count)
                        .filter_map(|c| segment.get(1 + c * 2).copied())
                        .collect(),
                    ss,
                    se,
                    ah: a >> 4,
                    al: a & 0x0F,
                });
                i = j;
                continue;
            }
            _ => {}
        }
        i += 2 + length;
    }
    Some(layout)
}

impl Layout {
    /// Whether the file holds a whole picture. Lenient decoders fill whatever is missing with
    /// grey; an incomplete upload must be refused instead. Two checks on the marker structure:
    /// - an end-of-image marker follows the last scan (a cut-off file has none);
    /// - every coefficient of every component is finished by some scan (`Al = 0`), which is what
    ///   a progressive file with scans missing (but a tidy end marker) lacks.
    fn is_whole(&self) -> bool {
        // finished[component index][coefficient]
        let mut finished = vec![[false; 64]; self.components.len()];
        for scan in self.scans.iter().filter(|s| s.al == 0) {
            for id in &scan.components {
                if let Some(index) = self.components.iter().position(|x| x == id) {
                    // Ss and Se come from the file: clamp, so hostile values cannot index out of range.
                    let (first, last) = (usize::from(scan.ss), usize::from(scan.se.min(63)));
                    for done in finished[index].iter_mut().take(last + 1).skip(first) {
                        *done = true;
                    }
                }
            }
        }
        self.ends && !finished.is_empty() && finished.iter().all(|c| c.iter().all(|done| *done))
    }

    /// The file without the scans that refine the last bit of AC coefficients, or `None` when it
    /// has none (a baseline file, or a progressive one without successive approximation).
    fn without_last_ac_bits(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        if !self.progressive || !self.scans.iter().any(Scan::refines_last_ac_bit) {
            return None;
        }
        let mut kept = Vec::with_capacity(bytes.len());
        let mut from = 0;
        for scan in self.scans.iter().filter(|s| s.refines_last_ac_bit()) {
            kept.extend_from_slice(&bytes[from..scan.bytes.start]);
            from = scan.bytes.end;
        }
        kept.extend_from_slice(&bytes[from..]);
        Some(kept)
    }
}

/// The smallest of libjpeg's fast scales (n/8 for n = 1, 2, 4, 8) that still leaves the longest
/// edge at least `target` pixels long, so every variant is a reduction of real picture detail.
pub(crate) fn scale_numerator(longest_edge: u32, target: u32) -> u8 {
    [1u8, 2, 4]
        .into_iter()
        .find(|&n| u64::from(longest_edge) * u64::from(n) >= u64::from(target) * 8)
        .unwrap_or(8)
}

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
    let channels: usize = if grey { 1 } else { 3 };
    if width == 0 || height == 0 || width > 65_500 || height > 65_500 {
        return Err(ImageError::Encode(format!(
            "{width}x{height} cannot be a JPEG"
        )));
    }
    if pixels.len() != width as usize * height as usize * channels {
        return Err(ImageError::Encode("pixel buffer of the wrong size".into()));
    }
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the buffer holds exactly `height` rows of `width * channels` bytes (checked above).
        unsafe { encode_unchecked(pixels, width, height, grey, quality, encoding) }
    }))
    .map_err(|payload| ImageError::Encode(panic_text(payload)))
}

/// Output is collected in chunks: libjpeg fills `chunk`, and each full chunk is appended to `out`.
#[repr(C)]
struct VecDestination {
    /// Must stay the first field: libjpeg's `cinfo.dest` points at it, the callbacks at the whole.
    manager: jpeg_destination_mgr,
    chunk: [u8; 16 * 1024],
    out: Vec<u8>,
}

unsafe extern "C-unwind" fn destination_init(cinfo: &mut jpeg_compress_struct) {
    // SAFETY: `cinfo.dest` was set to a live `VecDestination` by `encode_unchecked`.
    let dest = unsafe { &mut *cinfo.dest.cast::<VecDestination>() };
    dest.manager.next_output_byte = dest.chunk.as_mut_ptr();
    dest.manager.free_in_buffer = dest.chunk.len();
}

unsafe extern "C-unwind" fn destination_full(cinfo: &mut jpeg_compress_struct) -> boolean {
    // SAFETY: as above. libjpeg calls this only when the whole chunk is written.
    let dest = unsafe { &mut *cinfo.dest.cast::<VecDestination>() };
    dest.out.extend_from_slice(&dest.chunk);
    dest.manager.next_output_byte = dest.chunk.as_mut_ptr();
    dest.manager.free_in_buffer = dest.chunk.len();
    1
}

unsafe extern "C-unwind" fn destination_term(cinfo: &mut jpeg_compress_struct) {
    // SAFETY: as above; `free_in_buffer` bytes at the end of the chunk are unwritten.
    let dest = unsafe { &mut *cinfo.dest.cast::<VecDestination>() };
    let used = dest.chunk.len() - dest.manager.free_in_buffer;
    dest.out.extend_from_slice(&dest.chunk[..used]);
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
    let mut error = Box::new(error_manager(ignore_message));
    // SAFETY (whole function): libjpeg is driven in its documented order on a struct it created;
    // every pointer it keeps (error manager, destination, rows) outlives the calls that use it.
    let mut cinfo: Box<jpeg_compress_struct> = Box::new(unsafe { std::mem::zeroed() });
    cinfo.common.err = &mut *error;
    let destination = Box::into_raw(Box::new(VecDestination {
        manager: jpeg_destination_mgr {
            next_output_byte: std::ptr::null_mut(),
            free_in_buffer: 0,
            init_destination: Some(destination_init),
            empty_output_buffer: Some(destination_full),
            term_destination: Some(destination_term),
        },
        chunk: [0; 16 * 1024],
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

/// What the decoder patched over while decoding (libjpeg warns and carries on).
#[derive(Debug, Clone, Copy)]
enum Damage {
    Truncated,
    Corrupt(&'static str),
}

thread_local! {
    static DAMAGE: std::cell::Cell<Option<Damage>> = const { std::cell::Cell::new(None) };
}

type MessageHandler = unsafe extern "C-unwind" fn(&mut jpeg_common_struct, c_int);

fn error_manager(on_message: MessageHandler) -> jpeg_error_mgr {
    // SAFETY: `jpeg_std_error` only fills in the struct it is given.
    let mut manager: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { mozjpeg_sys::jpeg_std_error(&mut manager) };
    manager.error_exit = Some(fail);
    manager.emit_message = Some(on_message);
    manager
}

/// The message libjpeg is reporting, as its format string (parameters not filled in).
fn message_text(cinfo: &jpeg_common_struct) -> &'static str {
    // SAFETY: `err` is the error manager libjpeg is calling through; its message table is a static
    // array of `last_jpeg_message + 1` C strings.
    unsafe {
        let Some(err) = cinfo.err.as_ref() else {
            return "unknown libjpeg error";
        };
        let code = err.msg_code;
        if code <= 0 || code > err.last_jpeg_message || err.jpeg_message_table.is_null() {
            return "unknown libjpeg error";
        }
        let text = *err.jpeg_message_table.add(code as usize);
        if text.is_null() {
            return "unknown libjpeg error";
        }
        CStr::from_ptr(text.cast())
            .to_str()
            .unwrap_or("libjpeg error")
    }
}

/// libjpeg's fatal error: unwind out of the library with the message.
unsafe extern "C-unwind" fn fail(cinfo: &mut jpeg_common_struct) {
    std::panic::resume_unwind(Box::new(message_text(cinfo).to_string()));
}

unsafe extern "C-unwind" fn ignore_message(_cinfo: &mut jpeg_common_struct, _level: c_int) {}

/// Warnings (level -1) that mean the picture is damaged are remembered; the harmless ones that
/// real cameras and editors produce (stray bytes before a marker, odd scan parameters) are not.
unsafe extern "C-unwind" fn note_damage(cinfo: &mut jpeg_common_struct, level: c_int) {
    if level >= 0 {
        return;
    }
    let text = message_text(cinfo);
    // A file cut short (maybe with an end marker added) runs out of data inside a scan.
    let damage = if text.starts_with("Premature end of JPEG file")
        || text.contains("premature end of data segment")
    {
        Some(Damage::Truncated)
    } else if (text.starts_with("Corrupt JPEG data") && !text.contains("extraneous bytes"))
        || text.starts_with("Inconsistent progression")
    {
        Some(Damage::Corrupt(text))
    } else {
        None
    };
    if let Some(damage) = damage {
        DAMAGE.with(|d| {
            if d.get().is_none() {
                d.set(Some(damage));
            }
        });
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "the JPEG codec failed".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRELLIS: Encoding = Encoding {
        trellis: true,
        progressive: false,
    };

    #[test]
    fn scale_keeps_at_least_the_largest_variant() {
        assert_eq!(scale_numerator(4096, 800), 2); // 1024 >= 800
        assert_eq!(scale_numerator(4096, 1200), 4); // 2048; 1024 would be too small
        assert_eq!(scale_numerator(4096, 512), 1);
        assert_eq!(scale_numerator(4096, 513), 2);
        assert_eq!(scale_numerator(1000, 1200), 8); // never below full size when it is needed
        assert_eq!(scale_numerator(1, 1), 8);
    }

    #[test]
    fn decodes_at_the_reduced_scale_it_may() {
        let storm = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/good/storm-1920x1280.jpg"
        ))
        .unwrap();
        for (reduce_to, size) in [(400, (480, 320)), (900, (960, 640)), (1000, (1920, 1280))] {
            let limits = DecodeLimits {
                max_pixels: 100_000_000,
                max_pixels_per_byte: crate::config::DEFAULT_MAX_PIXELS_PER_BYTE,
                max_decode_bytes: 1 << 30,
                reduce_to_edge: reduce_to,
                largest_edge: reduce_to,
                work: crate::memory_budget::Work::unbounded(),
            };
            let d = decode(&storm, &limits).unwrap().unwrap();
            assert_eq!((d.width, d.height), size, "reduce to {reduce_to}");
            assert_eq!((d.full_width, d.full_height), (1920, 1280));
            assert_eq!(d.pixels.len(), (size.0 * size.1 * 3) as usize);
        }
    }

    fn is_whole(bytes: &[u8]) -> bool {
        layout(bytes).is_some_and(|l| l.is_whole())
    }

    fn limits(reduce_to_edge: u32, largest_edge: u32) -> DecodeLimits {
        DecodeLimits {
            max_pixels: 100_000_000,
            max_pixels_per_byte: crate::config::DEFAULT_MAX_PIXELS_PER_BYTE,
            max_decode_bytes: 1 << 30,
            reduce_to_edge,
            largest_edge,
            work: crate::memory_budget::Work::unbounded(),
        }
    }

    /// libjpeg's own decoder at scale n/8, every scan read.
    fn libjpeg_at(bytes: &[u8], numerator: u8) -> Vec<u8> {
        let mut d = Decompress::new_mem(bytes).unwrap();
        d.scale(numerator);
        let mut started = d.rgb().unwrap();
        let pixels = started.read_scanlines::<u8>().unwrap();
        started.finish().unwrap();
        pixels
    }

    #[test]
    fn a_variant_a_quarter_of_the_edge_or_less_skips_the_last_bits_of_a_progressive_file() {
        let storm = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/good/storm-1920x1280.jpg"
        ))
        .unwrap();
        let photo = decode(&storm, &limits(u32::MAX, u32::MAX))
            .unwrap()
            .unwrap();
        // libjpeg's standard progressive script: successive approximation, last bits sent last.
        let mut compress = mozjpeg::Compress::new(ColorSpace::JCS_RGB);
        compress.set_fastest_defaults();
        compress.set_progressive_mode();
        compress.set_size(1920, 1280);
        compress.set_quality(90.0);
        let mut started = compress.start_compress(Vec::new()).unwrap();
        started.write_scanlines(&photo.pixels).unwrap();
        let progressive = started.finish().unwrap();

        let whole = layout(&progressive).unwrap();
        let dropped: Vec<_> = whole
            .scans
            .iter()
            .filter(|s| s.refines_last_ac_bit())
            .collect();
        assert_eq!(dropped.len(), 3, "one last-bit scan per component");
        let reduced = whole.without_last_ac_bits(&progressive).unwrap();
        let left = layout(&reduced).unwrap();
        assert_eq!(left.scans.len(), whole.scans.len() - 3);
        assert!(left.ends && !left.scans.iter().any(Scan::refines_last_ac_bit));
        let kept_bytes: usize = whole
            .scans
            .iter()
            .filter(|s| !s.refines_last_ac_bit())
            .map(|s| s.bytes.len())
            .sum();
        let dropped_bytes: usize = dropped.iter().map(|s| s.bytes.len()).sum();
        assert_eq!(reduced.len(), progressive.len() - dropped_bytes);
        assert!(
            dropped_bytes > kept_bytes / 2,
            "the last bits are most of the file"
        );

        // 1920 / 4 = 480: a 480-px variant skips them, a 481-px one decodes every scan.
        let skipped = decode(&progressive, &limits(480, 480)).unwrap().unwrap();
        let every_scan = decode(&progressive, &limits(480, 481)).unwrap().unwrap();
        assert_eq!((skipped.width, skipped.height), (480, 320));
        assert!(
            every_scan.pixels == libjpeg_at(&progressive, 2),
            "a 481-px variant decodes every scan"
        );
        assert!(
            skipped.pixels != every_scan.pixels,
            "a 480-px variant skips the last bits"
        );
        let difference: u64 = skipped
            .pixels
            .iter()
            .zip(&every_scan.pixels)
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        let mean = difference as f64 / skipped.pixels.len() as f64;
        assert!(mean < 1.0, "mean difference {mean} of 255");
        // A baseline file has no such scans: the same pixels either way.
        let baseline = decode(&storm, &limits(480, 480)).unwrap().unwrap();
        assert!(baseline.pixels == libjpeg_at(&storm, 2));
    }

    #[test]
    fn encodes_what_decodes_back() {
        let (w, h) = (37u32, 21u32);
        let pixels: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        for trellis in [true, false] {
            for progressive in [true, false] {
                let encoding = Encoding {
                    trellis,
                    progressive,
                };
                let jpeg = encode(&pixels, w, h, false, 90, encoding).unwrap();
                let back = image::load_from_memory(&jpeg).unwrap();
                assert_eq!((back.width(), back.height()), (w, h));
                assert_eq!(layout(&jpeg).unwrap().progressive, progressive);
                let grey: Vec<u8> = (0..w * h).map(|i| (i % 256) as u8).collect();
                let jpeg = encode(&grey, w, h, true, 90, encoding).unwrap();
                assert_eq!(
                    image::load_from_memory(&jpeg).unwrap().color(),
                    image::ColorType::L8
                );
                assert!(is_whole(&jpeg));
            }
        }
    }

    #[test]
    fn stray_bytes_between_segments_are_skipped_as_libjpeg_skips_them() {
        let (w, h) = (32, 16);
        let pixels: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        let jpeg = encode(&pixels, w, h, false, 90, Encoding::PLAIN).unwrap();
        assert!(is_whole(&jpeg));
        // "hello" after the first segment (APP0), as some cameras write.
        let app0_end = 4 + usize::from(u16::from_be_bytes([jpeg[4], jpeg[5]]));
        let mut stray = jpeg[..app0_end].to_vec();
        stray.extend_from_slice(b"hello");
        stray.extend_from_slice(&jpeg[app0_end..]);
        assert!(is_whole(&stray));
        let limits = DecodeLimits {
            max_pixels: 1 << 20,
            max_pixels_per_byte: 1 << 14,
            max_decode_bytes: 1 << 24,
            reduce_to_edge: u32::MAX,
            largest_edge: u32::MAX,
            work: crate::memory_budget::Work::unbounded(),
        };
        let decoded = decode(&stray, &limits).unwrap().unwrap();
        assert_eq!((decoded.width, decoded.height), (w, h));
        // Stray bytes at the end instead of the end marker: still incomplete.
        let mut cut = jpeg[..jpeg.len() - 2].to_vec();
        cut.extend_from_slice(b"junk");
        assert!(!is_whole(&cut));
    }

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

    #[test]
    fn errors_from_inside_libjpeg_become_errors() {
        let limits = DecodeLimits {
            max_pixels: 100_000_000,
            max_pixels_per_byte: crate::config::DEFAULT_MAX_PIXELS_PER_BYTE,
            max_decode_bytes: 1 << 30,
            reduce_to_edge: 100,
            largest_edge: 100,
            work: crate::memory_budget::Work::unbounded(),
        };
        // A start-of-image marker and then nonsense.
        let e = decode(&[0xFF, 0xD8, 0xFF, 0x00, 1, 2, 3, 4], &limits)
            .err()
            .unwrap();
        assert!(matches!(e, ImageError::Corrupt(_)), "{e:?}");
    }
}
