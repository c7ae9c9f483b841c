//! One in-memory backend implementing every port, with a hand-moved clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use qpost_core::Result;
use qpost_core::clock::{Clock, ManualClock};
use qpost_core::filter::{DlqFilter, MessageFilter};
use qpost_core::ids::{MessageId, dlq_sort_key};
use qpost_core::message::{DlqEntry, Message};
use qpost_core::ports::{
    Dispatcher, DlqStore, Inserted, KeyStore, MessageStore, NewMessage, Page, Transition, Wakeup,
};
use qpost_core::signing::{SigningKey, SigningKeys};

pub struct Memory {
    pub clock: Arc<ManualClock>,
    pub messages: Mutex<Vec<Message>>,
    pub dlq: Mutex<Vec<DlqEntry>>,
    pub dedup: Mutex<HashMap<String, (MessageId, i64)>>,
    pub dispatched: Mutex<Vec<(MessageId, i64)>>,
    pub keys: Mutex<SigningKeys>,
}

impl Memory {
    pub fn new(clock: Arc<ManualClock>) -> Self {
        let key = |k: &str| SigningKey::parse(k).unwrap();
        Self {
            clock,
            messages: Mutex::default(),
            dlq: Mutex::default(),
            dedup: Mutex::default(),
            dispatched: Mutex::default(),
            keys: Mutex::new(SigningKeys {
                current: key("sig_current"),
                next: key("sig_next"),
            }),
        }
    }

    pub fn stored(&self) -> Vec<Message> {
        self.messages.lock().unwrap().clone()
    }

    pub fn dlq_ids(&self) -> Vec<String> {
        self.dlq
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.dlq_id.clone())
            .collect()
    }

    fn insert_one(&self, new: NewMessage) -> Inserted {
        let now = self.clock.now_ms();
        let mut dedup = self.dedup.lock().unwrap();
        if let Some(key) = &new.dedup
            && let Some((original, expires)) = dedup.get(&key.key)
            && *expires > now
        {
            return Inserted::Duplicate(original.clone());
        }
        if let Some(dlq_id) = &new.from_dlq {
            let mut dlq = self.dlq.lock().unwrap();
            let before = dlq.len();
            dlq.retain(|e| &e.dlq_id != dlq_id);
            if dlq.len() == before {
                return Inserted::DlqEntryMissing;
            }
        }
        if let Some(key) = new.dedup {
            dedup.insert(key.key, (new.message.id.clone(), key.expires_at));
        }
        self.messages.lock().unwrap().push(new.message);
        Inserted::Created
    }
}

#[async_trait]
impl MessageStore for Memory {
    async fn insert(&self, batch: Vec<NewMessage>) -> Result<Vec<Inserted>> {
        Ok(batch.into_iter().map(|new| self.insert_one(new)).collect())
    }

    async fn get(&self, id: &MessageId) -> Result<Option<Message>> {
        Ok(self
            .messages
            .lock()
            .unwrap()
            .iter()
            .find(|m| &m.id == id)
            .cloned())
    }

    async fn apply(&self, _transition: Transition) -> Result<()> {
        Ok(())
    }

    async fn remove(&self, ids: &[MessageId]) -> Result<u64> {
        let mut messages = self.messages.lock().unwrap();
        let before = messages.len();
        messages.retain(|m| !ids.contains(&m.id));
        Ok((before - messages.len()) as u64)
    }

    async fn find(&self, filter: &MessageFilter, limit: usize) -> Result<Vec<MessageId>> {
        let mut found: Vec<Message> = self
            .stored()
            .into_iter()
            .filter(|m| filter.matches(m))
            .collect();
        found.sort_by_key(|m| m.created_at);
        Ok(found.into_iter().take(limit).map(|m| m.id).collect())
    }

    async fn wakeups(&self) -> Result<Vec<Wakeup>> {
        Ok(self.stored().iter().map(Wakeup::of).collect())
    }
}

#[async_trait]
impl DlqStore for Memory {
    async fn get_dlq(&self, dlq_id: &str, now: i64) -> Result<Option<DlqEntry>> {
        let dlq = self.dlq.lock().unwrap();
        Ok(dlq
            .iter()
            .find(|e| e.dlq_id == dlq_id && e.expires_at > now)
            .cloned())
    }

    /// The cursor is the id of the last entry of the previous page.
    async fn list_dlq(
        &self,
        filter: &DlqFilter,
        cursor: Option<&str>,
        count: usize,
        now: i64,
    ) -> Result<Page<DlqEntry>> {
        let after = cursor.and_then(dlq_sort_key);
        let mut entries: Vec<DlqEntry> = self.dlq.lock().unwrap().clone();
        entries.sort_by_key(|e| dlq_sort_key(&e.dlq_id));
        entries
            .retain(|e| e.expires_at > now && filter.matches(e) && dlq_sort_key(&e.dlq_id) > after);
        let more = entries.len() > count;
        entries.truncate(count);
        let cursor = more
            .then(|| entries.last().map(|e| e.dlq_id.clone()))
            .flatten();
        Ok(Page {
            items: entries,
            cursor,
        })
    }

    async fn remove_dlq(&self, dlq_ids: &[String]) -> Result<u64> {
        let mut dlq = self.dlq.lock().unwrap();
        let before = dlq.len();
        dlq.retain(|e| !dlq_ids.contains(&e.dlq_id));
        Ok((before - dlq.len()) as u64)
    }

    async fn purge_dlq(&self, now: i64) -> Result<u64> {
        let mut dlq = self.dlq.lock().unwrap();
        let before = dlq.len();
        dlq.retain(|e| e.expires_at > now);
        Ok((before - dlq.len()) as u64)
    }
}

#[async_trait]
impl KeyStore for Memory {
    async fn keys(&self) -> Result<SigningKeys> {
        Ok(self.keys.lock().unwrap().clone())
    }

    async fn swap_keys(&self, expected: &SigningKeys, next: &SigningKeys) -> Result<SigningKeys> {
        let mut keys = self.keys.lock().unwrap();
        if &*keys == expected {
            *keys = next.clone();
        }
        Ok(keys.clone())
    }
}

#[async_trait]
impl Dispatcher for Memory {
    async fn dispatch(&self, wakeup: Wakeup) -> Result<()> {
        self.dispatched
            .lock()
            .unwrap()
            .push((wakeup.id, wakeup.due_ms));
        Ok(())
    }
}
