//! Image variants: their configuration and the sizing rules (fit inside a box, never upscale).

use std::collections::HashSet;

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

/// `photos/cat.png` → `thumbnail/photos/cat.jpg` (only the last extension is replaced).
pub fn variant_key(variant: &str, source_key: &str, extension: &str) -> String {
    let file_start = source_key.rfind('/').map_or(0, |i| i + 1);
    let stem = match source_key[file_start..].rfind('.') {
        Some(dot) if dot > 0 => &source_key[..file_start + dot],
        _ => source_key,
    };
    format!("{variant}/{stem}.{extension}")
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
    fn variant_keys_replace_only_the_extension() {
        assert_eq!(
            variant_key("small", "a/b/cat.png", "jpg"),
            "small/a/b/cat.jpg"
        );
        assert_eq!(variant_key("small", "cat", "jpg"), "small/cat.jpg");
        assert_eq!(variant_key("small", "a.b/cat", "jpg"), "small/a.b/cat.jpg");
        assert_eq!(variant_key("small", "x.tar.gz", "jpg"), "small/x.tar.jpg");
        assert_eq!(variant_key("small", ".hidden", "jpg"), "small/.hidden.jpg");
    }
}
