//! Colour on the way to the variants: 8-bit pixels with alpha flattened onto the background, and
//! the embedded ICC profile's conversion to sRGB (the output is always sRGB without a profile).

use fast_image_resize::PixelType;
use image::DynamicImage;
use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};

/// What an embedded profile takes to reach sRGB.
pub(crate) enum ToSrgb {
    Transform(std::sync::Arc<moxcms::Transform8BitExecutor>),
    /// The profile is sRGB: the pixels are what they would become.
    Nothing,
    /// Nothing it can apply to (an unreadable profile, a grey or CMYK one): those pixels are
    /// used as they are.
    Unusable,
}

/// A transform from an embedded RGB profile to sRGB, unless the profile is sRGB already.
pub(crate) fn srgb_transform(icc: &[u8], grey: bool) -> ToSrgb {
    if grey {
        return ToSrgb::Unusable;
    }
    let Ok(profile) = ColorProfile::new_from_slice(icc) else {
        return ToSrgb::Unusable;
    };
    if profile.color_space != DataColorSpace::Rgb {
        return ToSrgb::Unusable;
    }
    let srgb = ColorProfile::new_srgb();
    // Building a transform costs more than encoding a small picture (0.5 ms): most embedded
    // profiles are sRGB, which needs none.
    if is_srgb(&profile, &srgb) {
        return ToSrgb::Nothing;
    }
    match profile.create_transform_8bit(
        Layout::Rgb,
        &srgb,
        Layout::Rgb,
        TransformOptions::default(),
    ) {
        Ok(transform) => ToSrgb::Transform(transform),
        Err(_) => ToSrgb::Unusable,
    }
}

/// A matrix/curve RGB profile whose primaries are sRGB's and whose curves give back every 8-bit
/// value unchanged through sRGB's: converting from it would change no pixel.
fn is_srgb(profile: &ColorProfile, srgb: &ColorProfile) -> bool {
    let luts = [
        &profile.lut_a_to_b_perceptual,
        &profile.lut_a_to_b_colorimetric,
        &profile.lut_a_to_b_saturation,
    ];
    if luts.iter().any(|lut| lut.is_some()) {
        return false;
    }
    let near = |a: &moxcms::Xyzd, b: &moxcms::Xyzd| {
        (a.x - b.x).abs() < 2e-3 && (a.y - b.y).abs() < 2e-3 && (a.z - b.z).abs() < 2e-3
    };
    if !(near(&profile.red_colorant, &srgb.red_colorant)
        && near(&profile.green_colorant, &srgb.green_colorant)
        && near(&profile.blue_colorant, &srgb.blue_colorant))
    {
        return false;
    }
    // Each curve, linearised for 8-bit input, encoded back with sRGB's curve, lands on the value
    // it started from.
    let encode = |linear: f32| {
        let v = f64::from(linear.clamp(0.0, 1.0));
        255.0
            * if v <= 0.003_130_8 {
                12.92 * v
            } else {
                1.055 * v.powf(1.0 / 2.4) - 0.055
            }
    };
    [&profile.red_trc, &profile.green_trc, &profile.blue_trc]
        .into_iter()
        .all(|trc| match profile.build_8bit_lin_table(trc) {
            Ok(table) => table
                .iter()
                .enumerate()
                .all(|(code, &linear)| (encode(linear) - code as f64).abs() < 0.5),
            Err(_) => false,
        })
}

/// 8-bit pixels: grey stays grey (smaller JPEGs), colour becomes RGB, alpha is blended onto the
/// background, 16-bit and palette images are converted.
pub(crate) fn flatten(image: DynamicImage, background: [u8; 3]) -> (Vec<u8>, PixelType, bool) {
    let colour = image.color();
    let grey = !colour.has_color();
    match (grey, colour.has_alpha()) {
        (true, false) => (image.into_luma8().into_raw(), PixelType::U8, true),
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
            (pixels, PixelType::U8, true)
        }
        (false, false) => (image.into_rgb8().into_raw(), PixelType::U8x3, false),
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
            (pixels, PixelType::U8x3, false)
        }
    }
}
