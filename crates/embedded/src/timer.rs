//! The in-process timer queue: a min-heap of wake-ups by due time. It is the local
//! implementation of the dispatcher port; the worker pops what is due.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use async_trait::async_trait;
use qpost_core::ports::{Dispatcher, Wakeup};
use tokio::sync::Notify;

/// A wake-up in the heap; equal due times keep their arming order.
struct Entry {
    seq: u64,
    wakeup: Wakeup,
}

impl Entry {
    fn key(&self) -> (i64, u64) {
        (self.wakeup.due_ms, self.seq)
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    /// Reversed: the heap's top is the earliest entry.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key().cmp(&self.key())
    }
}

/// Due times of messages waiting in this process.
#[derive(Default)]
pub struct Timer {
    heap: Mutex<BinaryHeap<Entry>>,
    seq: AtomicU64,
    wake: Notify,
}

impl Timer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms a wake-up; wakes the worker when it is the earliest.
    pub fn push(&self, wakeup: Wakeup) {
        let seq = self.seq.fetch_add(1, AtomicOrdering::Relaxed);
        let Ok(mut heap) = self.heap.lock() else {
            return;
        };
        let earliest = heap
            .peek()
            .is_none_or(|top| wakeup.due_ms < top.wakeup.due_ms);
        heap.push(Entry { seq, wakeup });
        drop(heap);
        if earliest {
            self.wake.notify_one();
        }
    }

    /// Takes one wake-up due at `now_ms`, if any.
    pub fn pop_due(&self, now_ms: i64) -> Option<Wakeup> {
        let mut heap = self.heap.lock().ok()?;
        match heap.peek() {
            Some(top) if top.wakeup.due_ms <= now_ms => heap.pop().map(|e| e.wakeup),
            _ => None,
        }
    }

    /// The earliest due time.
    pub fn next_due(&self) -> Option<i64> {
        self.heap.lock().ok()?.peek().map(|e| e.wakeup.due_ms)
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
    async fn dispatch(&self, wakeup: Wakeup) -> qpost_core::Result<()> {
        self.push(wakeup);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qpost_core::ids::MessageId;

    fn wakeup(due_ms: i64) -> Wakeup {
        Wakeup {
            id: MessageId::generate(),
            due_ms,
            queue_name: None,
            flow_control: None,
        }
    }

    #[test]
    fn wakeups_come_out_in_due_order_and_only_when_due() {
        let t = Timer::new();
        let (a, b, c) = (wakeup(10), wakeup(20), wakeup(10));
        t.push(b.clone());
        t.push(a.clone());
        t.push(c.clone());
        assert_eq!(t.next_due(), Some(10));
        assert_eq!(t.pop_due(5), None);
        assert_eq!(t.pop_due(15), Some(a), "equal due times keep arming order");
        assert_eq!(t.pop_due(15), Some(c));
        assert_eq!(t.pop_due(15), None);
        assert_eq!(t.pop_due(20), Some(b));
        assert!(t.is_empty());
    }
}
