//! Every route and every error of user-api, over the in-memory store, driven by `events/user-api/`.

mod common;

use common::*;
use domain::ports::UserStore;
use domain::PortError;
use serde_json::json;

#[tokio::test]
async fn member_creates_reads_updates_and_deletes_their_profile() {
    let api = api();
    let created = call(&api, &event_json("create-user.json")).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.header("location"),
        Some(&*format!("/dev/users/{MEMBER}"))
    );
    let first_tag = created.header("etag").unwrap().to_string();
    assert!(first_tag.starts_with("\"1-"), "{first_tag}");
    assert_eq!(
        created.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(created.body["email"], "grace.hopper@example.com");
    assert_eq!(created.body["user_id"], MEMBER);
    assert_eq!(created.body["version"], 1);
    assert!(created.body["created_at"].as_str().unwrap().ends_with('Z'));

    let got = call(&api, &event_json("get-user.json")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, created.body);

    let mut replace = event_json("replace-user.json");
    replace["headers"]["if-match"] = first_tag.clone().into();
    let replaced = call(&api, &replace).await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert!(replaced.header("etag").unwrap().starts_with("\"2-"));
    assert_eq!(replaced.body["email"], "grace@example.com");
    assert_eq!(replaced.body["created_at"], created.body["created_at"]);

    let stale = call(&api, &event_json("patch-user-stale-if-match.json")).await;
    assert_eq!(stale.status, 412);
    assert_eq!(
        stale.header("content-type"),
        Some("application/problem+json")
    );

    let patched = call(&api, &event_json("patch-user.json")).await;
    assert_eq!(patched.status, 200);
    assert_eq!(patched.body["name"], "Rear Admiral Hopper");
    assert_eq!(patched.body["email"], "grace@example.com");
    assert_eq!(patched.body["version"], 3);

    let deleted = call(&api, &event_json("delete-user.json")).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, serde_json::Value::Null);
    assert_eq!(call(&api, &event_json("get-user.json")).await.status, 404);
    assert_eq!(
        call(&api, &event_json("patch-user.json")).await.status,
        404,
        "no upsert"
    );
    assert_eq!(
        call(&api, &event_json("delete-user.json")).await.status,
        404
    );
    assert!(
        api.store.email_owner("grace@example.com").is_none(),
        "email released"
    );
}

#[tokio::test]
async fn validation_errors_name_each_field() {
    let api = api();
    let r = call(&api, &event_json("create-user-invalid.json")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.body["type"], "urn:problem:user-api:validation-failed");
    assert_eq!(r.body["status"], 400);
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["role", "name", "email"]);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com"),
        "CORS on errors too"
    );

    let r = call(&api, &event_json("create-user-malformed-json.json")).await;
    assert_eq!(r.status, 400);
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));

    let r = call(&api, &event_json("create-user-wrong-content-type.json")).await;
    assert_eq!(r.status, 415);

    let r = call(&api, &event_json("get-user-not-uuid.json")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["errors"][0]["field"], "id");

    let big = format!(r#"{{"name":"{}","email":"a@b.co"}}"#, "x".repeat(17 * 1024));
    let r = call(
        &api,
        &custom("POST", "/users", Some(&big), Some(MEMBER), false),
    )
    .await;
    assert_eq!(r.status, 413);
    assert!(api.store.is_empty());
}

