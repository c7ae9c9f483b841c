//! Messages: insert (message, deduplication key, DLQ-retry consumption and CREATED events
//! in one transaction per message, after the bodies over the claim check's threshold are
//! written to S3), reads (redeeming such bodies), removal, and the `find` and `wakeups`
//! listings read through the `by_created` index. Transitions are in [`super::transition`].

use std::collections::HashMap;

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt, stream};
use qpost_core::filter::MessageFilter;
use qpost_core::ids::MessageId;
use qpost_core::message::Message;
use qpost_core::ports::{Inserted, MessageStore, NewMessage, Transition, Wakeup};

use super::bodies::Upload;
use super::item::{
    EXPIRES, Item, MESSAGE_ID, Refs, dedup_item, event_item, message_from_item, message_item, n,
    num_attr, str_attr,
};
use super::keys::{self, BY_CREATED, GSI1_PK, GSI1_SK, MESSAGE_SHARDS};
use super::listing::Listing;
use super::tx::{ABSENT, Expr, Outcome, PRESENT, Role, Tx};
use super::{CONCURRENCY, DynamoStore};
use crate::error::AwsError;

/// A deduplication key may be (re)written when absent or expired at the message's creation.
const DEDUP_FREE: &str = "attribute_not_exists(#pk) OR #expires <= :now";
/// A DLQ retry's first try expects an entry naming no S3 object; one that names some is
/// refused with its item, and the retry runs again knowing which objects to delete after.
const ENTRY_NAMING_NONE: &str = "attribute_exists(#pk) AND attribute_not_exists(#body_ref) AND attribute_not_exists(#response_ref)";
/// What `find` by id and `find` through the index read of a message.
const META_ONLY: &str = "#meta, #due, #retried";

#[async_trait]
impl MessageStore for DynamoStore {
    async fn insert(&self, batch: Vec<NewMessage>) -> qpost_core::Result<Vec<Inserted>> {
        // Every item is built and size-checked before anything is written, so a batch
        // with one oversized message changes nothing.
        let prepared = batch
            .iter()
            .map(|new| self.insert_tx(new, false))
            .collect::<Result<Vec<_>, _>>()?;
        let (batch, prepared) = (&batch, &prepared);
        let done: Vec<Vec<(usize, Inserted)>> = stream::iter(chains(batch))
            .map(|chain| async move {
                let mut out = Vec::with_capacity(chain.len());
                for i in chain {
                    out.push((i, self.insert_one(&batch[i], prepared[i].as_ref()).await?));
                }
                Ok::<_, AwsError>(out)
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        let mut results = vec![Inserted::Created; batch.len()];
        for (i, inserted) in done.into_iter().flatten() {
            results[i] = inserted;
        }
        Ok(results)
    }

    async fn get(&self, id: &MessageId) -> qpost_core::Result<Option<Message>> {
        let Some(item) = self.get_item(&keys::message(id), None).await? else {
            return Ok(None);
        };
        Ok(self.message_with_body(&item).await?)
    }

    async fn apply(&self, transition: Transition) -> qpost_core::Result<()> {
        Ok(self.apply_transition(&transition).await?)
    }

    async fn remove(&self, ids: &[MessageId]) -> qpost_core::Result<u64> {
        Ok(self
            .delete_each(ids.iter().map(keys::message).collect())
            .await?)
    }

    async fn find(
        &self,
        filter: &MessageFilter,
        limit: usize,
    ) -> qpost_core::Result<Vec<MessageId>> {
        if !filter.message_ids.is_empty() {
            return Ok(self.find_by_ids(filter, limit).await?);
        }
        let ids = self
            .list(&by_created(), limit, |item| {
                let m = message_from_item(item)?;
                Ok(filter.matches(&m).then_some(m.id))
            })
            .await?;
        Ok(ids)
    }

    async fn wakeups(&self) -> qpost_core::Result<Vec<Wakeup>> {
        let all = self
            .list(&by_created(), usize::MAX, |item| {
                Ok(Some(Wakeup::of(&message_from_item(item)?)))
            })
            .await?;
        Ok(all)
    }
}

/// The writes of one insert: its transaction and the objects to write before it.
struct Prepared<'a> {
    tx: Tx,
    uploads: Vec<Upload<'a>>,
}

/// Every message, oldest first, through the `by_created` index (metadata only).
fn by_created() -> Listing {
    Listing {
        index: Some(BY_CREATED),
        pk: GSI1_PK,
        sk: GSI1_SK,
        prefix: MESSAGE_SHARDS,
        forward: true,
        after: None,
        projection: None,
        filter: None,
    }
}

impl DynamoStore {
    /// A message read in full: a body kept in S3 is fetched (and its object noted for the
    /// transition that will remove it). `None` when the message was deleted meanwhile.
    async fn message_with_body(&self, item: &Item) -> Result<Option<Message>, AwsError> {
        let mut m = message_from_item(item)?;
        let Some(object) = Refs::of(item).body else {
            return Ok(Some(m));
        };
        self.seen.note(&m.id, &object);
        match self.redeem(&keys::message(&m.id), &object).await? {
            Some(body) => m.body = body,
            None => return Ok(None),
        }
        Ok(Some(m))
    }

