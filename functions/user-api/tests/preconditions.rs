//! `If-Match` is compared strongly (RFC 9110 §13.1.1) and an ETag names one representation only.

mod common;

use common::*;
use serde_json::{json, Value};

async fn create(api: &user_api::Api<domain::testing::InMemoryUserStore>, name: &str) -> Reply {
    let body = json!({"user_id": MEMBER, "name": name, "email": "grace@example.com"}).to_string();
    let created = call(
        api,
        &custom("POST", "/users", Some(&body), Some(ADMIN), true),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    created
}

fn patch_with(tag: &str) -> Value {
    let mut e = custom(
        "PATCH",
        &format!("/users/{MEMBER}"),
        Some(r#"{"name":"Changed"}"#),
        Some(ADMIN),
        true,
    );
    e["headers"]["if-match"] = tag.into();
    e
}

#[tokio::test]
async fn a_weak_validator_never_satisfies_if_match() {
    let api = api();
    let tag = create(&api, "Grace")
        .await
        .header("etag")
        .unwrap()
        .to_string();
    for weak in [format!("W/{tag}"), format!("\"x\", W/{tag}")] {
        let reply = call(&api, &patch_with(&weak)).await;
        assert_eq!(reply.status, 412, "{weak}: {}", reply.body);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
    }
    // Unquoted, the tag is not an entity tag either.
    let bare = tag.trim_matches('"').to_string();
    assert_eq!(call(&api, &patch_with(&bare)).await.status, 412);
    // The strong tag itself, alone or in a list, does.
    let reply = call(&api, &patch_with(&format!("\"x\", {tag}"))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn a_non_ascii_if_match_is_refused_never_ignored() {
    let api = api();
    let tag = create(&api, "Grace")
        .await
        .header("etag")
        .unwrap()
        .to_string();
    for odd in ["\"é\"", "\"1\u{a0}\"", "Ünïcode"] {
        let reply = call(&api, &patch_with(odd)).await;
        assert_eq!(reply.status, 400, "{odd:?}: {}", reply.body);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(reply.body["errors"][0]["field"], "If-Match");
        let mut delete = patch_with(odd);
        delete["requestContext"]["http"]["method"] = "DELETE".into();
        delete["routeKey"] = "DELETE /users/{id}".into();
        delete.as_object_mut().unwrap().remove("body");
        assert_eq!(call(&api, &delete).await.status, 400, "{odd:?}");
    }
    let got = call(
        &api,
        &custom("GET", &format!("/users/{MEMBER}"), None, Some(ADMIN), true),
    )
    .await;
    assert_eq!(got.body["name"], "Grace", "nothing was written");
    assert_eq!(got.header("etag"), Some(tag.as_str()));
}

#[tokio::test]
async fn a_recreated_profile_never_answers_to_the_old_etag() {
    let api = api();
    let old = create(&api, "Grace").await;
    let old_tag = old.header("etag").unwrap().to_string();
    let mut delete = custom(
        "DELETE",
        &format!("/users/{MEMBER}"),
        None,
        Some(ADMIN),
        true,
    );
    delete["headers"]["if-match"] = old_tag.clone().into();
    assert_eq!(call(&api, &delete).await.status, 204);

    let new = create(&api, "Someone else").await;
    assert_eq!(
        new.body["version"], 1,
        "the new profile starts again at version 1"
    );
    let new_tag = new.header("etag").unwrap().to_string();
    assert_ne!(new_tag, old_tag, "a different profile, a different ETag");
    let reply = call(&api, &patch_with(&old_tag)).await;
    assert_eq!(
        reply.status, 412,
        "a cached ETag of the deleted profile: {}",
        reply.body
    );
    assert_eq!(call(&api, &patch_with(&new_tag)).await.status, 200);
}
