//! In-memory port implementations for fast unit tests, with scripted faults. Not for production:
//! integration tests use the real adapters against the emulator.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use uuid::Uuid;

use crate::order::OrderStatus;
use crate::order::{Order, OrderEvent, PaymentRequest, Reservation};
use crate::ports::{
    metadata_bytes, DeadLetters, ExpiryQueue, NewObject, Notifier, ObjectInfo, ObjectStore,
    OrderSettlement, OrderStore, PaymentQueue, TraceHeader, UserPage, UserStore,
    MAX_METADATA_BYTES, MAX_OBJECT_KEY_BYTES,
};
use crate::settlement::{OrderExpiry, Settled, Settlement};
use crate::user::User;
use crate::PortError;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Scripted failures and call counts, per operation name.
#[derive(Default, Debug)]
pub struct Faults {
    planned: Mutex<HashMap<String, VecDeque<PortError>>>,
    calls: Mutex<HashMap<String, usize>>,
}

impl Faults {
    /// The next call of `operation` fails with `error` (queue several for several calls).
    pub fn fail_next(&self, operation: &str, error: PortError) {
        lock(&self.planned)
            .entry(operation.to_string())
            .or_default()
            .push_back(error);
    }

    /// How many times `operation` was called (failed calls included).
    pub fn calls(&self, operation: &str) -> usize {
        lock(&self.calls).get(operation).copied().unwrap_or(0)
    }

    pub fn total_calls(&self) -> usize {
        lock(&self.calls).values().sum()
    }

