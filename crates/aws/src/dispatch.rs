//! Wake-ups on SQS: a wake-up is a queue message naming a message id, delayed until the
//! message is due. SQS delays at most 15 minutes; a longer wait becomes a one-time
//! EventBridge Scheduler `at()` schedule that sends the same body to the queue when the
//! message is due (without a scheduler, the maximum delay, and the consumer re-delays).
//! The delivery queue also carries schedule firings, `{"schedule": "<id>"}`
//! ([`QueueBody`] reads either).
//!
//! A message in a qpost queue goes, once due, to the ordered queue instead: an SQS FIFO
//! queue where each qpost queue is one message group (`n` groups for parallelism `n`,
//! [`group_id`]). SQS hands out a group's records one at a time, in order, and holds the
//! group while its head is in flight or waiting out a retry's visibility, which is QStash's
//! queue order. A FIFO queue takes no per-message delay, so a queued message due later
//! waits on the delivery queue first; the deliver function moves it over when it is due.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use qpost_core::clock::Clock;
use qpost_core::ids::MessageId;
use qpost_core::ports::{Dispatcher, QueueStore, Wakeup};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::AwsError;
use crate::scheduler::EventBridgeScheduler;

/// The longest `DelaySeconds` SQS accepts.
pub const MAX_DELAY_SECONDS: i32 = 900;

/// The body of a wake-up: only the id. The store is the source of truth; the queue message
/// carries no state, so it stays tiny whatever the message size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WakeupBody {
    pub id: MessageId,
}

impl WakeupBody {
    pub fn to_json(&self) -> String {
        format!(
            "{{\"id\":{}}}",
            serde_json::Value::String(self.id.to_string())
        )
    }

    /// Parses a wake-up received from the queue.
    pub fn parse(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }
}

/// The body of a schedule firing, which EventBridge Scheduler sends to the delivery queue
/// on every cron minute: only the schedule id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleBody {
    pub schedule: String,
}

impl ScheduleBody {
    pub fn to_json(&self) -> String {
        format!(
            "{{\"schedule\":{}}}",
            serde_json::Value::String(self.schedule.clone())
        )
    }
}

/// What a delivery-queue record asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueBody {
    /// Attempt delivery of this message.
    Wakeup(MessageId),
    /// Fire this schedule.
    Schedule(String),
}

/// A record body that is neither a wake-up nor a schedule firing.
#[derive(Debug, thiserror::Error)]
#[error("the record body is neither {{\"id\": ...}} nor {{\"schedule\": ...}}: {0}")]
pub struct BodyError(String);

impl QueueBody {
    /// Reads a record body: exactly one of `id` and `schedule`, a non-empty string.
    pub fn parse(body: &str) -> Result<Self, BodyError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Either {
            id: Option<String>,
            schedule: Option<String>,
        }
        let either: Either = serde_json::from_str(body).map_err(|e| BodyError(e.to_string()))?;
        match (either.id, either.schedule) {
            (Some(id), None) if !id.is_empty() => Ok(Self::Wakeup(MessageId::from_string(id))),
            (None, Some(s)) if !s.is_empty() => Ok(Self::Schedule(s)),
            _ => Err(BodyError("expected exactly one non-empty id".into())),
        }
    }
}

/// Seconds to delay a wake-up due at `due_ms` sent at `now_ms`: rounded up so it never
/// arrives early by rounding, clamped to what SQS accepts.
pub fn delay_seconds(due_ms: i64, now_ms: i64) -> i32 {
    let wait_ms = due_ms.saturating_sub(now_ms).max(0);
    let secs = (wait_ms as u64).div_ceil(1000);
    secs.min(MAX_DELAY_SECONDS as u64) as i32
}

/// The longest `MessageGroupId` SQS accepts.
const MAX_GROUP_ID: usize = 128;

/// The message group of a wake-up in qpost queue `queue` with `parallelism` lanes: the
/// queue name for parallelism 1, else `<queue>#<lane>` with `lane = turn % parallelism`
/// (the dispatcher passes a counter, so consecutive messages take turns). Names too long
/// for SQS are shortened with a hash, keeping them distinct.
pub fn group_id(queue: &str, parallelism: u32, turn: u64) -> String {
    let name = match parallelism {
        0 | 1 => queue.to_string(),
        n => format!("{queue}#{}", turn % u64::from(n)),
    };
    if name.len() <= MAX_GROUP_ID {
        return name;
    }
    let digest = Sha256::digest(name.as_bytes());
    let hash: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}~{hash}",
        &name[..name.floor_char_boundary(MAX_GROUP_ID - 33)]
    )
}

/// The ordered queue and what choosing a group needs.
struct Ordered {
    url: String,
    queues: Arc<dyn QueueStore>,
    /// Turns of [`group_id`]: per process, so each function container takes turns.
    turns: AtomicU64,
}

/// Sends wake-ups to the delivery queue (a standard queue), due wake-ups of queued
/// messages to the ordered queue (FIFO) when one is attached; waits longer than SQS can
/// delay go through EventBridge Scheduler when one is attached.
pub struct SqsDispatcher {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    clock: Arc<dyn Clock>,
    scheduler: Option<Arc<EventBridgeScheduler>>,
    ordered: Option<Ordered>,
}

