//! WebP in through libwebp, reduced while decoding (the encoder is `encode::webp`).
//!
//! - A lossy picture without alpha (what cameras and image tools write), larger than the largest
//!   variant: decoded to its own YUV 4:2:0 planes (1.5 bytes a pixel, half of RGB, so it never
//!   exists at full size as RGB), each plane resized straight to the largest variant with Lanczos,
//!   then turned into RGB at that size. libwebp's own rescaler is a box filter that, for planes,
//!   runs in plain C: this is faster and sharper (BENCHMARKS.md).
//! - Anything else (alpha, lossless): libwebp rescales rows as it decodes them, reducing by a power
//!   of two, never below what the variants need (the JPEG rule).
//!
//! Animated files go to the generic decoder, which takes their first frame. libwebp reports errors
//! as status codes; the unsafe code is confined here.

use domain::image::fit_within;
use fast_image_resize::images::Image;
use fast_image_resize::{PixelType, Resizer};
use image::metadata::Orientation;
use libwebp_sys::{
    VP8StatusCode, WebPBitstreamFeatures, WebPDecode, WebPDecoderConfig, WebPFreeDecBuffer,
    WebPGetFeatures, WebPInitDecoderConfig, WEBP_CSP_MODE,
};

use super::webp_riff::{animation_frames, metadata};
use super::{scale_numerator, DecodeLimits, Decoded, PixelLayout};
use crate::error::ImageError;
use crate::memory_budget::{self, Peak, Shape};
use crate::resize::{lanczos3, resize};

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
    let (full_width, full_height) = (
        u32::try_from(features.width).unwrap_or(0),
        u32::try_from(features.height).unwrap_or(0),
    );
    if features.has_animation != 0 {
        // Every frame is held to the pixel bounds before anything is decoded (the canvas is
        // checked by the generic decoder, with the memory its first frame takes).
        for frame in animation_frames(bytes) {
            limits.check_size(frame.width, frame.height, bytes.len())?;
        }
        return Ok(None);
    }
    limits.check_size(full_width, full_height, bytes.len())?;
    let alpha = features.has_alpha != 0;
    // `format`: 1 lossy, 2 lossless.
    let lossless = features.format == 2;
    let target = fit_within(full_width, full_height, limits.largest_edge);
    let (orientation, _) = metadata(bytes);
    let turned = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let upright = if turned {
        (full_height, full_width)
    } else {
        (full_width, full_height)
    };
    let full_pixels = u64::from(full_width) * u64::from(full_height);
    if features.format == 1 && !alpha && target != (full_width, full_height) {
        // The three planes at full size; each resized (the resizer's scratch is the full width by
        // the target height) with its result alive; the RGB picture from the three results.
        let target_pixels = u64::from(target.0) * u64::from(target.1);
        let planes = full_pixels
            + 2 * u64::from(full_width.div_ceil(2)) * u64::from(full_height.div_ceil(2));
        let resizing = u64::from(full_width) * u64::from(target.1) + 3 * target_pixels;
        let mut peak = Peak::new(bytes.len());
        peak.alloc(planes).alloc(resizing);
        peak.alloc(3 * target_pixels).free(planes + resizing);
        let decoded = Shape::rgb8(target.0, target.1);
        if turned {
            peak.transient(decoded.bytes());
        }
        memory_budget::check(peak, decoded, upright, &limits.work)?;
        let pixels = decode_resampled(
            bytes,
            (full_width, full_height),
            target,
            limits.max_decode_bytes,
        )?;
        let (orientation, icc) = metadata(bytes);
        return Ok(Some(Decoded {
            pixels,
            width: target.0,
            height: target.1,
            layout: PixelLayout::Rgb,
            full_width,
            full_height,
            orientation,
            icc,
            cheap_decode: false,
        }));
    }
    let numerator = scale_numerator(full_width.max(full_height), limits.reduce_to_edge);
    let scaled = |edge: u32| (u64::from(edge) * u64::from(numerator)).div_ceil(8) as u32;
    let (width, height) = (scaled(full_width), scaled(full_height));
    let channels: usize = if alpha { 4 } else { 3 };
    let stride = width as usize * channels;
    let size = stride * height as usize;
    if size as u64 > limits.max_decode_bytes {
        return Err(ImageError::TooMuchMemory(limits.max_decode_bytes));
    }
    // libwebp's own buffers: a lossless file's every pixel as 32 bits (its back-references reach
    // anywhere above), a lossy file's alpha plane and the lossless decoder of that plane.
    let private = if lossless {
        4 * full_pixels
    } else if alpha {
        2 * full_pixels
    } else {
        0
    };
    let decoded = Shape {
        width,
        height,
        channels: channels as u8,
        bytes_per_sample: 1,
    };
    let mut peak = Peak::new(bytes.len());
    peak.alloc(decoded.bytes()).transient(private);
    if turned {
        peak.transient(decoded.bytes());
    }
    memory_budget::check(peak, decoded, upright, &limits.work)?;
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
        layout: if alpha {
            PixelLayout::Rgba
        } else {
            PixelLayout::Rgb
        },
        full_width,
        full_height,
        orientation,
        icc,
        cheap_decode: false,
    }))
}

