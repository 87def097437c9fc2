//! `IdempotencyStore` on DynamoDB, in the users table under the key prefix `IDEMPOTENCY#`.
//!
//! One item per caller and key (`pk = "IDEMPOTENCY#<sha256 of caller and key>"`): `status`
//! (`IN_PROGRESS` or `COMPLETED`), `payload_hash`, `expires_at` (Unix seconds, the table's TTL
//! attribute) and, once completed, the response (`response_status`, `response_headers` as JSON,
//! `response_body`). The items carry no `entity`, so the `ByEntity` index never lists them.
//!
//! DynamoDB's TTL deletes expired items only eventually (typically within days), so every read and
//! every condition here compares `expires_at` with the clock itself: an expired record is absent.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::idempotency::{Claim, StoredResponse};
use domain::ports::IdempotencyStore;
use domain::PortError;

use crate::dynamo::{get_n, get_s, number_attr, string_attr, Item};
use crate::errors::classify;

/// The attribute the table's `TimeToLiveSpecification` names.
pub const TTL_ATTRIBUTE: &str = "expires_at";
const IN_PROGRESS: &str = "IN_PROGRESS";
const COMPLETED: &str = "COMPLETED";

/// IAM actions this adapter performs on the table (all within the users table's grants).
pub const DYNAMO_IDEMPOTENCY_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
];

fn record_pk(key: &str) -> String {
    format!("IDEMPOTENCY#{key}")
}

#[derive(Debug, Clone)]
pub struct DynamoIdempotencyStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoIdempotencyStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// What an existing record says to a request with `payload_hash` at `now`.
    async fn existing(&self, key: &str, payload_hash: &str, now: i64) -> Result<Claim, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", string_attr(record_pk(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb", &e))?;
        let Some(item) = out.item() else {
            // Released or expired between the write and this read: the first request is done
            // with the key; the caller retries and claims it.
            return Ok(Claim::InProgress);
        };
        if get_n::<i64>(item, "idempotency record", TTL_ATTRIBUTE)? <= now {
            return Ok(Claim::InProgress);
        }
        if get_s(item, "idempotency record", "payload_hash")? != payload_hash {
            return Ok(Claim::PayloadMismatch);
        }
        if get_s(item, "idempotency record", "status")? != COMPLETED {
            return Ok(Claim::InProgress);
        }
        Ok(Claim::Completed(response_from_item(item)?))
    }
}

fn response_from_item(item: &Item) -> Result<StoredResponse, PortError> {
    let headers: Vec<(String, String)> =
        serde_json::from_str(get_s(item, "idempotency record", "response_headers")?).map_err(
            |_| {
                PortError::Rejected(
                    "dynamodb: stored idempotency record has malformed `response_headers`".into(),
                )
            },
        )?;
    Ok(StoredResponse {
        status: get_n(item, "idempotency record", "response_status")?,
        headers,
        body: get_s(item, "idempotency record", "response_body")?.to_string(),
    })
}

impl IdempotencyStore for DynamoIdempotencyStore {
    async fn claim(
        &self,
        key: &str,
        payload_hash: &str,
        now: i64,
        in_progress_until: i64,
    ) -> Result<Claim, PortError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", string_attr(record_pk(key)))
            .item("status", string_attr(IN_PROGRESS))
            .item("payload_hash", string_attr(payload_hash))
            .item(TTL_ATTRIBUTE, number_attr(in_progress_until))
            .condition_expression("attribute_not_exists(pk) OR #expires <= :now")
            .expression_attribute_names("#expires", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", number_attr(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Claimed),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                self.existing(key, payload_hash, now).await
            }
            Err(e) => Err(classify("dynamodb", &e)),
        }
    }

    async fn complete(
        &self,
        key: &str,
        payload_hash: &str,
        response: &StoredResponse,
        expires_at: i64,
    ) -> Result<(), PortError> {
        let headers = serde_json::to_string(&response.headers).unwrap_or_else(|_| "[]".into());
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", string_attr(record_pk(key)))
            .item("status", string_attr(COMPLETED))
            .item("payload_hash", string_attr(payload_hash))
            .item(TTL_ATTRIBUTE, number_attr(expires_at))
            .item("response_status", number_attr(response.status))
            .item("response_headers", string_attr(headers))
            .item("response_body", AttributeValue::S(response.body.clone()))
            // Only over this request's own claim.
            .condition_expression("#status = :in_progress AND payload_hash = :hash")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", string_attr(IN_PROGRESS))
            .expression_attribute_values(":hash", string_attr(payload_hash))
            .send()
            .await
            .map_err(|e| classify("dynamodb", &e))?;
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), PortError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", string_attr(record_pk(key)))
            .condition_expression("attribute_not_exists(pk) OR #status = :in_progress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", string_attr(IN_PROGRESS))
            .send()
            .await
            .map_err(|e| classify("dynamodb", &e))?;
        Ok(())
    }
}
