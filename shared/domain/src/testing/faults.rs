//! Scripted failures and call counts, shared by every in-memory port.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use crate::PortError;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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

    pub(crate) fn enter(&self, operation: &str) -> Result<(), PortError> {
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
