//! The fuzz targets' bodies, one function per target. `fuzz_targets/*.rs` hand them libFuzzer's
//! input; `tests/tests/suite/fuzz_regressions.rs` replays every checked-in input through the same
//! functions on the stable toolchain, so a crash once found stays fixed.
//!
//! Each function panics only when the code under test breaks a promise: a panic inside it, a 5xx
//! for a request that no dependency failure explains, an output outside its documented bounds.

use std::future::Future;

use domain::image::VariantSpec;
use domain::testing::{
    InMemoryOrderStore, InMemoryUserStore, RecordingDeadLetters, RecordingNotifier,
    RecordingPaymentQueue,
};
use image_compressor::event::{decode_key, metadata_value, records, Record};
use image_compressor::pipeline::{compress_image, PipelineConfig};
use serde_json::Value;

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
}

fn block_on<F: Future>(future: F) -> F::Output {
    RUNTIME.with(|rt| rt.block_on(future))
}

/// S3 notification parsing and key decoding on any bytes.
pub fn s3_event(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(key) = decode_key(text) {
            assert!(key.len() <= text.len(), "decoding never grows a key");
        }
        let encoded = metadata_value(text);
        assert!(encoded.is_ascii(), "metadata values travel in headers");
    }
    let Ok(event) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for record in records(&event) {
        match record {
            Record::Created(upload) => {
                assert!(!upload.bucket.is_empty() && !upload.key.is_empty());
            }
            Record::Ignored(reason) | Record::Malformed(reason) => assert!(!reason.is_empty()),
        }
    }
}

/// The production limits (100 MP, 512 MiB of decoder allocations, the function's memory budget)
/// with two small variants.
pub fn pipeline_config() -> PipelineConfig {
    PipelineConfig {
        variants: vec![
            VariantSpec {
                name: "small".into(),
                max_edge: 64,
            },
            VariantSpec {
                name: "tiny".into(),
                max_edge: 16,
            },
        ],
        optimize: image_compressor::pipeline::Optimize::Speed,
        webp_quality: None,
        avif_quality: None,
        // The function's memory as `make fuzz` passes it from template.yaml (the limit libFuzzer
        // holds the process to), else the default.
        memory_budget: image_compressor::memory_budget::image_budget(
            std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
                .ok()
                .and_then(|mb| mb.parse().ok())
                .unwrap_or(image_compressor::memory_budget::DEFAULT_FUNCTION_MEMORY_MB),
        ),
        ..PipelineConfig::default()
    }
}

/// The image pipeline on any bytes: an error or variants within their boxes, never a panic.
pub fn image_pipeline(data: &[u8]) {
    let config = pipeline_config();
    if let Ok(processed) = compress_image(data, &config) {
        assert_eq!(processed.variants.len(), config.variants.len());
        for (variant, spec) in processed.variants.iter().zip(&config.variants) {
            assert!(variant.width >= 1 && variant.height >= 1);
            assert!(variant.width.max(variant.height) <= spec.max_edge);
            assert!(variant.width <= processed.width && variant.height <= processed.height);
            assert!(variant.jpeg.starts_with(&[0xFF, 0xD8]), "a JPEG");
        }
    }
}

const METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "CONNECT",
];
const MEMBER: &str = "3c2b1a09-8f7e-4d6c-b5a4-39281706f5e4";
const ADMIN: &str = "8a1f6f3e-0f5c-4c4e-9a3b-2d6f3c1a0b01";
const BASE_EVENT: &str = include_str!("../../events/user-api/get-user.json");

