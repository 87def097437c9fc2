//! Helpers shared by the user-api tests: sample events in, parsed responses out.
#![allow(dead_code)]

use domain::testing::InMemoryUserStore;
use lambda_http::{Body, Request};
use serde_json::Value;
use user_api::Api;

pub const ADMIN: &str = "8a1f6f3e-0f5c-4c4e-9a3b-2d6f3c1a0b01";
pub const MEMBER: &str = "3c2b1a09-8f7e-4d6c-b5a4-39281706f5e4";

pub fn api() -> Api<InMemoryUserStore> {
    Api::new(
        InMemoryUserStore::default(),
        vec!["https://app.example.com".into()],
        "test-secret",
    )
}

pub fn event_json(name: &str) -> Value {
    let path = format!(
        "{}/../../events/user-api/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

pub fn request(event: &Value) -> Request {
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway event")
}

/// A v2 event like the samples, with another method, path, body or caller. A member's token carries
/// the email their body sends as its verified `email` claim (the member owns that address); tests of
/// the email rule change the claim themselves.
pub fn custom(
    method: &str,
    path: &str,
    body: Option<&str>,
    sub: Option<&str>,
    admin: bool,
) -> Value {
    let mut e = event_json("get-user.json");
    e["requestContext"]["http"]["method"] = method.into();
    e["rawPath"] = format!("/dev{path}").into();
    e["requestContext"]["http"]["path"] = format!("/dev{path}").into();
    e["routeKey"] = format!("{method} {path}").into();
    if let Some(b) = body {
        e["body"] = b.into();
        e["headers"]["content-type"] = "application/json".into();
    }
    match sub {
        Some(s) => {
            e["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = s.into();
            e["requestContext"]["authorizer"]["jwt"]["claims"]["cognito:groups"] =
                if admin { "[admin]" } else { "[staff]" }.into();
            let sent = body
                .and_then(|b| serde_json::from_str::<Value>(b).ok())
                .and_then(|b| b["email"].as_str().map(str::to_string));
            if let (false, Some(email)) = (admin, sent) {
                e["requestContext"]["authorizer"]["jwt"]["claims"]["email"] = email.into();
            }
        }
        None => {
            e["requestContext"]
                .as_object_mut()
                .unwrap()
                .remove("authorizer");
        }
    }
    e
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn call<I: domain::ports::IdempotencyStore>(
    api: &Api<InMemoryUserStore, I>,
    event: &Value,
) -> Reply {
    let response = user_api::handle(api, request(event)).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = match response.body() {
        Body::Empty => Value::Null,
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        Body::Binary(b) => serde_json::from_slice(b).unwrap(),
        _ => Value::Null,
    };
    Reply {
        status,
        headers,
        body,
    }
}
