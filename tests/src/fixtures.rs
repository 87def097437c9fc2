//! Paths to the sample events and test images the project ships.

use std::path::PathBuf;

pub fn events_dir() -> PathBuf {
    crate::workspace_root().join("events")
}

pub fn event(function: &str, name: &str) -> String {
    let path = events_dir().join(function).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An HTTP API (v2) event for user-api, built from the shipped sample, with a method, path, body and
/// caller of the test's choosing (`sub: None` means no verified claims).
pub fn api_event(
    method: &str,
    path: &str,
    body: Option<&str>,
    sub: Option<&str>,
    admin: bool,
) -> serde_json::Value {
    let mut e: serde_json::Value =
        serde_json::from_str(&event("user-api", "get-user.json")).expect("sample event is JSON");
    e["requestContext"]["http"]["method"] = method.into();
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    e["rawPath"] = format!("/dev{path}").into();
    e["rawQueryString"] = query.into();
    e["routeKey"] = format!("{method} {path}").into();
    if let Some(b) = body {
        e["body"] = b.into();
        e["headers"]["content-type"] = "application/json".into();
    }
    match sub {
        Some(s) => {
            let claims = &mut e["requestContext"]["authorizer"]["jwt"]["claims"];
            claims["sub"] = s.into();
            claims["cognito:groups"] = if admin { "[admin]" } else { "[staff]" }.into();
            // A member's token carries the email they send as its verified claim.
            let sent = body
                .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
                .and_then(|b| b["email"].as_str().map(str::to_string));
            if let (false, Some(email)) = (admin, sent) {
                claims["email"] = email.into();
                claims["email_verified"] = "true".into();
            }
        }
        None => {
            if let Some(ctx) = e["requestContext"].as_object_mut() {
                ctx.remove("authorizer");
            }
        }
    }
    e
}

/// A test image shipped with image-compressor (`good/…` or `bad/…`).
pub fn test_image(path: &str) -> Vec<u8> {
    let file = crate::workspace_root()
        .join("functions/image-compressor/testdata")
        .join(path);
    std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// The handler settings the template deploys (seed-B variants, q85, production limits), writing to
/// `destination`.
pub fn compressor_settings(destination: &str) -> image_compressor::Settings {
    image_compressor::Settings {
        destination_bucket: destination.to_string(),
        max_object_bytes: 50 * 1024 * 1024,
        cache_control: "public, max-age=86400".into(),
        pipeline: image_compressor::pipeline::PipelineConfig {
            variants: domain::image::parse_variants(domain::image::DEFAULT_VARIANTS)
                .expect("the default variants parse"),
            optimize: image_compressor::pipeline::Optimize::Speed,
            webp_quality: None,
            avif_quality: None,
            ..image_compressor::pipeline::PipelineConfig::default()
        },
    }
}
