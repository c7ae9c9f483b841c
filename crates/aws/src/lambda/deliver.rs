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
use std::time::SystemTime;

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
pub use waits::{
    MAX_VISIBILITY_SECS, RESEND_AFTER_RECEIVES, RETENTION_BUDGET_MS, attempt_cap, error_wait_secs,
    pause_wait_ms, visibility_for,
};
use waits::{MINUTE_MS, VISIBILITY_STEP_MS, slot};

mod waits;

/// Records handled at once per invocation (each may hold an HTTP attempt open).
pub const DEFAULT_CONCURRENCY: usize = 16;
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
            if qpost_core::queues::is_paused(&self.services, queue).await? {
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
