//! Idempotent creates: a request carrying an `Idempotency-Key` is answered once; a retry with the
//! same key and the same payload gets the first answer again (the model of Powertools' idempotency
//! utility: a record per key, first `IN_PROGRESS`, then `COMPLETED` with the response, each with an
//! expiry after which the key is free again).

use sha2::{Digest, Sha256};

/// The longest `Idempotency-Key` accepted, in bytes (visible ASCII only).
pub const MAX_KEY_BYTES: usize = 255;

/// A response as stored for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    /// The headers that matter to a client of the first answer (`Location`, `ETag`).
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was free (or its record had expired): this request runs and must complete or release it.
    Claimed,
    /// Another request with this key and payload is running (its record has not expired yet).
    InProgress,
    /// A request with this key and payload has finished: its answer.
    Completed(StoredResponse),
    /// The key was used with another payload.
    PayloadMismatch,
}

/// The record's key: the caller and their key, hashed (a caller can never meet another's key).
pub fn record_key(caller: &str, key: &str) -> String {
    hex(&Sha256::digest(format!("{caller}\n{key}").as_bytes()))
}

/// The payload's fingerprint (SHA-256 of the method, path and body).
pub fn payload_hash(method: &str, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b"\n");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether an `Idempotency-Key` value is acceptable: 1 to `MAX_KEY_BYTES` bytes of visible ASCII.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_BYTES && key.bytes().all(|b| b.is_ascii_graphic())
}
