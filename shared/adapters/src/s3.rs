//! `ObjectStore` on Amazon S3.

use std::collections::BTreeMap;

use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::client::result::SdkError;
use domain::ports::{NewObject, ObjectInfo, ObjectStore};
use domain::PortError;

use crate::errors::classify;

/// IAM actions of `head` and `get` on a bucket (`HeadObject` needs `s3:GetObject`, and `s3:ListBucket`
/// to see a missing key as 404 rather than 403).
pub const S3_READ_ACTIONS: &[&str] = &["s3:GetObject", "s3:ListBucket"];

/// IAM actions of `put`.
pub const S3_WRITE_ACTIONS: &[&str] = &["s3:PutObject"];

#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: aws_sdk_s3::Client,
}

impl S3ObjectStore {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self { client }
    }
}

impl ObjectStore for S3ObjectStore {
    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>, PortError> {
        match self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectInfo {
                size: out.content_length().unwrap_or(0).max(0) as u64,
                etag: out.e_tag().unwrap_or_default().to_string(),
                metadata: out
                    .metadata()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_else(BTreeMap::new),
            })),
            Err(SdkError::ServiceError(ctx))
                if matches!(ctx.err(), HeadObjectError::NotFound(_)) =>
            {
                Ok(None)
            }
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(e) => Err(classify("s3", &e)),
        }
    }

    async fn get(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: u64,
        if_match: Option<&str>,
    ) -> Result<Vec<u8>, PortError> {
        let out = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_if_match(if_match.map(str::to_string))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                return Err(PortError::NotFound)
            }
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {
                return Err(PortError::VersionMismatch)
            }
            Err(e) => return Err(classify("s3", &e)),
        };
        let declared = out.content_length().unwrap_or(0).max(0) as u64;
        if declared > max_bytes {
            return Err(PortError::Rejected(format!(
                "object is {declared} bytes, more than the {max_bytes}-byte limit"
            )));
        }
        read_limited(out.body, declared, max_bytes).await
    }

    async fn put(&self, object: NewObject) -> Result<(), PortError> {
        self.client
            .put_object()
            .bucket(object.bucket)
            .key(object.key)
            .content_type(object.content_type)
            .cache_control(object.cache_control)
            .set_metadata(Some(object.metadata.into_iter().collect()))
            .body(ByteStream::from(object.body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("s3", &e))
    }
}

/// Reads a body, stopping as soon as it passes `max_bytes` (a lying `Content-Length` cannot make us
/// buffer more than the limit).
async fn read_limited(
    mut body: ByteStream,
    expected: u64,
    max_bytes: u64,
) -> Result<Vec<u8>, PortError> {
    let mut bytes = Vec::with_capacity(expected.min(max_bytes) as usize);
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| PortError::Unavailable(format!("s3: reading the object failed: {e}")))?
    {
        if (bytes.len() + chunk.len()) as u64 > max_bytes {
            return Err(PortError::Rejected(format!(
                "object is larger than the {max_bytes}-byte limit"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
