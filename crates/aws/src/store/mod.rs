//! The DynamoDB store: every state port of qpost-core on one table (single-table design).
//!
//! The key schema lives in [`keys`], item encoding in [`item`], transactions in [`tx`],
//! sharded listings in [`listing`]; each port has its own module. Reads that must see the
//! latest write (get by id, the DLQ, keys, documents) are strongly consistent; listings
//! through the `by_created` index are eventually consistent (see the README).

mod dlq;
mod docs;
mod events;
pub mod item;
pub mod keys;
mod keystore;
mod listing;
mod messages;
mod tx;

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest};
use futures_util::{StreamExt, TryStreamExt, stream};

use crate::error::AwsError;
use item::{Item, key_item};
use keys::Key;
use tx::{PRESENT, names};

/// Requests one store call keeps in flight (bulk deletes, per-id reads, shard queries).
const CONCURRENCY: usize = 16;
/// DynamoDB's limit of writes in one `BatchWriteItem`.
const BATCH_WRITE: usize = 25;
/// Rounds of resending what a batch write left unprocessed (throttling).
const BATCH_ROUNDS: u32 = 8;

/// The AWS store: one DynamoDB table holding every kind of state.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    event_retention: Duration,
}

impl DynamoStore {
    /// A store on `table`; log events expire after the default 7 days.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
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
        let sent = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .condition_expression(PRESENT)
            .set_expression_attribute_names(names(&[PRESENT]))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(AwsError::sdk("DeleteItem", e)),
        }
    }

    /// Deletes every key that exists; returns how many did.
    async fn delete_each(&self, keys: Vec<Key>) -> Result<u64, AwsError> {
        let found: Vec<bool> = stream::iter(keys)
            .map(|k| async move { self.delete_present(&k).await })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(found.into_iter().filter(|f| *f).count() as u64)
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
