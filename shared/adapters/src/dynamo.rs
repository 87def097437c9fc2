//! DynamoDB helpers shared by the stores: attribute conversion and transactions whose cancellation
//! reasons are read item by item.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use aws_smithy_runtime_api::client::result::SdkError;
use domain::PortError;

use crate::errors::{classify, is_throttling_code};

pub type Item = HashMap<String, AttributeValue>;

/// A request builder's error (a missing required field) as a `PortError`.
pub fn build<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, PortError> {
    r.map_err(|e| PortError::Rejected(format!("dynamodb: request could not be built: {e}")))
}

/// A DynamoDB string attribute.
pub fn string_attr(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A DynamoDB number attribute (numbers travel as strings).
pub fn number_attr(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn malformed(entity: &str, field: &str) -> PortError {
    PortError::Rejected(format!(
        "dynamodb: stored {entity} item has a missing or malformed `{field}`"
    ))
}

pub fn get_s<'a>(item: &'a Item, entity: &str, field: &str) -> Result<&'a str, PortError> {
    match item.get(field) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(malformed(entity, field)),
    }
}

pub fn get_n<T: std::str::FromStr>(item: &Item, entity: &str, field: &str) -> Result<T, PortError> {
    match item.get(field) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| malformed(entity, field)),
        _ => Err(malformed(entity, field)),
    }
}

pub fn get_bool(item: &Item, field: &str) -> bool {
    matches!(item.get(field), Some(AttributeValue::Bool(true)))
}

/// Why a transaction did not commit.
#[derive(Debug)]
pub enum TxFailure {
    /// Cancelled: one reason code per action, in order (`None` where that action was fine).
    Cancelled(Vec<String>),
    Failed(PortError),
}

impl TxFailure {
    /// Whether action `index` failed its condition.
    pub fn condition_failed(reasons: &[String], index: usize) -> bool {
        reasons
            .get(index)
            .is_some_and(|code| code == "ConditionalCheckFailed")
    }

    /// Converts reasons with no condition failure into the right `PortError`.
    pub fn other_reasons(reasons: &[String]) -> PortError {
        if reasons
            .iter()
            .any(|c| is_throttling_code(c) || c == "ThrottlingError" || c == "TransactionConflict")
        {
            PortError::Throttled(format!(
                "dynamodb: transaction cancelled ({})",
                reasons.join(",")
            ))
        } else {
            PortError::Rejected(format!(
                "dynamodb: transaction cancelled ({})",
                reasons.join(",")
            ))
        }
    }
}

const CONFLICT_RETRIES: u32 = 4;

/// Runs a transaction. A cancellation caused only by a concurrent transaction on the same items
/// (`TransactionConflict`) is retried a few times with backoff, so racing writers get a definite
/// answer (usually a condition failure) rather than a spurious "try again". Each such cancellation
/// counts one on `conflict_metric`, when there is one.
pub async fn transact(
    client: &aws_sdk_dynamodb::Client,
    items: Vec<TransactWriteItem>,
    conflict_metric: Option<&'static str>,
) -> Result<(), TxFailure> {
    let mut attempt = 0;
    loop {
        let result = client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .send()
            .await;
        let reasons = match result {
            Ok(_) => return Ok(()),
            Err(SdkError::ServiceError(ctx)) => match ctx.err() {
                TransactWriteItemsError::TransactionCanceledException(e) => e
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None").to_string())
                    .collect::<Vec<_>>(),
                _ => {
                    return Err(TxFailure::Failed(classify(
                        "dynamodb",
                        &SdkError::ServiceError(ctx),
                    )))
                }
            },
            Err(e) => return Err(TxFailure::Failed(classify("dynamodb", &e))),
        };
        let only_conflicts = reasons.iter().any(|c| c == "TransactionConflict")
            && reasons
                .iter()
                .all(|c| c == "TransactionConflict" || c == "None");
        if only_conflicts {
            if let Some(name) = conflict_metric {
                metrics::counter!(name).increment(1);
            }
        }
        if only_conflicts && attempt < CONFLICT_RETRIES {
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(10 << attempt)).await;
            continue;
        }
        return Err(TxFailure::Cancelled(reasons));
    }
}
