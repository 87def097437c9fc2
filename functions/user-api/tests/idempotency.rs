//! `POST /users` with `Idempotency-Key`: a retried create gets its first answer. The TTL and the
//! function's `Timeout` are read from `template.yaml`.

mod common;

use std::sync::Mutex;

use common::*;
use domain::idempotency::{Claim, StoredResponse};
use domain::ports::IdempotencyStore;
use domain::testing::{InMemoryIdempotencyStore, InMemoryUserStore};
use domain::PortError;
use serde_json::{json, Value};
use time::OffsetDateTime;
use user_api::Api;

fn user_api_resource() -> serde_yaml::Value {
    let path = format!("{}/../../template.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("template.yaml");
    let t: serde_yaml::Value = serde_yaml::from_str(&text).expect("template is YAML");
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .values()
        .find(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some("user-api"))
        .expect("the user-api function")
        .clone()
}

/// `IDEMPOTENCY_TTL_SECONDS` as deployed.
fn deployed_ttl() -> i64 {
    user_api_resource()["Properties"]["Environment"]["Variables"]["IDEMPOTENCY_TTL_SECONDS"]
        .as_str()
        .expect("IDEMPOTENCY_TTL_SECONDS is set in template.yaml")
        .parse()
        .expect("a number of seconds")
}

/// The function's `Timeout` as deployed, in seconds.
fn deployed_timeout() -> i64 {
    user_api_resource()["Properties"]["Timeout"]
        .as_i64()
        .expect("an explicit Timeout")
}

fn keyed_api() -> Api<InMemoryUserStore, InMemoryIdempotencyStore> {
    api().with_idempotency(InMemoryIdempotencyStore::default(), deployed_ttl())
}

fn create_event(key: Option<&str>, name: &str) -> Value {
    let body = json!({"name": name, "email": "ada@example.com"}).to_string();
    let mut e = custom("POST", "/users", Some(&body), Some(ADMIN), true);
    if let Some(key) = key {
        e["headers"]["idempotency-key"] = key.into();
    }
    e
}

async fn send<I: IdempotencyStore>(api: &Api<InMemoryUserStore, I>, event: &Value) -> Reply {
    let response = user_api::handle(api, request(event)).await;
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: match response.body() {
            lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap(),
            _ => Value::Null,
        },
    }
}

#[tokio::test]
async fn without_a_key_a_retried_create_is_a_conflict() {
    // What a client retrying after a timeout met before keys (and still meets without one): its
    // own successful create answered 409, since an admin's create without `user_id` gets a new
    // id but the email is now taken.
    let api = keyed_api();
    assert_eq!(send(&api, &create_event(None, "Ada")).await.status, 201);
    assert_eq!(send(&api, &create_event(None, "Ada")).await.status, 409);
}

