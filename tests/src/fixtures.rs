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
        }
        None => {
            if let Some(ctx) = e["requestContext"].as_object_mut() {
                ctx.remove("authorizer");
            }
        }
    }
    e
}
