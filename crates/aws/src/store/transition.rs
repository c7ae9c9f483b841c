//! Applying the outcome of an attempt: one transaction changing the message (delete,
//! retry count, or delete + DLQ entry) with the spawned messages and events, and the S3
//! objects of the claim check around it.
//!
//! Objects the transaction's items name (a spawned callback's body, the DLQ entry's bodies)
//! are written before it. The object the removed message named is deleted after it; to
//! know that object without a read first, the removal's condition states which object the
//! message is expected to name (none, or the one this process saw when it read the
//! message): a message naming another is refused, and the refusal carries the item, so the
//! transaction runs once more expecting the right one. A message's object never changes,
//! so a second refusal can only mean the message is gone.

use std::collections::HashMap;
use std::sync::Mutex;

use qpost_core::ids::MessageId;
use qpost_core::ports::{Change, Transition};

use super::DynamoStore;
use super::bodies::{Upload, message_body_key, spills};
use super::item::{Refs, dlq_item, event_item, message_item, n, s};
use super::keys;
use super::tx::{ABSENT, Expr, Outcome, Role, Tx};
use crate::error::AwsError;

/// A removal expecting the message to name no object (a missing message passes too).
const NAMES_NONE: &str = "attribute_not_exists(#body_ref)";
/// A move to the DLQ expecting an existing message that names no object.
const EXISTS_NAMING_NONE: &str = "attribute_exists(#pk) AND attribute_not_exists(#body_ref)";
/// A removal expecting the message to name the object `:body_ref` (so it exists).
const NAMES: &str = "#body_ref = :body_ref";
/// A retry applies to a stored message that has not counted this retry yet, so a
/// redelivered or stale record never moves the count back.
const RETRY_WHEN: &str = "attribute_exists(#pk) AND #retried < :r";
const RETRY_SET: &str = "SET #due = :due, #retried = :r";
/// Messages whose object a process remembers; past it the memory starts over.
const SEEN_MAX: usize = 1024;

/// The objects named by messages this process read lately, so that the transition removing
/// one expects the right object at once. Only a hint: the removal's condition checks it.
#[derive(Debug, Default)]
pub struct Seen(Mutex<HashMap<MessageId, String>>);

impl Seen {
    pub fn note(&self, id: &MessageId, object: &str) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= SEEN_MAX {
            seen.clear();
        }
        seen.insert(id.clone(), object.to_string());
    }

    fn take(&self, id: &MessageId) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id)
    }
}

/// The writes of one transition.
struct Writes<'a> {
    tx: Tx,
    /// Objects to write before the transaction.
    uploads: Vec<Upload<'a>>,
    /// The DLQ entry's objects among them, orphans if the message turns out gone.
    entry_objects: Vec<String>,
}

/// The condition on the message of a removal expecting it to name `object`.
fn naming(object: Option<&str>, must_exist: bool) -> Expr {
    match (object, must_exist) {
        (Some(key), _) => Expr::new(NAMES).value(":body_ref", s(key)),
        (None, false) => Expr::new(NAMES_NONE),
        (None, true) => Expr::new(EXISTS_NAMING_NONE),
    }
}

impl DynamoStore {
    /// Applies `t`; see the module documentation for the objects around it.
    pub(super) async fn apply_transition(&self, t: &Transition) -> Result<(), AwsError> {
        let mut expected = self.expected_object(t);
        let writes = self.transition_writes(t, expected.as_deref())?;
        self.bodies.put(&writes.uploads).await?;
        let (mut tx, entry_objects) = (writes.tx, writes.entry_objects);
        let mut outcome = self.commit(&tx).await?;
        if let Some(actual) = self.named_instead(t, expected.as_deref(), &outcome).await? {
            expected = actual;
            tx = self.transition_writes(t, expected.as_deref())?.tx;
            outcome = self.commit(&tx).await?;
        }
        if outcome.refused(Role::Message) {
            // Gone (cancelled, or a redelivered record already applied): the message and its
            // DLQ entry are left alone; spawned messages and events are still stored.
            tx.drop_roles(&[Role::Message, Role::DlqEntry]);
            self.bodies.delete(entry_objects).await;
            expected = None;
            if tx.is_empty() {
                return Ok(());
            }
            outcome = self.commit(&tx).await?;
        }
        if let Outcome::Refused(refused) = outcome {
            return Err(AwsError::Cancelled(format!(
                "transition of {} refused by {:?} (an id already taken)",
                t.message_id,
                refused.iter().map(|(role, _)| *role).collect::<Vec<_>>()
            )));
        }
        if !matches!(t.change, Change::Retry { .. }) {
            self.bodies.delete(expected.into_iter().collect()).await;
        }
        Ok(())
    }

