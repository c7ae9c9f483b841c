//! The queue model: a named FIFO lane with a parallelism limit, pausable.

use serde::{Deserialize, Serialize};

/// Parallelism of a queue created implicitly by an enqueue.
pub const DEFAULT_PARALLELISM: u32 = 1;

/// A queue's settings; its `lag` (undelivered messages) is counted from the messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Queue {
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub parallelism: u32,
    pub paused: bool,
}

impl Queue {
    /// A queue created at `now`, not paused.
    pub fn new(name: &str, parallelism: u32, now: i64) -> Self {
        Self {
            name: name.to_string(),
            created_at: now,
            updated_at: now,
            parallelism,
            paused: false,
        }
    }
}

/// A queue as `GET /v2/queues[/{name}]` shows it: its settings and its lag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueView {
    #[serde(flatten)]
    pub queue: Queue,
    /// Messages of the queue not yet delivered or dead-lettered.
    pub lag: u64,
}

/// What `POST /v2/queues` asks for; an absent field keeps the queue's current value
/// (or the default for a new queue).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueUpsert {
    pub name: String,
    pub parallelism: Option<u32>,
    pub paused: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_shows_every_field_the_sdks_require() {
        let view = QueueView {
            queue: Queue::new("q", 2, 10),
            lag: 3,
        };
        let v = serde_json::to_value(&view).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name":"q","createdAt":10,"updatedAt":10,"parallelism":2,"paused":false,"lag":3})
        );
    }
}
