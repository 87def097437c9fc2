//! Configuration from environment variables, validated once at cold start with a clear message.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {name} {problem}")]
pub struct ConfigError {
    pub name: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(name: &str, problem: impl Into<String>) -> Self {
        Self {
            name: name.to_string(),
            problem: problem.into(),
        }
    }
}

/// A source of settings: the process environment, or a fixed map in tests. It remembers every name
/// it was asked for, so a test can compare what the code reads with what the template sets.
#[derive(Debug, Clone, Default)]
pub struct Env {
    fixed: Option<HashMap<String, String>>,
    read: Arc<Mutex<BTreeSet<String>>>,
}

impl Env {
    pub fn process() -> Self {
        Self::default()
    }

    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self {
            fixed: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            read: Arc::default(),
        }
    }

    /// The value, or `None` when unset or blank.
    pub fn get(&self, name: &str) -> Option<String> {
        self.read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string());
        let value = match &self.fixed {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        value.filter(|v| !v.trim().is_empty())
    }

    /// Every name looked up so far, sorted.
    pub fn names_read(&self) -> Vec<String> {
        self.read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError::new(name, "is required but not set"))
    }

    /// Parses the value, or returns `default` when unset.
    pub fn parse_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e| ConfigError::new(name, format!("= {raw:?} is not valid: {e}"))),
        }
    }

    /// A whole number within `range`, or `default` when unset.
    pub fn number_in(
        &self,
        name: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let value: u64 = self.parse_or(name, default)?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::new(
                name,
                format!("= {value} is outside {}..={}", range.start(), range.end()),
            ))
        }
    }

    pub fn millis(
        &self,
        name: &str,
        default_ms: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        self.number_in(name, default_ms, range)
            .map(Duration::from_millis)
    }
}

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

    #[test]
    fn required_reports_missing_names() {
        let e = Env::from_pairs(&[]).required("USERS_TABLE").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid configuration: USERS_TABLE is required but not set"
        );
    }
}
