//! The manifest of an upload: every variant written for one version of a source object, grouped by
//! format in the order a browser should prefer them, each group with a ready `srcset` string naming
//! every width (in the next most compact format where a variant has no file of the group's), so a
//! front-end turns it into a `<picture>` without knowing the key scheme. A JPEG's URL says which
//! modern formats its variant also has (`?formats=avif.webp`), for the edge function that serves
//! a plain `<img>` in the most compact of them a browser accepts.
//!
//! It is written to `manifest/<source key>.json` (or `manifest.sha256/<hex>.json` when that key would
//! be too long, as for variants: `domain::image::variant_key`), after every variant it lists exists.

use domain::image::variant_key;
use serde::Serialize;

/// The key prefix of manifests: a variant may not have this name (see `config`).
pub const MANIFEST_PREFIX: &str = "manifest";
pub const MANIFEST_CONTENT_TYPE: &str = "application/json";
/// The shape's version, raised whenever a field changes meaning or goes away.
pub const MANIFEST_VERSION: u32 = 1;

/// Where the manifest of `source_key` is written.
pub fn manifest_key(source_key: &str) -> String {
    variant_key(MANIFEST_PREFIX, source_key, "json")
}

/// The version of the source a manifest describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceImage {
    pub key: String,
    pub etag: String,
    /// Display dimensions (after the EXIF orientation).
    pub width: u32,
    pub height: u32,
}

/// One variant object as it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVariant {
    /// The variant's name (`thumbnail`, ...).
    pub variant: String,
    /// Its object key in the variants bucket.
    pub key: String,
    /// Its MIME type (`image/jpeg`, ...).
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    pub version: u32,
    pub source: Source,
    /// One group per format, the most compact first and JPEG last: the order of `<source>` elements.
    pub formats: Vec<FormatGroup>,
    /// The largest JPEG: the `<img>` of a `<picture>`, readable by every client.
    pub fallback: Option<Image>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    pub key: String,
    pub etag: String,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FormatGroup {
    /// The MIME type, as `<source type>` wants it.
    #[serde(rename = "type")]
    pub content_type: String,
    /// `<url> <width>w` for each distinct width, narrowest first.
    pub srcset: String,
    /// Every variant in this format, narrowest first.
    pub images: Vec<Image>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    pub variant: String,
    /// The URL path of the object (its key, percent-encoded), from the root of the distribution.
    pub src: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

/// The rank of a format in a `<picture>`: the better compressed first, JPEG (read everywhere) last.
fn preference(content_type: &str) -> u8 {
    match content_type {
        "image/avif" => 0,
        "image/webp" => 1,
        "image/jpeg" => 3,
        _ => 2,
    }
}

/// The extension of a modern format's files, as the edge function reads it in `formats`.
fn extension(content_type: &str) -> Option<&'static str> {
    match content_type {
        "image/avif" => Some("avif"),
        "image/webp" => Some("webp"),
        _ => None,
    }
}

/// An image as listed: a JPEG's URL says which modern formats its variant also has
/// (`?formats=avif.webp`, most compact first), so the edge function (`edge/select-format.js`) may
/// serve the JPEG's URL in one of them to a browser that accepts it, and never names a file that was
/// not written.
fn image(stored: &StoredVariant, variants: &[StoredVariant]) -> Image {
    let mut src = url_path(&stored.key);
    if stored.content_type == "image/jpeg" {
        let mut beside: Vec<&StoredVariant> = variants
            .iter()
            .filter(|v| v.variant == stored.variant && extension(&v.content_type).is_some())
            .collect();
        beside.sort_by_key(|v| preference(&v.content_type));
        let formats: Vec<&str> = beside
            .iter()
            .filter_map(|v| extension(&v.content_type))
            .collect();
        if !formats.is_empty() {
            src.push_str("?formats=");
            src.push_str(&formats.join("."));
        }
    }
    Image {
        variant: stored.variant.clone(),
        src,
        width: stored.width,
        height: stored.height,
        bytes: stored.bytes,
    }
}

