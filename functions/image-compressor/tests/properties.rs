//! Property tests: S3 key decoding and metadata encoding.

use image_compressor::event::{decode_key, metadata_value};
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
