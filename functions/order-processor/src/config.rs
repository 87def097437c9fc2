//! order-processor configuration, read once at cold start.

use std::time::Duration;

use adapters::config::AwsSettings;
use domain::settlement::MAX_EXPIRY_DELAY_SECS;
use settings::{ConfigError, Env};

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
        // A payment request is sent once per order only because the queue deduplicates by order
        // id, which SQS does for FIFO queues alone: a standard queue would take the
        // deduplication id and still deliver a redelivered order's request twice.
        let fifo = |value: String| -> Result<String, ConfigError> {
            let name = value
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default();
            if name.ends_with(".fifo") {
                Ok(value)
            } else {
                Err(ConfigError::new(
                    "PAYMENT_QUEUE_URL",
                    format!(
                        "= {value:?} is not a FIFO queue (its name must end in .fifo): payment \
                         requests are deduplicated by order id only on a FIFO queue"
                    ),
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
            payment_queue_url: fifo(url("PAYMENT_QUEUE_URL")?)?,
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
    fn a_standard_payment_queue_is_refused_at_cold_start() {
        let with_queue = |url: &'static str| {
            let mut pairs = FULL.to_vec();
            pairs[2].1 = url;
            Config::from_env(&Env::from_pairs(&pairs))
        };
        for standard in [
            "https://sqs.us-east-1.amazonaws.com/123456789012/payments",
            // The suffix belongs to the queue's name, not to some other part of the URL.
            "https://sqs.us-east-1.amazonaws.com/123456789012.fifo/payments",
            "https://sqs.us-east-1.amazonaws.com/123456789012/payments-fifo",
        ] {
            let e = with_queue(standard).unwrap_err();
            assert_eq!(e.name, "PAYMENT_QUEUE_URL", "{standard}");
            let message = e.to_string();
            assert!(
                message.contains("not a FIFO queue") && message.contains(standard),
                "{message}"
            );
        }
        for fifo in [
            "https://sqs.us-east-1.amazonaws.com/123456789012/payments.fifo",
            "http://127.0.0.1:4566/123456789012/stack-PaymentQueue-AB12.fifo",
        ] {
            let config = with_queue(fifo).unwrap_or_else(|e| panic!("{fifo}: {e}"));
            assert_eq!(config.payment_queue_url, fifo);
        }
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
