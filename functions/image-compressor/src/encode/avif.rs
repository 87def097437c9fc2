//! AVIF encoding: libavif with libaom (built from C, AV1 in a still-picture HEIF container).
//!
//! Chosen by measurement (BENCHMARKS.md, "Modern formats"): on the bench corpus, libaom at speed 9
//! encoded the variants 8-9 times faster than rav1e (`ravif`, pure Rust) at its fastest speed, in
//! fewer bytes at a higher SSIM; at speed 6 it writes half the bytes of speed 9 at the same SSIM in
//! about 8 times the time, still several times faster than sharp's AVIF at its default effort for the
//! same bytes. One thread: the function runs one image after another on its CPU share.

use libavif_sys::*;

use crate::error::ImageError;

/// libavif's quality (0-100, libaom's quantiser scaled) chosen once on the corpus at `SPEED`: the
/// lowest whose mean luma SSIM is no lower than the seeds' Pillow JPEG at quality 85 (BENCHMARKS.md):
/// 0.242 of Pillow's bytes on the image benchmark's files, 0.424 on the corpus's photos and PNGs.
pub const DEFAULT_QUALITY: u8 = 70;

/// libaom's speed (0-10). At an SSIM no lower than Pillow's JPEG, speed 9 (quality 80) wrote 0.49
/// of its bytes, speed 8 (77) 0.38, speed 6 (70) 0.24, for 1, 3 and 7.5 times speed 9's time (speed
/// 7 was no faster than 6 for more bytes; 10 wrote what 9 does). The compute is a few dollars per
/// million uploads (BENCHMARKS.md, "Cost per million uploads"), less than every later view of the
/// variant saves in transfer.
pub const SPEED: i32 = 6;

/// Variants of more pixels than this (2048 x 2048) get no AVIF. At speed 6, libaom's peak grew by
/// 10.5 bytes a pixel at 2048 x 2048 and 12.2 at 3000 x 3000, but by 1.25 GB (75 bytes a pixel) and
/// 17 s at 4096 x 4096: more than the function's memory. The default variants (at most 1200 px) are
/// far below it; a larger one is served as WebP or JPEG.
pub const MAX_PIXELS: u64 = 2048 * 2048;

/// Whether a variant of this size gets an AVIF.
pub(crate) fn fits(width: u32, height: u32) -> bool {
    u64::from(width) * u64::from(height) <= MAX_PIXELS
}

/// Owns a libavif object and destroys it when dropped.
struct Owned<T> {
    ptr: *mut T,
    destroy: unsafe extern "C" fn(*mut T),
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: `ptr` came from the matching libavif constructor and is destroyed once.
            unsafe { (self.destroy)(self.ptr) }
        }
    }
}

fn check(result: avifResult, what: &str) -> Result<(), ImageError> {
    if result == AVIF_RESULT_OK {
        return Ok(());
    }
    Err(ImageError::Encode(format!(
        "libavif could not {what} (error {result})"
    )))
}