    fn enter(&self, operation: &str) -> Result<(), PortError> {
        *lock(&self.calls).entry(operation.to_string()).or_default() += 1;
        match lock(&self.planned)
            .get_mut(operation)
            .and_then(VecDeque::pop_front)
        {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

#[derive(Default, Debug)]
struct UserState {
    users: BTreeMap<Uuid, User>,
    emails: HashMap<String, Uuid>,
}

#[derive(Default, Debug)]
pub struct InMemoryUserStore {
    state: Mutex<UserState>,
    pub faults: Faults,
}

impl InMemoryUserStore {
    pub fn len(&self) -> usize {
        lock(&self.state).users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn email_owner(&self, email: &str) -> Option<Uuid> {
        lock(&self.state).emails.get(email).copied()
    }

    /// Every stored user and email reservation, to compare the store before and after a request.
    pub fn snapshot(&self) -> (Vec<User>, Vec<(String, Uuid)>) {
        let s = lock(&self.state);
        let mut emails: Vec<(String, Uuid)> =
            s.emails.iter().map(|(e, id)| (e.clone(), *id)).collect();
        emails.sort();
        (s.users.values().cloned().collect(), emails)
    }
}

impl UserStore for InMemoryUserStore {
    async fn create(&self, user: &User) -> Result<(), PortError> {
        self.faults.enter("create")?;
        let mut s = lock(&self.state);
        if s.users.contains_key(&user.user_id) {
            return Err(PortError::AlreadyExists("user_id".into()));
        }
        if s.emails.contains_key(&user.email) {
            return Err(PortError::AlreadyExists("email".into()));
        }
        s.emails.insert(user.email.clone(), user.user_id);
        s.users.insert(user.user_id, user.clone());
        Ok(())
    }

    async fn get(&self, id: Uuid) -> Result<Option<User>, PortError> {
        self.faults.enter("get")?;
        Ok(lock(&self.state).users.get(&id).cloned())
    }

    async fn list(&self, limit: u32, after: Option<Uuid>) -> Result<UserPage, PortError> {
        self.faults.enter("list")?;
        let s = lock(&self.state);
        let users: Vec<User> = s
            .users
            .values()
            .filter(|u| after.is_none_or(|a| u.user_id > a))
            .take(limit as usize + 1)
            .cloned()
            .collect();
        Ok(UserPage::from_overfetch(users, limit))
    }

    async fn update(&self, previous: &User, updated: &User) -> Result<(), PortError> {
        self.faults.enter("update")?;
        let mut s = lock(&self.state);
        match s.users.get(&previous.user_id) {
            None => return Err(PortError::NotFound),
            Some(current)
                if current.version != previous.version
                    || current.created_at != previous.created_at =>
            {
                return Err(PortError::VersionMismatch)
            }
            Some(_) => {}
        }
        if updated.email != previous.email {
            if s.emails.contains_key(&updated.email) {
                return Err(PortError::AlreadyExists("email".into()));
            }
            s.emails.remove(&previous.email);
            s.emails.insert(updated.email.clone(), updated.user_id);
        }
        s.users.insert(updated.user_id, updated.clone());
        Ok(())
    }

    async fn delete(&self, user: &User) -> Result<(), PortError> {
        self.faults.enter("delete")?;
        let mut s = lock(&self.state);
        match s.users.get(&user.user_id) {
            None => Err(PortError::NotFound),
            Some(current)
                if current.version != user.version || current.created_at != user.created_at =>
            {
                Err(PortError::VersionMismatch)
            }
            Some(current) => {
                let email = current.email.clone();
                s.emails.remove(&email);
                s.users.remove(&user.user_id);
                Ok(())
            }
        }
    }
}

#[derive(Default, Debug)]
struct OrderState {
    stock: HashMap<String, i64>,
    orders: HashMap<String, Order>,
}

#[derive(Default, Debug)]
pub struct InMemoryOrderStore {
    state: Mutex<OrderState>,
    pub faults: Faults,
}

impl InMemoryOrderStore {
    pub fn set_stock(&self, product_id: &str, quantity: i64) {
        lock(&self.state)
            .stock
            .insert(product_id.to_string(), quantity);
    }

    pub fn stock(&self, product_id: &str) -> Option<i64> {
        lock(&self.state).stock.get(product_id).copied()
    }

    pub fn order(&self, order_id: &str) -> Option<Order> {
        lock(&self.state).orders.get(order_id).cloned()
    }

    pub fn order_count(&self) -> usize {
        lock(&self.state).orders.len()
    }
}

impl OrderStore for InMemoryOrderStore {
    async fn reserve(&self, order: &Order) -> Result<Reservation, PortError> {
        self.faults.enter("reserve")?;
        let mut s = lock(&self.state);
        if s.orders.contains_key(&order.order_id) {
            return Ok(Reservation::AlreadyExists);
        }
        let short: Vec<String> = order
            .items
            .iter()
            .filter(|l| s.stock.get(&l.product_id).copied().unwrap_or(0) < i64::from(l.quantity))
            .map(|l| l.product_id.clone())
            .collect();
        if !short.is_empty() {
            return Ok(Reservation::InsufficientStock(short));
        }
        for line in &order.items {
            if let Some(q) = s.stock.get_mut(&line.product_id) {
                *q -= i64::from(line.quantity);
            }
        }
        s.orders.insert(order.order_id.clone(), order.clone());
        Ok(Reservation::Reserved)
    }

    async fn record(&self, order: &Order) -> Result<bool, PortError> {
        self.faults.enter("record")?;
        let mut s = lock(&self.state);
        if s.orders.contains_key(&order.order_id) {
            return Ok(false);
        }
        s.orders.insert(order.order_id.clone(), order.clone());
        Ok(true)
    }

    async fn get(&self, order_id: &str) -> Result<Option<Order>, PortError> {
        self.faults.enter("get")?;
        Ok(lock(&self.state).orders.get(order_id).cloned())
    }

    async fn mark_done(
        &self,
        order_id: &str,
        payment_requested: bool,
        notification_sent: bool,
    ) -> Result<(), PortError> {
        self.faults.enter("mark_done")?;
        let mut s = lock(&self.state);
        let order = s.orders.get_mut(order_id).ok_or(PortError::NotFound)?;
        order.payment_requested |= payment_requested;
        order.notification_sent |= notification_sent;
        Ok(())
    }
}

impl OrderSettlement for InMemoryOrderStore {
    async fn settle(&self, order_id: &str, to: Settlement) -> Result<Settled, PortError> {
        self.faults.enter("settle")?;
        // One lock for the status check, the status change and the stock: one atomic step, as
        // the DynamoDB transaction is.
        let mut guard = lock(&self.state);
        let s = &mut *guard;
        let Some(order) = s.orders.get_mut(order_id) else {
            return Ok(Settled::NotFound);
        };
        if order.status != OrderStatus::PendingPayment {
            return Ok(Settled::Unchanged(order.clone()));
        }
        order.status = to.status();
        if to.restores_stock() {
            for line in &order.items {
                *s.stock.entry(line.product_id.clone()).or_default() += i64::from(line.quantity);
            }
        }
        Ok(Settled::Applied(order.clone()))
    }

    async fn mark_outcome_notified(&self, order_id: &str) -> Result<(), PortError> {
        self.faults.enter("mark_outcome_notified")?;
        let mut s = lock(&self.state);
        let order = s.orders.get_mut(order_id).ok_or(PortError::NotFound)?;
        order.outcome_notified = true;
        Ok(())
    }
}

/// Records every expiry scheduled, with its delay.
#[derive(Default, Debug)]
pub struct RecordingExpiryQueue {
    pub scheduled: Mutex<Vec<(OrderExpiry, std::time::Duration)>>,
    pub faults: Faults,
}

impl RecordingExpiryQueue {
    pub fn scheduled(&self) -> Vec<(OrderExpiry, std::time::Duration)> {
        lock(&self.scheduled).clone()
    }
}

impl ExpiryQueue for RecordingExpiryQueue {
    async fn schedule_expiry(
        &self,
        expiry: &OrderExpiry,
        delay: std::time::Duration,
        _trace: Option<&TraceHeader>,
    ) -> Result<(), PortError> {
        self.faults.enter("schedule_expiry")?;
        lock(&self.scheduled).push((expiry.clone(), delay));
        Ok(())
    }
}

/// Records every payment request sent.
#[derive(Default, Debug)]
pub struct RecordingPaymentQueue {
    pub sent: Mutex<Vec<PaymentRequest>>,
    /// The trace header each request was sent with.
    pub traces: Mutex<Vec<Option<TraceHeader>>>,
    pub faults: Faults,
}

impl RecordingPaymentQueue {
    pub fn sent(&self) -> Vec<PaymentRequest> {
        lock(&self.sent).clone()
    }
}

impl PaymentQueue for RecordingPaymentQueue {
    async fn request_payment(
        &self,
        request: &PaymentRequest,
        trace: Option<&TraceHeader>,
    ) -> Result<(), PortError> {
        self.faults.enter("request_payment")?;
        lock(&self.sent).push(request.clone());
        lock(&self.traces).push(trace.cloned());
        Ok(())
    }
}

/// Records every event published.
#[derive(Default, Debug)]
pub struct RecordingNotifier {
    pub published: Mutex<Vec<OrderEvent>>,
    pub faults: Faults,
}

impl RecordingNotifier {
    pub fn published(&self) -> Vec<OrderEvent> {
        lock(&self.published).clone()
    }
}

impl Notifier for RecordingNotifier {
    async fn publish(
        &self,
        event: &OrderEvent,
        _trace: Option<&TraceHeader>,
    ) -> Result<(), PortError> {
        self.faults.enter("publish")?;
        lock(&self.published).push(event.clone());
        Ok(())
    }
}

/// A parked message: body, source message id, reason code, reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    pub body: String,
    pub message_id: String,
    pub reason_code: String,
    pub reason: String,
}

#[derive(Default, Debug)]
pub struct RecordingDeadLetters {
    pub parked: Mutex<Vec<Parked>>,
    pub faults: Faults,
}

impl RecordingDeadLetters {
    pub fn parked(&self) -> Vec<Parked> {
        lock(&self.parked).clone()
    }
}

impl DeadLetters for RecordingDeadLetters {
    async fn park(
        &self,
        body: &str,
        source_message_id: &str,
        reason_code: &str,
        reason: &str,
    ) -> Result<(), PortError> {
        self.faults.enter("park")?;
        lock(&self.parked).push(Parked {
            body: body.to_string(),
            message_id: source_message_id.to_string(),
            reason_code: reason_code.to_string(),
            reason: reason.to_string(),
        });
        Ok(())
    }
}

/// An object as the in-memory store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub body: Vec<u8>,
    pub etag: String,
    pub content_type: String,
    pub cache_control: String,
    pub metadata: BTreeMap<String, String>,
}

/// Something a test does to the store just before one of its calls runs (an upload arriving while
/// the handler works, for instance).
type Action = Box<dyn FnOnce(&InMemoryObjectStore) + Send>;

/// Enforces S3's limits on writes: keys up to `MAX_OBJECT_KEY_BYTES`, user metadata up to
/// `MAX_METADATA_BYTES` (refused as S3 refuses them, `KeyTooLongError` and `MetadataTooLarge`).
#[derive(Default)]
pub struct InMemoryObjectStore {
    objects: Mutex<BTreeMap<(String, String), StoredObject>>,
    actions: Mutex<HashMap<String, VecDeque<Action>>>,
    pub faults: Faults,
}

impl std::fmt::Debug for InMemoryObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryObjectStore")
            .field("objects", &lock(&self.objects).len())
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl InMemoryObjectStore {
    /// Adds an object as if uploaded; its etag is a content hash.
    pub fn insert(&self, bucket: &str, key: &str, body: Vec<u8>) {
        let etag = format!("\"{:016x}\"", fnv1a(&body));
        lock(&self.objects).insert(
            (bucket.to_string(), key.to_string()),
            StoredObject {
                body,
                etag,
                content_type: "application/octet-stream".into(),
                cache_control: String::new(),
                metadata: BTreeMap::new(),
            },
        );
    }

    /// The next call of `operation` (`head`, `get`, `put`) first runs `action` on the store (queue
    /// several for several calls).
    pub fn before_next(
        &self,
        operation: &str,
        action: impl FnOnce(&InMemoryObjectStore) + Send + 'static,
    ) {
        lock(&self.actions)
            .entry(operation.to_string())
            .or_default()
            .push_back(Box::new(action));
    }

    /// Runs the action planned for this call of `operation`, if any, then counts the call.
    fn enter(&self, operation: &str) -> Result<(), PortError> {
        let action = lock(&self.actions)
            .get_mut(operation)
            .and_then(VecDeque::pop_front);
        if let Some(action) = action {
            action(self);
        }
        self.faults.enter(operation)
    }

    /// The keys in `bucket`, sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        lock(&self.objects)
            .keys()
            .filter(|(b, _)| b == bucket)
            .map(|(_, k)| k.clone())
            .collect()
    }

    pub fn object(&self, bucket: &str, key: &str) -> Option<StoredObject> {
        lock(&self.objects)
            .get(&(bucket.to_string(), key.to_string()))
            .cloned()
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// ETags compare without their quotes, as S3 compares an `If-Match`.
fn same_etag(a: &str, b: &str) -> bool {
    a.trim_matches('"') == b.trim_matches('"')
}

impl ObjectStore for InMemoryObjectStore {
    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>, PortError> {
        self.enter("head")?;
        Ok(lock(&self.objects)
            .get(&(bucket.to_string(), key.to_string()))
            .map(|o| ObjectInfo {
                size: o.body.len() as u64,
                etag: o.etag.clone(),
                metadata: o.metadata.clone(),
            }))
    }

    async fn get(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: u64,
        if_match: Option<&str>,
    ) -> Result<Vec<u8>, PortError> {
        self.enter("get")?;
        let objects = lock(&self.objects);
        let object = objects
            .get(&(bucket.to_string(), key.to_string()))
            .ok_or(PortError::NotFound)?;
        if if_match.is_some_and(|etag| !same_etag(etag, &object.etag)) {
            return Err(PortError::VersionMismatch);
        }
        if object.body.len() as u64 > max_bytes {
            return Err(PortError::Rejected(format!(
                "object is larger than {max_bytes} bytes"
            )));
        }
        Ok(object.body.clone())
    }

    async fn put(&self, object: NewObject) -> Result<(), PortError> {
        self.enter("put")?;
        if object.key.len() > MAX_OBJECT_KEY_BYTES {
            return Err(PortError::Rejected(format!(
                "s3: KeyTooLongError the key is {} bytes, more than {MAX_OBJECT_KEY_BYTES}",
                object.key.len()
            )));
        }
        let metadata = metadata_bytes(&object.metadata);
        if metadata > MAX_METADATA_BYTES {
            return Err(PortError::Rejected(format!(
                "s3: MetadataTooLarge the metadata is {metadata} bytes, more than {MAX_METADATA_BYTES}"
            )));
        }
        let etag = format!("\"{:016x}\"", fnv1a(&object.body));
        lock(&self.objects).insert(
            (object.bucket, object.key),
            StoredObject {
                body: object.body,
                etag,
                content_type: object.content_type,
                cache_control: object.cache_control,
                metadata: object.metadata,
            },
        );
        Ok(())
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::UserStore;
    use crate::user::{timestamp, NewUser};

    /// As the DynamoDB store: a write meant for a deleted profile never lands on one created
    /// again at the same id, though both are at version 1.
    #[tokio::test]
    async fn writes_never_land_on_a_profile_created_again_at_the_same_id() {
        let store = InMemoryUserStore::default();
        let at = |ms: i64| {
            timestamp(time::OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(ms))
        };
        let first = NewUser {
            user_id: None,
            name: "Grace".into(),
            email: "grace@example.com".into(),
        }
        .into_user(Uuid::new_v4(), at(1_000));
        store.create(&first).await.unwrap();
        store.delete(&first).await.unwrap();
        let again = User {
            created_at: at(2_000),
            ..first.clone()
        };
        store.create(&again).await.unwrap();
        let mut changed = first.clone();
        changed.name = "Hopper".into();
        changed.version += 1;
        assert_eq!(
            store.update(&first, &changed).await,
            Err(PortError::VersionMismatch)
        );
        assert_eq!(store.delete(&first).await, Err(PortError::VersionMismatch));
        assert_eq!(store.get(again.user_id).await.unwrap(), Some(again));
    }
}
