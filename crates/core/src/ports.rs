//! The ports: every piece of state and every wake-up goes through these traits, so the
//! embedded backend (SQLite, in-process timers) and the AWS backend (DynamoDB, SQS,
//! EventBridge Scheduler) are interchangeable behind the same use cases.

use async_trait::async_trait;

use crate::Result;
use crate::filter::{DlqFilter, MessageFilter};
use crate::ids::MessageId;
use crate::message::{DlqEntry, Message};
use crate::signing::SigningKeys;

/// A message to store, with what must hold atomically with its insertion.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub message: Message,
    /// Refuse the insert when this key was seen within its window.
    pub dedup: Option<DedupKey>,
    /// Remove this DLQ entry in the same write (DLQ retry); the insert is refused with
    /// [`Inserted::DlqEntryMissing`] when the entry is gone.
    pub from_dlq: Option<String>,
}

/// A deduplication key and the time (Unix ms) it stops blocking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DedupKey {
    pub key: String,
    pub expires_at: i64,
}

/// What became of one [`NewMessage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inserted {
    Created,
    /// An equal deduplication key is live; nothing was written. Carries the original id.
    Duplicate(MessageId),
    DlqEntryMissing,
}

/// The state change that closes one delivery attempt; stores apply it atomically.
#[derive(Clone, Debug)]
pub struct Transition {
    pub message_id: MessageId,
    pub change: Change,
    /// Callback and failure-callback messages born from this attempt.
    pub spawned: Vec<Message>,
}

#[derive(Clone, Debug)]
pub enum Change {
    /// Delivered: the message is removed.
    Remove,
    /// Failed with retries left: count the retry and wait until `not_before`.
    Retry { retried: u32, not_before: i64 },
    /// Retries exhausted or refused: the message leaves for the DLQ.
    DeadLetter(Box<DlqEntry>),
}

/// Messages waiting for delivery.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Stores messages durably; when this returns, every `Created` one survives a crash.
    async fn insert(&self, batch: Vec<NewMessage>) -> Result<Vec<Inserted>>;
    async fn get(&self, id: &MessageId) -> Result<Option<Message>>;
    /// Applies the outcome of an attempt. A message already gone (cancelled meanwhile)
    /// is not an error: spawned messages are still stored.
    async fn apply(&self, transition: Transition) -> Result<()>;
    /// Removes the given messages; returns how many existed.
    async fn remove(&self, ids: &[MessageId]) -> Result<u64>;
    /// Ids of up to `limit` messages matching `filter`, oldest first.
    async fn find(&self, filter: &MessageFilter, limit: usize) -> Result<Vec<MessageId>>;
    /// Every stored message's id and due time, for rebuilding timers after a restart.
    async fn due_times(&self) -> Result<Vec<(MessageId, i64)>>;
}

/// One page of a cursor listing.
#[derive(Clone, Debug, Default)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts; `None` at the end.
    pub cursor: Option<String>,
}

/// Dead-lettered messages.
#[async_trait]
pub trait DlqStore: Send + Sync {
    async fn get_dlq(&self, dlq_id: &str, now: i64) -> Result<Option<DlqEntry>>;
    /// Entries matching `filter` after `cursor`, in DLQ-id order, not expired at `now`.
    async fn list_dlq(
        &self,
        filter: &DlqFilter,
        cursor: Option<&str>,
        count: usize,
        now: i64,
    ) -> Result<Page<DlqEntry>>;
    /// Removes entries; returns how many existed.
    async fn remove_dlq(&self, dlq_ids: &[String]) -> Result<u64>;
    /// Drops entries whose retention ended before `now`.
    async fn purge_dlq(&self, now: i64) -> Result<u64>;
}

/// The signing keys, persisted.
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn keys(&self) -> Result<SigningKeys>;
    /// Replaces the keys with `next` when they still equal `expected` (so two concurrent
    /// rotations cannot both win); returns the keys in force afterwards.
    async fn swap_keys(&self, expected: &SigningKeys, next: &SigningKeys) -> Result<SigningKeys>;
}

/// Wakes delivery of a message at a time: an in-process timer locally, a queue message
/// (with delay or a one-time schedule) on AWS.
#[async_trait]
pub trait Dispatcher: Send + Sync {
    async fn dispatch(&self, id: &MessageId, due_ms: i64) -> Result<()>;
}
