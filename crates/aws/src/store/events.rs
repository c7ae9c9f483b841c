//! The event log: events are written with the message writes that cause them (see
//! `messages`); this module appends the others, lists newest first across the event shards
//! and purges. DynamoDB's TTL expires events after the retention; `purge_events` does it
//! on demand.

use async_trait::async_trait;
use qpost_core::events::Event;
use qpost_core::filter::EventFilter;
use qpost_core::ports::{EventLog, Page};

use super::DynamoStore;
use super::item::{event_from_item, event_item, str_attr};
use super::keys::{self, EVENT_SHARDS, Key, PK, SK, ordered};
use super::listing::Listing;

#[async_trait]
impl EventLog for DynamoStore {
    async fn append(&self, events: Vec<Event>) -> qpost_core::Result<()> {
        let items = events
            .iter()
            .enumerate()
            .map(|(i, e)| event_item(e, i, self.event_retention))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.batch_put(items).await?)
    }

    async fn list_events(
        &self,
        filter: &EventFilter,
        cursor: Option<&str>,
        count: usize,
    ) -> qpost_core::Result<Page<Event>> {
        let before = match cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(c) if keys::is_event_sort(c) => Some(c.to_string()),
            Some(c) => {
                return Err(qpost_core::Error::bad_request(format!(
                    "invalid cursor {c:?}"
                )));
            }
        };
        let mut items = self
            .list(&newest_first(before), count.saturating_add(1), |item| {
                let event = event_from_item(item)?;
                if !filter.matches(&event) {
                    return Ok(None);
                }
                Ok(Some((str_attr(item, SK)?.to_string(), event)))
            })
            .await?;
        // One more than asked was read: its presence is what a cursor promises.
        let more = items.len() > count;
        items.truncate(count);
        let cursor = more
            .then(|| items.last().map(|(sk, _)| sk.clone()))
            .flatten();
        Ok(Page {
            items: items.into_iter().map(|(_, e)| e).collect(),
            cursor,
        })
    }

    async fn purge_events(&self, before: i64) -> qpost_core::Result<u64> {
        // Sort keys start with the event time, so "older than `before`" is a key range.
        let listing = Listing {
            projection: Some("#pk, #sk"),
            ..newest_first(Some(ordered(before)))
        };
        let old = self
            .list(&listing, usize::MAX, |item| {
                Ok(Some(Key {
                    pk: str_attr(item, PK)?.to_string(),
                    sk: str_attr(item, SK)?.to_string(),
                }))
            })
            .await?;
        let n = old.len() as u64;
        self.batch_delete(old).await?;
        Ok(n)
    }
}

/// Every event, newest first, before the sort key `before`.
fn newest_first(before: Option<String>) -> Listing {
    Listing {
        index: None,
        pk: PK,
        sk: SK,
        prefix: EVENT_SHARDS,
        forward: false,
        after: before,
        projection: None,
        filter: None,
    }
}
