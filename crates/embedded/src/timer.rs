//! The in-process timer queue: a min-heap of (due time, message id). It is the local
//! implementation of the dispatcher port; the worker pops what is due.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Mutex;

use async_trait::async_trait;
use qpost_core::ids::MessageId;
use qpost_core::ports::Dispatcher;
use tokio::sync::Notify;

/// Due times of messages waiting in this process.
#[derive(Default)]
pub struct Timer {
    heap: Mutex<BinaryHeap<Reverse<(i64, MessageId)>>>,
    wake: Notify,
}

impl Timer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms a wake-up for `id` at `due_ms`; wakes the worker when it is the earliest.
    pub fn push(&self, id: MessageId, due_ms: i64) {
        let Ok(mut heap) = self.heap.lock() else {
            return;
        };
        let earliest = heap.peek().is_none_or(|Reverse((t, _))| due_ms < *t);
        heap.push(Reverse((due_ms, id)));
        drop(heap);
        if earliest {
            self.wake.notify_one();
        }
    }

    /// Takes one message due at `now_ms`, if any.
    pub fn pop_due(&self, now_ms: i64) -> Option<MessageId> {
        let mut heap = self.heap.lock().ok()?;
        match heap.peek() {
            Some(Reverse((t, _))) if *t <= now_ms => heap.pop().map(|Reverse((_, id))| id),
            _ => None,
        }
    }

    /// The earliest due time.
    pub fn next_due(&self) -> Option<i64> {
        self.heap.lock().ok()?.peek().map(|Reverse((t, _))| *t)
    }

    pub fn len(&self) -> usize {
        self.heap.lock().map(|h| h.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves when an earlier wake-up was armed.
    pub async fn changed(&self) {
        self.wake.notified().await;
    }
}

#[async_trait]
impl Dispatcher for Timer {
    async fn dispatch(&self, id: &MessageId, due_ms: i64) -> qpost_core::Result<()> {
        self.push(id.clone(), due_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_out_in_due_order_and_only_when_due() {
        let t = Timer::new();
        let (a, b) = (MessageId::generate(), MessageId::generate());
        t.push(b.clone(), 20);
        t.push(a.clone(), 10);
        assert_eq!(t.next_due(), Some(10));
        assert_eq!(t.pop_due(5), None);
        assert_eq!(t.pop_due(15), Some(a));
        assert_eq!(t.pop_due(15), None);
        assert_eq!(t.pop_due(20), Some(b));
        assert!(t.is_empty());
    }
}