#[tokio::test]
async fn a_retried_create_gets_its_first_answer() {
    let api = keyed_api();
    let first = send(&api, &create_event(Some("retry-1"), "Ada")).await;
    assert_eq!(first.status, 201, "{}", first.body);
    for _ in 0..2 {
        let again = send(&api, &create_event(Some("retry-1"), "Ada")).await;
        assert_eq!(again.status, 201, "{}", again.body);
        assert_eq!(again.body, first.body, "the same user, not a second one");
        for header in ["location", "etag", "content-type"] {
            assert_eq!(again.header(header), first.header(header), "{header}");
        }
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(
            again.header("access-control-allow-origin"),
            first.header("access-control-allow-origin")
        );
    }
    assert_eq!(api.store.len(), 1, "one user created");
    // Another key is another request: the email is taken now.
    assert_eq!(
        send(&api, &create_event(Some("retry-2"), "Ada"))
            .await
            .status,
        409
    );
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422() {
    let api = keyed_api();
    assert_eq!(
        send(&api, &create_event(Some("k"), "Ada")).await.status,
        201
    );
    let other = send(&api, &create_event(Some("k"), "Grace")).await;
    assert_eq!(other.status, 422, "{}", other.body);
    assert_eq!(
        other.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(
        other.body["type"],
        "urn:problem:user-api:idempotency-key-reused"
    );
}

#[tokio::test]
async fn keys_are_per_caller_and_checked() {
    let api = keyed_api();
    assert_eq!(
        send(&api, &create_event(Some("k"), "Ada")).await.status,
        201
    );
    // A member using the same key string creates their own profile, not the admin's replay.
    let body = json!({"name": "Grace", "email": "grace@example.com"}).to_string();
    let mut e = custom("POST", "/users", Some(&body), Some(MEMBER), false);
    e["headers"]["idempotency-key"] = "k".into();
    let reply = send(&api, &e).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["user_id"], MEMBER);
    for bad in ["", "é", &"k".repeat(256)] {
        let reply = send(&api, &create_event(Some(bad), "X")).await;
        assert_eq!(reply.status, 400, "{bad:?}");
        assert_eq!(reply.body["errors"][0]["field"], "Idempotency-Key");
    }
}

#[tokio::test]
async fn a_failed_create_releases_its_key() {
    let api = keyed_api();
    let mut bad = create_event(Some("k"), "Ada");
    bad["body"] = r#"{"name":"","email":"ada@example.com"}"#.into();
    assert_eq!(send(&api, &bad).await.status, 400);
    assert!(
        api.idempotency.is_empty(),
        "no record kept for a refused request"
    );
    // The corrected retry, with another body, runs.
    assert_eq!(
        send(&api, &create_event(Some("k"), "Ada")).await.status,
        201
    );
}

#[tokio::test]
async fn a_duplicate_while_the_first_runs_is_409_and_a_crashed_claim_expires() {
    let api = keyed_api();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let timeout = deployed_timeout();
    // A first request claimed the key and crashed (no complete, no release), at most `Timeout`
    // before its deadline.
    let event = create_event(Some("k"), "Ada");
    let payload = domain::idempotency::payload_hash(
        "POST",
        event["rawPath"].as_str().unwrap(),
        event["body"].as_str().unwrap().as_bytes(),
    );
    let record = domain::idempotency::record_key(ADMIN, "k");
    assert_eq!(
        api.idempotency
            .claim(&record, &payload, now, now + timeout)
            .await
            .unwrap(),
        Claim::Claimed
    );
    let reply = send(&api, &event).await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(
        reply.body["type"],
        "urn:problem:user-api:idempotency-in-progress"
    );
    assert_eq!(api.store.len(), 0);

    // Once the crashed request's deadline has passed, the key is free again.
    let Api { idempotency, .. } = api;
    let mut later = common::api().with_idempotency(idempotency, deployed_ttl());
    later.clock = || OffsetDateTime::now_utc() + time::Duration::seconds(deployed_timeout() + 1);
    let reply = send(&later, &event).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

/// Records what the handler asks of the store.
#[derive(Default)]
struct Recording {
    inner: InMemoryIdempotencyStore,
    claims: Mutex<Vec<(i64, i64)>>,
    completions: Mutex<Vec<i64>>,
}

impl IdempotencyStore for Recording {
    async fn claim(&self, key: &str, hash: &str, now: i64, until: i64) -> Result<Claim, PortError> {
        self.claims.lock().unwrap().push((now, until));
        self.inner.claim(key, hash, now, until).await
    }
    async fn complete(
        &self,
        key: &str,
        hash: &str,
        response: &StoredResponse,
        expires_at: i64,
    ) -> Result<(), PortError> {
        self.completions.lock().unwrap().push(expires_at);
        self.inner.complete(key, hash, response, expires_at).await
    }
    async fn release(&self, key: &str) -> Result<(), PortError> {
        self.inner.release(key).await
    }
}

#[tokio::test]
async fn a_claim_lasts_until_the_invocation_deadline_and_an_answer_for_the_ttl() {
    let api = api().with_idempotency(Recording::default(), deployed_ttl());
    let timeout = deployed_timeout();
    let started = OffsetDateTime::now_utc();
    // As under Lambda: the deadline is the function's Timeout after the invocation started.
    let deadline = domain::Deadline::after(started, std::time::Duration::from_secs(timeout as u64));
    let response = user_api::handle_by(
        &api,
        request(&create_event(Some("k"), "Ada")),
        Some(deadline),
    )
    .await;
    assert_eq!(response.status(), 201);
    let (now, until) = api.idempotency.claims.lock().unwrap()[0];
    assert!(
        until > now && until <= started.unix_timestamp() + timeout + 1,
        "an in-progress claim expires by the deadline ({now} → {until}, Timeout {timeout} s)"
    );
    let expires = api.idempotency.completions.lock().unwrap()[0];
    assert_eq!(expires, now + deployed_ttl());
    assert!(
        deployed_ttl() > timeout,
        "an answer outlives any retry made within one invocation"
    );
}

#[tokio::test]
async fn the_sample_event_replays() {
    let api = keyed_api();
    let event = event_json("create-user-idempotent.json");
    assert!(event["headers"]["idempotency-key"].is_string());
    let first = send(&api, &event).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = send(&api, &event).await;
    assert_eq!((again.status, &again.body), (201, &first.body));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
}
