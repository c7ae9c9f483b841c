//! The poison path: a wake-up that could not be processed at all (on AWS, an SQS record
//! received too often without a verdict, which the redrive policy moved to the dead-letter
//! queue). The message it names is dead-lettered the way a failed attempt dead-letters it
//! (same DLQ entry, same failure callback), with the reason as the error, since no
//! destination response exists.

use crate::Services;
use crate::delivery::attempt::Response;
use crate::delivery::{dead_letter, failure_callback};
use crate::error::Result;
use crate::events::{Event, EventState};
use crate::ids::MessageId;
use crate::message::{DlqEntry, Message};
use crate::ports::{Change, Transition, Wakeup};

/// Moves message `id` to the DLQ because its wake-up was poison; returns the DLQ id, or
/// `None` when the message no longer exists (it got its verdict, or was cancelled: the
/// normal case, nothing to do).
///
/// Safe to repeat: once the entry is written the message is gone, so a redelivered poison
/// record finds nothing; the store writes the entry only while the message exists.
pub async fn dead_letter_poison(
    services: &Services,
    id: &MessageId,
    reason: &str,
) -> Result<Option<String>> {
    let Some(message) = services.messages.get(id).await? else {
        return Ok(None);
    };
    let now = services.clock.now_ms();
    let response = Response::NoAnswer {
        error: reason.to_string(),
    };
    let entry = dead_letter(services, &message, &response, now);
    let dlq_id = entry.dlq_id.clone();
    let transition = transition(&message, entry, &response, now);
    let wakeups: Vec<Wakeup> = transition.spawned.iter().map(Wakeup::of).collect();
    services.messages.apply(transition).await?;
    for wakeup in wakeups {
        services.dispatcher.dispatch(wakeup).await?;
    }
    Ok(Some(dlq_id))
}

/// The DLQ move of `m` at `now` into `entry`: the failure callback when `m` has one, and
/// a `FAILED` event carrying the reason (there was no attempt, so no `ACTIVE` or `ERROR`).
fn transition(m: &Message, entry: DlqEntry, response: &Response, now: i64) -> Transition {
    let spawned: Vec<Message> = failure_callback(m, response, &entry.dlq_id, now)
        .into_iter()
        .collect();
    let failed = Event {
        error: response.error().map(String::from),
        ..Event::of(m, EventState::Failed, now)
    };
    let mut events = vec![failed];
    events.extend(spawned.iter().map(Event::created));
    Transition {
        message_id: m.id.clone(),
        change: Change::DeadLetter(Box::new(entry)),
        spawned,
        events,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{CallbackSpec, Origin};
    use crate::test_support::message;

    fn poison(m: &Message) -> (Response, DlqEntry) {
        let response = Response::NoAnswer {
            error: "record received 1000 times".into(),
        };
        let entry = DlqEntry {
            dlq_id: "42-7".into(),
            message: m.clone(),
            response_status: None,
            response_headers: Default::default(),
            response_body: Vec::new(),
            error: response.error().map(String::from),
            expires_at: 1_000,
        };
        (response, entry)
    }

    #[test]
    fn a_poison_message_leaves_for_the_dlq_with_its_failure_callback_and_one_failed_event() {
        let mut m = message();
        m.failure_callback = Some(CallbackSpec {
            url: "https://example.com/failed".into(),
            ..Default::default()
        });
        let (response, entry) = poison(&m);
        let t = transition(&m, entry, &response, 42);
        let Change::DeadLetter(entry) = &t.change else {
            panic!("expected a DLQ move, got {:?}", t.change);
        };
        assert_eq!(entry.dlq_id, "42-7");
        assert_eq!(t.spawned.len(), 1);
        assert_eq!(t.spawned[0].origin, Origin::FailureCallback);
        assert_eq!(t.spawned[0].url, "https://example.com/failed");
        let body: serde_json::Value = serde_json::from_slice(&t.spawned[0].body).unwrap();
        assert_eq!(body["dlqId"], "42-7");
        assert_eq!(body["error"], "record received 1000 times");
        let states: Vec<EventState> = t.events.iter().map(|e| e.state).collect();
        assert_eq!(states, [EventState::Failed, EventState::Created]);
        assert_eq!(
            t.events[0].error.as_deref(),
            Some("record received 1000 times")
        );
    }

    #[test]
    fn a_callback_message_never_gets_a_failure_callback_of_its_own() {
        let mut m = message();
        m.origin = Origin::Callback;
        m.failure_callback = Some(CallbackSpec {
            url: "https://example.com/failed".into(),
            ..Default::default()
        });
        let (response, entry) = poison(&m);
        let t = transition(&m, entry, &response, 42);
        assert!(t.spawned.is_empty());
    }
}
