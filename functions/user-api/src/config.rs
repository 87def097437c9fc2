//! user-api configuration, read once at cold start.

use adapters::config::{AwsSettings, ConfigError, Env};

#[derive(Debug, Clone)]
pub struct Config {
    pub users_table: String,
    /// Origins allowed by CORS; `*` only when listed explicitly.
    pub allowed_origins: Vec<String>,
    /// Key for signing pagination tokens.
    pub page_token_secret: String,
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
        // Without a secret the key is derived from the table name: tokens are still tamper-evident
        // for clients, just not secret from whoever can read the configuration.
        let page_token_secret = env
            .get("PAGE_TOKEN_SECRET")
            .unwrap_or_else(|| format!("page-token-key:{users_table}"));
        Ok(Config {
            users_table,
            allowed_origins,
            page_token_secret,
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
        ]))
        .unwrap();
        assert_eq!(
            c.allowed_origins,
            ["https://a.example", "http://localhost:3000"]
        );
    }
}
