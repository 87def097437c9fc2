//! Ports: the small traits handlers depend on. Adapters implement them with the AWS SDK; the
//! `testing` feature implements them in memory.
//!
//! Methods return `impl Future + Send` so handlers stay generic and their futures stay `Send`.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use uuid::Uuid;

use crate::idempotency::{Claim, StoredResponse};
use crate::order::{Order, OrderEvent, PaymentRequest, Reservation};
use crate::settlement::{OrderExpiry, Settled, Settlement};
use crate::user::User;
use crate::PortError;

/// The trace an order arrived in (an X-Ray trace header, `Root=1-...;Parent=...;Sampled=1`), passed
/// on with the messages it causes so their consumers continue the same trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeader(String);

impl TraceHeader {
    /// The header when it has X-Ray's shape; anything else is dropped rather than passed on, so a
    /// malformed header can never make a send fail.
    pub fn parse(raw: &str) -> Option<TraceHeader> {
        let raw = raw.trim();
        let well_formed = raw.len() <= 256
            && raw.starts_with("Root=1-")
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"=;-".contains(&b));
        well_formed.then(|| TraceHeader(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One page of users, in id order, and the cursor to continue after (if there may be more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    pub users: Vec<User>,
    pub next_cursor: Option<Uuid>,
}

impl UserPage {
    /// Stores read one user more than `limit`: if it came back, there is another page, which starts
    /// after the last user kept. (So the last page never carries a cursor to an empty page.)
    pub fn from_overfetch(mut users: Vec<User>, limit: u32) -> UserPage {
        let more = users.len() > limit as usize;
        users.truncate(limit as usize);
        let next_cursor = if more {
            users.last().map(|u| u.user_id)
        } else {
            None
        };
        UserPage { users, next_cursor }
    }
}

pub trait UserStore: Send + Sync {
    /// Stores a new user and reserves its email. `AlreadyExists("email")` or `AlreadyExists("user_id")`.
    fn create(&self, user: &User) -> impl Future<Output = Result<(), PortError>> + Send;
    fn get(&self, id: Uuid) -> impl Future<Output = Result<Option<User>, PortError>> + Send;
    /// Up to `limit` users with ids after `after`.
    fn list(
        &self,
        limit: u32,
        after: Option<Uuid>,
    ) -> impl Future<Output = Result<UserPage, PortError>> + Send;
    /// Replaces `previous` (which must still be at its version) with `updated`, moving the email
    /// reservation when the email changed. `VersionMismatch`, `NotFound`, or `AlreadyExists("email")`.
    fn update(
        &self,
        previous: &User,
        updated: &User,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Deletes `user` (still at its version) and releases its email. `VersionMismatch` or `NotFound`.
    fn delete(&self, user: &User) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Records of idempotent requests (see `crate::idempotency`). Times are Unix seconds.
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for a request with `payload_hash`: an `IN_PROGRESS` record expiring at
    /// `in_progress_until`, unless an unexpired record exists (then what it holds). A record whose
    /// expiry is at or before `now` counts as absent.
    fn claim(
        &self,
        key: &str,
        payload_hash: &str,
        now: i64,
        in_progress_until: i64,
    ) -> impl Future<Output = Result<Claim, PortError>> + Send;
    /// Completes a claimed key with its response, kept until `expires_at`.
    fn complete(
        &self,
        key: &str,
        payload_hash: &str,
        response: &StoredResponse,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Releases a claimed key whose request did not succeed, so a retry runs again.
    fn release(&self, key: &str) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// No idempotency records: every request runs (`Idempotency-Key` is ignored).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoIdempotency;

impl IdempotencyStore for NoIdempotency {
    async fn claim(&self, _: &str, _: &str, _: i64, _: i64) -> Result<Claim, PortError> {
        Ok(Claim::Claimed)
    }
    async fn complete(
        &self,
        _: &str,
        _: &str,
        _: &StoredResponse,
        _: i64,
    ) -> Result<(), PortError> {
        Ok(())
    }
    async fn release(&self, _: &str) -> Result<(), PortError> {
        Ok(())
    }
}

pub trait OrderStore: Send + Sync {
    /// In one atomic step: deduct every line's quantity (only where stock covers it) and store the order
    /// (only if its id is new).
    fn reserve(&self, order: &Order)
        -> impl Future<Output = Result<Reservation, PortError>> + Send;
    /// Stores an order that deducts nothing (a cancelled one). `false` when the id already existed.
    fn record(&self, order: &Order) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// A strongly consistent read.
    fn get(&self, order_id: &str) -> impl Future<Output = Result<Option<Order>, PortError>> + Send;
    /// Records finished side effects (flags only ever go from false to true).
    fn mark_done(
        &self,
        order_id: &str,
        payment_requested: bool,
        notification_sent: bool,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// The transitions out of `PENDING_PAYMENT`, each a conditional write that happens at most once.
pub trait OrderSettlement: Send + Sync {
    /// Moves the order from `PENDING_PAYMENT` to `to`'s status; where `to` restores stock, in the
    /// same atomic write as the status change. `Unchanged` (with the stored order) when the order
    /// is no longer pending: a repeat or a lost race changes nothing.
    fn settle(
        &self,
        order_id: &str,
        to: Settlement,
    ) -> impl Future<Output = Result<Settled, PortError>> + Send;
    /// Records that the event of how the order ended is published.
    fn mark_outcome_notified(
        &self,
        order_id: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Where expiry messages wait until their order's payment timeout has passed.
pub trait ExpiryQueue: Send + Sync {
    /// Sends `expiry` to be delivered after `delay` (at most `MAX_EXPIRY_DELAY_SECS`).
    fn schedule_expiry(
        &self,
        expiry: &OrderExpiry,
        delay: Duration,
        trace: Option<&TraceHeader>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

pub trait PaymentQueue: Send + Sync {
    /// Sends one payment request, carrying its idempotency key (the order id) in the body and as
    /// a message attribute.
    fn request_payment(
        &self,
        request: &PaymentRequest,
        trace: Option<&TraceHeader>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

pub trait Notifier: Send + Sync {
    fn publish(
        &self,
        event: &OrderEvent,
        trace: Option<&TraceHeader>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Where messages that can never succeed are parked, with the reason.
pub trait DeadLetters: Send + Sync {
    fn park(
        &self,
        body: &str,
        source_message_id: &str,
        reason_code: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// What `HeadObject` tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub etag: String,
    pub metadata: BTreeMap<String, String>,
}

/// An object to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewObject {
    pub bucket: String,
    pub key: String,
    pub body: Vec<u8>,
    pub content_type: String,
    pub cache_control: String,
    pub metadata: BTreeMap<String, String>,
}

/// The longest object key an `ObjectStore` accepts, in bytes of UTF-8 (S3's limit).
pub const MAX_OBJECT_KEY_BYTES: usize = 1024;

/// The most user metadata an object may carry: the sum of the UTF-8 bytes of every name and value
/// (S3's 2 KB limit, counted as S3 counts it). A larger write is refused.
pub const MAX_METADATA_BYTES: usize = 2048;

/// The size of `metadata` as `MAX_METADATA_BYTES` counts it.
pub fn metadata_bytes(metadata: &BTreeMap<String, String>) -> usize {
    metadata.iter().map(|(k, v)| k.len() + v.len()).sum()
}

pub trait ObjectStore: Send + Sync {
    /// `Ok(None)` when the object does not exist.
    fn head(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<ObjectInfo>, PortError>> + Send;
    /// The object's bytes, refusing (`Rejected`) to read more than `max_bytes`. With `if_match`,
    /// only if the object's ETag is still that one: `VersionMismatch` when it has been replaced.
    fn get(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: u64,
        if_match: Option<&str>,
    ) -> impl Future<Output = Result<Vec<u8>, PortError>> + Send;
    /// Writes the object; a key longer than `MAX_OBJECT_KEY_BYTES` or metadata larger than
    /// `MAX_METADATA_BYTES` is `Rejected`.
    fn put(&self, object: NewObject) -> impl Future<Output = Result<(), PortError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_x_ray_shaped_trace_headers_are_passed_on() {
        let real = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        assert_eq!(TraceHeader::parse(real).unwrap().as_str(), real);
        assert_eq!(
            TraceHeader::parse(&format!("  {real}\n")).unwrap().as_str(),
            real
        );
        for bad in [
            "",
            "Sampled=1",
            "Root=1-abc;Parent=x y",
            "Root=1-abc\r\nX-Injected: 1",
            &format!("Root=1-{}", "a".repeat(300)),
        ] {
            assert_eq!(TraceHeader::parse(bad), None, "{bad:?}");
        }
    }
}
