//! Idempotency records in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::PortError;

use super::faults::lock;

/// An `IdempotencyStore` in memory, with the same expiry rules as the DynamoDB one.
#[derive(Debug, Default)]
pub struct InMemoryIdempotencyStore {
    records: Mutex<HashMap<String, IdempotencyRecord>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub payload_hash: String,
    pub expires_at: i64,
    /// `None` while in progress.
    pub response: Option<crate::idempotency::StoredResponse>,
}

impl InMemoryIdempotencyStore {
    pub fn record(&self, key: &str) -> Option<IdempotencyRecord> {
        lock(&self.records).get(key).cloned()
    }
    pub fn len(&self) -> usize {
        lock(&self.records).len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl crate::ports::IdempotencyStore for InMemoryIdempotencyStore {
    async fn claim(
        &self,
        key: &str,
        payload_hash: &str,
        now: i64,
        in_progress_until: i64,
    ) -> Result<crate::idempotency::Claim, PortError> {
        use crate::idempotency::Claim;
        let mut records = lock(&self.records);
        match records.get(key) {
            Some(r) if r.expires_at > now => Ok(if r.payload_hash != payload_hash {
                Claim::PayloadMismatch
            } else {
                match &r.response {
                    Some(response) => Claim::Completed(response.clone()),
                    None => Claim::InProgress,
                }
            }),
            _ => {
                records.insert(
                    key.to_string(),
                    IdempotencyRecord {
                        payload_hash: payload_hash.to_string(),
                        expires_at: in_progress_until,
                        response: None,
                    },
                );
                Ok(Claim::Claimed)
            }
        }
    }

    async fn complete(
        &self,
        key: &str,
        payload_hash: &str,
        response: &crate::idempotency::StoredResponse,
        expires_at: i64,
    ) -> Result<(), PortError> {
        lock(&self.records).insert(
            key.to_string(),
            IdempotencyRecord {
                payload_hash: payload_hash.to_string(),
                expires_at,
                response: Some(response.clone()),
            },
        );
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), PortError> {
        lock(&self.records).remove(key);
        Ok(())
    }
}
