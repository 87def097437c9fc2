//! Property tests: S3 key decoding, metadata encoding and its size.

use domain::image::source_key_sha256;
use domain::ports::{metadata_bytes, MAX_METADATA_BYTES, MAX_OBJECT_KEY_BYTES};
use image_compressor::event::{decode_key, metadata_value, variant_metadata};
use proptest::prelude::*;

/// How S3 encodes keys in event notifications (form encoding, like Python's quote_plus).
fn form_encode(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b' ' => "+".to_string(),
            b if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

proptest! {
    #[test]
    fn any_key_survives_encode_then_decode(key in "\\PC{1,100}") {
        prop_assert_eq!(decode_key(&form_encode(&key)).unwrap(), key);
    }

    #[test]
    fn decoding_never_panics(raw in "\\PC{0,100}") {
        let _ = decode_key(&raw);
    }

    #[test]
    fn metadata_is_printable_ascii_and_reversible(value in "\\PC{0,100}") {
        let encoded = metadata_value(&value);
        prop_assert!(encoded.bytes().all(|b| b == b' ' || b.is_ascii_graphic()));
        // Percent-decoding gives the value back.
        let decoded = decode_key(&encoded.replace('+', "%2B")).unwrap();
        prop_assert_eq!(decoded, value);
    }
}

proptest! {
    /// Any key S3 accepts (1 to 1024 bytes) fits its variants' metadata within S3's 2 KB, naming the
    /// source either by its key or, when that is too long, by its hash.
    #[test]
    fn any_key_s3_accepts_fits_the_metadata(key in "\\PC{1,400}", etag in "\"[0-9a-f]{32}(-[0-9]{1,5})?\"") {
        let mut cut = key.len().min(MAX_OBJECT_KEY_BYTES);
        while !key.is_char_boundary(cut) {
            cut -= 1;
        }
        let key = &key[..cut];
        let metadata = variant_metadata(key, &etag, 5 * 1024 * 1024 * 1024, 50_000_000, 10_000, 10_000, (u32::MAX, u32::MAX));
        prop_assert!(metadata_bytes(&metadata) <= MAX_METADATA_BYTES, "{}", metadata_bytes(&metadata));
        prop_assert_eq!(&metadata["source-etag"], &etag);
        match metadata.get("source-key") {
            Some(encoded) => prop_assert_eq!(decode_key(&encoded.replace('+', "%2B")).unwrap(), key),
            None => prop_assert_eq!(&metadata["source-key-sha256"], &source_key_sha256(key)),
        }
    }
}
