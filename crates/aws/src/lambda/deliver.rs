//! The delivery queue's consumer (SQS event source with `ReportBatchItemFailures`). A
//! record is a wake-up, `{"id": ...}`, on which it runs the one delivery step of
//! `qpost-core`, or a schedule firing, `{"schedule": ...}`, on which it runs the one firing
//! step; then it carries the outcome out to SQS:
//!
//! | outcome | record |
//! |---|---|
//! | `Delivered`, `Failed` (DLQ entry written by the step), `Cancelled`, schedule fired | done: the event source deletes it |
//! | `RetryAt(t)`, `NotDue(t)` | visibility set to `t - now` and reported failed, so SQS delivers it again at `t`; a wait too long for that becomes a new wake-up (an `at()` schedule) and the record is done |
//! | qpost's own error | visibility set to a short backoff and reported failed: SQS retries, and after the redrive policy's receive count moves it to the dead-letter queue |
//! | unreadable body | reported failed (at the queue's visibility timeout), and in the end moved to the dead-letter queue |
//!
//! Before the step, a wake-up passes admission:
//!
//! - a message in a qpost queue that is due but still on the delivery queue moves to the
//!   ordered queue (FIFO, `dispatch`), where its turn comes in its queue's order; records of
//!   the ordered queue are handled one message group at a time, in order (`record`);
//! - on the ordered queue, a message whose qpost queue is paused waits: its record comes
//!   back after a backoff growing with its receives ([`pause_wait_ms`]), holding its group;
//! - a message under a flow-control key takes a lease on the key first (`crate::flow`); a
//!   refusal makes its record come back when a slot may be free or the rate period ends.
//!
//! A record that waits keeps its place: on the ordered queue it is never replaced by a new
//! one while its queue message lives (visibility changes only, each at most 11 h 44 min).
//! On the delivery queue, a record received [`RESEND_AFTER_RECEIVES`] times is replaced by
//! a fresh wake-up, so waiting never counts towards the redrive policy's poison limit.
//!
//! Every state change is written by the step before this returns, so nothing is
//! acknowledged before the write that records it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Error, LambdaEvent};
use qpost_core::Services;
use qpost_core::delivery::{self, Outcome};
use qpost_core::ids::MessageId;
use qpost_core::message::Message;
use qpost_core::ports::Wakeup;

use super::record::{self, Disposition, RecordHandler};
use crate::admission::{DynamoAdmission, Grant};
use crate::backend::Backend;
use crate::dispatch::{BodyError, QueueBody};
use crate::error::AwsError;

/// Records handled at once per invocation (each may hold an HTTP attempt open).
pub const DEFAULT_CONCURRENCY: usize = 16;
/// The longest visibility SQS sets: 12 hours from the receive.
pub const MAX_VISIBILITY_SECS: i64 = 12 * 3600;
/// The longest one visibility change of an ordered record waits: a longer wait is taken in
/// steps (the record comes back not due and waits again), as the visibility limit allows.
const VISIBILITY_STEP_MS: i64 = (MAX_VISIBILITY_SECS - RECEIVE_MARGIN_SECS) * 1000;
/// Time the invocation may have spent since the receive before it sets a visibility (the
/// longest attempt plus margin), kept off [`MAX_VISIBILITY_SECS`] so the change is never
/// refused.
const RECEIVE_MARGIN_SECS: i64 = 15 * 60 + 60;
/// How long a queue message may live: SQS drops messages after their retention period
/// (14 days in the stack), counted from the first send, however often they were received.
/// Waits ending later get a fresh queue message.
pub const RETENTION_BUDGET_MS: i64 = 13 * 24 * 3600 * 1000;
/// Time kept free before the invocation's deadline when capping attempt timeouts.
const DEADLINE_MARGIN: Duration = Duration::from_secs(10);
const MINUTE_MS: i64 = 60_000;
/// Receives after which a waiting delivery-queue record is replaced by a fresh wake-up:
/// below the stack's `maxReceiveCount` (100), which is kept for records that never get an
/// answer (poison).
pub const RESEND_AFTER_RECEIVES: u32 = 90;
/// The longest wait between two looks at a paused queue.
const MAX_PAUSE_WAIT_MS: i64 = 5 * MINUTE_MS;

/// How long a message of a paused queue waits before its record looks again, after the
/// record's `receives`: 1 s, doubling, at most 5 minutes. A resume is noticed within that.
pub fn pause_wait_ms(receives: u32) -> i64 {
    let doublings = receives.saturating_sub(1).min(20);
    (1000_i64 << doublings).min(MAX_PAUSE_WAIT_MS)
}

