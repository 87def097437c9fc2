//! The OpenAPI document and the router agree: the same operations, and for each operation exactly the
//! statuses that real requests (valid, invalid, unauthorised, conflicting, failing dependencies) get.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use domain::testing::InMemoryUserStore;
use domain::PortError;
use serde_json::Value;
use user_api::Api;

type Ops = BTreeMap<(String, String), BTreeSet<u16>>;

fn documented() -> Ops {
    let path = format!("{}/openapi.yaml", env!("CARGO_MANIFEST_DIR"));
    let spec: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(spec["openapi"].as_str(), Some("3.1.0"));
    let mut ops = Ops::new();
    for (path, item) in spec["paths"].as_mapping().unwrap() {
        for (method, op) in item.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            if method == "parameters" {
                continue;
            }
            // Statuses only API Gateway answers (its throttling) never come from the router.
            let statuses = op["responses"]
                .as_mapping()
                .unwrap()
                .iter()
                .filter(|(_, r)| r["$ref"].as_str() != Some("#/components/responses/Throttled"))
                .map(|(k, _)| k.as_str().unwrap().parse::<u16>().unwrap())
                .collect();
            ops.insert(
                (path.as_str().unwrap().to_string(), method.to_uppercase()),
                statuses,
            );
        }
    }
    ops
}

const OTHER: &str = "11111111-2222-4333-8444-555555555555";

/// The `Idempotency-Key` the seeded store has already answered (for the seeded third user).
const USED_KEY: &str = "used-key";

