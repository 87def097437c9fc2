//! S3 notifications, parsed leniently: real AWS events and the local emulator's (which lacks
//! `userIdentity`, `requestParameters`, `responseElements`, `sequencer`) both work, and one malformed
//! record does not spoil the others.

use std::collections::BTreeMap;

use domain::image::source_key_sha256;
use domain::ports::{metadata_bytes, MAX_METADATA_BYTES};
use serde_json::Value;

/// One `ObjectCreated` record, with its key decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub bucket: String,
    pub key: String,
}

/// What a record asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Created(Upload),
    /// Not an object creation (a deletion, a test event): nothing to do.
    Ignored(String),
    /// Missing or undecodable fields: cannot be processed, retrying will not help.
    Malformed(String),
}

/// The records of an S3 notification event (`s3:TestEvent` and other shapes give none).
pub fn records(event: &Value) -> Vec<Record> {
    match event.get("Records").and_then(Value::as_array) {
        Some(list) => list.iter().map(record).collect(),
        None => Vec::new(),
    }
}

fn record(r: &Value) -> Record {
    let name = r.get("eventName").and_then(Value::as_str).unwrap_or("");
    if !name.starts_with("ObjectCreated") {
        return Record::Ignored(format!("event {name:?} is not an object creation"));
    }
    let bucket = r.pointer("/s3/bucket/name").and_then(Value::as_str);
    let key = r.pointer("/s3/object/key").and_then(Value::as_str);
    match (bucket, key) {
        (Some(bucket), Some(raw)) if !bucket.is_empty() && !raw.is_empty() => match decode_key(raw)
        {
            Ok(key) => Record::Created(Upload {
                bucket: bucket.to_string(),
                key,
            }),
            Err(e) => Record::Malformed(e),
        },
        _ => Record::Malformed("record lacks s3.bucket.name or s3.object.key".into()),
    }
}

/// S3 event keys are form-encoded: `+` is a space, `%xx` a byte (so `%2B` is a literal `+`, `%2F` a `/`).
pub fn decode_key(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("key has a bad percent escape at byte {i}"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "key is not UTF-8 once decoded".to_string())
}

/// Percent-encodes a value for S3 user metadata, which travels in HTTP headers and must be ASCII.
pub fn metadata_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_graphic() && b != b'%' || b == b' ' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a variant says about itself and its source, in user metadata: `original-size`,
/// `compressed-size`, `width`, `height`, `source-width` and `source-height` (the source's display
/// size, for the manifest), `source-etag` (which version of the source its pixels come
/// from, for idempotency) and `source-key` (percent-encoded). A source key too long for S3's 2 KB of
/// metadata (about 220 CJK characters, each 9 bytes once encoded) is given as `source-key-sha256`
/// instead, the hex SHA-256 of its UTF-8 bytes; the variant's own key names the source anyway.
pub fn variant_metadata(
    source_key: &str,
    source_etag: &str,
    original_size: usize,
    compressed_size: usize,
    width: u32,
    height: u32,
    source_dimensions: (u32, u32),
) -> BTreeMap<String, String> {
    let mut metadata = BTreeMap::from([
        ("source-width".to_string(), source_dimensions.0.to_string()),
        ("source-height".to_string(), source_dimensions.1.to_string()),
        ("original-size".to_string(), original_size.to_string()),
        ("compressed-size".to_string(), compressed_size.to_string()),
        ("source-etag".to_string(), metadata_value(source_etag)),
        ("width".to_string(), width.to_string()),
        ("height".to_string(), height.to_string()),
    ]);
    let key = metadata_value(source_key);
    if metadata_bytes(&metadata) + "source-key".len() + key.len() <= MAX_METADATA_BYTES {
        metadata.insert("source-key".into(), key);
    } else {
        metadata.insert("source-key-sha256".into(), source_key_sha256(source_key));
    }
    metadata
}

