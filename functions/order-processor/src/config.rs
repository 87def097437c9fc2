//! order-processor configuration, read once at cold start.

use std::time::Duration;

use adapters::config::{AwsSettings, ConfigError, Env};
use domain::settlement::MAX_EXPIRY_DELAY_SECS;

#[derive(Debug, Clone)]
pub struct Config {
    pub orders_table: String,
    pub inventory_table: String,
    pub payment_queue_url: String,
    pub order_events_topic_arn: String,
    pub orders_dlq_url: String,
    /// Where each pending order's expiry waits out the payment timeout.
    pub expiry_queue_url: String,
    /// How long a pending order waits for its payment before it expires.
    pub payment_timeout: Duration,
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
        let aws = AwsSettings::from_env(env)?;
        // An expiry message is held by the queue's per-message delay, which SQS caps at 15 minutes.
        let timeout_secs = env.number_in(
            "PAYMENT_TIMEOUT_SECS",
            crate::DEFAULT_PAYMENT_TIMEOUT.as_secs(),
            1..=MAX_EXPIRY_DELAY_SECS,
        )?;
        Ok(Config {
            orders_table: env.required("ORDERS_TABLE")?,
            inventory_table: env.required("INVENTORY_TABLE")?,
            payment_queue_url: url("PAYMENT_QUEUE_URL")?,
            order_events_topic_arn: topic,
            orders_dlq_url: url("ORDERS_DLQ_URL")?,
            expiry_queue_url: url("EXPIRY_QUEUE_URL")?,
            payment_timeout: Duration::from_secs(timeout_secs),
            aws,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: [(&str, &str); 6] = [
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
        (
            "EXPIRY_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/1/expiries",
        ),
    ];

    #[test]
    fn every_setting_is_checked_by_name() {
        assert!(Config::from_env(&Env::from_pairs(&FULL)).is_ok());
        for (i, (name, _)) in FULL.iter().enumerate() {
            let mut partial = FULL.to_vec();
            partial.remove(i);
            assert_eq!(
                &Config::from_env(&Env::from_pairs(&partial))
                    .unwrap_err()
                    .name,
                name
            );
        }
        let mut bad = FULL.to_vec();
        bad[2].1 = "payments";
        assert_eq!(
            Config::from_env(&Env::from_pairs(&bad)).unwrap_err().name,
            "PAYMENT_QUEUE_URL"
        );
    }

    #[test]
    fn the_payment_timeout_fits_in_an_sqs_delay() {
        let with = |timeout: &'static str| {
            let mut pairs = FULL.to_vec();
            pairs.push(("PAYMENT_TIMEOUT_SECS", timeout));
            Config::from_env(&Env::from_pairs(&pairs))
        };
        assert_eq!(
            Config::from_env(&Env::from_pairs(&FULL))
                .unwrap()
                .payment_timeout,
            Duration::from_secs(900)
        );
        assert_eq!(with("20").unwrap().payment_timeout, Duration::from_secs(20));
        for bad in ["0", "901", "soon"] {
            assert_eq!(with(bad).unwrap_err().name, "PAYMENT_TIMEOUT_SECS", "{bad}");
        }
    }
}
