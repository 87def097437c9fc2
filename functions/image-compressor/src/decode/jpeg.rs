//! JPEG in through mozjpeg (libjpeg-turbo's SIMD decoder), reduced while decoding: libjpeg's
//! scaled inverse DCT produces the picture at 1/8, 1/4 or 1/2 of its size when the variants need no
//! more, which is both faster and smaller in memory than decoding every pixel and then throwing most
//! of them away. When the variants are at most a quarter of the picture's edge, a progressive file
//! is read without its last-bit AC scans: those are most of its bytes and decoding time, and change
//! nothing such a variant shows. A file is read for its marker structure first (`Layout`), so a
//! truncated or incomplete one is refused rather than patched over. libjpeg's FFI (errors, damage
//! warnings) is in `libjpeg`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use image::metadata::Orientation;
use mozjpeg::{ColorSpace, Decompress, Marker};

use super::jpeg_layout::{layout, Layout};
use super::{scale_numerator, DecodeLimits, Decoded, PixelLayout};
use crate::error::ImageError;
use crate::libjpeg;
use crate::memory_budget::{Peak, Shape};

/// A progressive file's last bits of AC coefficients are skipped when the largest variant's edge is
/// at most the picture's divided by this. On the benchmark corpus's progressive photos, that left
/// every variant's SSIM within 0.0001 of the full decode (at 1/3 it was 0.0004 lower, at 1/2
/// 0.0015, at full size 0.024) and halved the decoding time, most of which is those scans.
const LAST_BITS_MIN_REDUCTION: u64 = 4;

/// `Ok(None)`: a JPEG this path does not handle (CMYK, YCCK), for the generic decoder.
pub(crate) fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Option<Decoded>, ImageError> {
    libjpeg::DAMAGE.with(|d| d.set(None));
    let result = catch_unwind(AssertUnwindSafe(|| decode_unguarded(bytes, limits)));
    let damage = libjpeg::DAMAGE.with(|d| d.take());
    match result {
        Ok(Ok(decoded)) => match damage {
            // The library patched over damage (grey blocks, a fake end of file): refuse the result.
            Some(libjpeg::Damage::Truncated) => Err(ImageError::Truncated),
            Some(libjpeg::Damage::Corrupt(what)) => Err(ImageError::Corrupt(what.into())),
            None => Ok(decoded),
        },
        Ok(Err(e)) => Err(e),
        Err(payload) => Err(ImageError::Corrupt(libjpeg::panic_text(payload))),
    }
}

fn corrupt(e: std::io::Error) -> ImageError {
    ImageError::Corrupt(e.to_string())
}

/// A decoder over `bytes` that notes damage instead of patching over it silently, keeping the
/// `markers` asked for; the header is read.
fn open<'a>(bytes: &'a [u8], markers: &[Marker]) -> Result<Decompress<&'a [u8]>, ImageError> {
    Decompress::builder()
        .with_err(libjpeg::error_manager(libjpeg::note_damage))
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
        layout: if grey {
            PixelLayout::Grey
        } else {
            PixelLayout::Rgb
        },
        full_width,
        full_height,
        orientation,
        icc,
        cheap_decode: !layout.progressive,
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

#[cfg(test)]
mod tests {
    use super::super::jpeg_layout::Scan;
    use super::*;
    use crate::encode::jpeg::{encode, Encoding};

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
            let limits = DecodeLimits::for_tests(reduce_to, reduce_to);
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
        DecodeLimits::for_tests(reduce_to_edge, largest_edge)
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
            ..DecodeLimits::for_tests(u32::MAX, u32::MAX)
        };
        let decoded = decode(&stray, &limits).unwrap().unwrap();
        assert_eq!((decoded.width, decoded.height), (w, h));
        // Stray bytes at the end instead of the end marker: still incomplete.
        let mut cut = jpeg[..jpeg.len() - 2].to_vec();
        cut.extend_from_slice(b"junk");
        assert!(!is_whole(&cut));
    }

    #[test]
    fn errors_from_inside_libjpeg_become_errors() {
        let limits = limits(100, 100);
        // A start-of-image marker and then nonsense.
        let e = decode(&[0xFF, 0xD8, 0xFF, 0x00, 1, 2, 3, 4], &limits)
            .err()
            .unwrap();
        assert!(matches!(e, ImageError::Corrupt(_)), "{e:?}");
    }
}
