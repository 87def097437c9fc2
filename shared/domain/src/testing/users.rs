//! Users in memory, versioned like the DynamoDB store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use uuid::Uuid;

use crate::ports::{UserPage, UserStore};
use crate::user::User;
use crate::PortError;

use super::faults::{lock, Faults};

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
