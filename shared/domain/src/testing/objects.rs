//! An object store in memory with ETags and scripted races.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use crate::ports::{
    metadata_bytes, NewObject, ObjectInfo, ObjectStore, MAX_METADATA_BYTES, MAX_OBJECT_KEY_BYTES,
};
use crate::PortError;

use super::faults::{lock, Faults};

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
