//! The DynamoDB store: every state port of qpost-core on one table (single-table design).
//!
//! The key schema lives in [`keys`], item encoding in [`item`], transactions in [`tx`],
//! sharded listings in [`listing`], bodies too large for an item in S3 in [`bodies`] (the
//! claim check); each port has its own module. Reads that must see the
//! latest write (get by id, the DLQ, keys, documents) are strongly consistent; listings
//! through the `by_created` index are eventually consistent (see the README).

pub mod bodies;
mod dlq;
mod docs;
mod events;
pub mod flow;
pub mod item;
pub mod keys;
mod keystore;
mod listing;
mod messages;
mod transition;
mod tx;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, ReturnValue, WriteRequest};
use futures_util::{StreamExt, TryStreamExt, stream};

use crate::error::AwsError;
use bodies::Bodies;
use item::{Item, Refs, key_item};
use keys::Key;
use tx::{PRESENT, names};

/// Requests one store call keeps in flight (bulk deletes, per-id reads, shard queries).
const CONCURRENCY: usize = 16;
/// DynamoDB's limit of writes in one `BatchWriteItem`.
const BATCH_WRITE: usize = 25;
/// Rounds of resending what a batch write left unprocessed (throttling).
const BATCH_ROUNDS: u32 = 8;

/// The AWS store: one DynamoDB table holding every kind of state, and an S3 bucket holding
/// the bodies too large for an item.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    bodies: Bodies,
    /// Objects named by messages this process read (a hint for their removal).
    seen: Arc<transition::Seen>,
    event_retention: Duration,
}

impl DynamoStore {
    /// A store on `table`, with large bodies in `bodies`; log events expire after the
    /// default 7 days.
    pub fn new(client: Client, table: impl Into<String>, bodies: Bodies) -> Self {
        Self {
            client,
            table: table.into(),
            bodies,
            seen: Arc::default(),
            event_retention: qpost_core::config::Limits::default().event_retention,
        }
    }

    /// Sets how long log events live before their TTL expires them.
    pub fn with_event_retention(mut self, retention: Duration) -> Self {
        self.event_retention = retention;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Reads one item with a strongly consistent read, only `projection` when given.
    async fn get_item(
        &self,
        key: &Key,
        projection: Option<&'static str>,
    ) -> Result<Option<Item>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .consistent_read(true)
            .set_projection_expression(projection.map(String::from))
            .set_expression_attribute_names(projection.and_then(|p| names(&[p])))
            .send()
            .await
            .map_err(|e| AwsError::sdk("GetItem", e))?;
        Ok(out.item)
    }

    /// Deletes the item at `key`; returns whether it existed.
    async fn delete_present(&self, key: &Key) -> Result<bool, AwsError> {
        Ok(self
            .delete_returning(key, ReturnValue::None)
            .await?
            .is_some())
    }

    /// Deletes the item at `key` when it exists; returns its attributes as `returned` asks
    /// (an empty item for `ReturnValue::None`), `None` when it did not exist.
    async fn delete_returning(
        &self,
        key: &Key,
        returned: ReturnValue,
    ) -> Result<Option<Item>, AwsError> {
        let sent = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .condition_expression(PRESENT)
            .set_expression_attribute_names(names(&[PRESENT]))
            .return_values(returned)
            .send()
            .await;
        let refused = DeleteItemError::is_conditional_check_failed_exception;
        let deleted = conditional(sent, "DeleteItem", refused)?;
        Ok(deleted.map(|out| out.attributes.unwrap_or_default()))
    }

    /// Deletes every key that exists, then the objects their items named; returns how many
    /// existed. (DeleteItem returns the old item at no extra cost: no read before.)
    async fn delete_each(&self, keys: Vec<Key>) -> Result<u64, AwsError> {
        let found: Vec<Option<Item>> = stream::iter(keys)
            .map(|k| async move { self.delete_returning(&k, ReturnValue::AllOld).await })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        let existed = found.iter().flatten().count() as u64;
        let objects = found.iter().flatten().flat_map(|i| Refs::of(i).keys());
        self.bodies.delete(objects.collect()).await;
        Ok(existed)
    }

    /// The body in `object` when the item names one (see [`Self::redeem`]), else `inline`.
    async fn redeem_or_keep(
        &self,
        key: &Key,
        object: Option<String>,
        inline: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, AwsError> {
        match object {
            Some(object) => self.redeem(key, &object).await,
            None => Ok(Some(inline)),
        }
    }

    /// The body held in the object `object` of the item at `key`; `None` when the object is
    /// gone because the item was deleted meanwhile. When the object cannot be read (missing,
    /// or refused: without `s3:ListBucket`, S3 answers 403 for a missing key), a consistent
    /// read of the item tells a deletion from a failure.
    async fn redeem(&self, key: &Key, object: &str) -> Result<Option<Vec<u8>>, AwsError> {
        let fetched = self.bodies.get(object).await;
        if let Ok(Some(body)) = fetched {
            return Ok(Some(body));
        }
        if self.get_item(key, Some("#pk")).await?.is_none() {
            return Ok(None);
        }
        match fetched {
            Err(e) => Err(e),
            Ok(_) => Err(AwsError::Corrupt(format!(
                "{}/{} names the body object {object}, which is missing",
                key.pk, key.sk
            ))),
        }
    }

    /// Deletes `keys` in batches, without knowing whether they existed.
    async fn batch_delete(&self, keys: Vec<Key>) -> Result<(), AwsError> {
        let requests = keys
            .iter()
            .map(|k| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(key_item(k)))
                    .build()
                    .map_err(|e| AwsError::Build("DeleteRequest", e))?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, AwsError>>()?;
        self.batch_write(requests).await
    }

    /// Puts `items` in batches (no conditions, no atomicity across items).
    async fn batch_put(&self, items: Vec<Item>) -> Result<(), AwsError> {
        let requests = items
            .into_iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| AwsError::Build("PutRequest", e))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, AwsError>>()?;
        self.batch_write(requests).await
    }

    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), AwsError> {
        for chunk in requests.chunks(BATCH_WRITE) {
            let mut pending = chunk.to_vec();
            for round in 1..=BATCH_ROUNDS {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| AwsError::sdk("BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if round == BATCH_ROUNDS {
                    return Err(AwsError::Conflict(BATCH_ROUNDS));
                }
                tokio::time::sleep(tx::backoff(round)).await;
            }
        }
        Ok(())
    }
}

/// The output of a conditional write, `None` when its condition refused it (`refused`
/// names that error of the operation), an error otherwise.
pub(crate) fn conditional<O, E>(
    sent: Result<O, aws_sdk_dynamodb::error::SdkError<E>>,
    operation: &'static str,
    refused: fn(&E) -> bool,
) -> Result<Option<O>, AwsError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match sent {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.as_service_error().is_some_and(refused) => Ok(None),
        Err(e) => Err(AwsError::sdk(operation, e)),
    }
}
