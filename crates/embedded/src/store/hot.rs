//! A bounded in-memory copy of messages that are due soon, so a delivery attempt reads
//! its message without a trip to a read connection. It only ever mirrors committed state:
//! entries are added and changed after the write that makes them true has committed.

use std::collections::HashMap;
use std::sync::Mutex;

use qpost_core::ids::MessageId;
use qpost_core::message::Message;
use qpost_core::ports::{Change, Transition};

/// Most messages kept.
const CAPACITY: usize = 16_384;
/// Only messages due within this window of now are kept: later ones would sit in memory
/// for nothing, and a restart starts without them anyway.
const HORIZON_MS: i64 = 60_000;

#[derive(Default)]
pub struct Hot {
    messages: Mutex<HashMap<MessageId, Message>>,
}

impl Hot {
    /// Keeps a committed message if it is due soon and there is room.
    pub fn keep(&self, m: &Message, now_ms: i64) {
        if m.not_before > now_ms + HORIZON_MS {
            return;
        }
        if let Ok(mut map) = self.messages.lock()
            && map.len() < CAPACITY
        {
            map.insert(m.id.clone(), m.clone());
        }
    }

    pub fn get(&self, id: &MessageId) -> Option<Message> {
        self.messages.lock().ok()?.get(id).cloned()
    }

    /// Mirrors a committed transition.
    pub fn apply(&self, t: &Transition, now_ms: i64) {
        if let Ok(mut map) = self.messages.lock() {
            match &t.change {
                Change::Retry {
                    retried,
                    not_before,
                } if *not_before <= now_ms + HORIZON_MS => {
                    if let Some(m) = map.get_mut(&t.message_id) {
                        m.retried = *retried;
                        m.not_before = *not_before;
                    }
                }
                _ => {
                    map.remove(&t.message_id);
                }
            }
        }
        for m in &t.spawned {
            self.keep(m, now_ms);
        }
    }

    pub fn forget(&self, ids: &[MessageId]) {
        if let Ok(mut map) = self.messages.lock() {
            for id in ids {
                map.remove(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qpost_core::test_support::message;

    #[test]
    fn only_messages_due_soon_are_kept_and_transitions_are_mirrored() {
        let hot = Hot::default();
        let (soon, later) = (message(), message());
        let now = soon.not_before;
        hot.keep(&soon, now);
        let mut late = later.clone();
        late.not_before = now + HORIZON_MS + 1;
        hot.keep(&late, now);
        assert!(hot.get(&soon.id).is_some());
        assert!(
            hot.get(&late.id).is_none(),
            "a message due later is left to the store"
        );
        let retry = Transition {
            message_id: soon.id.clone(),
            change: Change::Retry {
                retried: 1,
                not_before: now + 10,
            },
            spawned: vec![],
            events: vec![],
        };
        hot.apply(&retry, now);
        assert_eq!(
            hot.get(&soon.id).map(|m| (m.retried, m.not_before)),
            Some((1, now + 10))
        );
        let done = Transition {
            change: Change::Remove,
            ..retry
        };
        hot.apply(&done, now);
        assert!(hot.get(&soon.id).is_none());
    }
}