/// How long a record waits after qpost's own error (the store unreachable, throttled)
/// before it is tried again, after its `receives`: 1 s, doubling, at most 15 minutes.
pub fn error_wait_secs(receives: u32) -> i32 {
    let doublings = receives.saturating_sub(1).min(20);
    (1_i64 << doublings).min(15 * 60) as i32
}

/// Why a record could not be handled (it is then tried again).
#[derive(Debug, thiserror::Error)]
enum RecordError {
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error(transparent)]
    Qpost(#[from] qpost_core::Error),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("the record has no receipt handle")]
    NoReceipt,
}

/// The deliver function's handler; cheap to clone (everything inside is shared).
#[derive(Clone)]
pub struct Deliver {
    services: Services,
    /// Flow-control leases.
    admission: Arc<DynamoAdmission>,
    sqs: aws_sdk_sqs::Client,
    queue_url: Arc<str>,
    ordered_queue_url: Arc<str>,
    concurrency: usize,
}

impl Deliver {
    pub fn new(backend: &Backend) -> Self {
        Self {
            services: backend.consumer_services(),
            admission: Arc::clone(&backend.admission),
            sqs: backend.sqs.clone(),
            queue_url: backend.config.delivery_queue_url.as_str().into(),
            ordered_queue_url: backend.config.ordered_queue_url.as_str().into(),
            concurrency: DEFAULT_CONCURRENCY,
        }
    }

    /// Runs the use cases on `services` instead of the backend's (tests).
    pub fn with_services(mut self, services: Services) -> Self {
        self.services = services;
        self
    }

    /// Handles one batch; the response names the records to deliver again.
    pub async fn handle(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
        let mut this = self.clone();
        this.services.limits.max_timeout = attempt_cap(
            self.services.limits.max_timeout,
            event.context.deadline,
            SystemTime::now(),
        );
        record::batch(&this, event.payload.records, self.concurrency).await
    }

    async fn process(&self, record: &SqsMessage) -> Result<Disposition, RecordError> {
        match QueueBody::parse(record.body.as_deref().unwrap_or(""))? {
            QueueBody::Wakeup(id) => self.wakeup(record, &id).await,
            QueueBody::Schedule(id) => {
                let slot = slot(record, self.services.clock.now_ms());
                qpost_core::schedules::fire(&self.services, &id, slot).await?;
                Ok(Disposition::Done)
            }
        }
    }

    /// Admission, then the delivery step, for the message a wake-up names.
    async fn wakeup(
        &self,
        record: &SqsMessage,
        id: &MessageId,
    ) -> Result<Disposition, RecordError> {
        let Some(message) = self.services.messages.get(id).await? else {
            return Ok(Disposition::Done);
        };
        let now = self.services.clock.now_ms();
        if message.not_before > now {
            return self.again_at(record, &message, message.not_before).await;
        }
        if let Some(queue) = &message.queue_name {
            if record::group(record).is_none() {
                self.services
                    .dispatcher
                    .dispatch(Wakeup::of(&message))
                    .await?;
                return Ok(Disposition::Done);
            }
            let paused = self
                .services
                .queues
                .get_queue(queue)
                .await?
                .is_some_and(|q| q.paused);
            if paused {
                let wait = pause_wait_ms(record::receive_count(record));
                return self
                    .again_at(record, &message, now.saturating_add(wait))
                    .await;
            }
        }
        let Some(fc) = message.flow_control.clone() else {
            let step = delivery::deliver_loaded(&self.services, message.clone()).await?;
            return self.carry_out(record, &message, step.outcome).await;
        };
        let holder = message.id.as_str();
        let grant = self
            .admission
            .acquire(&fc, holder, now, self.hold_ms())
            .await?;
        if let Some(at) = self.admission_wait(record, &grant, now) {
            return self.again_at(record, &message, at).await;
        }
        let step = delivery::deliver_loaded(&self.services, message.clone()).await;
        if let Err(e) = self.admission.release(&fc.key, holder).await {
            tracing::warn!(message = holder, key = fc.key, error = %e, "a lease is left to expire");
        }
        self.carry_out(record, &message, step?.outcome).await
    }

    /// How long a flow-control lease is taken for: the longest attempt of this invocation,
    /// plus a minute for the writes around it. A lease outliving a crashed invocation is
    /// reclaimed when it expires.
    fn hold_ms(&self) -> i64 {
        let attempt = self.services.limits.max_timeout.as_millis() as i64;
        attempt.saturating_add(MINUTE_MS)
    }

