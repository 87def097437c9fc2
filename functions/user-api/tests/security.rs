//! Security checks of user-api: the full authorisation matrix (every route × every kind of caller),
//! CORS and problem+json on every error, oversize input. (Logs are checked in `logs.rs`, alone in
//! its test binary: `tracing` caches per-callsite interest process-wide, so a scoped subscriber in one
//! test can miss events while other tests run on other threads.)

mod common;

use common::*;
use serde_json::{json, Value};

const OTHER: &str = "5d4c3b2a-1f0e-4a9b-8c7d-6e5f4a3b2c1d";
const NEWCOMER: &str = "0e1d2c3b-4a59-4687-9a8b-7c6d5e4f3a2b";
const ORIGIN: &str = "https://app.example.com";

#[derive(Clone, Copy, Debug)]
enum Who {
    Nobody,
    Other,
    Owner,
    Admin,
}

/// The claims for `who` acting on a profile owned by `owner`.
fn claims(who: Who, owner: &str) -> (Option<&str>, bool) {
    match who {
        Who::Nobody => (None, false),
        Who::Other => (Some(if owner == MEMBER { OTHER } else { MEMBER }), false),
        Who::Owner => (Some(owner), false),
        Who::Admin => (Some(ADMIN), true),
    }
}

/// An API holding one profile, MEMBER's, at version 1.
async fn api_with_member() -> user_api::Api<domain::testing::InMemoryUserStore> {
    let api = api();
    let body =
        json!({"user_id": MEMBER, "name": "Grace", "email": "grace@example.com"}).to_string();
    let created = call(
        &api,
        &custom("POST", "/users", Some(&body), Some(ADMIN), true),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    api
}

fn with_if_match(mut event: Value) -> Value {
    event["headers"]["if-match"] = "*".into();
    event
}

#[tokio::test]
async fn authorisation_matrix_every_route_and_caller() {
    let item = format!("/users/{MEMBER}");
    let new_profile =
        json!({"user_id": NEWCOMER, "name": "Ada", "email": "ada@example.com"}).to_string();
    let change = json!({"name": "Changed", "email": "changed@example.com"}).to_string();
    let patch = json!({"name": "Patched"}).to_string();
    // (route, expected status for nobody, other, owner, admin)
    type Build = Box<dyn Fn(Who) -> Value>;
    let cases: Vec<(&str, Build, [u16; 4])> = vec![
        (
            "GET /users",
            Box::new(|w| {
                let (sub, admin) = claims(w, MEMBER);
                custom("GET", "/users", None, sub, admin)
            }),
            [401, 403, 403, 200],
        ),
        (
            "POST /users",
            Box::new(move |w| {
                let (sub, admin) = claims(w, NEWCOMER);
                custom("POST", "/users", Some(&new_profile), sub, admin)
            }),
            [401, 403, 201, 201],
        ),
        (
            "GET /users/{id}",
            Box::new({
                let item = item.clone();
                move |w| {
                    let (sub, admin) = claims(w, MEMBER);
                    custom("GET", &item, None, sub, admin)
                }
            }),
            [401, 403, 200, 200],
        ),
        (
            "PUT /users/{id}",
            Box::new({
                let item = item.clone();
                move |w| {
                    let (sub, admin) = claims(w, MEMBER);
                    with_if_match(custom("PUT", &item, Some(&change), sub, admin))
                }
            }),
            [401, 403, 200, 200],
        ),
        (
            "PATCH /users/{id}",
            Box::new({
                let item = item.clone();
                move |w| {
                    let (sub, admin) = claims(w, MEMBER);
                    with_if_match(custom("PATCH", &item, Some(&patch), sub, admin))
                }
            }),
            [401, 403, 200, 200],
        ),
        (
            "DELETE /users/{id}",
            Box::new({
                let item = item.clone();
                move |w| {
                    let (sub, admin) = claims(w, MEMBER);
                    with_if_match(custom("DELETE", &item, None, sub, admin))
                }
            }),
            [401, 403, 204, 204],
        ),
    ];
    let callers = [Who::Nobody, Who::Other, Who::Owner, Who::Admin];
    let mut checked = 0;
    for (route, build, expected) in &cases {
        for (who, want) in callers.iter().zip(expected) {
            // A fresh store per cell, so one cell's write cannot decide another's outcome.
            let api = api_with_member().await;
            let before = api.store.snapshot();
            let reply = call(&api, &build(*who)).await;
            assert_eq!(
                reply.status, *want,
                "{route} as {who:?}: got {} {}",
                reply.status, reply.body
            );
            assert_eq!(
                reply.header("access-control-allow-origin"),
                Some(ORIGIN),
                "{route} as {who:?}: CORS header"
            );
            if reply.status >= 400 {
                assert_eq!(
                    reply.header("content-type"),
                    Some("application/problem+json")
                );
                assert_eq!(reply.body["status"], *want);
                assert_eq!(
                    api.store.snapshot(),
                    before,
                    "{route} as {who:?}: a refused request changed the store"
                );
            }
            if reply.status == 401 {
                assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 24);
}

#[tokio::test]
async fn every_error_is_problem_json_with_cors() {
    let api = api_with_member().await;
    let mut seen = std::collections::BTreeSet::new();
    let huge = "x".repeat(domain::user::MAX_BODY_BYTES + 1);
    let mut events: Vec<Value> = [
        "create-user-invalid.json",
        "create-user-malformed-json.json",
        "create-user-wrong-content-type.json",
        "get-user-no-claims.json",
        "get-other-user-forbidden.json",
        "get-user-not-uuid.json",
        "unknown-route.json",
        "wrong-method.json",
        "list-users-bad-limit.json",
        "list-users-bad-token.json",
        "patch-user-stale-if-match.json",
    ]
    .iter()
    .map(|name| event_json(name))
    .collect();
    events.push(custom("POST", "/users", Some(&huge), Some(MEMBER), false));
    // Taken email → 409; a missing profile → 404.
    let taken = json!({"user_id": NEWCOMER, "name": "Ada", "email": "grace@example.com"});
    events.push(custom(
        "POST",
        "/users",
        Some(&taken.to_string()),
        Some(ADMIN),
        true,
    ));
    events.push(custom(
        "GET",
        &format!("/users/{NEWCOMER}"),
        None,
        Some(ADMIN),
        true,
    ));
    for mut event in events {
        event["headers"]["origin"] = ORIGIN.into();
        let reply = call(&api, &event).await;
        assert!(reply.status >= 400, "{event}: {}", reply.status);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json"),
            "{}",
            reply.status
        );
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some(ORIGIN),
            "CORS on {}",
            reply.status
        );
        assert_eq!(reply.header("vary"), Some("Origin"));
        assert_eq!(reply.body["status"], reply.status);
        assert!(reply.body["title"].is_string());
        seen.insert(reply.status);
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [400, 401, 403, 404, 405, 409, 412, 413, 415]
    );
}

#[tokio::test]
async fn oversize_headers_paths_and_queries_are_client_errors() {
    let api = api_with_member().await;
    let item = format!("/users/{MEMBER}");
    let big = "a".repeat(64 * 1024);

    let e = custom("GET", &item, None, Some(MEMBER), false);
    let reply = call(&api, &with_if_match_header(e, &big)).await;
    assert_eq!(reply.status, 200, "If-Match is ignored on GET");

    let e = custom("PATCH", &item, Some(r#"{"name":"N"}"#), Some(MEMBER), false);
    let reply = call(&api, &with_if_match_header(e, &big)).await;
    assert_eq!(reply.status, 412, "a huge tag matches nothing");

    let mut e = custom("GET", &item, None, Some(MEMBER), false);
    e["headers"]["origin"] = big.clone().into();
    let reply = call(&api, &e).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), None);

    let mut e = custom("GET", &item, None, Some(MEMBER), false);
    for n in 0..2000 {
        e["headers"][format!("x-filler-{n}")] = "v".into();
    }
    assert_eq!(call(&api, &e).await.status, 200);

    // API Gateway refuses request lines over 10 KiB; 8 KiB is the longest path that can arrive.
    // (Past 64 KiB the `http` crate cannot even hold the URI and lambda_http's conversion panics,
    // which the runtime's panic layer would turn into an invocation error.)
    let long = "a".repeat(8 * 1024);
    let reply = call(
        &api,
        &custom("GET", &format!("/users/{long}"), None, Some(ADMIN), true),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    let detail = reply.body.to_string();
    assert!(detail.len() < 2048, "the error does not echo 64 KiB back");

    let mut e = custom("GET", "/users", None, Some(ADMIN), true);
    e["rawQueryString"] = format!("limit={long}").into();
    let reply = call(&api, &e).await;
    assert_eq!(reply.status, 400);
    assert!(reply.body.to_string().len() < 2048);

    let huge = "x".repeat(domain::user::MAX_BODY_BYTES + 1);
    let reply = call(
        &api,
        &custom("PUT", &item, Some(&huge), Some(MEMBER), false),
    )
    .await;
    assert_eq!(reply.status, 413);
}

fn with_if_match_header(mut event: Value, tag: &str) -> Value {
    event["headers"]["if-match"] = format!("\"{tag}\"").into();
    event
}

/// A member's event whose token says `email` (verified or not), whatever the body sends.
fn member_with_claim(
    method: &str,
    path: &str,
    body: &Value,
    sub: &str,
    email: &str,
    verified: &str,
) -> Value {
    let mut e = custom(method, path, Some(&body.to_string()), Some(sub), false);
    let claims = &mut e["requestContext"]["authorizer"]["jwt"]["claims"];
    claims["email"] = email.into();
    claims["email_verified"] = verified.into();
    e
}

#[tokio::test]
async fn members_may_only_use_their_verified_email() {
    let api = api();
    let mine = json!({"user_id": NEWCOMER, "name": "Ada", "email": "Ada@Example.com"});
    let someone_elses = json!({"user_id": NEWCOMER, "name": "Ada", "email": "ceo@example.com"});
    // Squatting another address: refused before the store is touched.
    for (body, claim, verified) in [
        (&someone_elses, "ada@example.com", "true"),
        (&mine, "ada@example.com", "false"),
        (&mine, "", "true"),
    ] {
        let r = call(
            &api,
            &member_with_claim("POST", "/users", body, NEWCOMER, claim, verified),
        )
        .await;
        assert_eq!(
            r.status, 403,
            "{body} with claim {claim:?}/{verified}: {}",
            r.body
        );
        assert!(r.body["detail"]
            .as_str()
            .unwrap()
            .contains("verified email"));
    }
    assert_eq!(api.store.faults.total_calls(), 0);
    let created = call(
        &api,
        &member_with_claim("POST", "/users", &mine, NEWCOMER, "ada@example.com", "true"),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    // Changing the address later follows the same rule; a name-only change needs no claim.
    let item = format!("/users/{NEWCOMER}");
    let to_other = json!({"email": "ceo@example.com"});
    let r = call(
        &api,
        &member_with_claim(
            "PATCH",
            &item,
            &to_other,
            NEWCOMER,
            "ada@example.com",
            "true",
        ),
    )
    .await;
    assert_eq!(r.status, 403);
    let replace = json!({"name": "Ada", "email": "ceo@example.com"});
    let r = call(
        &api,
        &member_with_claim("PUT", &item, &replace, NEWCOMER, "ada@example.com", "true"),
    )
    .await;
    assert_eq!(r.status, 403);
    let rename = json!({"name": "Ada L."});
    let r = call(
        &api,
        &member_with_claim("PATCH", &item, &rename, NEWCOMER, "", "false"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Admins may give any profile any address.
    let by_admin = json!({"name": "Chief", "email": "ceo@example.com"}).to_string();
    let r = call(
        &api,
        &custom("POST", "/users", Some(&by_admin), Some(ADMIN), true),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test]
async fn no_member_response_reveals_that_another_account_holds_an_address() {
    // MEMBER holds grace@example.com.
    let api = api_with_member().await;
    // A newcomer whose token says `claim` asks for a profile with `email`.
    let probe = |email: &str, claim: &str| {
        let body = json!({"user_id": NEWCOMER, "name": "Probe", "email": email});
        member_with_claim("POST", "/users", &body, NEWCOMER, claim, "true")
    };
    // Probing someone else's address gives the same answer whether it is taken or free.
    let taken = call(&api, &probe("grace@example.com", "me@example.com")).await;
    let free = call(&api, &probe("free@example.com", "me@example.com")).await;
    assert_eq!((taken.status, &taken.body), (free.status, &free.body));
    // A member whose own verified address is held by another profile learns nothing about it.
    let own = call(&api, &probe("grace@example.com", "grace@example.com")).await;
    assert_eq!(own.status, 409, "{}", own.body);
    let detail = own.body["detail"].as_str().unwrap();
    assert!(
        !detail.contains("another") && !detail.contains("already"),
        "{detail}"
    );
    // Admins are told precisely (they can list every user anyway).
    let by_admin = json!({"name": "Dup", "email": "grace@example.com"}).to_string();
    let r = call(
        &api,
        &custom("POST", "/users", Some(&by_admin), Some(ADMIN), true),
    )
    .await;
    assert_eq!(r.status, 409);
    assert!(r.body["detail"].as_str().unwrap().contains("another user"));
}

#[tokio::test]
async fn a_group_named_like_admin_is_not_admin() {
    let api = api_with_member().await;
    for groups in ["[x,admin]", "x,admin", r#"["admin"]"#, "[staff,admin]"] {
        let mut e = custom("GET", "/users", None, Some(MEMBER), false);
        e["requestContext"]["authorizer"]["jwt"]["claims"]["cognito:groups"] = groups.into();
        let r = call(&api, &e).await;
        assert_eq!(r.status, 403, "{groups}: {}", r.body);
        assert!(r.body["detail"]
            .as_str()
            .unwrap()
            .contains("administrators"));
    }
    // The REST API (v1) passes claims as strings too: the same rule.
    let mut v1 = event_json("get-user-rest-v1.json");
    v1["requestContext"]["authorizer"]["claims"]["cognito:groups"] = "staff,admin".into();
    v1["path"] = "/users".into();
    v1["resource"] = "/users".into();
    v1["requestContext"]["path"] = "/dev/users".into();
    v1["requestContext"]["resourcePath"] = "/users".into();
    v1["pathParameters"] = Value::Null;
    let r = call(&api, &v1).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("administrators"));
}

#[tokio::test]
async fn error_bodies_echo_client_names_cut_and_counted() {
    let api = api_with_member().await;
    // Unknown query parameters: 300 names of 100 characters each.
    let query: Vec<String> = (0..300)
        .map(|i| format!("{}{i:03}=1", "q".repeat(100)))
        .collect();
    let mut e = custom("GET", "/users", None, Some(ADMIN), true);
    e["rawQueryString"] = query.join("&").into();
    let reply = call(&api, &e).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    let text = reply.body.to_string();
    assert!(text.len() < 2048, "{} bytes echoed", text.len());
    let errors = reply.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), domain::validation::MAX_ECHOED_NAMES + 1);
    assert!(errors[0]["field"].as_str().unwrap().ends_with('…'));
    assert!(
        errors.last().unwrap()["message"]
            .as_str()
            .unwrap()
            .starts_with("295 more"),
        "{text}"
    );

    // Unknown body fields: as many long names as fit in the 16 KiB body.
    let mut body = serde_json::Map::new();
    for i in 0..140 {
        body.insert(format!("{}{i:03}", "f".repeat(100)), json!(1));
    }
    body.insert("name".into(), json!("N"));
    let body = Value::Object(body).to_string();
    assert!(body.len() <= domain::user::MAX_BODY_BYTES);
    let item = format!("/users/{MEMBER}");
    let reply = call(
        &api,
        &with_if_match(custom("PUT", &item, Some(&body), Some(ADMIN), true)),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    let text = reply.body.to_string();
    assert!(text.len() < 2048, "{} bytes echoed", text.len());
    assert!(text.contains("135 more"), "{text}");
}