/// A lossy, opaque WebP of `full` size as RGB pixels of `target` size (see the module notes).
fn decode_resampled(
    bytes: &[u8],
    full: (u32, u32),
    target: (u32, u32),
    max_decode_bytes: u64,
) -> Result<Vec<u8>, ImageError> {
    let (width, height) = (full.0 as usize, full.1 as usize);
    // Chroma planes: half the size in each direction, rounded up.
    let (chroma_width, chroma_height) = (width.div_ceil(2), height.div_ceil(2));
    let planes = width as u64 * height as u64 + 2 * chroma_width as u64 * chroma_height as u64;
    if planes > max_decode_bytes {
        return Err(ImageError::TooMuchMemory(max_decode_bytes));
    }
    let mut luma = vec![0u8; width * height];
    let mut blue = vec![0u8; chroma_width * chroma_height];
    let mut red = vec![0u8; chroma_width * chroma_height];
    // SAFETY: libwebp is told to write the three planes into `luma`, `blue` and `red`, whose sizes
    // and strides (rows of `width` and `chroma_width` bytes) are exactly the planes of a picture
    // of this size; they outlive the call, and the file has no alpha plane to write.
    unsafe {
        let mut config: WebPDecoderConfig = std::mem::zeroed();
        if !WebPInitDecoderConfig(&mut config) {
            return Err(ImageError::Corrupt("libwebp version mismatch".into()));
        }
        config.output.colorspace = WEBP_CSP_MODE::MODE_YUV;
        // libwebp's own rule when it rescales: below 3/4 of the size the deblocking filter's
        // work is lost in the reduction (intra prediction does not use filtered pixels).
        if target.0 < full.0 * 3 / 4 && target.1 < full.1 * 3 / 4 {
            config.options.bypass_filtering = 1;
        }
        config.output.is_external_memory = 1;
        let planes = &mut config.output.u.YUVA;
        planes.y = luma.as_mut_ptr();
        planes.y_stride = width as i32;
        planes.y_size = luma.len();
        planes.u = blue.as_mut_ptr();
        planes.u_stride = chroma_width as i32;
        planes.u_size = blue.len();
        planes.v = red.as_mut_ptr();
        planes.v_stride = chroma_width as i32;
        planes.v_size = red.len();
        let status = WebPDecode(bytes.as_ptr(), bytes.len(), &mut config);
        WebPFreeDecBuffer(&mut config.output);
        if status != VP8StatusCode::VP8_STATUS_OK {
            return Err(status_error(status, max_decode_bytes));
        }
    }
    let mut resizer = Resizer::new();
    let luma = resize_plane(&mut resizer, luma, (full.0, full.1), target)?;
    let chroma = (chroma_width as u32, chroma_height as u32);
    let blue = resize_plane(&mut resizer, blue, chroma, target)?;
    let red = resize_plane(&mut resizer, red, chroma, target)?;
    Ok(yuv_to_rgb(&luma, &blue, &red))
}

fn resize_plane(
    resizer: &mut Resizer,
    plane: Vec<u8>,
    from: (u32, u32),
    to: (u32, u32),
) -> Result<Vec<u8>, ImageError> {
    let source = Image::from_vec_u8(from.0, from.1, plane, PixelType::U8)
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    Ok(resize(resizer, source, to, &lanczos3(), false)?.into_vec())
}

