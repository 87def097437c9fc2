//! A GIF's first frame, composed straight to RGB on the background.

use std::io::Cursor;

use image::DynamicImage;

use super::{DecodeLimits, Source};
use crate::error::ImageError;
use crate::memory_budget::{self, Peak, Shape};

/// A GIF's first frame, as the generic decoder composes it (on its logical screen, transparent
/// where the frame has no pixel), straight to RGB on the background: palette indices are looked up
/// once, with no RGBA canvas to allocate and then flatten, which cost small GIFs more than the
/// rest of their processing.
pub(super) fn decode_first_frame(
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<Source, ImageError> {
    let error = |e: gif::DecodingError| match e {
        gif::DecodingError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageError::Truncated
        }
        other => ImageError::Corrupt(other.to_string()),
    };
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    options.set_memory_limit(gif::MemoryLimit::Bytes(
        std::num::NonZeroU64::new(limits.max_decode_bytes).unwrap_or(std::num::NonZeroU64::MIN),
    ));
    let mut decoder = options.read_info(Cursor::new(bytes)).map_err(error)?;
    let (width, height) = (u32::from(decoder.width()), u32::from(decoder.height()));
    limits.check_size(width, height, bytes.len())?;
    if u64::from(width) * u64::from(height) * 3 > limits.max_decode_bytes {
        return Err(ImageError::TooMuchMemory(limits.max_decode_bytes));
    }
    // Every frame's own rectangle is held to the pixel bounds, not just the screen: a frame may be
    // far larger than the screen it is shown on, and its buffer is the frame's size.
    for (frame_width, frame_height) in gif_frame_sizes(bytes) {
        if frame_width > 0 && frame_height > 0 {
            limits.check_size(frame_width, frame_height, bytes.len())?;
        }
    }
    let global = decoder.global_palette().map(<[u8]>::to_vec);
    let frame = decoder
        .next_frame_info()
        .map_err(error)?
        .ok_or_else(|| ImageError::Corrupt("a GIF without a frame".into()))?;
    let (frame_width, frame_height) = (u32::from(frame.width), u32::from(frame.height));
    limits.check_size(frame_width, frame_height, bytes.len())?;
    let (left, top) = (usize::from(frame.left), usize::from(frame.top));
    let (palette, transparent) = (frame.palette.clone(), frame.transparent);
    // The frame's indices (one byte a pixel), then the screen as RGB.
    let mut peak = Peak::new(bytes.len());
    peak.alloc(u64::from(frame_width) * u64::from(frame_height));
    let screen = Shape::rgb8(width, height);
    peak.alloc(screen.bytes());
    peak.free(u64::from(frame_width) * u64::from(frame_height));
    memory_budget::check(peak, screen, (width, height), &limits.work)?;
    let mut indices = vec![0; decoder.buffer_size()];
    decoder.read_into_buffer(&mut indices).map_err(error)?;
    let palette = palette.as_deref().or(global.as_deref()).unwrap_or(&[]);
    let background = limits.background;
    // Each index's colour. A transparent index, or one past the palette (no colour), shows the
    // background, as does the screen outside the frame.
    let mut colours = [background; 256];
    for (colour, rgb) in colours.iter_mut().zip(palette.chunks_exact(3)) {
        colour.copy_from_slice(rgb);
    }
    if let Some(transparent) = transparent {
        colours[usize::from(transparent)] = background;
    }
    let (screen_width, screen_height) = (width as usize, height as usize);
    let mut pixels = background.repeat(screen_width * screen_height);
    let frame_width = frame_width as usize;
    let visible = frame_width.min(screen_width.saturating_sub(left));
    if visible > 0 {
        let rows = indices.chunks_exact(frame_width);
        for (y, row) in rows.take(screen_height.saturating_sub(top)).enumerate() {
            let start = ((top + y) * screen_width + left) * 3;
            let out = &mut pixels[start..start + visible * 3];
            for (rgb, &index) in out.chunks_exact_mut(3).zip(&row[..visible]) {
                rgb.copy_from_slice(&colours[usize::from(index)]);
            }
        }
    }
    drop(indices);
    let image = image::RgbImage::from_raw(width, height, pixels)
        .map(DynamicImage::ImageRgb8)
        .ok_or_else(|| ImageError::Corrupt("decoded picture of an unexpected size".into()))?;
    Ok(Source {
        image,
        width,
        height,
        icc: None,
        cheap_decode: false,
    })
}

/// The size of every frame of a GIF, from its image descriptors (the data blocks are skipped, not
/// decoded). Stops where the structure ends or breaks: the decoder reports what is wrong.
fn gif_frame_sizes(bytes: &[u8]) -> Vec<(u32, u32)> {
    let mut sizes = Vec::new();
    // Header and logical screen descriptor, then the global colour table if flagged.
    let Some(&flags) = bytes.get(10) else {
        return sizes;
    };
    let mut at = 13;
    if flags & 0x80 != 0 {
        at += 3 << ((flags & 7) + 1);
    }
    // Skips a chain of sub-blocks (each a length byte and its bytes, ending with a 0 length).
    let skip_blocks = |mut at: usize| -> Option<usize> {
        loop {
            let length = usize::from(*bytes.get(at)?);
            at += 1;
            if length == 0 {
                return Some(at);
            }
            at += length;
        }
    };
    while let Some(&introducer) = bytes.get(at) {
        let next = match introducer {
            // Extension: label, then sub-blocks.
            0x21 => skip_blocks(at + 2),
            // Image descriptor: position, size, flags, a local colour table, LZW code size, data.
            0x2C => bytes.get(at + 1..at + 10).and_then(|d| {
                let width = u16::from_le_bytes([d[4], d[5]]);
                let height = u16::from_le_bytes([d[6], d[7]]);
                sizes.push((u32::from(width), u32::from(height)));
                let mut data = at + 10;
                if d[8] & 0x80 != 0 {
                    data += 3 << ((d[8] & 7) + 1);
                }
                skip_blocks(data + 1)
            }),
            _ => None,
        };
        match next {
            Some(next) => at = next,
            None => break,
        }
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::colour::flatten;
    use image::ImageReader;

    #[test]
    fn a_gif_decodes_to_the_pixels_the_generic_decoder_gives_flattened() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut gifs = Vec::new();
        for dir in [root.join("testdata/good"), root.join("../../bench/corpus")] {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "gif") {
                    gifs.push(path);
                }
            }
        }
        assert!(gifs.len() >= 8, "{gifs:?}");
        let limits = DecodeLimits {
            background: [250, 40, 120],
            ..DecodeLimits::for_tests(u32::MAX, u32::MAX)
        };
        for path in gifs {
            let bytes = std::fs::read(&path).unwrap();
            let fast = decode_first_frame(&bytes, &limits).unwrap();
            let reader = ImageReader::new(Cursor::new(&bytes[..]))
                .with_guessed_format()
                .unwrap();
            let generic = super::super::generic::decode(reader, &bytes, &limits).unwrap();
            assert_eq!(
                (fast.width, fast.height),
                (generic.width, generic.height),
                "{path:?}"
            );
            let (want, _, _) = flatten(generic.image, limits.background);
            let (got, _, _) = flatten(fast.image, limits.background);
            assert!(got == want, "{path:?}: pixels differ");
        }
    }
}
