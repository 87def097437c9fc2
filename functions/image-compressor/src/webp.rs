//! WebP through libwebp: in, reduced while decoding; out, when `WEBP_QUALITY` asks for it.
//!
//! libwebp can rescale rows as it decodes them, so a large WebP never exists at full size in memory
//! and the Lanczos step starts from far fewer pixels. The reduction follows the JPEG rule (a power
//! of two, never below what the variants need). Animated files go to the generic decoder, which
//! takes their first frame. libwebp reports errors as status codes; the unsafe code is confined here.

use image::metadata::Orientation;
use libwebp_sys::{
    VP8StatusCode, WebPBitstreamFeatures, WebPDecode, WebPDecoderConfig, WebPEncodeRGB, WebPFree,
    WebPFreeDecBuffer, WebPGetFeatures, WebPInitDecoderConfig, WEBP_CSP_MODE,
};

use crate::jpeg::{scale_numerator, DecodeLimits};
use crate::pipeline::{check_pixels, ImageError};

pub(crate) struct Decoded {
    /// RGBA (4 bytes a pixel, straight alpha) when the file has alpha, else RGB.
    pub pixels: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub alpha: bool,
    pub full_width: u32,
    pub full_height: u32,
    pub orientation: Orientation,
    pub icc: Option<Vec<u8>>,
}

fn status_error(status: VP8StatusCode, max_decode_bytes: u64) -> ImageError {
    match status {
        VP8StatusCode::VP8_STATUS_NOT_ENOUGH_DATA => ImageError::Truncated,
        VP8StatusCode::VP8_STATUS_OUT_OF_MEMORY => ImageError::TooMuchMemory(max_decode_bytes),
        other => ImageError::Corrupt(format!("WebP: {other:?}")),
    }
}

/// `Ok(None)`: an animated WebP, for the generic decoder (its first frame).
pub(crate) fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Option<Decoded>, ImageError> {
    // SAFETY: the features struct is plain data that `WebPGetFeatures` fills from the bytes it reads.
    let mut features: WebPBitstreamFeatures = unsafe { std::mem::zeroed() };
    let status = unsafe { WebPGetFeatures(bytes.as_ptr(), bytes.len(), &mut features) };
    if status != VP8StatusCode::VP8_STATUS_OK {
        return Err(status_error(status, limits.max_decode_bytes));
    }
    if features.has_animation != 0 {
        return Ok(None);
    }
    let (full_width, full_height) = (
        u32::try_from(features.width).unwrap_or(0),
        u32::try_from(features.height).unwrap_or(0),
    );
    check_pixels(full_width, full_height, limits.max_pixels)?;
    let numerator = scale_numerator(full_width.max(full_height), limits.reduce_to_edge);
    let scaled = |edge: u32| (u64::from(edge) * u64::from(numerator)).div_ceil(8) as u32;
    let (width, height) = (scaled(full_width), scaled(full_height));
    let alpha = features.has_alpha != 0;
    let channels: usize = if alpha { 4 } else { 3 };
    let stride = width as usize * channels;
    let size = stride * height as usize;
    if size as u64 > limits.max_decode_bytes {
        return Err(ImageError::TooMuchMemory(limits.max_decode_bytes));
    }
    let mut pixels = vec![0u8; size];

    // SAFETY: the config is initialised by libwebp, then told to write into `pixels`, which is
    // exactly `height` rows of `stride` bytes and outlives the call; libwebp allocates nothing for
    // external memory, and `WebPFreeDecBuffer` releases whatever it may have kept.
    unsafe {
        let mut config: WebPDecoderConfig = std::mem::zeroed();
        if !WebPInitDecoderConfig(&mut config) {
            return Err(ImageError::Corrupt("libwebp version mismatch".into()));
        }
        if numerator < 8 {
            config.options.use_scaling = 1;
            config.options.scaled_width = width as i32;
            config.options.scaled_height = height as i32;
        }
        config.output.colorspace = if alpha {
            WEBP_CSP_MODE::MODE_RGBA
        } else {
            WEBP_CSP_MODE::MODE_RGB
        };
        config.output.is_external_memory = 1;
        config.output.u.RGBA.rgba = pixels.as_mut_ptr();
        config.output.u.RGBA.stride = stride as i32;
        config.output.u.RGBA.size = size;
        let status = WebPDecode(bytes.as_ptr(), bytes.len(), &mut config);
        WebPFreeDecBuffer(&mut config.output);
        if status != VP8StatusCode::VP8_STATUS_OK {
            return Err(status_error(status, limits.max_decode_bytes));
        }
    }
    let (orientation, icc) = metadata(bytes);
    Ok(Some(Decoded {
        pixels,
        width,
        height,
        alpha,
        full_width,
        full_height,
        orientation,
        icc,
    }))
}