/// The manifest of `source` listing `variants`: a pure function of its inputs.
pub fn build(source: &SourceImage, variants: &[StoredVariant]) -> Manifest {
    let mut types: Vec<&str> = variants.iter().map(|v| v.content_type.as_str()).collect();
    types.sort_by_key(|t| (preference(t), *t));
    types.dedup();
    let mut names: Vec<&str> = variants.iter().map(|v| v.variant.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let formats: Vec<FormatGroup> = types
        .iter()
        .map(|&content_type| {
            let mut images: Vec<Image> = variants
                .iter()
                .filter(|v| v.content_type == content_type)
                .map(|v| image(v, variants))
                .collect();
            images.sort_by_key(|image| (image.width, image.bytes));
            // Every variant has a width in each srcset: a browser that picks this `<source>` chooses
            // among its widths only. A variant without a file of this format (it was not smaller
            // than the JPEG) is named in the next most compact format it has, which such a browser
            // reads too.
            let rank = preference(content_type);
            let mut candidates: Vec<Image> = names
                .iter()
                .filter_map(|name| {
                    variants
                        .iter()
                        .filter(|v| v.variant == *name && preference(&v.content_type) >= rank)
                        .min_by_key(|v| preference(&v.content_type))
                        .map(|v| image(v, variants))
                })
                .collect();
            candidates.sort_by_key(|image| (image.width, image.bytes));
            // A srcset may name each width once: a source smaller than several boxes gives them all
            // the same size, and the smallest file of that width is the one to send.
            let mut srcset: Vec<String> = Vec::new();
            let mut last_width = None;
            for image in &candidates {
                if last_width != Some(image.width) {
                    srcset.push(format!("{} {}w", image.src, image.width));
                    last_width = Some(image.width);
                }
            }
            FormatGroup {
                content_type: content_type.to_string(),
                srcset: srcset.join(", "),
                images,
            }
        })
        .collect();
    let fallback = formats
        .iter()
        .find(|g| g.content_type == "image/jpeg")
        .or(formats.last())
        .and_then(|g| g.images.last().cloned());
    Manifest {
        version: MANIFEST_VERSION,
        source: Source {
            key: source.key.clone(),
            etag: source.etag.clone(),
            width: source.width,
            height: source.height,
        },
        formats,
        fallback,
    }
}

/// The lower-case hex SHA-256 of a manifest's bytes: kept in its metadata, so a manifest that would
/// be written again unchanged is left alone after one HEAD.
pub fn body_sha256(body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The URL path of an object key: `/` then the key with every byte other than an unreserved character
/// or `/` percent-encoded (so spaces, commas and non-ASCII keys are safe in `src` and `srcset`).
pub fn url_path(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 1);
    out.push('/');
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::image::source_key_sha256;
    use serde_json::json;

    fn source() -> SourceImage {
        SourceImage {
            key: "photos/a.png".into(),
            etag: "\"e1\"".into(),
            width: 1600,
            height: 1200,
        }
    }

    fn stored(variant: &str, ext: &str, mime: &str, w: u32, h: u32, bytes: u64) -> StoredVariant {
        StoredVariant {
            variant: variant.into(),
            key: variant_key(variant, "photos/a.png", ext),
            content_type: mime.into(),
            width: w,
            height: h,
            bytes,
        }
    }

    #[test]
    fn groups_by_format_modern_first_with_srcset_ready_for_every_width() {
        let variants = [
            stored("small", "jpg", "image/jpeg", 300, 225, 9000),
            stored("thumbnail", "jpg", "image/jpeg", 150, 113, 3000),
            stored("small", "webp", "image/webp", 300, 225, 6000),
            stored("thumbnail", "webp", "image/webp", 150, 113, 2000),
            stored("thumbnail", "avif", "image/avif", 150, 113, 1500),
        ];
        let manifest = serde_json::to_value(build(&source(), &variants)).unwrap();
        assert_eq!(
            manifest,
            json!({
                "version": 1,
                "source": {"key": "photos/a.png", "etag": "\"e1\"", "width": 1600, "height": 1200},
                "formats": [
                    // Only the thumbnail's AVIF was smaller than its JPEG: the small variant's
                    // width is served in the next most compact format it has.
                    {"type": "image/avif",
                     "srcset": "/thumbnail/photos/a.png.avif 150w, /small/photos/a.png.webp 300w",
                     "images": [{"variant": "thumbnail", "src": "/thumbnail/photos/a.png.avif",
                                 "width": 150, "height": 113, "bytes": 1500}]},
                    {"type": "image/webp",
                     "srcset": "/thumbnail/photos/a.png.webp 150w, /small/photos/a.png.webp 300w",
                     "images": [
                        {"variant": "thumbnail", "src": "/thumbnail/photos/a.png.webp",
                         "width": 150, "height": 113, "bytes": 2000},
                        {"variant": "small", "src": "/small/photos/a.png.webp",
                         "width": 300, "height": 225, "bytes": 6000}]},
                    // Each JPEG's URL names the formats its variant also has, for the edge.
                    {"type": "image/jpeg",
                     "srcset": "/thumbnail/photos/a.png.jpg?formats=avif.webp 150w, /small/photos/a.png.jpg?formats=webp 300w",
                     "images": [
                        {"variant": "thumbnail", "src": "/thumbnail/photos/a.png.jpg?formats=avif.webp",
                         "width": 150, "height": 113, "bytes": 3000},
                        {"variant": "small", "src": "/small/photos/a.png.jpg?formats=webp",
                         "width": 300, "height": 225, "bytes": 9000}]}
                ],
                "fallback": {"variant": "small", "src": "/small/photos/a.png.jpg?formats=webp",
                             "width": 300, "height": 225, "bytes": 9000}
            })
        );
    }

    #[test]
    fn a_width_shared_by_several_variants_is_named_once_in_the_srcset() {
        // A 100 × 80 source fits every box as it is: each variant has its size.
        let variants = [
            stored("small", "jpg", "image/jpeg", 100, 80, 4100),
            stored("thumbnail", "jpg", "image/jpeg", 100, 80, 4000),
        ];
        let manifest = build(&source(), &variants);
        assert_eq!(manifest.formats.len(), 1);
        assert_eq!(
            manifest.formats[0].srcset,
            "/thumbnail/photos/a.png.jpg 100w"
        );
        assert_eq!(manifest.formats[0].images.len(), 2);
    }

    #[test]
    fn urls_are_percent_encoded_paths_safe_in_a_srcset() {
        assert_eq!(
            url_path("small/summer 2024/été, 1.jpg.jpg"),
            "/small/summer%202024/%C3%A9t%C3%A9%2C%201.jpg.jpg"
        );
        assert_eq!(url_path("a/b~c_d-e.f"), "/a/b~c_d-e.f");
        assert_eq!(url_path("x?y#z%"), "/x%3Fy%23z%25");
    }

    #[test]
    fn manifest_keys_follow_the_variant_key_scheme() {
        assert_eq!(manifest_key("photos/a.png"), "manifest/photos/a.png.json");
        let longest = "k".repeat(domain::ports::MAX_OBJECT_KEY_BYTES);
        assert_eq!(
            manifest_key(&longest),
            format!("manifest.sha256/{}.json", source_key_sha256(&longest))
        );
    }

    #[test]
    fn without_variants_the_manifest_lists_nothing() {
        let manifest = build(&source(), &[]);
        assert!(manifest.formats.is_empty());
        assert_eq!(manifest.fallback, None);
    }
}