async fn seeded() -> Api<InMemoryUserStore, domain::testing::InMemoryIdempotencyStore> {
    let api = api().with_idempotency(domain::testing::InMemoryIdempotencyStore::default(), 3600);
    let mut keyed = custom(
        "POST",
        "/users",
        Some(r#"{"name":"Third","email":"third@example.com"}"#),
        Some(ADMIN),
        true,
    );
    keyed["headers"]["idempotency-key"] = USED_KEY.into();
    assert_eq!(call(&api, &keyed).await.status, 201);
    let own =
        serde_json::json!({"user_id": MEMBER, "name": "Member", "email": "member@example.com"});
    let other =
        serde_json::json!({"user_id": OTHER, "name": "Other", "email": "taken@example.com"});
    for body in [own, other] {
        let r = call(
            &api,
            &custom("POST", "/users", Some(&body.to_string()), Some(ADMIN), true),
        )
        .await;
        assert_eq!(r.status, 201);
    }
    api
}

/// Requests that between them reach every outcome of an operation.
fn candidates(method: &str, template_path: &str) -> Vec<(Value, Option<PortError>)> {
    let item = template_path.contains("{id}");
    let own = if item {
        format!("/users/{MEMBER}")
    } else {
        "/users".to_string()
    };
    let missing = format!("/users/{}", uuid::Uuid::new_v4());
    let writes = matches!(method, "POST" | "PUT" | "PATCH");
    let good_body = match method {
        "POST" => Some(r#"{"name":"New","email":"new@example.com"}"#.to_string()),
        "PUT" => Some(r#"{"name":"New","email":"member@example.com"}"#.to_string()),
        "PATCH" => Some(r#"{"name":"New"}"#.to_string()),
        _ => None,
    };
    let taken = match method {
        "POST" => Some(r#"{"name":"New","email":"taken@example.com"}"#.to_string()),
        "PUT" => Some(r#"{"name":"New","email":"taken@example.com"}"#.to_string()),
        "PATCH" => Some(r#"{"email":"taken@example.com"}"#.to_string()),
        _ => None,
    };
    let admin_ok = !item && method == "GET";
    let who = |admin: bool| if admin { ADMIN } else { MEMBER };
    let mut list = vec![
        (
            custom(
                method,
                &own,
                good_body.as_deref(),
                Some(who(admin_ok)),
                admin_ok,
            ),
            None,
        ),
        (
            custom(method, &own, good_body.as_deref(), None, false),
            None,
        ),
        (
            custom(
                method,
                if item { &missing } else { &own },
                good_body.as_deref(),
                Some(ADMIN),
                true,
            ),
            None,
        ),
        (
            custom(method, &own, good_body.as_deref(), Some(OTHER), false),
            None,
        ),
    ];
    if item {
        list.push((
            custom(
                method,
                "/users/not-a-uuid",
                good_body.as_deref(),
                Some(ADMIN),
                true,
            ),
            None,
        ));
        let mut stale = custom(method, &own, good_body.as_deref(), Some(MEMBER), false);
        stale["headers"]["if-match"] = "\"999\"".into();
        list.push((stale, None));
    } else {
        let mut bad = custom(method, &own, Some("{}"), Some(ADMIN), true);
        bad["rawQueryString"] = "limit=0".into();
        list.push((bad, None));
        let someone_else = format!(r#"{{"user_id":"{OTHER}","name":"X","email":"x@example.com"}}"#);
        list.push((
            custom(method, &own, Some(&someone_else), Some(MEMBER), false),
            None,
        ));
        if method == "POST" {
            // The seeded key again, with another body.
            let mut reused = custom(method, &own, good_body.as_deref(), Some(ADMIN), true);
            reused["headers"]["idempotency-key"] = USED_KEY.into();
            list.push((reused, None));
        }
    }
    if writes {
        list.push((
            custom(method, &own, Some("{broken"), Some(MEMBER), false),
            None,
        ));
        list.push((
            custom(method, &own, taken.as_deref(), Some(MEMBER), false),
            None,
        ));
        let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(20_000));
        list.push((custom(method, &own, Some(&big), Some(MEMBER), false), None));
        let mut plain = custom(method, &own, good_body.as_deref(), Some(MEMBER), false);
        plain["headers"]["content-type"] = "text/plain".into();
        list.push((plain, None));
    }
    for fault in [
        PortError::Throttled("t".into()),
        PortError::Rejected("r".into()),
    ] {
        list.push((
            custom(
                method,
                &own,
                good_body.as_deref(),
                Some(who(admin_ok)),
                admin_ok,
            ),
            Some(fault),
        ));
    }
    list
}

#[tokio::test]
async fn openapi_and_router_agree_on_operations_and_statuses() {
    let spec = documented();
    let mut routed = BTreeSet::new();
    for m in user_api::COLLECTION_METHODS {
        routed.insert(("/users".to_string(), m.to_string()));
    }
    for m in user_api::ITEM_METHODS {
        routed.insert(("/users/{id}".to_string(), m.to_string()));
    }
    let documented_ops: BTreeSet<_> = spec.keys().cloned().collect();
    assert_eq!(
        documented_ops, routed,
        "operations in openapi.yaml vs the router"
    );

    let mut observed = Ops::new();
    for (path, method) in spec.keys() {
        for (event, fault) in candidates(method, path) {
            let api = seeded().await;
            if let Some(fault) = fault {
                for op in ["create", "get", "list", "update", "delete"] {
                    api.store.faults.fail_next(op, fault.clone());
                }
            }
            let status = call(&api, &event).await.status;
            observed
                .entry((path.clone(), method.clone()))
                .or_default()
                .insert(status);
        }
    }
    for (op, statuses) in &spec {
        let seen = observed.get(op).cloned().unwrap_or_default();
        assert_eq!(
            &seen, statuses,
            "{op:?}: statuses real requests get vs openapi.yaml"
        );
    }
}

/// API Gateway's own answers are documented with its body, and that body is the one the local
/// gateway (`tools/local_gateway.py`, used by the contract run) gives.
#[test]
fn gateway_answers_are_documented_as_the_local_gateway_gives_them() {
    let root = format!("{}/../..", env!("CARGO_MANIFEST_DIR"));
    let spec: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(format!("{root}/functions/user-api/openapi.yaml")).unwrap(),
    )
    .unwrap();
    let gateway = std::fs::read_to_string(format!("{root}/tools/local_gateway.py")).unwrap();
    let documented: BTreeSet<String> = spec["components"]["schemas"]["GatewayMessage"]
        ["properties"]["message"]["enum"]
        .as_sequence()
        .expect("GatewayMessage lists API Gateway's messages")
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    for (status, message) in [
        (401, "Unauthorized"),
        (413, "Request Entity Too Large"),
        (429, "Too Many Requests"),
        (500, "Internal Server Error"),
        (503, "Service Unavailable"),
    ] {
        assert!(documented.contains(message), "{message} is not documented");
        assert!(
            gateway.contains(&format!("({status}, {{\"message\": \"{message}\"}})")),
            "the local gateway does not answer {status} {message}"
        );
    }
    let responses = &spec["components"]["responses"];
    for name in [
        "Unauthorized",
        "TooLarge",
        "Internal",
        "Unavailable",
        "Throttled",
    ] {
        assert_eq!(
            responses[name]["content"]["application/json"]["schema"]["$ref"].as_str(),
            Some("#/components/schemas/GatewayMessage"),
            "{name} documents API Gateway's own body"
        );
    }
    // Every operation behind the authorizer can be throttled.
    for (_, item) in spec["paths"].as_mapping().unwrap() {
        for (method, op) in item.as_mapping().unwrap() {
            if method.as_str() == Some("parameters") || method.as_str() == Some("options") {
                continue;
            }
            assert!(
                op["responses"]["429"].is_mapping(),
                "{method:?} documents 429"
            );
        }
    }
}
