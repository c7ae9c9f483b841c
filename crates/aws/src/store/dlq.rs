//! DLQ entries: sharded by id, sorted by the id's (time, sequence), so listing in DLQ-id
//! order with a cursor is a merge of shard queries. Expired entries are invisible at
//! once; DynamoDB's TTL deletes them later, `purge_dlq` on demand. Bodies an entry keeps in
//! S3 are fetched for the entries returned (after filtering and paging), and deleted after
//! the entry (TTL's deletes leave them to the bucket's `dlq/` lifecycle rule).

use async_trait::async_trait;
use futures_util::future::try_join;
use futures_util::{StreamExt, TryStreamExt, stream};
use qpost_core::filter::DlqFilter;
use qpost_core::message::DlqEntry;
use qpost_core::ports::{DlqStore, Page};

use super::item::{Item, Refs, dlq_from_item, n, str_attr};
use super::keys::{self, DLQ_SHARDS, Key, PK, SK};
use super::listing::Listing;
use super::tx::Expr;
use super::{CONCURRENCY, DynamoStore};
use crate::error::AwsError;

const EXPIRED: &str = "#expires <= :now";
/// What `purge_dlq` reads of an expired entry: its key and the objects it names.
const KEY_AND_REFS: &str = "#pk, #sk, #body_ref, #response_ref";

#[async_trait]
impl DlqStore for DynamoStore {
    async fn get_dlq(&self, dlq_id: &str, now: i64) -> qpost_core::Result<Option<DlqEntry>> {
        let Some(key) = keys::dlq(dlq_id) else {
            return Ok(None);
        };
        let Some(item) = self.get_item(&key, None).await? else {
            return Ok(None);
        };
        let entry = dlq_from_item(&item)?;
        if entry.expires_at <= now {
            return Ok(None);
        }
        Ok(self.with_bodies(entry, Refs::of(&item)).await?)
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
        let keep = |item: &Item| -> Result<Option<(DlqEntry, Refs)>, AwsError> {
            let e = dlq_from_item(item)?;
            Ok((e.expires_at > now && filter.matches(&e)).then(|| (e, Refs::of(item))))
        };
        let mut found = if filter.dlq_ids.is_empty() {
            self.list(&in_id_order(after), count.saturating_add(1), keep)
                .await?
        } else {
            self.dlq_by_ids(&filter.dlq_ids, after.as_deref(), keep)
                .await?
        };
        // One more than asked was read: its presence is what a cursor promises.
        let more = found.len() > count;
        found.truncate(count);
        let cursor = more
            .then(|| found.last().map(|(e, _)| e.dlq_id.clone()))
            .flatten();
        let items = self.all_with_bodies(found).await?;
        Ok(Page { items, cursor })
    }

    async fn remove_dlq(&self, dlq_ids: &[String]) -> qpost_core::Result<u64> {
        let keys = dlq_ids.iter().filter_map(|id| keys::dlq(id)).collect();
        Ok(self.delete_each(keys).await?)
    }

    async fn purge_dlq(&self, now: i64) -> qpost_core::Result<u64> {
        let listing = Listing {
            projection: Some(KEY_AND_REFS),
            filter: Some(Expr::new(EXPIRED).value(":now", n(now))),
            ..in_id_order(None)
        };
        let expired = self
            .list(&listing, usize::MAX, |item| {
                let key = Key {
                    pk: str_attr(item, PK)?.to_string(),
                    sk: str_attr(item, SK)?.to_string(),
                };
                Ok(Some((key, Refs::of(item))))
            })
            .await?;
        let n = expired.len() as u64;
        let (keys, refs): (Vec<Key>, Vec<Refs>) = expired.into_iter().unzip();
        self.batch_delete(keys).await?;
        let objects = refs.into_iter().flat_map(Refs::keys).collect();
        self.bodies.delete(objects).await;
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
        keep: impl Fn(&Item) -> Result<Option<(DlqEntry, Refs)>, AwsError> + Send + Sync,
    ) -> Result<Vec<(DlqEntry, Refs)>, AwsError> {
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
            out.extend(keep(item)?);
        }
        Ok(out)
    }

    /// Entries with the bodies they keep in S3; entries deleted meanwhile are left out.
    async fn all_with_bodies(
        &self,
        found: Vec<(DlqEntry, Refs)>,
    ) -> Result<Vec<DlqEntry>, AwsError> {
        let loaded: Vec<Option<DlqEntry>> = stream::iter(found)
            .map(|(entry, refs)| self.with_bodies(entry, refs))
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(loaded.into_iter().flatten().collect())
    }

    /// `entry` with the bodies `refs` names fetched (both at once); `None` when the entry
    /// was deleted meanwhile.
    async fn with_bodies(
        &self,
        mut entry: DlqEntry,
        refs: Refs,
    ) -> Result<Option<DlqEntry>, AwsError> {
        if refs.is_empty() {
            return Ok(Some(entry));
        }
        let key = keys::dlq(&entry.dlq_id)
            .ok_or_else(|| AwsError::Corrupt(format!("{:?} is not a DLQ id", entry.dlq_id)))?;
        let (body, response) = try_join(
            self.redeem_or_keep(&key, refs.body, std::mem::take(&mut entry.message.body)),
            self.redeem_or_keep(
                &key,
                refs.response,
                std::mem::take(&mut entry.response_body),
            ),
        )
        .await?;
        let (Some(body), Some(response)) = (body, response) else {
            return Ok(None);
        };
        (entry.message.body, entry.response_body) = (body, response);
        Ok(Some(entry))
    }
}