/// Percent-encodes what a client's URL would have encoded, keeping `keep` as they are: API Gateway
/// hands the function a raw path and query string that are valid URI parts.
fn encode(bytes: &[u8], keep: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// API routing and validation: method, caller, path, query, headers and body from the input.
///
/// Layout: method byte, caller byte, then `\0`-separated path, query, content-type, if-match,
/// origin and body. Paths stay under API Gateway's 8 KiB so the event is one it could send.
pub fn api_request(data: &[u8]) {
    let (Some(&m), Some(&who)) = (data.first(), data.get(1)) else {
        return;
    };
    let mut parts = data[2..].splitn(6, |b| *b == 0);
    let mut next = || parts.next().unwrap_or_default();
    let (path, query, content_type, if_match, origin, body) =
        (next(), next(), next(), next(), next(), next());
    let Ok(mut event) = serde_json::from_str::<Value>(BASE_EVENT) else {
        return;
    };
    let method = METHODS[usize::from(m) % METHODS.len()];
    let mut path = format!("/dev/{}", encode(&path[..path.len().min(4096)], b"/"));
    if m & 0x80 != 0 {
        path = path.replacen("/dev/", "/dev/users/", 1);
    }
    event["rawPath"] = path.clone().into();
    event["requestContext"]["http"]["path"] = path.into();
    event["requestContext"]["http"]["method"] = method.into();
    event["rawQueryString"] = encode(&query[..query.len().min(4096)], b"=&").into();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    event["headers"]["content-type"] = text(content_type).into();
    if !if_match.is_empty() {
        event["headers"]["if-match"] = text(if_match).into();
    }
    event["headers"]["origin"] = text(origin).into();
    if !body.is_empty() {
        event["body"] = text(body).into();
    }
    let claims = &mut event["requestContext"]["authorizer"]["jwt"]["claims"];
    match who % 4 {
        0 => {
            if let Some(context) = event["requestContext"].as_object_mut() {
                context.remove("authorizer");
            }
        }
        1 => claims["sub"] = MEMBER.into(),
        2 => {
            claims["sub"] = ADMIN.into();
            claims["cognito:groups"] = "[admin]".into();
        }
        _ => {
            claims["sub"] = text(if_match).into();
            claims["cognito:groups"] = text(origin).into();
        }
    }
    // Header values API Gateway would never send (control characters) fail here, before our code.
    let Ok(request) = lambda_http::request::from_str(&event.to_string()) else {
        return;
    };
    let api = user_api::Api::new(
        InMemoryUserStore::default(),
        vec!["https://app.example.com".into()],
        "fuzz-secret",
    );
    let response = block_on(user_api::handle(&api, request));
    let status = response.status().as_u16();
    assert!(
        (200..500).contains(&status),
        "status {status} without any dependency failure"
    );
    if status >= 400 {
        let body = match response.body() {
            lambda_http::Body::Text(t) => t.as_bytes(),
            lambda_http::Body::Binary(b) => b.as_slice(),
            _ => &[],
        };
        let problem: Value = serde_json::from_slice(body).expect("errors are JSON");
        assert_eq!(problem["status"], status);
    }
}

/// SQS order messages: parsing, then the whole processor over in-memory ports with stock for any
/// product. A message is confirmed, cancelled or parked; never retried when nothing failed.
pub fn order_message(data: &[u8]) {
    let body = String::from_utf8_lossy(data);
    if let Ok(request) = domain::order::parse_order_message(&body) {
        assert!(!request.items.is_empty());
        assert!(request.items.iter().all(|l| l.quantity > 0));
        assert!(request.total.0 >= 0);
    }
    let orders = InMemoryOrderStore::default();
    for p in ["widget", "gadget", "p1"] {
        orders.set_stock(p, 5);
    }
    let processor = order_processor::Processor::new(
        orders,
        RecordingPaymentQueue::default(),
        RecordingNotifier::default(),
        RecordingDeadLetters::default(),
    );
    let outcome = block_on(processor.place_order_message("m-1", &body));
    assert!(
        !matches!(outcome, order_processor::Outcome::Retry(_)),
        "{outcome:?} with no dependency failing"
    );
    for p in ["widget", "gadget", "p1"] {
        let left = processor.orders.stock(p).unwrap_or(0);
        assert!((0..=5).contains(&left), "{p}: stock {left}");
    }
}