    /// The object the message is expected to name: the one seen when this process read it,
    /// else its own key when its body is known to spill (a move to the DLQ carries it).
    fn expected_object(&self, t: &Transition) -> Option<String> {
        let seen = self.seen.take(&t.message_id);
        match &t.change {
            Change::DeadLetter(e) if seen.is_none() && spills(e.message.body.len()) => {
                Some(message_body_key(&t.message_id))
            }
            _ => seen,
        }
    }

    /// When the removal was refused because the message names another object than
    /// `expected` (not because it is gone), that object. A refusal without the item (which
    /// DynamoDB returns whenever the item exists) is checked with a consistent read.
    async fn named_instead(
        &self,
        t: &Transition,
        expected: Option<&str>,
        outcome: &Outcome,
    ) -> Result<Option<Option<String>>, AwsError> {
        if matches!(t.change, Change::Retry { .. }) || !outcome.refused(Role::Message) {
            return Ok(None);
        }
        let found = match outcome.found(Role::Message) {
            Some(item) => Some(Refs::of(item).body),
            None => {
                let key = keys::message(&t.message_id);
                let item = self.get_item(&key, Some("#pk, #body_ref")).await?;
                item.map(|i| Refs::of(&i).body)
            }
        };
        Ok(found.filter(|actual| actual.as_deref() != expected))
    }

    /// The writes of one transition, expecting the message to name `expected`. Conditions
    /// make it idempotent per message: a DeadLetter deletes the message only when it exists
    /// and writes the DLQ entry only with that delete.
    fn transition_writes<'a>(
        &self,
        t: &'a Transition,
        expected: Option<&str>,
    ) -> Result<Writes<'a>, AwsError> {
        let key = keys::message(&t.message_id);
        let mut writes = Writes {
            tx: Tx::new(self.table()),
            uploads: Vec::new(),
            entry_objects: Vec::new(),
        };
        let tx = &mut writes.tx;
        match &t.change {
            Change::Remove => {
                tx.delete_or_show(Role::Message, &key, Some(naming(expected, false)), true)?
            }
            Change::Retry {
                retried,
                not_before,
            } => {
                let r = n(i64::from(*retried));
                let set = Expr::new(RETRY_SET)
                    .value(":due", n(*not_before))
                    .value(":r", r.clone());
                tx.update(
                    Role::Message,
                    &key,
                    set,
                    Expr::new(RETRY_WHEN).value(":r", r),
                )?;
            }
            Change::DeadLetter(entry) => {
                tx.delete_or_show(Role::Message, &key, Some(naming(expected, true)), true)?;
                let built = dlq_item(entry)?;
                writes.entry_objects = built.uploads.iter().map(|u| u.key.clone()).collect();
                writes.uploads.extend(built.uploads);
                tx.put(Role::DlqEntry, built.item, Some(Expr::new(ABSENT)), false)?;
            }
        }
        for m in &t.spawned {
            let built = message_item(m)?;
            writes.uploads.extend(built.uploads);
            let condition = Some(Expr::new(ABSENT));
            writes.tx.put(Role::Spawned, built.item, condition, false)?;
        }
        for (i, e) in t.events.iter().enumerate() {
            let item = event_item(e, i, self.event_retention)?;
            writes.tx.put(Role::Event, item, None, false)?;
        }
        Ok(writes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removal_states_which_object_it_expects_the_message_to_name() {
        assert_eq!(naming(None, false).text, NAMES_NONE);
        assert_eq!(naming(None, true).text, EXISTS_NAMING_NONE);
        let named = naming(Some("msg/msg_1"), true);
        assert_eq!(named.text, NAMES);
        assert_eq!(named.values, [(":body_ref", s("msg/msg_1"))]);
    }

    #[test]
    fn seen_objects_are_taken_once_and_forgotten_past_the_bound() {
        let seen = Seen::default();
        let id = MessageId::from_string("msg_1".into());
        seen.note(&id, "msg/msg_1");
        assert_eq!(seen.take(&id).as_deref(), Some("msg/msg_1"));
        assert_eq!(seen.take(&id), None);
        for i in 0..=SEEN_MAX {
            seen.note(&MessageId::from_string(format!("msg_{i}")), "k");
        }
        assert!(seen.0.lock().unwrap().len() <= SEEN_MAX);
    }
}