    /// When a record refused a flow-control slot looks again (`None`: granted). A paused
    /// key is looked at like a paused queue; a record of the ordered queue, whose receives
    /// are counted against its place, waits at least as long.
    fn admission_wait(&self, record: &SqsMessage, grant: &Grant, now: i64) -> Option<i64> {
        let paused = now.saturating_add(pause_wait_ms(record::receive_count(record)));
        match grant {
            Grant::Granted => None,
            Grant::Paused => Some(paused),
            Grant::Wait { until_ms } if record::group(record).is_some() => {
                Some((*until_ms).max(paused))
            }
            Grant::Wait { until_ms } => Some(*until_ms),
        }
    }

    async fn carry_out(
        &self,
        record: &SqsMessage,
        message: &Message,
        outcome: Outcome,
    ) -> Result<Disposition, RecordError> {
        match outcome {
            Outcome::Delivered | Outcome::Failed { .. } | Outcome::Cancelled => {
                Ok(Disposition::Done)
            }
            Outcome::RetryAt(at) | Outcome::NotDue(at) => self.again_at(record, message, at).await,
        }
    }

    /// Makes the record come back at `at`: by its visibility when the wait fits (an ordered
    /// record waits in steps of the longest visibility, keeping its place), else by a new
    /// wake-up (an `at()` schedule past 15 minutes), written before the record is done.
    async fn again_at(
        &self,
        record: &SqsMessage,
        message: &Message,
        at: i64,
    ) -> Result<Disposition, RecordError> {
        let now = self.services.clock.now_ms();
        let ordered = record::group(record).is_some();
        let step_to = if ordered {
            at.min(now.saturating_add(VISIBILITY_STEP_MS))
        } else {
            at
        };
        let worn = !ordered && record::receive_count(record) >= RESEND_AFTER_RECEIVES;
        match visibility_for(step_to, now, record::sent_at(record)) {
            Some(seconds) if !worn => {
                self.set_visibility(record, seconds).await?;
                Ok(Disposition::Again)
            }
            _ => {
                let wakeup = Wakeup {
                    due_ms: at,
                    ..Wakeup::of(message)
                };
                self.services.dispatcher.dispatch(wakeup).await?;
                Ok(Disposition::Done)
            }
        }
    }

    /// The queue a record came from: the ordered queue for records of a message group.
    fn queue_of(&self, record: &SqsMessage) -> &str {
        match record::group(record) {
            Some(_) => &self.ordered_queue_url,
            None => &self.queue_url,
        }
    }

    async fn set_visibility(&self, record: &SqsMessage, seconds: i32) -> Result<(), RecordError> {
        let receipt = record
            .receipt_handle
            .as_deref()
            .ok_or(RecordError::NoReceipt)?;
        self.sqs
            .change_message_visibility()
            .queue_url(self.queue_of(record))
            .receipt_handle(receipt)
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(|e| AwsError::sdk("ChangeMessageVisibility", e))?;
        Ok(())
    }

    /// After qpost's own error, brings the record back after [`error_wait_secs`] instead of
    /// the queue's visibility timeout (36 minutes). Best effort: if this fails too, the
    /// visibility timeout applies.
    async fn back_off(&self, record: &SqsMessage) {
        let seconds = error_wait_secs(record::receive_count(record));
        if let Err(e) = self.set_visibility(record, seconds).await {
            tracing::warn!(record = record.message_id.as_deref(), error = %e, "the record keeps its visibility timeout");
        }
    }
}

#[async_trait]
impl RecordHandler for Deliver {
    async fn handle(&self, record: &SqsMessage) -> Disposition {
        let error = match self.process(record).await {
            Ok(disposition) => return disposition,
            Err(e) => e,
        };
        tracing::error!(
            record = record.message_id.as_deref(),
            body = record::excerpt(record, 512),
            error = %error,
            "the record is retried"
        );
        if matches!(error, RecordError::Qpost(_) | RecordError::Aws(_)) {
            self.back_off(record).await;
        }
        Disposition::Again
    }

    /// Makes records of a group left behind its waiting head visible again at once: SQS
    /// holds the group while the head is out, then offers them in order.
    async fn unhandled(&self, records: &[SqsMessage]) {
        for record in records {
            if let Err(e) = self.set_visibility(record, 0).await {
                tracing::warn!(record = record.message_id.as_deref(), error = %e, "an unhandled record keeps its visibility timeout");
            }
        }
    }
}

