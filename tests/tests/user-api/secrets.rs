//! The pagination-token key comes from a secret the stack generates, read at cold start through
//! the real SDK against the emulator; a missing or unreadable secret stops the start with a message
//! naming the variable and the secret.

use adapters::secrets::read_configured_secret;
use aws_sdk_secretsmanager::operation::create_secret::builders::CreateSecretFluentBuilder;
use integration_tests as h;
use user_api::config::PAGE_TOKEN_SECRET_ARN;

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
async fn a_missing_or_unreadable_secret_stops_the_cold_start_naming_it() {
    let config = h::sdk_config().await;
    let client = adapters::aws::secrets_client(&config);
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-key-AbCdEf";
    let e = read_configured_secret(&client, PAGE_TOKEN_SECRET_ARN, missing)
        .await
        .unwrap_err();
    assert_eq!(e.name, PAGE_TOKEN_SECRET_ARN);
    let text = e.to_string();
    assert!(
        text.contains(missing) && text.contains("ResourceNotFoundException"),
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
    assert_eq!(e.name, PAGE_TOKEN_SECRET_ARN);
    assert!(e.to_string().contains(&deleted), "{e}");

    // A secret with no string (binary only) is no key.
    let binary = create_secret(&client, "page-token-binary", |s| {
        s.secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(vec![1, 2, 3]))
    })
    .await;
    let e = read_configured_secret(&client, PAGE_TOKEN_SECRET_ARN, &binary)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("holds no string"), "{e}");
}
