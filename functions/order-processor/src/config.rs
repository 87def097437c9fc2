//! order-processor configuration, read once at cold start.

use adapters::config::{AwsSettings, ConfigError, Env};

#[derive(Debug, Clone)]
pub struct Config {
    pub orders_table: String,
    pub inventory_table: String,
    pub payment_queue_url: String,
    pub order_events_topic_arn: String,
    pub orders_dlq_url: String,
    pub aws: AwsSettings,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let url = |name: &str| -> Result<String, ConfigError> {
            let value = env.required(name)?;
            if value.starts_with("https://") || value.starts_with("http://") {
                Ok(value)
            } else {
                Err(ConfigError::new(
                    name,
                    format!("= {value:?} must be a queue URL"),
                ))
            }
        };
        let topic = env.required("ORDER_EVENTS_TOPIC_ARN")?;
        if !topic.starts_with("arn:") {
            return Err(ConfigError::new(
                "ORDER_EVENTS_TOPIC_ARN",
                "must be a topic ARN",
            ));
        }
        Ok(Config {
            orders_table: env.required("ORDERS_TABLE")?,
            inventory_table: env.required("INVENTORY_TABLE")?,
            payment_queue_url: url("PAYMENT_QUEUE_URL")?,
            order_events_topic_arn: topic,
            orders_dlq_url: url("ORDERS_DLQ_URL")?,
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
            (
                "PAYMENT_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/1/payments.fifo",
            ),
            ("ORDER_EVENTS_TOPIC_ARN", "arn:aws:sns:us-east-1:1:events"),
            (
                "ORDERS_DLQ_URL",
                "https://sqs.us-east-1.amazonaws.com/1/dlq",
            ),
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
        bad[2].1 = "payments";
        assert_eq!(
            Config::from_env(&Env::from_pairs(&bad)).unwrap_err().name,
            "PAYMENT_QUEUE_URL"
        );
    }
}
