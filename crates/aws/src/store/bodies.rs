//! The claim check: a body over [`INLINE_MAX`] bytes is kept as an S3 object, and the
//! DynamoDB item holds the object's key instead (`body_ref`, `response_ref`).
//!
//! Every object belongs to one item and is never shared: a message's body is
//! `msg/<message id>`, a DLQ entry's are `dlq/<dlq id>/body` and `dlq/<dlq id>/response`, a
//! schedule's is `sched/<schedule id>/<digest of the body>` (a schedule's body changes with
//! an update, so each body gets a key of its own and the replaced one is deleted after).
//! Objects are written before the item that names them and deleted after that item is gone
//! (best effort), so a crash or a failed delete leaves at most an orphan object, which the
//! bucket's lifecycle rules remove (one rule per prefix, sized to the longest a message or a
//! DLQ entry lives; `template.yaml`). An item never names an object that was not written.
//! Bodies never change once stored (a retry only moves `due` and `retried`), so a key names
//! one content for as long as its item lives.

use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use futures_util::future::try_join_all;
use futures_util::{StreamExt, stream};
use qpost_core::ids::MessageId;
use sha2::{Digest, Sha256};

use super::CONCURRENCY;
use crate::error::AwsError;

/// Largest body kept inside its DynamoDB item. Above it, S3 is cheaper: one PUT and one GET
/// ($5.4 per million) cost what about 2 KiB of body costs in transactional writes (written
/// at publish, deleted at delivery, 4 write units per KiB, $2.5 per million per KiB). Below
/// 8 KiB the saving is under $15 per million messages and not worth an S3 round trip
/// (tens of milliseconds) on the publish and on every attempt of a typical webhook.
pub const INLINE_MAX: usize = 8 * 1024;

/// Whether a body of `len` bytes goes to S3 rather than into its item.
pub fn spills(len: usize) -> bool {
    len > INLINE_MAX
}

/// The object of message `id`'s body.
pub fn message_body_key(id: &MessageId) -> String {
    format!("msg/{id}")
}

/// The object of a DLQ entry's copy of its message's body.
pub fn dlq_body_key(dlq_id: &str) -> String {
    format!("dlq/{dlq_id}/body")
}

/// The object of a DLQ entry's response body.
pub fn dlq_response_key(dlq_id: &str) -> String {
    format!("dlq/{dlq_id}/response")
}

/// The object of schedule `id` with `body`: the key changes with the body, so an update
/// never rewrites an object a stored schedule still names.
pub fn schedule_body_key(id: &str, body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("sched/{id}/{hex}")
}

/// An object to write before the item naming it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload<'a> {
    pub key: String,
    pub bytes: &'a [u8],
}

/// The bucket of large bodies.
#[derive(Clone, Debug)]
pub struct Bodies {
    client: Client,
    bucket: String,
}

impl Bodies {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// An S3 client on `sdk`; path-style addressing when an endpoint is configured
    /// (`AWS_ENDPOINT_URL`: emulators serve buckets as paths, not as host names).
    pub fn client(sdk: &SdkConfig) -> Client {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        Client::from_conf(config)
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Writes every upload at once (a write names a few at most: a message, or a DLQ entry
    /// and the callbacks of one attempt); done before the write of the items naming them.
    pub async fn put(&self, uploads: &[Upload<'_>]) -> Result<(), AwsError> {
        try_join_all(uploads.iter().map(|u| self.put_one(u))).await?;
        Ok(())
    }

    async fn put_one(&self, upload: &Upload<'_>) -> Result<(), AwsError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&upload.key)
            .body(ByteStream::from(upload.bytes.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::sdk("PutObject", e))?;
        Ok(())
    }

    /// The object at `key`; `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, AwsError> {
        let sent = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Ok(None);
            }
            Err(e) => return Err(AwsError::sdk("GetObject", e)),
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| AwsError::sdk("GetObject", e))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    /// Deletes the objects at `keys`, best effort: the item naming them is already gone, and
    /// an object left behind is only storage until the lifecycle rule removes it.
    pub async fn delete(&self, keys: Vec<String>) {
        stream::iter(keys)
            .for_each_concurrent(CONCURRENCY, |key| async move {
                let sent = self
                    .client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .send()
                    .await;
                if let Err(e) = sent {
                    let e = AwsError::sdk("DeleteObject", e);
                    tracing::warn!(%key, error = %e, "a body object was left for the lifecycle rule");
                }
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_up_to_the_threshold_stay_inline_and_larger_ones_spill() {
        assert!(!spills(0));
        assert!(!spills(INLINE_MAX));
        assert!(spills(INLINE_MAX + 1));
        assert!(spills(900 * 1024));
    }

    #[test]
    fn each_item_owns_its_own_object_keys() {
        let id = MessageId::from_string("msg_abc".into());
        assert_eq!(message_body_key(&id), "msg/msg_abc");
        assert_eq!(dlq_body_key("17-3"), "dlq/17-3/body");
        assert_eq!(dlq_response_key("17-3"), "dlq/17-3/response");
        let (a, b) = (
            schedule_body_key("job", b"a"),
            schedule_body_key("job", b"b"),
        );
        assert!(a.starts_with("sched/job/") && a.len() == "sched/job/".len() + 32);
        assert_ne!(a, b, "a new body is a new object");
        assert_eq!(a, schedule_body_key("job", b"a"));
    }
}
