//! One queue's lane: a FIFO of due messages waiting for a slot, and the messages holding
//! one. A message holds its slot from admission through all its retries until it is
//! delivered, dead-lettered or cancelled, and then until the callbacks its last attempt
//! spawned have finished too (`qstash-api.md` §10).

use std::collections::{HashMap, HashSet, VecDeque};

use qpost_core::ids::MessageId;
use qpost_core::ports::Wakeup;
use qpost_core::queue::DEFAULT_PARALLELISM;

pub(super) struct Lane {
    pub parallelism: u32,
    pub paused: bool,
    /// Slot holders, each with the callbacks it still waits for (empty while it is
    /// still being attempted or retried).
    holders: HashMap<MessageId, HashSet<MessageId>>,
    /// Due messages without a slot, in arrival order. A paused holder's retry waits at
    /// the front: it is older than anything behind it.
    waiting: VecDeque<Wakeup>,
}

impl Default for Lane {
    /// The lane of a queue admission has not been told about: the enqueue defaults.
    fn default() -> Self {
        Self::new(DEFAULT_PARALLELISM, false)
    }
}

impl Lane {
    pub fn new(parallelism: u32, paused: bool) -> Self {
        Self {
            parallelism: parallelism.max(1),
            paused,
            holders: HashMap::new(),
            waiting: VecDeque::new(),
        }
    }

    fn has_free_slot(&self) -> bool {
        self.holders.len() < self.parallelism as usize
    }

    pub fn holds(&self, id: &MessageId) -> bool {
        self.holders.contains_key(id)
    }

    /// Whether `w` may be attempted as far as the queue goes; if not it waits in line.
    /// A newcomer takes a free slot only when nobody is waiting ahead of it.
    pub fn enter(&mut self, w: &Wakeup) -> bool {
        if self.holds(&w.id) {
            if self.paused {
                self.waiting.push_front(w.clone());
                return false;
            }
            return true;
        }
        if self.paused || !self.has_free_slot() || !self.waiting.is_empty() {
            self.waiting.push_back(w.clone());
            return false;
        }
        self.holders.insert(w.id.clone(), HashSet::new());
        true
    }

    /// The next waiting message that may go now, which then holds a slot.
    pub fn next_ready(&mut self) -> Option<Wakeup> {
        if self.paused {
            return None;
        }
        let front = self.waiting.front()?;
        if !self.holds(&front.id) {
            if !self.has_free_slot() {
                return None;
            }
            self.holders.insert(front.id.clone(), HashSet::new());
        }
        self.waiting.pop_front()
    }

    /// The holder `id` is done with its attempts; it keeps its slot until `callbacks`
    /// have finished. Returns whether the slot is free now.
    pub fn finish(&mut self, id: &MessageId, callbacks: HashSet<MessageId>) -> bool {
        if callbacks.is_empty() {
            return self.holders.remove(id).is_some();
        }
        if let Some(pending) = self.holders.get_mut(id) {
            *pending = callbacks;
        }
        false
    }

    /// Callback `callback` of holder `owner` finished. Returns whether the slot is free now.
    pub fn callback_done(&mut self, owner: &MessageId, callback: &MessageId) -> bool {
        let Some(pending) = self.holders.get_mut(owner) else {
            return false;
        };
        if pending.remove(callback) && pending.is_empty() {
            self.holders.remove(owner);
            return true;
        }
        false
    }

    /// Everything waiting, in order (the lane is going away).
    pub fn drain_waiting(&mut self) -> Vec<Wakeup> {
        self.waiting.drain(..).collect()
    }

    #[cfg(test)]
    pub fn counts(&self) -> (usize, usize) {
        (self.holders.len(), self.waiting.len())
    }
}
