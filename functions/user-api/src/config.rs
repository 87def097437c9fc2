//! user-api configuration, read once at cold start.

use adapters::config::AwsSettings;
use settings::{ConfigError, Env};

/// The key that signs pagination tokens: a secret the stack generates (read by the first request
/// that pages), or, for local runs and tests only, a value in the environment. The template sets
/// only the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageTokenKey {
    /// `PAGE_TOKEN_SECRET_ARN`: a Secrets Manager secret.
    Secret(String),
    /// `PAGE_TOKEN_SECRET`: the key itself.
    Local(String),
}

pub const PAGE_TOKEN_SECRET_ARN: &str = "PAGE_TOKEN_SECRET_ARN";
pub const IDEMPOTENCY_TTL_SECONDS: &str = "IDEMPOTENCY_TTL_SECONDS";

#[derive(Debug, Clone)]
pub struct Config {
    pub users_table: String,
    /// Origins allowed by CORS; `*` only when listed explicitly.
    pub allowed_origins: Vec<String>,
    /// Where the key signing pagination tokens comes from.
    pub page_token_key: PageTokenKey,
    /// How long a create's answer is replayed for its `Idempotency-Key`, in seconds
    /// (`IDEMPOTENCY_TTL_SECONDS`, 60 s to 7 days, default 1 hour).
    pub idempotency_ttl_seconds: i64,
    pub aws: AwsSettings,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let users_table = env.required("USERS_TABLE")?;
        let allowed_origins: Vec<String> = env
            .get("ALLOWED_ORIGINS")
            .unwrap_or_default()
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_string())
            .filter(|o| !o.is_empty())
            .collect();
        for origin in &allowed_origins {
            if origin != "*" && !(origin.starts_with("https://") || origin.starts_with("http://")) {
                return Err(ConfigError::new(
                    "ALLOWED_ORIGINS",
                    format!("entry {origin:?} must be * or start with https:// or http://"),
                ));
            }
        }
        // No fallback: a key derived from public names would let anyone forge tokens.
        let page_token_key =
            match (
                env.get(PAGE_TOKEN_SECRET_ARN)
                    .filter(|v| !v.trim().is_empty()),
                env.get("PAGE_TOKEN_SECRET").filter(|v| !v.is_empty()),
            ) {
                (Some(arn), _) => PageTokenKey::Secret(arn.trim().to_string()),
                (None, Some(key)) => PageTokenKey::Local(key),
                (None, None) => return Err(ConfigError::new(
                    PAGE_TOKEN_SECRET_ARN,
                    "required: the Secrets Manager secret holding the key that signs page tokens \
                     (PAGE_TOKEN_SECRET gives the key itself, for a local run)",
                )),
            };
        Ok(Config {
            users_table,
            allowed_origins,
            page_token_key,
            idempotency_ttl_seconds: env.number_in(
                IDEMPOTENCY_TTL_SECONDS,
                3600,
                60..=7 * 24 * 3600,
            )? as i64,
            aws: AwsSettings::from_env(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_required_and_origins_are_checked() {
        let e = Config::from_env(&Env::from_pairs(&[])).unwrap_err();
        assert_eq!(e.name, "USERS_TABLE");
        let e = Config::from_env(&Env::from_pairs(&[
            ("USERS_TABLE", "t"),
            ("ALLOWED_ORIGINS", "https://a.example, ftp://b"),
        ]))
        .unwrap_err();
        assert_eq!(e.name, "ALLOWED_ORIGINS");
        let c = Config::from_env(&Env::from_pairs(&[
            ("USERS_TABLE", "t"),
            (
                "ALLOWED_ORIGINS",
                "https://a.example/, http://localhost:3000",
            ),
            ("PAGE_TOKEN_SECRET", "local key"),
        ]))
        .unwrap();
        assert_eq!(
            c.allowed_origins,
            ["https://a.example", "http://localhost:3000"]
        );
    }

    #[test]
    fn the_page_token_key_comes_from_a_secret_and_never_from_public_names() {
        let e = Config::from_env(&Env::from_pairs(&[("USERS_TABLE", "t")])).unwrap_err();
        assert_eq!(e.name, PAGE_TOKEN_SECRET_ARN);
        assert!(e.to_string().contains("PAGE_TOKEN_SECRET"), "{e}");
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:page-token-key-AbCdEf";
        let both = Config::from_env(&Env::from_pairs(&[
            ("USERS_TABLE", "t"),
            (PAGE_TOKEN_SECRET_ARN, arn),
            ("PAGE_TOKEN_SECRET", "ignored"),
        ]))
        .unwrap();
        assert_eq!(both.page_token_key, PageTokenKey::Secret(arn.into()));
        let local = Config::from_env(&Env::from_pairs(&[
            ("USERS_TABLE", "t"),
            ("PAGE_TOKEN_SECRET", "k"),
        ]))
        .unwrap();
        assert_eq!(local.page_token_key, PageTokenKey::Local("k".into()));
    }
}
