//! CORS: the allowed origin echoed on every response, and the answer to a preflight.

use http::header::HeaderValue;
use lambda_http::{Body, Response};

pub(crate) fn apply_cors(response: &mut Response<Body>, origin: Option<&str>, allowed: &[String]) {
    let headers = response.headers_mut();
    let allow = if allowed.iter().any(|o| o == "*") {
        Some("*".to_string())
    } else {
        origin
            .map(|o| o.trim_end_matches('/'))
            .filter(|o| allowed.iter().any(|a| a == o))
            .map(str::to_string)
    };
    headers.insert("vary", HeaderValue::from_static("Origin"));
    if let Some(value) = allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
        headers.insert("access-control-allow-origin", value);
        headers.insert(
            "access-control-expose-headers",
            HeaderValue::from_static("ETag, Location, Retry-After"),
        );
    }
}

pub(crate) fn preflight(methods: &[&str]) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = http::StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&methods.join(", ")) {
        headers.insert("access-control-allow-methods", v);
    }
    headers.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("authorization, content-type, if-match, idempotency-key"),
    );
    headers.insert("access-control-max-age", HeaderValue::from_static("600"));
    response
}
