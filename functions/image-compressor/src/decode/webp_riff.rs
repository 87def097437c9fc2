//! The WebP RIFF container read from its chunk headers alone: an animation's frames, and the EXIF
//! orientation and ICC profile.

use image::metadata::Orientation;

/// A frame of an animated WebP (an `ANMF` chunk): its size, and the kind of its bitstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame {
    pub width: u32,
    pub height: u32,
    /// `ALPH`, `VP8 ` or `VP8L`.
    pub kind: [u8; 4],
}

/// The RIFF chunks at the top level: (fourcc, payload). Stops at the first that runs past the end.
fn chunks(bytes: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut at = 12; // "RIFF", size, "WEBP"
    std::iter::from_fn(move || {
        let header = bytes.get(at..at + 8)?;
        let kind = [header[0], header[1], header[2], header[3]];
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let payload = bytes.get(at + 8..(at + 8).checked_add(size)?)?;
        // Chunks are padded to an even length.
        at = at + 8 + size + (size & 1);
        Some((kind, payload))
    })
}

/// Every frame of an animated WebP, from the `ANMF` chunks' headers (nothing is decoded).
pub(super) fn animation_frames(bytes: &[u8]) -> Vec<Frame> {
    let u24 = |b: &[u8]| u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
    chunks(bytes)
        .filter(|(kind, _)| kind == b"ANMF")
        .filter_map(|(_, payload)| {
            let header = payload.get(..20)?;
            Some(Frame {
                width: u24(&header[6..9]) + 1,
                height: u24(&header[9..12]) + 1,
                kind: [header[16], header[17], header[18], header[19]],
            })
        })
        .collect()
}

/// What the generic decoder allocates for an animated file's first frame besides the canvas and
/// the picture: the frame's RGBA, its lossy planes or lossless pixels, and an alpha plane with
/// its own lossless decoder.
pub(crate) fn first_frame_bytes(bytes: &[u8]) -> u64 {
    animation_frames(bytes).first().map_or(0, |frame| {
        let pixels = u64::from(frame.width) * u64::from(frame.height);
        let planes = match &frame.kind {
            b"VP8L" => 4 * pixels,
            b"ALPH" => 3 * pixels / 2 + 5 * pixels,
            _ => 3 * pixels / 2,
        };
        4 * pixels + planes
    })
}

/// The EXIF orientation and the ICC profile from the RIFF container's `EXIF` and `ICCP` chunks.
pub(super) fn metadata(bytes: &[u8]) -> (Orientation, Option<Vec<u8>>) {
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