/// A JPEG variant's record of its formats for this version of the source: `formats-written` (the
/// formats stored beside it and itself, like `avif.jpg`) and `formats-tried` (every format
/// encoded, like `avif.webp.jpg`: WebP was not smaller). Within the metadata limit: a long source
/// key gives way to its digest, as in `variant_metadata`.
pub fn add_formats(
    metadata: &mut BTreeMap<String, String>,
    source_key: &str,
    written: &str,
    tried: &str,
) {
    metadata.insert("formats-written".into(), written.into());
    metadata.insert("formats-tried".into(), tried.into());
    if metadata_bytes(metadata) > MAX_METADATA_BYTES && metadata.remove("source-key").is_some() {
        metadata.insert("source-key-sha256".into(), source_key_sha256(source_key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_form_decoded() {
        assert_eq!(
            decode_key("photos/summer+2024/storm%281%29.jpg").unwrap(),
            "photos/summer 2024/storm(1).jpg"
        );
        assert_eq!(
            decode_key("photos%2Fgarden.jpg").unwrap(),
            "photos/garden.jpg"
        );
        assert_eq!(decode_key("a%2Bb.jpg").unwrap(), "a+b.jpg");
        assert_eq!(decode_key("%C3%A9t%C3%A9.png").unwrap(), "été.png");
        assert!(decode_key("bad%2").is_err());
        assert!(decode_key("bad%zz").is_err());
        assert!(decode_key("%FF%FE").is_err());
    }

    #[test]
    fn key_round_trip_through_form_encoding() {
        for key in ["plain.jpg", "a b/c+d.png", "é/ü ö%.gif", "100% real/x.jpg"] {
            let encoded: String = key
                .bytes()
                .map(|b| match b {
                    b' ' => "+".to_string(),
                    b if b.is_ascii_alphanumeric() || b"-_.".contains(&b) => {
                        (b as char).to_string()
                    }
                    b => format!("%{b:02X}"),
                })
                .collect();
            assert_eq!(decode_key(&encoded).unwrap(), key);
        }
    }

    #[test]
    fn records_are_read_one_by_one() {
        let event = json!({"Records": [
            {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "up"}, "object": {"key": "a+b.jpg"}}},
            {"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "up"}, "object": {"key": "x.jpg"}}},
            {"eventName": "ObjectCreated:Copy", "s3": {"bucket": {"name": "up"}}},
            "not even an object"
        ]});
        let r = records(&event);
        assert_eq!(
            r[0],
            Record::Created(Upload {
                bucket: "up".into(),
                key: "a b.jpg".into()
            })
        );
        assert!(matches!(r[1], Record::Ignored(_)));
        assert!(matches!(r[2], Record::Malformed(_)));
        assert!(matches!(r[3], Record::Ignored(_)));
        assert!(records(&json!({"Event": "s3:TestEvent"})).is_empty());
        assert!(records(&json!([1, 2])).is_empty());
    }

    #[test]
    fn metadata_is_ascii() {
        assert_eq!(
            metadata_value("photos/été 1.jpg"),
            "photos/%C3%A9t%C3%A9 1.jpg"
        );
        assert_eq!(metadata_value("100%"), "100%25");
        assert_eq!(metadata_value("tab\there"), "tab%09here");
    }

    #[test]
    fn a_source_key_too_long_for_the_metadata_is_given_by_its_hash() {
        let short = variant_metadata(
            "photos/été.jpg",
            "\"abc\"",
            1000,
            100,
            150,
            100,
            (1600, 1200),
        );
        assert_eq!(short["source-key"], "photos/%C3%A9t%C3%A9.jpg");
        assert!(!short.contains_key("source-key-sha256"));
        for key in ["写".repeat(220), format!("{}x", "写".repeat(341))] {
            let long = variant_metadata(
                &key,
                "\"abc-12\"",
                52_428_800,
                4_000_000,
                1200,
                900,
                (60_000, 45_000),
            );
            assert!(
                metadata_bytes(&long) <= MAX_METADATA_BYTES,
                "{}",
                metadata_bytes(&long)
            );
            assert!(!long.contains_key("source-key"));
            assert_eq!(long["source-key-sha256"], source_key_sha256(&key));
            assert_eq!(long["source-etag"], "\"abc-12\"");
        }
    }
}
