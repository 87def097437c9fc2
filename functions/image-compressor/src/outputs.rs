//! An upload's outputs (each variant in each format) as the destination bucket holds them, and
//! what they say about themselves: which variants are settled, and which belong in the manifest.

use domain::ports::ObjectInfo;

use crate::encode::{OutputFormat, ALL, JPEG};

/// One output of an upload: a variant in one format.
pub(crate) struct Output {
    pub variant: String,
    pub format: &'static OutputFormat,
    pub key: String,
    /// What it says about itself, when it is stored for the version at hand.
    pub stored: Option<Described>,
    /// An object is there, of this version or another.
    pub occupied: bool,
}

/// The JPEG output of `output`'s variant, as stored for the version at hand.
fn stored_jpeg<'a>(outputs: &'a [Output], variant: &str) -> Option<&'a Described> {
    outputs
        .iter()
        .find(|o| o.variant == variant && o.format.extension == JPEG.extension)
        .and_then(|o| o.stored.as_ref())
}

/// Whether `output` belongs in the manifest: stored for the version at hand, and named by its
/// variant's JPEG (written last) as written beside it.
pub(crate) fn listed(outputs: &[Output], output: &Output) -> bool {
    output.stored.is_some()
        && stored_jpeg(outputs, &output.variant)
            .is_some_and(|jpeg| jpeg.formats_written.contains(&output.format.extension))
}

/// The variants whose files are not all settled for the version at hand: the JPEG is missing (it is
/// written last), or it records no attempt at a format `FORMATS` now lists, or a format it records
/// as written beside it is missing.
pub(crate) fn unsettled(outputs: &[Output]) -> Vec<String> {
    let mut variants: Vec<String> = Vec::new();
    for output in outputs {
        let settled = stored_jpeg(outputs, &output.variant).is_some_and(|jpeg| {
            let extension = output.format.extension;
            jpeg.formats_tried.contains(&extension)
                && (output.stored.is_some() || !jpeg.formats_written.contains(&extension))
        });
        if !settled && !variants.contains(&output.variant) {
            variants.push(output.variant.clone());
        }
    }
    variants
}

/// What a stored variant's metadata and size say, as the manifest lists it.
pub(crate) struct Described {
    pub width: u32,
    pub height: u32,
    pub source_width: u32,
    pub source_height: u32,
    pub bytes: u64,
    /// A JPEG's `formats-written` and `formats-tried` (extensions; `jpg` alone for a JPEG written
    /// before they were recorded).
    pub formats_written: Vec<&'static str>,
    pub formats_tried: Vec<&'static str>,
}

impl Described {
    /// `None` when a field is missing or unreadable: such a variant is written again.
    pub(crate) fn from_head(head: &ObjectInfo) -> Option<Described> {
        let number = |name: &str| head.metadata.get(name)?.parse::<u32>().ok();
        let formats = |name: &str| -> Vec<&'static str> {
            let recorded = head.metadata.get(name).map(String::as_str).unwrap_or("jpg");
            ALL.into_iter()
                .map(|f| f.extension)
                .filter(|extension| recorded.split('.').any(|e| e == *extension))
                .collect()
        };
        Some(Described {
            width: number("width")?,
            height: number("height")?,
            source_width: number("source-width")?,
            source_height: number("source-height")?,
            bytes: head.size,
            formats_written: formats("formats-written"),
            formats_tried: formats("formats-tried"),
        })
    }
}
