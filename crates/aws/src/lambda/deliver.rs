//! The delivery queue's consumer (SQS event source with `ReportBatchItemFailures`). A
//! record is a wake-up, `{"id": ...}`, on which it runs the one delivery step of
//! `qpost-core`, or a schedule firing, `{"schedule": ...}`, on which it runs the one firing
//! step; then it carries the outcome out to SQS:
//!
//! | outcome | record |
//! |---|---|
//! | `Delivered`, `Failed` (DLQ entry written by the step), `Cancelled`, schedule fired | done: the event source deletes it |
//! | `RetryAt(t)`, `NotDue(t)` | visibility set to `t - now` and reported failed, so SQS delivers it again at `t`; a wait too long for that becomes a new wake-up (an `at()` schedule) and the record is done |
//! | qpost's own error, unreadable body | reported failed: SQS retries, and after the redrive policy's receive count moves it to the dead-letter queue |
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
use qpost_core::ports::Wakeup;

use super::record::{self, Disposition, RecordHandler};
use crate::backend::Backend;
use crate::dispatch::{BodyError, QueueBody};
use crate::error::AwsError;

/// Records handled at once per invocation (each may hold an HTTP attempt open).
pub const DEFAULT_CONCURRENCY: usize = 16;
/// The longest visibility SQS sets: 12 hours from the receive.
pub const MAX_VISIBILITY_SECS: i64 = 12 * 3600;
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
    sqs: aws_sdk_sqs::Client,
    queue_url: Arc<str>,
    concurrency: usize,
}

impl Deliver {
    pub fn new(backend: &Backend) -> Self {
        Self {
            services: backend.services(),
            sqs: backend.sqs.clone(),
            queue_url: backend.config.delivery_queue_url.as_str().into(),
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
            QueueBody::Wakeup(id) => {
                let step = delivery::deliver(&self.services, &id).await?;
                self.carry_out(record, &id, step.outcome).await
            }
            QueueBody::Schedule(id) => {
                let slot = slot(record, self.services.clock.now_ms());
                qpost_core::schedules::fire(&self.services, &id, slot).await?;
                Ok(Disposition::Done)
            }
        }
    }

    async fn carry_out(
        &self,
        record: &SqsMessage,
        id: &MessageId,
        outcome: Outcome,
    ) -> Result<Disposition, RecordError> {
        match outcome {
            Outcome::Delivered | Outcome::Failed { .. } | Outcome::Cancelled => {
                Ok(Disposition::Done)
            }
            Outcome::RetryAt(at) | Outcome::NotDue(at) => self.again_at(record, id, at).await,
        }
    }

    /// Makes the record come back at `at`: by its visibility when the wait fits, else by a
    /// new wake-up (the dispatcher's `at()` schedule), written before the record is done.
    async fn again_at(
        &self,
        record: &SqsMessage,
        id: &MessageId,
        at: i64,
    ) -> Result<Disposition, RecordError> {
        let now = self.services.clock.now_ms();
        match visibility_for(at, now, record::sent_at(record)) {
            Some(seconds) => {
                let receipt = record
                    .receipt_handle
                    .as_deref()
                    .ok_or(RecordError::NoReceipt)?;
                self.set_visibility(receipt, seconds).await?;
                Ok(Disposition::Again)
            }
            None => {
                let wakeup = Wakeup {
                    id: id.clone(),
                    due_ms: at,
                    queue_name: None,
                    flow_control: None,
                };
                self.services.dispatcher.dispatch(wakeup).await?;
                Ok(Disposition::Done)
            }
        }
    }

    async fn set_visibility(&self, receipt: &str, seconds: i32) -> Result<(), AwsError> {
        self.sqs
            .change_message_visibility()
            .queue_url(&*self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(|e| AwsError::sdk("ChangeMessageVisibility", e))?;
        Ok(())
    }
}

#[async_trait]
impl RecordHandler for Deliver {
    async fn handle(&self, record: &SqsMessage) -> Disposition {
        self.process(record).await.unwrap_or_else(|e| {
            tracing::error!(
                record = record.message_id.as_deref(),
                body = record::excerpt(record, 512),
                error = %e,
                "the record is retried"
            );
            Disposition::Again
        })
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
