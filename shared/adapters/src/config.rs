//! The AWS SDK settings every client gets, from environment variables checked at cold start.

use std::time::Duration;

use settings::{ConfigError, Env};

/// Timeouts and retries for every AWS SDK client (the SDK's defaults wait forever on a hung endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    pub connect_timeout: Duration,
    pub attempt_timeout: Duration,
    pub operation_timeout: Duration,
    pub max_attempts: u32,
}

impl AwsSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let settings = Self {
            connect_timeout: env.millis("AWS_CONNECT_TIMEOUT_MS", 1_000, 10..=60_000)?,
            attempt_timeout: env.millis("AWS_ATTEMPT_TIMEOUT_MS", 2_000, 10..=300_000)?,
            operation_timeout: env.millis("AWS_OPERATION_TIMEOUT_MS", 6_000, 10..=900_000)?,
            max_attempts: env.number_in("AWS_MAX_ATTEMPTS", 3, 1..=10)? as u32,
        };
        if settings.operation_timeout < settings.attempt_timeout {
            return Err(ConfigError::new(
                "AWS_OPERATION_TIMEOUT_MS",
                "must be at least AWS_ATTEMPT_TIMEOUT_MS",
            ));
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_unset_or_blank() {
        let env = Env::from_pairs(&[("AWS_MAX_ATTEMPTS", " ")]);
        let s = AwsSettings::from_env(&env).unwrap();
        assert_eq!(s.max_attempts, 3);
        assert_eq!(s.attempt_timeout, Duration::from_millis(2_000));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = AwsSettings::from_env(&Env::from_pairs(&[("AWS_CONNECT_TIMEOUT_MS", "soon")]))
            .unwrap_err();
        assert_eq!(e.name, "AWS_CONNECT_TIMEOUT_MS");
        assert!(e.to_string().contains("\"soon\" is not valid"), "{e}");
        let e = AwsSettings::from_env(&Env::from_pairs(&[("AWS_MAX_ATTEMPTS", "0")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid configuration: AWS_MAX_ATTEMPTS = 0 is outside 1..=10"
        );
        let e = AwsSettings::from_env(&Env::from_pairs(&[
            ("AWS_ATTEMPT_TIMEOUT_MS", "5000"),
            ("AWS_OPERATION_TIMEOUT_MS", "1000"),
        ]))
        .unwrap_err();
        assert_eq!(e.name, "AWS_OPERATION_TIMEOUT_MS");
    }
}
