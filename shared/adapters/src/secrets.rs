//! Secrets the stack generates, read when first needed.

use crate::errors::classify;
use domain::PortError;

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

/// Reads the secret a configuration variable names. A throttled or unreachable Secrets Manager is
/// passed on as it is (retrying later helps); any other failure (no such secret, access denied, a
/// secret scheduled for deletion, no string) is `Rejected`. Either way an error log line names the
/// variable, the secret and why (Secrets Manager's own message, which quotes no secret value).
pub async fn read_configured_secret(
    client: &aws_sdk_secretsmanager::Client,
    variable: &str,
    secret_id: &str,
) -> Result<String, PortError> {
    read_secret(client, secret_id).await.map_err(|e| {
        tracing::error!(
            variable,
            secret = secret_id,
            error = %e,
            "the secret a configuration variable names could not be read"
        );
        match e {
            PortError::Throttled(_) | PortError::Unavailable(_) | PortError::Rejected(_) => e,
            other => PortError::Rejected(format!("secretsmanager: {other} ({secret_id})")),
        }
    })
}
