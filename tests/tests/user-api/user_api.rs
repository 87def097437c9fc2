//! user-api end to end through the real DynamoDB adapter against the moto server.

use std::sync::Arc;

use adapters::dynamo_users::DynamoUserStore;
use integration_tests as h;
use integration_tests::fixtures::api_event;
use lambda_http::Body;
use serde_json::{json, Value};
use user_api::Api;

const ADMIN: &str = "8a1f6f3e-0f5c-4c4e-9a3b-2d6f3c1a0b01";

async fn api() -> Api<DynamoUserStore> {
    let config = h::sdk_config().await;
    let table = h::create_users_table(&config).await;
    let store = DynamoUserStore::new(aws_sdk_dynamodb::Client::new(&config), table);
    Api::new(store, vec!["https://app.example.com".into()], "secret")
}

async fn call(api: &Api<DynamoUserStore>, event: &Value) -> (u16, http::HeaderMap, Value) {
    let request = lambda_http::request::from_str(&event.to_string()).expect("valid event");
    let response = user_api::handle(api, request).await;
    let body = match response.body() {
        Body::Text(t) => serde_json::from_str(t).expect("JSON body"),
        _ => Value::Null,
    };
    (response.status().as_u16(), response.headers().clone(), body)
}

#[tokio::test]
async fn crud_lifecycle_with_conditional_writes() {
    let api = api().await;
    let me = uuid::Uuid::new_v4().to_string();
    let path = format!("/users/{me}");
    let body = json!({"name": "Ada", "email": "Ada@Example.com"}).to_string();
    let (status, headers, created) = call(
        &api,
        &api_event("POST", "/users", Some(&body), Some(&me), false),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let first_tag = headers["etag"].clone();
    assert!(first_tag.to_str().unwrap().starts_with("\"1-"));
    assert_eq!(created["email"], "ada@example.com");

    let (status, _, got) = call(&api, &api_event("GET", &path, None, Some(&me), false)).await;
    assert_eq!((status, &got), (200, &created));

    let mut put = api_event(
        "PUT",
        &path,
        Some(r#"{"name":"Ada L.","email":"ada@example.org"}"#),
        Some(&me),
        false,
    );
    put["headers"]["if-match"] = first_tag.to_str().unwrap().into();
    let (status, headers, updated) = call(&api, &put).await;
    assert_eq!(status, 200, "{updated}");
    let second_tag = headers["etag"].to_str().unwrap().to_string();
    assert!(second_tag.starts_with("\"2-"));
    // The same If-Match again is stale now.
    assert_eq!(call(&api, &put).await.0, 412);

    let mut stale_delete = api_event("DELETE", &path, None, Some(&me), false);
    stale_delete["headers"]["if-match"] = first_tag.to_str().unwrap().into();
    assert_eq!(call(&api, &stale_delete).await.0, 412);
    stale_delete["headers"]["if-match"] = second_tag.into();
    assert_eq!(call(&api, &stale_delete).await.0, 204);
    assert_eq!(
        call(&api, &api_event("GET", &path, None, Some(&me), false))
            .await
            .0,
        404
    );
    assert_eq!(
        call(
            &api,
            &api_event("PATCH", &path, Some(r#"{"name":"x"}"#), Some(&me), false)
        )
        .await
        .0,
        404
    );
    // Deleting released the email: someone else may take it.
    let other = uuid::Uuid::new_v4().to_string();
    let body = json!({"name": "Other", "email": "ada@example.org"}).to_string();
    assert_eq!(
        call(
            &api,
            &api_event("POST", "/users", Some(&body), Some(&other), false)
        )
        .await
        .0,
        201
    );
}

#[tokio::test]
async fn pagination_over_250_users() {
    let api = api().await;
    use futures::StreamExt;
    // 16 requests in flight: enough to be concurrent, within what one emulator process serves.
    let statuses: Vec<u16> = futures::stream::iter(0..250)
        .map(|i| {
            let api = &api;
            async move {
                let body =
                    json!({"name": format!("User {i}"), "email": format!("user{i}@example.com")})
                        .to_string();
                call(
                    api,
                    &api_event("POST", "/users", Some(&body), Some(ADMIN), true),
                )
                .await
                .0
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    for _page in 0..20 {
        let path = match &token {
            Some(t) => format!("/users?limit=100&next_token={t}"),
            None => "/users?limit=100".to_string(),
        };
        let (status, _, page) = call(&api, &api_event("GET", &path, None, Some(ADMIN), true)).await;
        assert_eq!(status, 200, "{page}");
        ids.extend(
            page["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["user_id"].as_str().unwrap().to_string()),
        );
        match page["next_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (count, ids.len()),
        (250, 250),
        "every user exactly once across pages"
    );
    let tampered = format!(
        "/users?next_token={}x",
        token.unwrap_or_else(|| "abc.def".into())
    );
    assert_eq!(
        call(&api, &api_event("GET", &tampered, None, Some(ADMIN), true))
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn concurrent_creates_with_one_email_have_exactly_one_winner() {
    let api = Arc::new(api().await);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let body =
                json!({"name": format!("Racer {i}"), "email": "race@example.com"}).to_string();
            call(
                &api,
                &api_event("POST", "/users", Some(&body), Some(ADMIN), true),
            )
            .await
            .0
        }));
    }
    let mut statuses: Vec<u16> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    statuses.sort();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        15,
        "{statuses:?}"
    );
}

/// `IDEMPOTENCY_TTL_SECONDS` as `template.yaml` deploys it.
fn deployed_idempotency_ttl() -> i64 {
    let text =
        std::fs::read_to_string(h::workspace_root().join("template.yaml")).expect("template");
    let t: serde_yaml::Value = serde_yaml::from_str(&text).expect("template is YAML");
    t["Resources"]["UserApiFunction"]["Properties"]["Environment"]["Variables"]
        ["IDEMPOTENCY_TTL_SECONDS"]
        .as_str()
        .expect("IDEMPOTENCY_TTL_SECONDS in template.yaml")
        .parse()
        .expect("seconds")
}

#[tokio::test]
async fn a_retried_create_gets_its_first_answer_from_dynamodb() {
    use adapters::dynamo_idempotency::DynamoIdempotencyStore;
    use domain::idempotency::{Claim, StoredResponse};
    use domain::ports::IdempotencyStore;

    let config = h::sdk_config().await;
    let table = h::create_users_table(&config).await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let keys = DynamoIdempotencyStore::new(client.clone(), &table);
    let api = Api::new(
        DynamoUserStore::new(client.clone(), &table),
        vec!["https://app.example.com".into()],
        "secret",
    )
    .with_idempotency(keys.clone(), deployed_idempotency_ttl());
    let send = |body: &str| {
        let mut e = api_event("POST", "/users", Some(body), Some(ADMIN), true);
        e["headers"]["idempotency-key"] = "create-ada-1".into();
        e
    };
    let body = json!({"name": "Ada", "email": "ada@example.com"}).to_string();
    let run = |event: Value| {
        let api = &api;
        async move {
            let request = lambda_http::request::from_str(&event.to_string()).expect("event");
            let response = user_api::handle(api, request).await;
            let body = match response.body() {
                Body::Text(t) => serde_json::from_str::<Value>(t).expect("JSON"),
                _ => Value::Null,
            };
            (response.status().as_u16(), response.headers().clone(), body)
        }
    };
    let (status, headers, first) = run(send(&body)).await;
    assert_eq!(status, 201, "{first}");
    let (status, again_headers, again) = run(send(&body)).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again, first);
    assert_eq!(again_headers["location"], headers["location"]);
    assert_eq!(again_headers["etag"], headers["etag"]);
    assert_eq!(again_headers["idempotent-replayed"], "true");

    let other = json!({"name": "Grace", "email": "ada@example.com"}).to_string();
    assert_eq!(run(send(&other)).await.0, 422);

    // The records never show up as users.
    let (status, _, page) = run(api_event("GET", "/users", None, Some(ADMIN), true)).await;
    assert_eq!(status, 200);
    assert_eq!(page["users"].as_array().map(Vec::len), Some(1));

    // In progress until its expiry, then free; a completed record is replayed until its expiry.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert_eq!(
        keys.claim("crashed", "h", now, now + 10).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        keys.claim("crashed", "h", now + 5, now + 15).await.unwrap(),
        Claim::InProgress
    );
    assert_eq!(
        keys.claim("crashed", "other", now + 5, now + 15)
            .await
            .unwrap(),
        Claim::PayloadMismatch
    );
    assert_eq!(
        keys.claim("crashed", "h", now + 10, now + 20)
            .await
            .unwrap(),
        Claim::Claimed
    );
    let answer = StoredResponse {
        status: 201,
        headers: vec![("location".into(), "/users/x".into())],
        body: "{}".into(),
    };
    keys.complete("crashed", "h", &answer, now + 100)
        .await
        .unwrap();
    assert_eq!(
        keys.claim("crashed", "h", now + 99, now + 109)
            .await
            .unwrap(),
        Claim::Completed(answer)
    );
    assert_eq!(
        keys.claim("crashed", "h", now + 100, now + 110)
            .await
            .unwrap(),
        Claim::Claimed
    );
    keys.release("crashed").await.unwrap();
    assert_eq!(
        keys.claim("crashed", "h", now, now + 10).await.unwrap(),
        Claim::Claimed
    );
    // The record carries the TTL attribute the table's TimeToLiveSpecification names.
    let item = client
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("IDEMPOTENCY#crashed".into()),
        )
        .send()
        .await
        .expect("get");
    assert!(item
        .item()
        .is_some_and(|i| i.contains_key(adapters::dynamo_idempotency::TTL_ATTRIBUTE)));
}
