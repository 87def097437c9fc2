//! WebP out through libwebp (lossy), when `FORMATS` lists it.

use libwebp_sys::{WebPEncodeRGB, WebPFree};

use crate::error::ImageError;

/// libwebp's quality (0-100, method 4: libwebp's default) chosen once on the corpus: the lowest
/// whose mean luma SSIM is no lower than the seeds' Pillow JPEG at quality 85 (BENCHMARKS.md).
pub const DEFAULT_QUALITY: u8 = 90;

/// Lossy WebP of 8-bit RGB (or grey) pixels at `quality` (libwebp's 0-100 scale).
pub(crate) fn encode(
    pixels: &[u8],
    width: u32,
    height: u32,
    grey: bool,
    quality: u8,
) -> Result<Vec<u8>, ImageError> {
    super::check_size(pixels, width, height, grey, 16_383, "a WebP")?;
    let rgb: std::borrow::Cow<[u8]> = if grey {
        pixels
            .iter()
            .flat_map(|&v| [v, v, v])
            .collect::<Vec<u8>>()
            .into()
    } else {
        pixels.into()
    };
    let mut output: *mut u8 = std::ptr::null_mut();
    // SAFETY: `rgb` holds `height` rows of `width * 3` bytes; libwebp allocates `output`, which is
    // copied and then released with its own `WebPFree`.
    let size = unsafe {
        WebPEncodeRGB(
            rgb.as_ptr(),
            width as i32,
            height as i32,
            (width * 3) as i32,
            f32::from(quality.min(100)),
            &mut output,
        )
    };
    if size == 0 || output.is_null() {
        return Err(ImageError::Encode(
            "libwebp could not encode the variant".into(),
        ));
    }
    let bytes = unsafe { std::slice::from_raw_parts(output, size) }.to_vec();
    unsafe { WebPFree(output.cast()) };
    Ok(bytes)
}