/// Lossy WebP of 8-bit RGB (or grey) pixels at `quality` (libwebp's 0-100 scale).
pub(crate) fn encode(
    pixels: &[u8],
    width: u32,
    height: u32,
    grey: bool,
    quality: u8,
) -> Result<Vec<u8>, ImageError> {
    if width == 0 || height == 0 || width > 16_383 || height > 16_383 {
        return Err(ImageError::Encode(format!(
            "{width}x{height} cannot be a WebP (at most 16383 a side)"
        )));
    }
    let rgb: std::borrow::Cow<[u8]> = if grey {
        pixels
            .iter()
            .flat_map(|&v| [v, v, v])
            .collect::<Vec<u8>>()
            .into()
    } else {
        pixels.into()
    };
    if rgb.len() != width as usize * height as usize * 3 {
        return Err(ImageError::Encode("pixel buffer of the wrong size".into()));
    }
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

/// The EXIF orientation and the ICC profile from the RIFF container's `EXIF` and `ICCP` chunks.
fn metadata(bytes: &[u8]) -> (Orientation, Option<Vec<u8>>) {
    let mut orientation = Orientation::NoTransforms;
    let mut icc = None;
    let mut at = 12; // "RIFF", size, "WEBP"
    while let Some(header) = bytes.get(at..at + 8) {
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let Some(payload) = bytes.get(at + 8..(at + 8).saturating_add(size)) else {
            break;
        };
        match &header[..4] {
            b"EXIF" => {
                // The TIFF header itself; some writers put JPEG's "Exif\0\0" before it.
                let tiff = payload.strip_prefix(b"Exif\0\0").unwrap_or(payload);
                orientation = Orientation::from_exif_chunk(tiff).unwrap_or(orientation);
            }
            b"ICCP" => icc = Some(payload.to_vec()),
            _ => {}
        }
        // Chunks are padded to an even length.
        at = at + 8 + size + (size & 1);
    }
    (orientation, icc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(reduce_to_edge: u32) -> DecodeLimits {
        DecodeLimits {
            max_pixels: 100_000_000,
            max_decode_bytes: 1 << 30,
            reduce_to_edge,
        }
    }

    #[test]
    fn decodes_at_the_reduced_scale_it_may() {
        let wood = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/good/wood-4096x4096.webp"
        ))
        .unwrap();
        for (reduce_to, edge) in [(300, 512), (800, 1024), (1200, 2048), (3000, 4096)] {
            let d = decode(&wood, &limits(reduce_to)).unwrap().unwrap();
            assert_eq!((d.width, d.height), (edge, edge), "reduce to {reduce_to}");
            assert_eq!((d.full_width, d.full_height), (4096, 4096));
            assert_eq!(d.pixels.len(), (edge * edge * 3) as usize);
            assert!(!d.alpha);
            // Real picture, not a zeroed buffer.
            assert!(d.pixels.iter().any(|&p| p > 16));
        }
    }

    #[test]
    fn truncated_and_corrupt_files_are_errors() {
        let wood = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/good/wood-4096x4096.webp"
        ))
        .unwrap();
        let cut = &wood[..wood.len() / 2];
        assert_eq!(decode(cut, &limits(300)).err(), Some(ImageError::Truncated));
        let mut mangled = wood.clone();
        for b in mangled.iter_mut().skip(40).take(64) {
            *b = !*b;
        }
        assert!(decode(&mangled, &limits(300)).is_err());
        assert!(decode(b"RIFF\x04\0\0\0WEBP", &limits(300)).is_err());
    }

    #[test]
    fn encodes_what_decodes_back() {
        let (w, h) = (45u32, 30u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 5 % 253) as u8).collect();
        for (pixels, grey) in [
            (rgb.clone(), false),
            (rgb[..(w * h) as usize].to_vec(), true),
        ] {
            let webp = encode(&pixels, w, h, grey, 80).unwrap();
            assert!(webp.starts_with(b"RIFF") && &webp[8..12] == b"WEBP");
            let back = decode(&webp, &limits(1000)).unwrap().unwrap();
            assert_eq!((back.width, back.height), (w, h));
        }
        assert!(encode(&rgb, w + 1, h, false, 80).is_err());
        assert!(encode(&[], 20_000, 1, false, 80).is_err());
    }

    #[test]
    fn metadata_chunks_are_found_and_hostile_sizes_are_harmless() {
        let mut file = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0".to_vec();
        file.extend_from_slice(&[0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        file.extend_from_slice(b"ICCP\x03\0\0\0abc\0");
        // EXIF: little-endian TIFF, one IFD entry, orientation (0x0112) = 6.
        let tiff = [
            b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0,
            0,
        ];
        file.extend_from_slice(b"EXIF");
        file.extend_from_slice(&(tiff.len() as u32).to_le_bytes());
        file.extend_from_slice(&tiff);
        let (orientation, icc) = metadata(&file);
        assert_eq!(orientation, Orientation::Rotate90);
        assert_eq!(icc.as_deref(), Some(&b"abc"[..]));
        let mut hostile = b"RIFF\0\0\0\0WEBPEXIF\xff\xff\xff\xff".to_vec();
        hostile.extend_from_slice(&[0; 10]);
        assert_eq!(metadata(&hostile), (Orientation::NoTransforms, None));
    }
}
