//! order-processor configuration, read once at cold start.

use std::time::Duration;

use adapters::config::{AwsSettings, ConfigError, Env};
use domain::order::PAYMENT_DEDUP_WINDOW_SECS;

#[derive(Debug, Clone)]
pub struct Config {
    pub orders_table: String,
    pub inventory_table: String,
    pub payment_queue_url: String,
    pub order_events_topic_arn: String,
    pub orders_dlq_url: String,
    /// How long after an order is created its payment request may still be sent.
    pub payment_window: Duration,
    pub aws: AwsSettings,
}

/// Kept between a send window's end and the end of the queue's deduplication window, for clock
/// skew between instances.
const CLOCK_SKEW_MARGIN_SECS: u64 = 10;

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
        let window_secs = env.number_in(
            "PAYMENT_SEND_WINDOW_SECS",
            crate::DEFAULT_PAYMENT_WINDOW.as_secs(),
            1..=PAYMENT_DEDUP_WINDOW_SECS,
        )?;
        // The last send may start just before the window closes and lasts up to the operation
        // timeout: it must still end inside the queue's deduplication window.
        let latest_end = window_secs
            + (aws.operation_timeout.as_millis() as u64).div_ceil(1000)
            + CLOCK_SKEW_MARGIN_SECS;
        if latest_end > PAYMENT_DEDUP_WINDOW_SECS {
            return Err(ConfigError::new(
                "PAYMENT_SEND_WINDOW_SECS",
                format!(
                    "= {window_secs} plus AWS_OPERATION_TIMEOUT_MS ({} s) and {CLOCK_SKEW_MARGIN_SECS} s of clock skew \
                     must stay within the payment queue's {PAYMENT_DEDUP_WINDOW_SECS} s deduplication window",
                    aws.operation_timeout.as_secs_f32()
                ),
            ));
        }
        Ok(Config {
            orders_table: env.required("ORDERS_TABLE")?,
            inventory_table: env.required("INVENTORY_TABLE")?,
            payment_queue_url: fifo(url("PAYMENT_QUEUE_URL")?)?,
            order_events_topic_arn: topic,
            orders_dlq_url: url("ORDERS_DLQ_URL")?,
            payment_window: Duration::from_secs(window_secs),
            aws,
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

    #[test]
    fn a_standard_payment_queue_is_refused_at_cold_start() {
        let with_queue = |url: &'static str| {
            Config::from_env(&Env::from_pairs(&[
                ("ORDERS_TABLE", "orders"),
                ("INVENTORY_TABLE", "inventory"),
                ("PAYMENT_QUEUE_URL", url),
                ("ORDER_EVENTS_TOPIC_ARN", "arn:aws:sns:us-east-1:1:events"),
                (
                    "ORDERS_DLQ_URL",
                    "https://sqs.us-east-1.amazonaws.com/1/dlq",
                ),
            ]))
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
    fn the_payment_window_must_end_inside_the_deduplication_window() {
        let base = [
            ("ORDERS_TABLE", "orders"),
            ("INVENTORY_TABLE", "inventory"),
            ("PAYMENT_QUEUE_URL", "https://sqs.example/1/payments.fifo"),
            ("ORDER_EVENTS_TOPIC_ARN", "arn:aws:sns:us-east-1:1:events"),
            ("ORDERS_DLQ_URL", "https://sqs.example/1/dlq"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            Config::from_env(&Env::from_pairs(&pairs))
        };
        assert_eq!(with(&[]).unwrap().payment_window, Duration::from_secs(240));
        assert_eq!(
            with(&[("PAYMENT_SEND_WINDOW_SECS", "5")])
                .unwrap()
                .payment_window,
            Duration::from_secs(5)
        );
        // 280 s + a 6 s operation timeout + 10 s of skew still ends inside 300 s; 290 s does not.
        let ok = with(&[
            ("PAYMENT_SEND_WINDOW_SECS", "280"),
            ("AWS_OPERATION_TIMEOUT_MS", "6000"),
        ]);
        assert!(ok.is_ok(), "{ok:?}");
        for bad in [
            [
                ("PAYMENT_SEND_WINDOW_SECS", "290"),
                ("AWS_OPERATION_TIMEOUT_MS", "6000"),
            ],
            [
                ("PAYMENT_SEND_WINDOW_SECS", "240"),
                ("AWS_OPERATION_TIMEOUT_MS", "60000"),
            ],
            [
                ("PAYMENT_SEND_WINDOW_SECS", "0"),
                ("AWS_OPERATION_TIMEOUT_MS", "6000"),
            ],
        ] {
            let e = with(&bad).unwrap_err();
            assert_eq!(e.name, "PAYMENT_SEND_WINDOW_SECS", "{bad:?}");
        }
    }
}
