//! A JPEG's frame and scans, read from its markers alone (no entropy decoding): whether the file
//! holds a whole picture, and the file without its last-bit AC scans.

/// One scan of a JPEG file: where its bytes are, and which bits of which coefficients it carries.
pub(super) struct Scan {
    /// From its start-of-scan marker to the end of its entropy-coded data.
    pub bytes: std::ops::Range<usize>,
    /// Component ids.
    pub components: Vec<u8>,
    /// First and last coefficient (zigzag order), and the bit positions before and after it.
    pub ss: u8,
    pub se: u8,
    pub ah: u8,
    pub al: u8,
}

impl Scan {
    /// A successive-approximation scan that sends AC coefficients' last bit: nothing follows it
    /// for those coefficients, so a decoder may leave it out and keep every other scan valid.
    pub(super) fn refines_last_ac_bit(&self) -> bool {
        self.ss > 0 && self.ah > 0 && self.al == 0
    }
}

/// A JPEG's frame and scans, read from its markers alone (no entropy decoding).
pub(super) struct Layout {
    pub progressive: bool,
    /// Component ids, from the frame header.
    pub components: Vec<u8>,
    pub scans: Vec<Scan>,
    /// An end-of-image marker follows the last scan.
    pub ends: bool,
}

/// Walks the marker structure; `None` when a segment runs past the end of the file.
pub(super) fn layout(bytes: &[u8]) -> Option<Layout> {
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
    pub(super) fn is_whole(&self) -> bool {
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
    pub(super) fn without_last_ac_bits(&self, bytes: &[u8]) -> Option<Vec<u8>> {
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