/// The visibility (seconds, rounded up) that brings a record back at `at`, when one can:
/// at most [`MAX_VISIBILITY_SECS`] less the time the invocation may have taken, and not
/// past the queue message's retention (counted from `sent`).
pub fn visibility_for(at: i64, now: i64, sent: Option<i64>) -> Option<i32> {
    let wait_ms = at.saturating_sub(now).max(0) as u64;
    let seconds = wait_ms.div_ceil(1000).min(i32::MAX as u64) as i64;
    let fits = seconds <= MAX_VISIBILITY_SECS - RECEIVE_MARGIN_SECS;
    let retained = sent.is_none_or(|sent| at.saturating_sub(sent) <= RETENTION_BUDGET_MS);
    (fits && retained).then_some(seconds as i32)
}

/// The cron minute a firing is for: the minute the scheduler sent it in (falling back to
/// now), so a record redelivered later still names the same minute.
fn slot(record: &SqsMessage, now: i64) -> i64 {
    record::sent_at(record).unwrap_or(now).div_euclid(MINUTE_MS) * MINUTE_MS
}

/// The attempt timeout cap for an invocation ending at `deadline_ms` (0: unknown): the
/// configured cap, lowered so an attempt ends before the function is stopped.
pub fn attempt_cap(configured: Duration, deadline_ms: u64, now: SystemTime) -> Duration {
    if deadline_ms == 0 {
        return configured;
    }
    let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let left = deadline
        .duration_since(now)
        .unwrap_or_default()
        .saturating_sub(DEADLINE_MARGIN);
    configured.min(left.max(Duration::from_secs(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn waits_up_to_the_visibility_limit_are_visibility_changes() {
        assert_eq!(visibility_for(NOW - 5, NOW, None), Some(0), "overdue: now");
        assert_eq!(visibility_for(NOW + 1, NOW, None), Some(1), "never early");
        assert_eq!(visibility_for(NOW + 90_000, NOW, Some(NOW)), Some(90));
        let eleven_hours = NOW + 11 * 3600 * 1000;
        assert_eq!(visibility_for(eleven_hours, NOW, None), Some(11 * 3600));
        assert_eq!(visibility_for(NOW + 12 * 3600 * 1000, NOW, None), None);
    }

    #[test]
    fn a_wait_past_the_retention_of_the_queue_message_needs_a_new_one() {
        let sent = NOW - 13 * 24 * 3600 * 1000 + 60_000;
        assert_eq!(visibility_for(NOW + 30_000, NOW, Some(sent)), Some(30));
        assert_eq!(visibility_for(NOW + 120_000, NOW, Some(sent)), None);
    }

    #[test]
    fn a_paused_queue_is_looked_at_again_after_a_doubling_wait_of_at_most_five_minutes() {
        let waits: Vec<i64> = (1..=6).map(pause_wait_ms).collect();
        assert_eq!(waits, [1000, 2000, 4000, 8000, 16_000, 32_000]);
        assert_eq!(pause_wait_ms(0), 1000);
        assert_eq!(pause_wait_ms(12), MAX_PAUSE_WAIT_MS);
        assert_eq!(pause_wait_ms(u32::MAX), MAX_PAUSE_WAIT_MS);
    }

    #[test]
    fn after_its_own_error_a_record_comes_back_in_seconds_not_the_visibility_timeout() {
        assert_eq!(error_wait_secs(1), 1);
        assert_eq!(error_wait_secs(2), 2);
        assert_eq!(error_wait_secs(10), 512);
        assert_eq!(error_wait_secs(11), 900);
        assert_eq!(error_wait_secs(u32::MAX), 900);
    }

    #[test]
    fn a_firing_is_for_the_minute_it_was_sent_in() {
        let mut r = SqsMessage::default();
        r.attributes
            .insert("SentTimestamp".into(), (NOW + 59_999).to_string());
        let minute = (NOW + 59_999) / MINUTE_MS * MINUTE_MS;
        assert_eq!(slot(&r, 0), minute);
        assert_eq!(
            slot(&SqsMessage::default(), NOW + 1),
            NOW / MINUTE_MS * MINUTE_MS
        );
    }

    #[test]
    fn attempts_end_before_the_invocation_deadline() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let cap = Duration::from_secs(900);
        assert_eq!(attempt_cap(cap, 0, now), cap, "no deadline known");
        let in_a_minute = 1_060_000;
        assert_eq!(attempt_cap(cap, in_a_minute, now), Duration::from_secs(50));
        assert_eq!(attempt_cap(cap, 1_000_000, now), Duration::from_secs(1));
        assert_eq!(attempt_cap(cap, 10_000_000, now), cap);
    }
}
