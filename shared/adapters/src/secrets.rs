//! Secrets the stack generates, read once at cold start.

use crate::errors::classify;
use domain::PortError;
use settings::ConfigError;

/// IAM actions reading a secret needs.
pub const READ_SECRET_ACTIONS: &[&str] = &["secretsmanager:GetSecretValue"];
/// And on the KMS key the secret is encrypted with.
pub const SECRET_KEY_ACTIONS: &[&str] = &["kms:Decrypt"];

/// The secret string of `secret_id` (a name or ARN). An empty or binary-only secret is refused: a
/// key nobody set must not sign anything.
pub async fn read_secret(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<String, PortError> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| classify("secretsmanager", &e))?;
    match out.secret_string() {
        Some(value) if !value.is_empty() => Ok(value.to_string()),
        _ => Err(PortError::Rejected(
            "secretsmanager: the secret holds no string".into(),
        )),
    }
}

/// Reads the secret a configuration variable names, at cold start: any failure is a configuration
/// error naming the variable, the secret and why, so the function does not start without its key.
pub async fn read_configured_secret(
    client: &aws_sdk_secretsmanager::Client,
    variable: &str,
    secret_id: &str,
) -> Result<String, ConfigError> {
    read_secret(client, secret_id).await.map_err(|e| {
        ConfigError::new(
            variable,
            format!("the secret {secret_id} could not be read: {e}"),
        )
    })
}
