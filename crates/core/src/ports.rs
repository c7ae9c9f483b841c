//! The ports: every piece of state and every wake-up goes through these traits, so the
//! embedded backend (SQLite, in-process timers) and the AWS backend (DynamoDB, SQS,
//! EventBridge Scheduler) are interchangeable behind the same use cases.

use async_trait::async_trait;

use crate::Result;
use crate::events::Event;
use crate::filter::{DlqFilter, EventFilter, MessageFilter};
use crate::ids::MessageId;
use crate::message::{DlqEntry, Message};
use crate::queue::Queue;
use crate::schedule::Schedule;
use crate::signing::SigningKeys;
use crate::topic::Topic;

/// A message to store, with what must hold atomically with its insertion.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub message: Message,
    /// Refuse the insert when this key was seen within its window.
    pub dedup: Option<DedupKey>,
    /// Remove this DLQ entry in the same write (DLQ retry); the insert is refused with
    /// [`Inserted::DlqEntryMissing`] when the entry is gone.
    pub from_dlq: Option<String>,
    /// Log events written with the message, only when it is created.
    pub events: Vec<Event>,
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
    /// Log events of the attempt, written in the same write.
    pub events: Vec<Event>,
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
    /// A wake-up for every stored message, in creation order, for rebuilding timers
    /// after a restart.
    async fn wakeups(&self) -> Result<Vec<Wakeup>>;
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

/// What a dispatcher needs to know to wake a message: when, and which queue and
/// flow-control key gate it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wakeup {
    pub id: MessageId,
    pub due_ms: i64,
    pub queue_name: Option<String>,
    pub flow_control: Option<crate::flow::FlowControl>,
}

impl Wakeup {
    pub fn of(m: &Message) -> Self {
        Self {
            id: m.id.clone(),
            due_ms: m.not_before,
            queue_name: m.queue_name.clone(),
            flow_control: m.flow_control.clone(),
        }
    }
}

/// Wakes delivery of a message at a time: an in-process timer locally, a queue message
/// (with delay or a one-time schedule) on AWS.
#[async_trait]
pub trait Dispatcher: Send + Sync {
    async fn dispatch(&self, wakeup: Wakeup) -> Result<()>;
}

/// Schedules, persisted.
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Creates or replaces (by id) a schedule.
    async fn put_schedule(&self, schedule: &Schedule) -> Result<()>;
    async fn get_schedule(&self, id: &str) -> Result<Option<Schedule>>;
    async fn list_schedules(&self) -> Result<Vec<Schedule>>;
    /// Returns whether it existed.
    async fn delete_schedule(&self, id: &str) -> Result<bool>;
}

/// What fires schedules: the in-process cron ticker locally, EventBridge Scheduler on AWS.
#[async_trait]
pub trait ScheduleRegistry: Send + Sync {
    /// Refuses (with the reason) a schedule this registry could not arm, such as a cron
    /// expression its scheduler cannot express. Called before anything is stored, so a
    /// refused creation or replacement changes nothing. Default: every schedule is armable.
    fn check(&self, _schedule: &Schedule) -> Result<()> {
        Ok(())
    }
    /// (Re-)arms a schedule after it was created, replaced, paused or resumed.
    async fn arm(&self, schedule: &Schedule) -> Result<()>;
    async fn disarm(&self, id: &str) -> Result<()>;
}

/// URL groups, persisted.
#[async_trait]
pub trait TopicStore: Send + Sync {
    async fn put_topic(&self, topic: &Topic) -> Result<()>;
    async fn get_topic(&self, name: &str) -> Result<Option<Topic>>;
    async fn list_topics(&self) -> Result<Vec<Topic>>;
    async fn delete_topic(&self, name: &str) -> Result<bool>;
}

/// Queues, persisted.
#[async_trait]
pub trait QueueStore: Send + Sync {
    async fn put_queue(&self, queue: &Queue) -> Result<()>;
    async fn get_queue(&self, name: &str) -> Result<Option<Queue>>;
    async fn list_queues(&self) -> Result<Vec<Queue>>;
    async fn delete_queue(&self, name: &str) -> Result<bool>;
    /// Undelivered messages of the queue.
    async fn queue_lag(&self, name: &str) -> Result<u64>;
}

/// The event log.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Writes events that no message write carries (cancellations).
    async fn append(&self, events: Vec<Event>) -> Result<()>;
    /// Events matching `filter`, newest first, after `cursor`.
    async fn list_events(
        &self,
        filter: &EventFilter,
        cursor: Option<&str>,
        count: usize,
    ) -> Result<Page<Event>>;
    /// Drops events older than `before` (Unix ms).
    async fn purge_events(&self, before: i64) -> Result<u64>;
}

/// Admission of due messages to an attempt: queue order and parallelism, flow-control
/// limits and pauses. Locally an in-process gate in front of the worker.
#[async_trait]
pub trait Admission: Send + Sync {
    /// Keys whose name contains `search` (all when `None`).
    async fn flow_keys(&self, search: Option<&str>) -> Result<Vec<crate::flow::FlowControlInfo>>;
    async fn flow_key(&self, key: &str) -> Result<Option<crate::flow::FlowControlInfo>>;
    /// Returns false when the key is unknown.
    async fn flow_command(&self, key: &str, command: crate::flow::FlowCommand) -> Result<bool>;
    async fn global_parallelism(&self) -> Result<crate::flow::GlobalParallelism>;
    /// A queue was created or its parallelism or pause changed.
    async fn queue_changed(&self, queue: &Queue) -> Result<()>;
    async fn queue_deleted(&self, name: &str) -> Result<()>;
}