#[tokio::test]
async fn authorisation_is_enforced_on_every_route() {
    let api = api();
    assert_eq!(
        call(&api, &event_json("get-user-no-claims.json"))
            .await
            .status,
        401
    );
    let r = call(&api, &event_json("get-user-no-claims.json")).await;
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        call(&api, &event_json("get-other-user-forbidden.json"))
            .await
            .status,
        403
    );
    assert_eq!(
        call(&api, &event_json("list-users-forbidden.json"))
            .await
            .status,
        403
    );
    // A member may not create someone else's profile.
    let other = json!({"user_id": ADMIN, "name": "X", "email": "x@example.com"}).to_string();
    assert_eq!(
        call(
            &api,
            &custom("POST", "/users", Some(&other), Some(MEMBER), false)
        )
        .await
        .status,
        403
    );
    // The admin may create any profile, with a generated id.
    let r = call(&api, &event_json("create-user-admin.json")).await;
    assert_eq!(r.status, 201);
    let id = r.body["user_id"].as_str().unwrap().to_string();
    for method in ["GET", "DELETE"] {
        assert_eq!(
            call(
                &api,
                &custom(method, &format!("/users/{id}"), None, Some(MEMBER), false)
            )
            .await
            .status,
            403
        );
    }
    let patch = r#"{"name":"Y"}"#;
    assert_eq!(
        call(
            &api,
            &custom(
                "PATCH",
                &format!("/users/{id}"),
                Some(patch),
                Some(MEMBER),
                false
            )
        )
        .await
        .status,
        403
    );
    assert_eq!(
        call(
            &api,
            &custom(
                "PATCH",
                &format!("/users/{id}"),
                Some(patch),
                Some(ADMIN),
                true
            )
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn routing_errors() {
    let api = api();
    let r = call(&api, &event_json("unknown-route.json")).await;
    assert_eq!(r.status, 404);
    let r = call(&api, &event_json("wrong-method.json")).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, PUT, PATCH, DELETE, OPTIONS"));
    let r = call(&api, &custom("DELETE", "/users", None, Some(ADMIN), true)).await;
    assert_eq!(r.header("allow"), Some("GET, POST, OPTIONS"));
    let r = call(&api, &custom("OPTIONS", "/users", None, None, false)).await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, POST, OPTIONS")
    );
}

#[tokio::test]
async fn duplicate_email_is_a_conflict() {
    let api = api();
    assert_eq!(
        call(&api, &event_json("create-user.json")).await.status,
        201
    );
    let same_email = json!({"name": "Other", "email": "GRACE.HOPPER@example.com"}).to_string();
    let r = call(
        &api,
        &custom("POST", "/users", Some(&same_email), Some(ADMIN), true),
    )
    .await;
    assert_eq!(r.status, 409);
    assert_eq!(api.store.len(), 1);
}

#[tokio::test]
async fn pagination_walks_every_user_once_and_rejects_bad_tokens() {
    let api = api();
    for i in 0..45 {
        let body =
            json!({"name": format!("User {i}"), "email": format!("u{i}@example.com")}).to_string();
        assert_eq!(
            call(
                &api,
                &custom("POST", "/users", Some(&body), Some(ADMIN), true)
            )
            .await
            .status,
            201
        );
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    // Bounded: a token that never advances fails the test instead of hanging it.
    while pages < 10 {
        let mut e = event_json("list-users.json");
        // HTTP API events carry the query in rawQueryString (tokens are URL-safe).
        e["rawQueryString"] = match &token {
            Some(t) => format!("limit=20&next_token={t}"),
            None => "limit=20".to_string(),
        }
        .into();
        let r = call(&api, &e).await;
        assert_eq!(r.status, 200, "{}", r.body);
        pages += 1;
        seen.extend(
            r.body["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["user_id"].as_str().unwrap().to_string()),
        );
        match r.body["next_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (45, 45));

    let r = call(&api, &event_json("list-users-bad-token.json")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["errors"][0]["field"], "next_token");
    let r = call(&api, &event_json("list-users-bad-limit.json")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["errors"][0]["field"], "limit");
    let mut e = event_json("list-users.json");
    e["rawQueryString"] = "page=2".into();
    assert_eq!(call(&api, &e).await.status, 400);
}

#[tokio::test]
async fn dependency_failures_are_503_with_retry_after_or_500() {
    let api = api();
    api.store
        .faults
        .fail_next("get", PortError::Throttled("dynamodb".into()));
    let r = call(&api, &event_json("get-user.json")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    api.store
        .faults
        .fail_next("create", PortError::Unavailable("timeout".into()));
    let r = call(&api, &event_json("create-user.json")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("2"));
    api.store
        .faults
        .fail_next("list", PortError::Rejected("AccessDenied".into()));
    let r = call(&api, &event_json("list-users.json")).await;
    assert_eq!(r.status, 500);
    assert!(
        !r.body["detail"].as_str().unwrap().contains("AccessDenied"),
        "no internals leak"
    );
}

#[tokio::test]
async fn store_calls_per_route() {
    let api = api();
    let count =
        |api: &user_api::Api<domain::testing::InMemoryUserStore>| api.store.faults.total_calls();
    call(&api, &event_json("create-user.json")).await;
    assert_eq!(count(&api), 1, "create: one transaction");
    call(&api, &event_json("get-user.json")).await;
    assert_eq!(count(&api), 2, "get: one read");
    call(&api, &event_json("list-users.json")).await;
    assert_eq!(count(&api), 3, "list: one query");
    call(&api, &event_json("patch-user.json")).await;
    assert_eq!(count(&api), 5, "patch: read + conditional write");
    call(&api, &event_json("delete-user.json")).await;
    assert_eq!(
        count(&api),
        7,
        "delete: read (for the email) + one transaction"
    );
}

#[tokio::test]
async fn rest_api_v1_events_work_too() {
    let api = api();
    call(&api, &event_json("create-user.json")).await;
    let r = call(&api, &event_json("get-user-rest-v1.json")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["user_id"], MEMBER);
}

#[tokio::test]
async fn cors_only_for_allowed_origins() {
    let api = api();
    let mut e = event_json("get-user.json");
    e["headers"]["origin"] = "https://evil.example".into();
    let r = call(&api, &e).await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(r.header("vary"), Some("Origin"));
    let open = user_api::Api::new(
        domain::testing::InMemoryUserStore::default(),
        vec!["*".into()],
        "k",
    );
    let r = call(&open, &e).await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn groups_arrive_in_every_shape() {
    use serde_json::Value;
    use user_api::parse_groups;
    assert_eq!(parse_groups(&json!(["admin", "staff"])), ["admin", "staff"]);
    assert_eq!(
        parse_groups(&Value::String("[admin staff]".into())),
        ["admin", "staff"]
    );
    assert_eq!(parse_groups(&Value::String("admin".into())), ["admin"]);
    // Group names may hold commas, quotes and brackets (never whitespace): each is one group.
    for (claim, group) in [
        ("[x,admin]", "x,admin"),
        ("x,admin", "x,admin"),
        (r#"["admin"]"#, r#""admin""#),
        ("[[admin]]", "[admin]"),
    ] {
        assert_eq!(
            parse_groups(&Value::String(claim.into())),
            [group],
            "{claim}"
        );
    }
    assert_eq!(
        parse_groups(&Value::String("[]".into())),
        Vec::<String>::new()
    );
    assert_eq!(parse_groups(&json!(7)), Vec::<String>::new());
}

#[tokio::test]
async fn store_is_untouched_by_rejected_requests() {
    let api = api();
    for name in [
        "create-user-invalid.json",
        "create-user-malformed-json.json",
        "create-user-wrong-content-type.json",
        "get-user-no-claims.json",
        "unknown-route.json",
        "wrong-method.json",
        "list-users-forbidden.json",
    ] {
        call(&api, &event_json(name)).await;
    }
    assert_eq!(api.store.faults.total_calls(), 0);
    assert!(api.store.get(uuid::Uuid::nil()).await.unwrap().is_none());
}

#[tokio::test]
async fn the_sample_with_someone_elses_email_is_refused_before_the_store() {
    let api = api();
    let r = call(&api, &event_json("create-user-someone-elses-email.json")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(api.store.faults.total_calls(), 0);
}

#[test]
fn the_metrics_emitted_are_the_catalogued_ones() {
    use telemetry::metric_catalog::{capture, emitted_by};
    let emitted = capture(async {
        let api = api();
        call(&api, &event_json("create-user.json")).await;
        call(&api, &event_json("unknown-route.json")).await;
    });
    assert_eq!(emitted.unwrap(), emitted_by("user-api"));
}