/// VP8's colours: ITU-R BT.601 with studio-range luma (16-235) and chroma (16-240). Fixed point
/// with 14 fractional bits.
fn yuv_to_rgb(luma: &[u8], blue: &[u8], red: &[u8]) -> Vec<u8> {
    const ONE: i32 = 1 << 14;
    // 255/219 for luma; the chroma weights of BT.601 scaled by 255/224.
    let y_scale = (1.164_383_6 * ONE as f32).round() as i32;
    let r_from_v = (1.596_026_8 * ONE as f32).round() as i32;
    let g_from_u = (0.391_762_3 * ONE as f32).round() as i32;
    let g_from_v = (0.812_967_6 * ONE as f32).round() as i32;
    let b_from_u = (2.017_232_1 * ONE as f32).round() as i32;
    let clamp = |x: i32| ((x + ONE / 2) >> 14).clamp(0, 255) as u8;
    let mut rgb = Vec::with_capacity(luma.len() * 3);
    for ((&y, &u), &v) in luma.iter().zip(blue).zip(red) {
        let y = (i32::from(y) - 16) * y_scale;
        let (u, v) = (i32::from(u) - 128, i32::from(v) - 128);
        rgb.push(clamp(y + r_from_v * v));
        rgb.push(clamp(y - g_from_u * u - g_from_v * v));
        rgb.push(clamp(y + b_from_u * u));
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::webp::encode;

    fn limits(reduce_to_edge: u32) -> DecodeLimits {
        DecodeLimits::for_tests(reduce_to_edge, reduce_to_edge)
    }

    fn wood() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/good/wood-4096x4096.webp"
        ))
        .unwrap()
    }

    #[test]
    fn a_lossy_opaque_picture_is_resampled_straight_to_the_largest_variant() {
        let wood = wood();
        for (edge, size) in [(300, 300), (800, 800), (1200, 1200), (5000, 4096)] {
            // `reduce_to_edge` (the power-of-two rule) does not apply to this path.
            let limits = DecodeLimits {
                reduce_to_edge: edge * 2,
                ..limits(edge)
            };
            let d = decode(&wood, &limits).unwrap().unwrap();
            assert_eq!((d.width, d.height), (size, size), "largest variant {edge}");
            assert_eq!((d.full_width, d.full_height), (4096, 4096));
            assert_eq!(d.pixels.len(), (size * size * 3) as usize);
            assert_eq!(d.layout, PixelLayout::Rgb);
        }
    }

    #[test]
    fn the_resampled_planes_match_rgb_decoded_at_full_size_then_resized() {
        let wood = wood();
        let small = decode(&wood, &limits(400)).unwrap().unwrap();
        let full = decode(&wood, &limits(u32::MAX)).unwrap().unwrap();
        assert_eq!((full.width, full.height), (4096, 4096));
        // The same reduction done the plain way: libwebp's RGB at full size, then Lanczos.
        let source = Image::from_vec_u8(4096, 4096, full.pixels, PixelType::U8x3).unwrap();
        let mut expected = Image::new(400, 400, PixelType::U8x3);
        Resizer::new()
            .resize(&source, &mut expected, &lanczos3())
            .unwrap();
        let (got, want) = (&small.pixels, expected.buffer());
        assert_eq!(got.len(), want.len());
        // Per channel, so swapped chroma planes or a wrong colour matrix would show.
        for channel in 0..3 {
            let diff: u64 = got
                .iter()
                .zip(want)
                .skip(channel)
                .step_by(3)
                .map(|(&a, &b)| u64::from(a.abs_diff(b)))
                .sum();
            let mean = diff as f64 / (400.0 * 400.0);
            assert!(mean < 1.5, "channel {channel}: mean difference {mean}");
        }
    }

    #[test]
    fn lossless_and_alpha_pictures_are_reduced_by_powers_of_two() {
        let (w, h) = (1000u32, 600u32);
        let rgba: Vec<u8> = (0..w * h)
            .flat_map(|i| [(i % w) as u8, (i / w) as u8, 90, (i % 251) as u8])
            .collect();
        let mut file = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut file)
            .encode(&rgba, w, h, image::ExtendedColorType::Rgba8)
            .unwrap();
        for (reduce_to, size) in [(200, (250, 150)), (300, (500, 300)), (600, (1000, 600))] {
            let d = decode(&file, &limits(reduce_to)).unwrap().unwrap();
            assert_eq!((d.width, d.height), size, "reduce to {reduce_to}");
            assert_eq!(d.layout, PixelLayout::Rgba);
            assert_eq!(d.pixels.len(), (size.0 * size.1 * 4) as usize);
        }
        // At full size, lossless means exactly the pixels written.
        let d = decode(&file, &limits(1000)).unwrap().unwrap();
        assert_eq!(d.pixels, rgba);
    }

    #[test]
    fn truncated_and_corrupt_files_are_errors() {
        let wood = wood();
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
}
