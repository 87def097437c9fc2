//! The pagination-token key comes from a secret the stack generates, read through the real SDK
//! against the emulator by the first request that pages, not at cold start: a request that does not
//! page never reads it. A missing or unreadable secret fails only the requests that need the key,
//! with a 500 (the log line names the variable, the secret and Secrets Manager's error code); the
//! next such request reads again.

use adapters::secrets::read_configured_secret;
use aws_sdk_secretsmanager::operation::create_secret::builders::CreateSecretFluentBuilder;
use domain::testing::InMemoryUserStore;
use domain::PortError;
use integration_tests as h;
use integration_tests::fixtures::api_event;
use lambda_http::Body;
use serde_json::{json, Value};
use user_api::config::PAGE_TOKEN_SECRET_ARN;
use user_api::page_tokens::LazyPageTokens;
use user_api::Api;

const ADMIN: &str = "8a1f6f3e-0f5c-4c4e-9a3b-2d6f3c1a0b01";

/// A new secret, shaped by `value` (its string or its binary); its ARN.
async fn create_secret(
    client: &aws_sdk_secretsmanager::Client,
    prefix: &str,
    value: impl FnOnce(CreateSecretFluentBuilder) -> CreateSecretFluentBuilder,
) -> String {
    value(client.create_secret().name(h::unique(prefix)))
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn the_key_is_read_from_the_secret() {
    let config = h::sdk_config().await;
    let client = adapters::aws::secrets_client(&config);
    let arn = create_secret(&client, "page-token-key", |s| {
        s.secret_string("a generated key")
    })
    .await;
    let key = read_configured_secret(&client, PAGE_TOKEN_SECRET_ARN, &arn)
        .await
        .unwrap();
    assert_eq!(key, "a generated key");
}

#[tokio::test]
async fn a_missing_or_unreadable_secret_is_refused_and_logged_naming_it() {
    use tracing_subscriber::layer::SubscriberExt;
    let logs = telemetry::CapturedLogs::default();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(telemetry::JsonLogLayer::new("user-api", logs.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);

    let config = h::sdk_config().await;
    let client = adapters::aws::secrets_client(&config);
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-key-AbCdEf";
    let e = read_configured_secret(&client, PAGE_TOKEN_SECRET_ARN, missing)
        .await
        .unwrap_err();
    assert!(
        matches!(e, PortError::Rejected(_)),
        "{e:?}: retrying cannot help"
    );
    let origin = e.origin().unwrap();
    assert_eq!(
        (origin.service, origin.code),
        ("secretsmanager", "ResourceNotFoundException")
    );
    let line = logs
        .text()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no error logged: {}", logs.text()));
    let text = line.to_string();
    assert!(
        text.contains(PAGE_TOKEN_SECRET_ARN)
            && text.contains(missing)
            && text.contains("ResourceNotFoundException"),
        "{text}"
    );

    // Scheduled for deletion: Secrets Manager refuses to read it.
    let deleted = create_secret(&client, "page-token-deleted", |s| s.secret_string("k")).await;
    client
        .delete_secret()
        .secret_id(&deleted)
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    let e = read_configured_secret(&client, PAGE_TOKEN_SECRET_ARN, &deleted)
        .await
        .unwrap_err();
    assert!(matches!(e, PortError::Rejected(_)), "{e:?}");
    assert!(logs.text().contains(&deleted), "{}", logs.text());

    // A secret with no string (binary only) is no key.
    let binary = create_secret(&client, "page-token-binary", |s| {
        s.secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(vec![1, 2, 3]))
    })
    .await;
    let e = read_configured_secret(&client, PAGE_TOKEN_SECRET_ARN, &binary)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("holds no string"), "{e}");

    an_unreadable_secret_fails_only_the_requests_that_page_and_is_read_again().await;
}

/// The API as main.rs builds it: the key read from the secret `arn` names when first needed; how
/// many reads were asked for.
fn api_reading(
    client: aws_sdk_secretsmanager::Client,
    arn: String,
) -> (
    Api<InMemoryUserStore>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = reads.clone();
    let tokens = LazyPageTokens::read_on_first_use(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (client, arn) = (client.clone(), arn.clone());
        async move { read_configured_secret(&client, PAGE_TOKEN_SECRET_ARN, &arn).await }
    });
    let api = Api::with_page_tokens(
        InMemoryUserStore::default(),
        vec!["https://app.example.com".into()],
        tokens,
    );
    (api, reads)
}

async fn call(api: &Api<InMemoryUserStore>, event: &Value) -> (u16, Value) {
    let request = lambda_http::request::from_str(&event.to_string()).expect("valid event");
    let response = user_api::handle(api, request).await;
    let body = match response.body() {
        Body::Text(t) => serde_json::from_str(t).expect("JSON body"),
        _ => Value::Null,
    };
    (response.status().as_u16(), body)
}

async fn create_users(api: &Api<InMemoryUserStore>, n: usize) {
    for i in 0..n {
        let body = json!({"name": format!("User {i}"), "email": format!("u{i}@example.com")});
        let event = api_event("POST", "/users", Some(&body.to_string()), Some(ADMIN), true);
        assert_eq!(call(api, &event).await.0, 201);
    }
}

#[tokio::test]
async fn only_a_request_that_pages_reads_the_key_and_it_is_read_once() {
    let config = h::sdk_config().await;
    let client = adapters::aws::secrets_client(&config);
    let arn = create_secret(&client, "page-token-lazy", |s| {
        s.secret_string("a generated key")
    })
    .await;
    let (api, reads) = api_reading(client, arn);
    create_users(&api, 3).await;
    let (status, page) = call(&api, &api_event("GET", "/users", None, Some(ADMIN), true)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page["next_token"].is_null(), "one page: {page}");
    assert_eq!(
        reads.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no token, no key"
    );

    let (status, first) = call(
        &api,
        &api_event("GET", "/users?limit=2", None, Some(ADMIN), true),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let token = first["next_token"]
        .as_str()
        .expect("a second page")
        .to_string();
    let path = format!("/users?limit=2&next_token={token}");
    let (status, second) = call(&api, &api_event("GET", &path, None, Some(ADMIN), true)).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["users"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        reads.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "read once, then kept"
    );
}

/// Called from the test that captures logs, not a test of its own: tracing caches whether a log
/// call is wanted per call site, so the same failure logged on another test's thread at the same
/// time could hide it from the capture.
async fn an_unreadable_secret_fails_only_the_requests_that_page_and_is_read_again() {
    let config = h::sdk_config().await;
    let client = adapters::aws::secrets_client(&config);
    let name = h::unique("page-token-later");
    let (api, reads) = api_reading(client.clone(), name.clone());
    create_users(&api, 3).await;
    // No such secret yet: the page that needs a token is a 500 with a JSON body.
    let (status, body) = call(
        &api,
        &api_event("GET", "/users?limit=2", None, Some(ADMIN), true),
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert!(body.is_object(), "{body}");
    assert!(
        !body.to_string().contains(&name),
        "the secret's name stays in the logs: {body}"
    );
    // Requests that do not page are served.
    let (status, _) = call(&api, &api_event("GET", "/users", None, Some(ADMIN), true)).await;
    assert_eq!(status, 200);
    // Once the secret exists, the next request that pages reads it.
    client
        .create_secret()
        .name(&name)
        .secret_string("a generated key")
        .send()
        .await
        .unwrap();
    let (status, page) = call(
        &api,
        &api_event("GET", "/users?limit=2", None, Some(ADMIN), true),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page["next_token"].is_string(), "{page}");
    assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 2);
}
