//! Responses: JSON bodies, a user with its strong ETag, problem documents with the headers their
//! status needs, and a create's answer stored and replayed for its `Idempotency-Key`.

use domain::idempotency::StoredResponse;
use domain::user::User;
use http::header::{HeaderValue, CONTENT_TYPE};
use lambda_http::{Body, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::problem::ApiError;

/// The user's strong entity tag: its version and a digest of its whole representation.
///
/// The digest covers `created_at`, so a profile deleted and created again at the same id (which
/// starts again at version 1) never answers to an ETag a client cached for the old one; two equal
/// tags mean byte-equal representations, as a strong validator must.
pub fn etag(user: &User) -> String {
    let representation = serde_json::to_vec(user).unwrap_or_default();
    let digest = Sha256::digest(&representation);
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("\"{}-{hex}\"", user.version)
}

pub(crate) fn json_response(status: u16, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub(crate) fn user_response(status: u16, user: &User) -> Response<Body> {
    let mut response = json_response(status, &json!(user));
    if let Ok(tag) = HeaderValue::from_str(&etag(user)) {
        response.headers_mut().insert("etag", tag);
    }
    response
}

pub(crate) fn problem_response(error: &ApiError) -> Response<Body> {
    let mut response = json_response(error.status().as_u16(), &error.body());
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    match error {
        ApiError::MethodNotAllowed(allowed) => {
            if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                headers.insert("allow", v);
            }
        }
        ApiError::Unavailable { retry_after, .. } => {
            headers.insert("retry-after", HeaderValue::from(*retry_after));
        }
        ApiError::IdempotencyInProgress => {
            headers.insert("retry-after", HeaderValue::from_static("1"));
        }
        ApiError::Unauthorized => {
            headers.insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        _ => {}
    }
    response
}

/// The headers of a create's answer that a replay repeats.
pub(crate) const REPLAYED_HEADERS: [&str; 3] = ["location", "etag", "content-type"];

pub(crate) fn stored(response: &Response<Body>) -> StoredResponse {
    let body = match response.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    StoredResponse {
        status: response.status().as_u16(),
        headers: REPLAYED_HEADERS
            .iter()
            .filter_map(|name| {
                let value = response.headers().get(*name)?.to_str().ok()?;
                Some((name.to_string(), value.to_string()))
            })
            .collect(),
        body,
    }
}

pub(crate) fn replay(stored: &StoredResponse) -> Response<Body> {
    let mut response = Response::new(Body::Text(stored.body.clone()));
    *response.status_mut() =
        http::StatusCode::from_u16(stored.status).unwrap_or(http::StatusCode::OK);
    let headers = response.headers_mut();
    for (name, value) in &stored.headers {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
