//! In-memory port implementations for fast unit tests, with scripted faults. Not for production:
//! integration tests use the real adapters against the emulator.

mod faults;
mod idempotency;
mod objects;
mod orders;
mod queues;
mod users;

pub use faults::Faults;
pub use idempotency::{IdempotencyRecord, InMemoryIdempotencyStore};
pub use objects::{InMemoryObjectStore, StoredObject};
pub use orders::InMemoryOrderStore;
pub use queues::{
    Parked, RecordingDeadLetters, RecordingExpiryQueue, RecordingNotifier, RecordingPaymentQueue,
};
pub use users::InMemoryUserStore;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::UserStore;
    use crate::user::{timestamp, NewUser};
    use uuid::Uuid;

    use crate::user::User;
    use crate::PortError;

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
