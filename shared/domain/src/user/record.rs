//! The user record as stored and returned, and what a create or an update carries.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub user_id: Uuid,
    pub name: String,
    pub email: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Starts at 1, grows by one on every change; the API's `ETag`.
    pub version: u64,
}

/// A validated create request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Chosen by the caller (a member creates their own profile under their subject id), else generated.
    pub user_id: Option<Uuid>,
    pub name: String,
    pub email: String,
}

/// A validated change: `PUT` sets both fields, `PATCH` one or both.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserChanges {
    pub name: Option<String>,
    pub email: Option<String>,
}

impl NewUser {
    pub fn into_user(self, user_id: Uuid, now: OffsetDateTime) -> User {
        User {
            user_id,
            name: self.name,
            email: self.email,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }
}

impl User {
    /// The user after `changes`, one version on. Unchanged fields keep their value.
    pub fn with_changes(&self, changes: &UserChanges, now: OffsetDateTime) -> User {
        User {
            user_id: self.user_id,
            name: changes.name.clone().unwrap_or_else(|| self.name.clone()),
            email: changes.email.clone().unwrap_or_else(|| self.email.clone()),
            created_at: self.created_at,
            updated_at: now,
            version: self.version + 1,
        }
    }
}

/// Timestamps are stored and shown in UTC with millisecond precision.
pub fn timestamp(now: OffsetDateTime) -> OffsetDateTime {
    let utc = now.to_offset(time::UtcOffset::UTC);
    let millis = utc.nanosecond() / 1_000_000 * 1_000_000;
    utc.replace_nanosecond(millis).unwrap_or(utc)
}
