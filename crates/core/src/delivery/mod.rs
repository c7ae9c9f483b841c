//! The one delivery step: load a message, make one attempt, decide, and record the
//! outcome atomically with its log events. The local worker and the AWS deliver function
//! only carry the returned [`Step`] out (re-arm a timer, change a visibility timeout).

pub mod attempt;
pub mod callback;

use std::time::Duration;

use crate::Services;
use crate::error::Result;
use crate::events::{AttemptEnd, Event};
use crate::ids::{MessageId, dlq_id};
use crate::message::{DlqEntry, Message, Origin};
use crate::ports::{Change, Transition, Wakeup};
use attempt::{Attempt, Response, Verdict};

/// What one delivery step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// The attempt failed; the next one is due at this time (Unix ms).
    RetryAt(i64),
    /// The message went to the DLQ under this id.
    Failed {
        dlq_id: String,
    },
    /// Woken early: the message is due at this time.
    NotDue(i64),
    /// The message no longer exists (cancelled, or already finished elsewhere).
    Cancelled,
}

/// An outcome and the callback messages the attempt created (already stored and dispatched).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub outcome: Outcome,
    pub spawned: Vec<MessageId>,
}

impl From<Outcome> for Step {
    fn from(outcome: Outcome) -> Self {
        Self {
            outcome,
            spawned: Vec::new(),
        }
    }
}

/// Makes one delivery attempt of message `id` if it is due.
pub async fn deliver(services: &Services, id: &MessageId) -> Result<Step> {
    match services.messages.get(id).await? {
        Some(message) => deliver_loaded(services, message).await,
        None => Ok(Outcome::Cancelled.into()),
    }
}

/// Makes one delivery attempt of `message`, just read from the store, if it is due: for a
/// consumer that looks at the message (its queue, its flow-control key) before attempting.
pub async fn deliver_loaded(services: &Services, message: Message) -> Result<Step> {
    let started = services.clock.now_ms();
    if message.not_before > started {
        return Ok(Outcome::NotDue(message.not_before).into());
    }
    let keys = services.keys.keys().await?;
    let max = services.limits.max_timeout;
    let attempt = Attempt {
        message: &message,
        key: &keys.current,
        now_ms: started,
        timeout: message
            .timeout_ms
            .map_or(max, Duration::from_millis)
            .min(max),
        max_response_bytes: services.limits.max_response_body_bytes,
        block_private: services.limits.block_private_destinations,
    };
    let response = attempt::send(&services.http, attempt).await;
    let finished = services.clock.now_ms();
    let verdict = attempt::classify(&message, &response, finished);
    let (transition, outcome) = decide(services, &message, &response, verdict, (started, finished));
    let wakeups: Vec<Wakeup> = transition.spawned.iter().map(Wakeup::of).collect();
    services.messages.apply(transition).await?;
    let spawned = wakeups.iter().map(|w| w.id.clone()).collect();
    for wakeup in wakeups {
        services.dispatcher.dispatch(wakeup).await?;
    }
    Ok(Step { outcome, spawned })
}

/// Turns a verdict into the state change to store and the outcome to report.
fn decide(
    services: &Services,
    m: &Message,
    response: &Response,
    verdict: Verdict,
    (started, now): (i64, i64),
) -> (Transition, Outcome) {
    let mut spawned = Vec::new();
    let is_source = m.origin == Origin::Publish;
    if let (true, Some(spec)) = (is_source, &m.callback) {
        let body = callback::payload(m, response, None);
        spawned.push(callback::callback_message(
            m,
            spec,
            body,
            Origin::Callback,
            now,
        ));
    }
    let (change, outcome, end) = match verdict {
        Verdict::Delivered => (Change::Remove, Outcome::Delivered, AttemptEnd::Delivered),
        Verdict::Retry(at) => {
            let change = Change::Retry {
                retried: m.retried + 1,
                not_before: at,
            };
            (change, Outcome::RetryAt(at), AttemptEnd::Retry(at))
        }
        Verdict::Failed => {
            let entry = dead_letter(services, m, response, now);
            spawned.extend(failure_callback(m, response, &entry.dlq_id, now));
            let outcome = Outcome::Failed {
                dlq_id: entry.dlq_id.clone(),
            };
            (
                Change::DeadLetter(Box::new(entry)),
                outcome,
                AttemptEnd::Failed,
            )
        }
    };
    let mut events = Event::attempt(m, started, now, response, end);
    events.extend(spawned.iter().map(Event::created));
    (
        Transition {
            message_id: m.id.clone(),
            change,
            spawned,
            events,
        },
        outcome,
    )
}

/// The failure callback of `m` for its final `response`, when `m` asks for one (callbacks
/// themselves never have one).
pub(crate) fn failure_callback(
    m: &Message,
    response: &Response,
    dlq_id: &str,
    now: i64,
) -> Option<Message> {
    let spec = m.failure_callback.as_ref()?;
    if m.origin != Origin::Publish {
        return None;
    }
    let body = callback::payload(m, response, Some(dlq_id));
    Some(callback::callback_message(
        m,
        spec,
        body,
        Origin::FailureCallback,
        now,
    ))
}

/// The DLQ entry of `m` failed at `now` with `response`, kept for the configured retention.
pub(crate) fn dead_letter(
    services: &Services,
    m: &Message,
    response: &Response,
    now: i64,
) -> DlqEntry {
    DlqEntry {
        dlq_id: dlq_id(now),
        message: m.clone(),
        response_status: response.status(),
        response_headers: response.headers(),
        response_body: response.body().to_vec(),
        error: response.error().map(String::from),
        expires_at: now.saturating_add(services.limits.dlq_retention.as_millis() as i64),
    }
}
