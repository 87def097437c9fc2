//! Lanczos reductions (SIMD, `fast_image_resize`): the filter every variant is made with.

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};

use crate::error::ImageError;

/// The filter of every reduction.
pub(crate) fn lanczos3() -> ResizeOptions {
    ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
}

/// From this many pixels in a variant on, the first reduction runs as two passes of our own.
pub(crate) const SPLIT_RESIZE_PIXELS: u64 = 512 * 1024;

/// Lanczos from `source` to `size`. One resizer call keeps the source, its scratch image (source
/// width x result height) and the result alive together; `split` runs the two passes as calls of
/// our own instead, down then across, freeing the source before the result exists: the result's
/// size less at the peak (2.4 MB for a 1200-px variant of a 9.4 MP photo), for one more fresh
/// buffer to fill (measured in BENCHMARKS.md). The same arithmetic either way.
pub(crate) fn resize(
    resizer: &mut Resizer,
    source: Image<'static>,
    (width, height): (u32, u32),
    options: &ResizeOptions,
    split: bool,
) -> Result<Image<'static>, ImageError> {
    let pixel_type = source.pixel_type();
    let steps = if split {
        vec![(source.width(), height), (width, height)]
    } else {
        vec![(width, height)]
    };
    let mut current = source;
    for size in steps {
        if size != (current.width(), current.height()) {
            let mut target = Image::new(size.0, size.1, pixel_type);
            resizer
                .resize(&current, &mut target, options)
                .map_err(|e| ImageError::Encode(e.to_string()))?;
            current = target;
        }
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fast_image_resize::PixelType;

    #[test]
    fn a_split_resize_matches_one_call() {
        let (w, h) = (301u32, 200u32);
        let pixels: Vec<u8> = (0..w * h * 3)
            .map(|i| ((i * 37 + (i / 900) * 11) % 256) as u8)
            .collect();
        let options = lanczos3();
        let mut resizer = Resizer::new();
        let mut results = Vec::new();
        for split in [false, true] {
            let source = Image::from_vec_u8(w, h, pixels.clone(), PixelType::U8x3).unwrap();
            let out = resize(&mut resizer, source, (120, 80), &options, split).unwrap();
            assert_eq!((out.width(), out.height()), (120, 80));
            results.push(out.into_vec());
        }
        // Both orders round between the passes, so they may differ by a level here and there.
        let worst = results[0]
            .iter()
            .zip(&results[1])
            .map(|(a, b)| a.abs_diff(*b))
            .max();
        assert!(worst <= Some(2), "{worst:?}");
        assert_ne!(results[0], vec![0; results[0].len()]);
    }
}
