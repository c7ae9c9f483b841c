//! DLQ entries: sharded by id, sorted by the id's (time, sequence), so listing in DLQ-id
//! order with a cursor is a merge of shard queries. Expired entries are invisible at
//! once; DynamoDB's TTL deletes them later, `purge_dlq` on demand.

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt, stream};
use qpost_core::filter::DlqFilter;
use qpost_core::message::DlqEntry;
use qpost_core::ports::{DlqStore, Page};

use super::item::{dlq_from_item, n, str_attr};
use super::keys::{self, DLQ_SHARDS, Key, PK, SK};
use super::listing::Listing;
use super::tx::Expr;
use super::{CONCURRENCY, DynamoStore};
use crate::error::AwsError;

const EXPIRED: &str = "#expires <= :now";

#[async_trait]
impl DlqStore for DynamoStore {
    async fn get_dlq(&self, dlq_id: &str, now: i64) -> qpost_core::Result<Option<DlqEntry>> {
        let Some(key) = keys::dlq(dlq_id) else {
            return Ok(None);
        };
        let item = self.get_item(&key, None).await?;
        let entry = item.as_ref().map(dlq_from_item).transpose()?;
        Ok(entry.filter(|e| e.expires_at > now))
    }

    async fn list_dlq(
        &self,
        filter: &DlqFilter,
        cursor: Option<&str>,
        count: usize,
        now: i64,
    ) -> qpost_core::Result<Page<DlqEntry>> {
        let after =
            match cursor.filter(|c| !c.is_empty()) {
                None => None,
                Some(c) => Some(keys::dlq_sort(c).ok_or_else(|| {
                    qpost_core::Error::bad_request(format!("invalid cursor {c:?}"))
                })?),
            };
        let keep = |e: DlqEntry| (e.expires_at > now && filter.matches(&e)).then_some(e);
        let mut items = if filter.dlq_ids.is_empty() {
            self.list(&in_id_order(after), count.saturating_add(1), |item| {
                Ok(keep(dlq_from_item(item)?))
            })
            .await?
        } else {
            self.dlq_by_ids(&filter.dlq_ids, after.as_deref(), keep)
                .await?
        };
        // One more than asked was read: its presence is what a cursor promises.
        let more = items.len() > count;
        items.truncate(count);
        let cursor = more
            .then(|| items.last().map(|e| e.dlq_id.clone()))
            .flatten();
        Ok(Page { items, cursor })
    }

    async fn remove_dlq(&self, dlq_ids: &[String]) -> qpost_core::Result<u64> {
        let keys = dlq_ids.iter().filter_map(|id| keys::dlq(id)).collect();
        Ok(self.delete_each(keys).await?)
    }

    async fn purge_dlq(&self, now: i64) -> qpost_core::Result<u64> {
        let listing = Listing {
            projection: Some("#pk, #sk"),
            filter: Some(Expr::new(EXPIRED).value(":now", n(now))),
            ..in_id_order(None)
        };
        let expired = self
            .list(&listing, usize::MAX, |item| {
                Ok(Some(Key {
                    pk: str_attr(item, PK)?.to_string(),
                    sk: str_attr(item, SK)?.to_string(),
                }))
            })
            .await?;
        let n = expired.len() as u64;
        self.batch_delete(expired).await?;
        Ok(n)
    }
}

/// Every DLQ entry in id order, after the sort key `after`.
fn in_id_order(after: Option<String>) -> Listing {
    Listing {
        index: None,
        pk: PK,
        sk: SK,
        prefix: DLQ_SHARDS,
        forward: true,
        after,
        projection: None,
        filter: None,
    }
}

impl DynamoStore {
    /// Entries named by id (a filter by `dlqIds`): direct reads instead of a listing.
    async fn dlq_by_ids(
        &self,
        ids: &[String],
        after: Option<&str>,
        keep: impl Fn(DlqEntry) -> Option<DlqEntry> + Send + Sync,
    ) -> Result<Vec<DlqEntry>, AwsError> {
        let mut keys: Vec<Key> = ids
            .iter()
            .filter_map(|id| keys::dlq(id))
            .filter(|k| after.is_none_or(|a| k.sk.as_str() > a))
            .collect();
        keys.sort_by(|a, b| a.sk.cmp(&b.sk));
        keys.dedup();
        let found: Vec<_> = stream::iter(keys)
            .map(|key| async move { self.get_item(&key, None).await })
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        let mut out = Vec::new();
        for item in found.iter().flatten() {
            out.extend(keep(dlq_from_item(item)?));
        }
        Ok(out)
    }
}
