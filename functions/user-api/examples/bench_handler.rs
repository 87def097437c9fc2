//! Per-invocation handler overhead with the in-memory store (no network), over many invocations;
//! prints one JSON line with p50/p99 per route and store calls per route (used by `make bench`):
//!
//!     bench_handler [invocations]

use std::time::Instant;

use domain::testing::InMemoryUserStore;
use serde_json::{json, Value};
use user_api::Api;

const ADMIN: &str = "8a1f6f3e-0f5c-4c4e-9a3b-2d6f3c1a0b01";

type Error = Box<dyn std::error::Error>;

fn event(sample: &Value, method: &str, path: &str, query: &str, body: Option<&str>) -> Value {
    let mut e = sample.clone();
    e["requestContext"]["http"]["method"] = method.into();
    e["rawPath"] = format!("/dev{path}").into();
    e["rawQueryString"] = query.into();
    e["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = ADMIN.into();
    e["requestContext"]["authorizer"]["jwt"]["claims"]["cognito:groups"] = "[admin]".into();
    if let Some(b) = body {
        e["body"] = b.into();
        e["headers"]["content-type"] = "application/json".into();
    }
    e
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let path = format!(
        "{}/../../events/user-api/get-user.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let sample: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let event = |method: &str, path: &str, query: &str, body: Option<&str>| {
        event(&sample, method, path, query, body)
    };
    let invocations: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let api = Api::new(
        InMemoryUserStore::default(),
        vec!["https://app.example.com".into()],
        "k",
    );
    let mut ids = Vec::new();
    for i in 0..1000 {
        let body =
            json!({"name": format!("User {i}"), "email": format!("u{i}@example.com")}).to_string();
        let request =
            lambda_http::request::from_str(&event("POST", "/users", "", Some(&body)).to_string())?;
        let response = user_api::handle(&api, request).await;
        let created: Value = match response.body() {
            lambda_http::Body::Text(t) => serde_json::from_str(t)?,
            _ => Value::Null,
        };
        ids.push(created["user_id"].as_str().unwrap_or_default().to_string());
    }
    let routes = ["get", "list", "patch", "create"];
    let mut latencies: Vec<Vec<f64>> = vec![Vec::new(); routes.len()];
    let mut calls = vec![0usize; routes.len()];
    for n in 0..invocations {
        let r = n % routes.len();
        let id = &ids[n % ids.len()];
        let e = match routes[r] {
            "get" => event("GET", &format!("/users/{id}"), "", None),
            "list" => event("GET", "/users", "limit=20", None),
            "patch" => event(
                "PATCH",
                &format!("/users/{id}"),
                "",
                Some(r#"{"name":"Renamed"}"#),
            ),
            _ => event(
                "POST",
                "/users",
                "",
                Some(&json!({"name": "N", "email": format!("new{n}@example.com")}).to_string()),
            ),
        };
        // Deserialising the event is the runtime's work; the timed part is the handler.
        let request = lambda_http::request::from_str(&e.to_string())?;
        let before = api.store.faults.total_calls();
        let started = Instant::now();
        let response = user_api::handle(&api, request).await;
        latencies[r].push(started.elapsed().as_secs_f64() * 1e6);
        calls[r] += api.store.faults.total_calls() - before;
        assert!(
            response.status().as_u16() < 300,
            "{} gave {}",
            routes[r],
            response.status()
        );
    }
    let mut all: Vec<f64> = latencies.iter().flatten().copied().collect();
    all.sort_by(f64::total_cmp);
    let per_route: Vec<Value> = routes
        .iter()
        .zip(latencies.iter_mut())
        .zip(&calls)
        .map(|((name, l), c)| {
            l.sort_by(f64::total_cmp);
            json!({"route": name, "p50_us": percentile(l, 0.5), "p99_us": percentile(l, 0.99), "store_calls": *c as f64 / l.len() as f64})
        })
        .collect();
    println!(
        "{}",
        json!({"invocations": invocations, "p50_us": percentile(&all, 0.5), "p99_us": percentile(&all, 0.99), "routes": per_route})
    );
    Ok(())
}