impl SqsDispatcher {
    pub fn new(
        client: aws_sdk_sqs::Client,
        queue_url: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            clock,
            scheduler: None,
            ordered: None,
        }
    }

    /// Sends due wake-ups of messages in qpost queues to the FIFO queue at `url`, in the
    /// group [`group_id`] picks from the queue's parallelism in `queues`.
    pub fn with_ordered_queue(
        mut self,
        url: impl Into<String>,
        queues: Arc<dyn QueueStore>,
    ) -> Self {
        self.ordered = Some(Ordered {
            url: url.into(),
            queues,
            turns: AtomicU64::new(0),
        });
        self
    }

    /// Sends the wake-up of a due message of qpost queue `queue` to the ordered queue. The
    /// message id is the deduplication id: a repeated send within SQS's 5-minute window
    /// (a retried forward) adds no second record.
    async fn send_ordered(
        &self,
        ordered: &Ordered,
        id: &MessageId,
        queue: &str,
    ) -> qpost_core::Result<()> {
        let parallelism = ordered
            .queues
            .get_queue(queue)
            .await?
            .map_or(1, |q| q.parallelism);
        let turn = ordered.turns.fetch_add(1, Ordering::Relaxed);
        self.client
            .send_message()
            .queue_url(&ordered.url)
            .message_body(WakeupBody { id: id.clone() }.to_json())
            .message_group_id(group_id(queue, parallelism, turn))
            .message_deduplication_id(id.to_string())
            .send()
            .await
            .map_err(|e| AwsError::sdk("SendMessage", e))?;
        Ok(())
    }

    /// Sends wake-ups due more than [`MAX_DELAY_SECONDS`] from now as one-time schedules.
    pub fn with_scheduler(mut self, scheduler: Arc<EventBridgeScheduler>) -> Self {
        self.scheduler = Some(scheduler);
        self
    }
}

#[async_trait]
impl Dispatcher for SqsDispatcher {
    async fn dispatch(&self, wakeup: Wakeup) -> qpost_core::Result<()> {
        let now = self.clock.now_ms();
        if let (Some(ordered), Some(queue)) = (&self.ordered, &wakeup.queue_name)
            && wakeup.due_ms <= now
        {
            return self.send_ordered(ordered, &wakeup.id, queue).await;
        }
        if let Some(scheduler) = &self.scheduler
            && wakeup.due_ms.saturating_sub(now) > i64::from(MAX_DELAY_SECONDS) * 1000
        {
            return Ok(scheduler.wake_at(&wakeup.id, wakeup.due_ms).await?);
        }
        let body = WakeupBody { id: wakeup.id };
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body.to_json())
            .delay_seconds(delay_seconds(wakeup.due_ms, now))
            .send()
            .await
            .map_err(|e| AwsError::sdk("SendMessage", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_and_clamp_to_the_sqs_range() {
        assert_eq!(delay_seconds(1_000, 5_000), 0, "overdue goes at once");
        assert_eq!(delay_seconds(5_000, 5_000), 0);
        assert_eq!(delay_seconds(5_001, 5_000), 1, "never early by rounding");
        assert_eq!(delay_seconds(125_000, 5_000), 120);
        assert_eq!(delay_seconds(5_000 + 3_600_000, 5_000), MAX_DELAY_SECONDS);
        assert_eq!(delay_seconds(i64::MAX, i64::MIN), MAX_DELAY_SECONDS);
    }

    #[test]
    fn a_queue_is_one_group_per_parallel_lane_taken_in_turns() {
        assert_eq!(group_id("jobs", 1, 7), "jobs");
        assert_eq!(group_id("jobs", 0, 7), "jobs");
        let lanes: Vec<String> = (0..4).map(|t| group_id("jobs", 3, t)).collect();
        assert_eq!(lanes, ["jobs#0", "jobs#1", "jobs#2", "jobs#0"]);
        let long = "q".repeat(200);
        let (a, b) = (group_id(&long, 2, 0), group_id(&long, 2, 1));
        assert!(a.len() <= MAX_GROUP_ID && b.len() <= MAX_GROUP_ID);
        assert_ne!(a, b, "shortened names stay distinct");
    }

    #[test]
    fn the_body_names_only_the_id_and_parses_back() {
        let body = WakeupBody {
            id: MessageId::from_string("msg_\"x".into()),
        };
        let json = body.to_json();
        assert_eq!(json, r#"{"id":"msg_\"x"}"#);
        assert_eq!(WakeupBody::parse(&json).unwrap(), body);
        assert!(WakeupBody::parse("{}").is_err());
    }

    #[test]
    fn a_queue_body_is_a_wakeup_or_a_schedule_firing_and_nothing_else() {
        let id = MessageId::from_string("msg_1".into());
        assert_eq!(
            QueueBody::parse(&WakeupBody { id: id.clone() }.to_json()).unwrap(),
            QueueBody::Wakeup(id)
        );
        let firing = ScheduleBody {
            schedule: "scd_\"1".into(),
        };
        assert_eq!(firing.to_json(), r#"{"schedule":"scd_\"1"}"#);
        assert_eq!(
            QueueBody::parse(&firing.to_json()).unwrap(),
            QueueBody::Schedule("scd_\"1".into())
        );
        for bad in [
            "",
            "not json",
            "{}",
            r#"{"id":""}"#,
            r#"{"id":"a","schedule":"b"}"#,
            r#"{"id":7}"#,
            r#"{"message":"x"}"#,
        ] {
            assert!(QueueBody::parse(bad).is_err(), "{bad:?}");
        }
    }
}
