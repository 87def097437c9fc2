//! order-settlement configuration, read once at cold start.

use adapters::config::AwsSettings;
use settings::{ConfigError, Env};

#[derive(Debug, Clone)]
pub struct Config {
    pub orders_table: String,
    pub inventory_table: String,
    pub order_events_topic_arn: String,
    /// The queue the payment service answers on: its records are payment results.
    pub payment_results_queue_arn: String,
    /// The delay queue order-processor schedules expiries on: its records are expiries.
    pub expiry_queue_arn: String,
    pub aws: AwsSettings,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        // Records are told apart by comparing their `eventSourceARN` with these.
        let arn = |name: &str| -> Result<String, ConfigError> {
            let value = env.required(name)?;
            if value.starts_with("arn:") {
                Ok(value)
            } else {
                Err(ConfigError::new(
                    name,
                    format!("= {value:?} must be an ARN"),
                ))
            }
        };
        Ok(Config {
            orders_table: env.required("ORDERS_TABLE")?,
            inventory_table: env.required("INVENTORY_TABLE")?,
            order_events_topic_arn: arn("ORDER_EVENTS_TOPIC_ARN")?,
            payment_results_queue_arn: arn("PAYMENT_RESULTS_QUEUE_ARN")?,
            expiry_queue_arn: arn("EXPIRY_QUEUE_ARN")?,
            aws: AwsSettings::from_env(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_checked_by_name() {
        let full = [
            ("ORDERS_TABLE", "orders"),
            ("INVENTORY_TABLE", "inventory"),
            ("ORDER_EVENTS_TOPIC_ARN", "arn:aws:sns:us-east-1:1:events"),
            (
                "PAYMENT_RESULTS_QUEUE_ARN",
                "arn:aws:sqs:us-east-1:1:payment-results",
            ),
            ("EXPIRY_QUEUE_ARN", "arn:aws:sqs:us-east-1:1:expiries"),
        ];
        assert!(Config::from_env(&Env::from_pairs(&full)).is_ok());
        for (i, (name, _)) in full.iter().enumerate() {
            let mut partial = full.to_vec();
            partial.remove(i);
            assert_eq!(
                &Config::from_env(&Env::from_pairs(&partial))
                    .unwrap_err()
                    .name,
                name
            );
        }
        let mut bad = full.to_vec();
        bad[4].1 = "https://sqs.us-east-1.amazonaws.com/1/expiries";
        assert_eq!(
            Config::from_env(&Env::from_pairs(&bad)).unwrap_err().name,
            "EXPIRY_QUEUE_ARN"
        );
    }
}