/// An AVIF (8-bit 4:2:0, or 4:0:0 for grey) of 8-bit RGB (or grey) pixels at `quality`.
pub(crate) fn encode(
    pixels: &[u8],
    width: u32,
    height: u32,
    grey: bool,
    quality: u8,
) -> Result<Vec<u8>, ImageError> {
    // AV1 frames are at most 65536 a side; libavif's default limits are far beyond any variant.
    super::check_size(pixels, width, height, grey, 16_384, "an AVIF variant")?;
    let format = if grey {
        AVIF_PIXEL_FORMAT_YUV400
    } else {
        AVIF_PIXEL_FORMAT_YUV420
    };
    // SAFETY: every pointer handed to libavif is either one it returned (checked for null, owned by
    // `Owned`) or `pixels`, which outlives the calls and holds `height` rows of `width * channels`
    // bytes as `rowBytes` says. libavif reads the RGB pixels (it never writes through them).
    unsafe {
        let image = Owned {
            ptr: avifImageCreate(width, height, 8, format),
            destroy: avifImageDestroy,
        };
        if image.ptr.is_null() {
            return Err(ImageError::Encode("libavif could not allocate".into()));
        }
        // sRGB primaries and transfer, BT.601 matrix, full range: how browsers read untagged JPEG.
        (*image.ptr).colorPrimaries = AVIF_COLOR_PRIMARIES_BT709 as _;
        (*image.ptr).transferCharacteristics = AVIF_TRANSFER_CHARACTERISTICS_SRGB as _;
        (*image.ptr).matrixCoefficients = AVIF_MATRIX_COEFFICIENTS_BT601 as _;
        (*image.ptr).yuvRange = AVIF_RANGE_FULL;
        if grey {
            check(
                avifImageAllocatePlanes(image.ptr, AVIF_PLANES_YUV),
                "allocate the picture",
            )?;
            let plane = (*image.ptr).yuvPlanes[0];
            let stride = (*image.ptr).yuvRowBytes[0] as usize;
            for (y, row) in pixels.chunks_exact(width as usize).enumerate() {
                std::ptr::copy_nonoverlapping(row.as_ptr(), plane.add(y * stride), row.len());
            }
        } else {
            let mut rgb = avifRGBImage::default();
            avifRGBImageSetDefaults(&mut rgb, image.ptr);
            rgb.format = AVIF_RGB_FORMAT_RGB;
            rgb.depth = 8;
            rgb.pixels = pixels.as_ptr().cast_mut();
            rgb.rowBytes = width * 3;
            check(
                avifImageRGBToYUV(image.ptr, &rgb),
                "convert the picture to YUV",
            )?;
        }
        let encoder = Owned {
            ptr: avifEncoderCreate(),
            destroy: avifEncoderDestroy,
        };
        if encoder.ptr.is_null() {
            return Err(ImageError::Encode("libavif could not allocate".into()));
        }
        (*encoder.ptr).codecChoice = AVIF_CODEC_CHOICE_AOM;
        (*encoder.ptr).maxThreads = 1;
        (*encoder.ptr).speed = SPEED;
        (*encoder.ptr).quality = i32::from(quality.min(100));
        let mut output = avifRWData::default();
        let written = avifEncoderWrite(encoder.ptr, image.ptr, &mut output);
        let bytes = if written == AVIF_RESULT_OK && !output.data.is_null() {
            Ok(std::slice::from_raw_parts(output.data, output.size).to_vec())
        } else {
            Err(ImageError::Encode(format!(
                "libavif could not encode the variant (error {written})"
            )))
        };
        avifRWDataFree(&mut output);
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: u32, height: u32, channels: usize) -> Vec<u8> {
        let mut pixels = Vec::new();
        for y in 0..height {
            for x in 0..width {
                for c in 0..channels {
                    pixels.push(((x * 255 / width) as u8).wrapping_add((y + c as u32 * 40) as u8));
                }
            }
        }
        pixels
    }

    #[test]
    fn encodes_an_avif_of_the_variant_size() {
        for grey in [false, true] {
            let pixels = gradient(97, 61, if grey { 1 } else { 3 });
            let avif = encode(&pixels, 97, 61, grey, DEFAULT_QUALITY).unwrap();
            // An ISO BMFF file whose brand is AVIF.
            assert_eq!(&avif[4..12], b"ftypavif", "{grey}");
            // `ispe`: the picture's size as stored.
            let at = avif.windows(4).position(|w| w == b"ispe").unwrap();
            let size = |i: usize| u32::from_be_bytes(avif[i..i + 4].try_into().unwrap());
            assert_eq!((size(at + 8), size(at + 12)), (97, 61));
        }
    }

    #[test]
    fn only_variants_up_to_four_megapixels_get_an_avif() {
        assert!(fits(2048, 2048));
        assert!(fits(4096, 1024));
        assert!(!fits(2049, 2048));
        assert!(!fits(4096, 4096));
    }

    #[test]
    fn refuses_a_wrong_buffer_or_size() {
        assert!(encode(&[0; 10], 4, 4, false, 80).is_err());
        assert!(encode(&[], 0, 4, false, 80).is_err());
        assert!(encode(&vec![0; 3 * 20_000], 20_000, 1, false, 80).is_err());
    }

    #[test]
    fn a_lower_quality_writes_fewer_bytes() {
        let pixels = gradient(200, 150, 3);
        let high = encode(&pixels, 200, 150, false, 90).unwrap();
        let low = encode(&pixels, 200, 150, false, 30).unwrap();
        assert!(low.len() < high.len(), "{} vs {}", low.len(), high.len());
    }
}