    /// The writes inserting `new`; `None` when it retries a DLQ id that cannot exist.
    /// `entry_known`: the DLQ entry it retries was seen naming objects (second try).
    fn insert_tx<'a>(
        &self,
        new: &'a NewMessage,
        entry_known: bool,
    ) -> Result<Option<Prepared<'a>>, AwsError> {
        let m = &new.message;
        let mut tx = Tx::new(self.table());
        let built = message_item(m)?;
        tx.put(Role::Message, built.item, Some(Expr::new(ABSENT)), false)?;
        if let Some(d) = &new.dedup {
            let free = Expr::new(DEDUP_FREE).value(":now", n(m.created_at));
            tx.put(Role::Dedup, dedup_item(d, &m.id), Some(free), true)?;
        }
        if let Some(dlq_id) = &new.from_dlq {
            let Some(key) = keys::dlq(dlq_id) else {
                return Ok(None);
            };
            match entry_known {
                true => tx.delete(Role::FromDlq, &key, Some(Expr::new(PRESENT)))?,
                false => {
                    let naming_none = Some(Expr::new(ENTRY_NAMING_NONE));
                    tx.delete_or_show(Role::FromDlq, &key, naming_none, true)?
                }
            }
        }
        for (i, e) in new.events.iter().enumerate() {
            tx.put(
                Role::Event,
                event_item(e, i, self.event_retention)?,
                None,
                false,
            )?;
        }
        Ok(Some(Prepared {
            tx,
            uploads: built.uploads,
        }))
    }

    /// Writes the message's objects, then its transaction. Objects of a message that was not
    /// stored (a duplicate, a missing DLQ entry) are deleted again; the objects of the DLQ
    /// entry a retry consumed are deleted once it is gone.
    async fn insert_one(
        &self,
        new: &NewMessage,
        prepared: Option<&Prepared<'_>>,
    ) -> Result<Inserted, AwsError> {
        let Some(prepared) = prepared else {
            return Ok(Inserted::DlqEntryMissing);
        };
        self.bodies.put(&prepared.uploads).await?;
        let (outcome, freed) = self.commit_insert(new, &prepared.tx).await?;
        let inserted = self.inserted(new, outcome).await?;
        let unused = prepared.uploads.iter().map(|u| u.key.clone()).collect();
        match inserted {
            Inserted::Created => self.bodies.delete(freed).await,
            _ => self.bodies.delete(unused).await,
        }
        Ok(inserted)
    }

    /// Commits an insert. A DLQ retry whose entry names objects is refused the first time,
    /// with the entry in the refusal: it runs again knowing them, and returns them to delete
    /// once committed. Entries never change, so two tries are enough.
    async fn commit_insert(
        &self,
        new: &NewMessage,
        tx: &Tx,
    ) -> Result<(Outcome, Vec<String>), AwsError> {
        let outcome = self.commit(tx).await?;
        let refs = outcome.found(Role::FromDlq).map(Refs::of);
        let objects = match refs {
            Some(refs) if !refs.is_empty() && !outcome.refused(Role::Dedup) => refs.keys(),
            _ => return Ok((outcome, Vec::new())),
        };
        let Some(again) = self.insert_tx(new, true)? else {
            return Ok((outcome, Vec::new()));
        };
        Ok((self.commit(&again.tx).await?, objects))
    }

    /// What an insert's outcome means for the caller.
    async fn inserted(&self, new: &NewMessage, outcome: Outcome) -> Result<Inserted, AwsError> {
        if outcome.refused(Role::Dedup) {
            let original = match outcome.found(Role::Dedup) {
                Some(item) => MessageId::from_string(str_attr(item, MESSAGE_ID)?.to_string()),
                None => self.live_dedup_owner(new).await?,
            };
            return Ok(Inserted::Duplicate(original));
        }
        if outcome.refused(Role::FromDlq) {
            return Ok(Inserted::DlqEntryMissing);
        }
        match outcome {
            Outcome::Committed => Ok(Inserted::Created),
            Outcome::Refused(_) => Err(AwsError::Cancelled(format!(
                "message id {} is already stored",
                new.message.id
            ))),
        }
    }

    /// The message owning a live deduplication key, read back when the refusal did not
    /// carry it.
    async fn live_dedup_owner(&self, new: &NewMessage) -> Result<MessageId, AwsError> {
        let gone = || AwsError::Cancelled("the deduplication key expired while being read".into());
        let d = new.dedup.as_ref().ok_or_else(gone)?;
        let item = self
            .get_item(&keys::dedup(&d.key), None)
            .await?
            .ok_or_else(gone)?;
        if num_attr(&item, EXPIRES)? <= new.message.created_at {
            return Err(gone());
        }
        Ok(MessageId::from_string(
            str_attr(&item, MESSAGE_ID)?.to_string(),
        ))
    }

    /// `find` with message ids: strongly consistent reads of those ids, no index.
    async fn find_by_ids(
        &self,
        filter: &MessageFilter,
        limit: usize,
    ) -> Result<Vec<MessageId>, AwsError> {
        let mut ids = filter.message_ids.clone();
        ids.sort();
        ids.dedup();
        let found: Vec<Option<Message>> = stream::iter(ids)
            .map(|id| async move {
                let key = keys::message(&MessageId::from_string(id));
                let item = self.get_item(&key, Some(META_ONLY)).await?;
                item.as_ref().map(message_from_item).transpose()
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        let mut hits: Vec<Message> = found
            .into_iter()
            .flatten()
            .filter(|m| filter.matches(m))
            .collect();
        hits.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(hits.into_iter().take(limit).map(|m| m.id).collect())
    }
}

/// Groups batch positions into chains that share a deduplication key or a DLQ entry:
/// chains run concurrently, a chain in batch order, so the first of two equal keys wins.
fn chains(batch: &[NewMessage]) -> Vec<Vec<usize>> {
    let mut chains: Vec<Vec<usize>> = Vec::new();
    let mut owner: HashMap<(bool, &str), usize> = HashMap::new();
    for (i, new) in batch.iter().enumerate() {
        let shared: Vec<(bool, &str)> = [
            new.dedup.as_ref().map(|d| (true, d.key.as_str())),
            new.from_dlq.as_deref().map(|id| (false, id)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let chain = match shared.iter().find_map(|k| owner.get(k)) {
            Some(c) => *c,
            None => {
                chains.push(Vec::new());
                chains.len() - 1
            }
        };
        chains[chain].push(i);
        for k in shared {
            owner.entry(k).or_insert(chain);
        }
    }
    chains
}

#[cfg(test)]
mod tests {
    use qpost_core::ports::DedupKey;

    use super::*;

    fn new(dedup: Option<&str>, from_dlq: Option<&str>) -> NewMessage {
        NewMessage {
            message: Message::new("https://x".into(), vec![], 0, 0),
            dedup: dedup.map(|k| DedupKey {
                key: k.into(),
                expires_at: 1,
            }),
            from_dlq: from_dlq.map(String::from),
            events: vec![],
        }
    }

    #[test]
    fn messages_sharing_a_key_or_dlq_entry_chain_in_batch_order() {
        let batch = [
            new(Some("a"), None),
            new(None, None),
            new(Some("a"), Some("1-0")),
            new(Some("b"), Some("1-0")),
            new(Some("1-0"), None),
        ];
        assert_eq!(chains(&batch), [vec![0, 2, 3], vec![1], vec![4]]);
    }
}
