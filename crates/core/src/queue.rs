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
