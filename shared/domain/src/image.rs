//! Image variants: their configuration and the sizing rules (fit inside a box, never upscale).

use std::collections::HashSet;

use crate::ports::MAX_OBJECT_KEY_BYTES;

/// One output size: the image is fitted inside a `max_edge` × `max_edge` box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantSpec {
    pub name: String,
    pub max_edge: u32,
}

pub const DEFAULT_VARIANTS: &str = "thumbnail:150,small:300,medium:600,large:1200";
pub const MAX_EDGE_LIMIT: u32 = 10_000;

/// Parses `thumbnail:150,small:300` into variant specs (names are key prefixes, so kept simple).
pub fn parse_variants(text: &str) -> Result<Vec<VariantSpec>, String> {
    let mut specs = Vec::new();
    let mut names = HashSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, size) = part
            .split_once(':')
            .ok_or_else(|| format!("variant `{part}` must look like name:size, e.g. small:300"))?;
        let name = name.trim();
        if name.is_empty()
            || name.len() > 32
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(format!(
                "variant name `{name}` must be 1-32 characters of a-z, 0-9, - or _"
            ));
        }
        let max_edge: u32 = size
            .trim()
            .parse()
            .ok()
            .filter(|s| (1..=MAX_EDGE_LIMIT).contains(s))
            .ok_or_else(|| {
                format!("variant `{name}` size must be a whole number from 1 to {MAX_EDGE_LIMIT}")
            })?;
        if !names.insert(name.to_string()) {
            return Err(format!("variant `{name}` is listed twice"));
        }
        specs.push(VariantSpec {
            name: name.to_string(),
            max_edge,
        });
    }
    if specs.is_empty() {
        return Err("at least one variant is required, e.g. thumbnail:150".into());
    }
    Ok(specs)
}

/// The size of `width` × `height` fitted inside a `max_edge` box, keeping the aspect ratio and never
/// upscaling. Each side is at least 1 pixel.
pub fn fit_within(width: u32, height: u32, max_edge: u32) -> (u32, u32) {
    if width == 0 || height == 0 {
        return (width, height);
    }
    if width <= max_edge && height <= max_edge {
        return (width, height);
    }
    let (w, h, m) = (u64::from(width), u64::from(height), u64::from(max_edge));
    if width >= height {
        let new_h = ((h * m + w / 2) / w).max(1);
        (max_edge, new_h as u32)
    } else {
        let new_w = ((w * m + h / 2) / h).max(1);
        (new_w as u32, max_edge)
    }
}

/// Display dimensions after applying an EXIF orientation (5–8 swap width and height).
pub fn oriented_dimensions(width: u32, height: u32, orientation: u8) -> (u32, u32) {
    if (5..=8).contains(&orientation) {
        (height, width)
    } else {
        (width, height)
    }
}

/// The SHA-256 of a source key's UTF-8 bytes, in lower-case hex: the name of a variant whose key
/// would be too long (see `variant_key`), and what a variant's metadata holds in place of a source
/// key too long for it.
pub fn source_key_sha256(source_key: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(source_key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where the `extension` output of `variant` for the upload `source_key` is written: the whole
/// source key, extension included, under the variant's name, with the output's extension added:
/// `photos/cat.png` → `thumbnail/photos/cat.png.jpg`, `photos/cat` → `thumbnail/photos/cat.jpg`.
///
/// When that would be longer than an object key may be (`MAX_OBJECT_KEY_BYTES`, 1024 bytes), the key
/// is `<variant>.sha256/<source_key_sha256(source_key)>.<extension>` instead. No key of the first
/// form starts with `<variant>.` (variant names have no dot), so the forms never meet: two different
/// source keys never share a variant key.
pub fn variant_key(variant: &str, source_key: &str, extension: &str) -> String {
    let readable = format!("{variant}/{source_key}.{extension}");
    if readable.len() <= MAX_OBJECT_KEY_BYTES {
        readable
    } else {
        format!(
            "{variant}.sha256/{}.{extension}",
            source_key_sha256(source_key)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_variants_parse() {
        let v = parse_variants(DEFAULT_VARIANTS).unwrap();
        let pairs: Vec<(&str, u32)> = v.iter().map(|s| (s.name.as_str(), s.max_edge)).collect();
        assert_eq!(
            pairs,
            [
                ("thumbnail", 150),
                ("small", 300),
                ("medium", 600),
                ("large", 1200)
            ]
        );
        assert_eq!(parse_variants(" compressed:800 ").unwrap()[0].max_edge, 800);
    }

    #[test]
    fn bad_variant_lists_are_explained() {
        for bad in [
            "", "small", "small:0", "small:x", "Small:10", "a:1,a:2", "a:10001", "../x:5",
        ] {
            assert!(parse_variants(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fitting_keeps_aspect_and_never_upscales() {
        assert_eq!(fit_within(4000, 3000, 1200), (1200, 900));
        assert_eq!(fit_within(3000, 4000, 1200), (900, 1200));
        assert_eq!(fit_within(1920, 1280, 150), (150, 100));
        assert_eq!(fit_within(100, 50, 150), (100, 50));
        assert_eq!(fit_within(150, 150, 150), (150, 150));
        assert_eq!(fit_within(10000, 1, 100), (100, 1));
        assert_eq!(fit_within(1, 10000, 100), (1, 100));
        assert_eq!(fit_within(65535, 65535, 1), (1, 1));
    }

    #[test]
    fn orientation_swaps_for_rotations() {
        for o in 1..=4 {
            assert_eq!(oriented_dimensions(1920, 1280, o), (1920, 1280));
        }
        for o in 5..=8 {
            assert_eq!(oriented_dimensions(1920, 1280, o), (1280, 1920));
        }
    }

    #[test]
    fn variant_keys_keep_the_whole_source_key() {
        assert_eq!(
            variant_key("small", "a/b/cat.png", "jpg"),
            "small/a/b/cat.png.jpg"
        );
        assert_eq!(variant_key("small", "cat", "jpg"), "small/cat.jpg");
        assert_eq!(
            variant_key("small", "a.b/cat", "webp"),
            "small/a.b/cat.webp"
        );
        assert_eq!(
            variant_key("small", "x.tar.gz", "jpg"),
            "small/x.tar.gz.jpg"
        );
        let siblings: HashSet<String> = ["a.png", "a.jpg", "a.webp", "a", "a.jpg.jpg"]
            .iter()
            .flat_map(|k| ["jpg", "webp"].map(|e| variant_key("thumbnail", k, e)))
            .collect();
        assert_eq!(siblings.len(), 10, "{siblings:?}");
    }

    #[test]
    fn a_key_too_long_for_the_readable_form_is_named_by_its_hash() {
        // 341 three-byte characters and one byte: the longest key S3 accepts.
        let longest = format!("{}x", "写".repeat(341));
        assert_eq!(longest.len(), MAX_OBJECT_KEY_BYTES);
        let key = variant_key("thumbnail", &longest, "jpg");
        assert_eq!(
            key,
            format!("thumbnail.sha256/{}.jpg", source_key_sha256(&longest))
        );
        assert!(key.len() <= MAX_OBJECT_KEY_BYTES);
        // The readable form is kept up to the limit itself.
        let fits = "k".repeat(MAX_OBJECT_KEY_BYTES - "thumbnail/.jpg".len());
        assert_eq!(
            variant_key("thumbnail", &fits, "jpg").len(),
            MAX_OBJECT_KEY_BYTES
        );
        assert!(
            variant_key("thumbnail", &format!("{fits}k"), "jpg").starts_with("thumbnail.sha256/")
        );
        assert_eq!(
            source_key_sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
