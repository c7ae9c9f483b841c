//! The dead-letter queue's consumer: the poison path. A record lands here when the
//! delivery queue's redrive policy gave up on it (received too often without a verdict)
//! or EventBridge Scheduler could not send it. Messages that exhaust their retries never
//! come here: the delivery step writes their DLQ entry itself.
//!
//! | record | what happens |
//! |---|---|
//! | wake-up of a message still stored (it never got a verdict) | DLQ entry written and failure callback published (`qpost_core::poison`), then done |
//! | wake-up of a message no longer stored (it got its verdict) | done |
//! | wake-up from the ordered queue's dead-letter queue, of a message whose qpost queue or flow-control key is paused | not poison: it waited so long that its record wore out; a fresh wake-up is sent (to the end of its queue's line, `dispatch`), then done |
//! | schedule firing | logged and done: the schedule stays armed and fires on its next minute |
//! | unreadable body | reported failed: after the dead-letter queue's receive count its redrive policy parks it for an operator |
//! | qpost's own error | reported failed, so SQS offers it again (and parks it in the end) |
//!
//! A record is done only after the write that records it; a repeated record finds the
//! message gone and does nothing, so it never writes a second entry.

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Error, LambdaEvent};
use qpost_core::Services;
use qpost_core::ids::MessageId;
use qpost_core::poison::dead_letter_poison;
use qpost_core::ports::Wakeup;

use super::record::{self, Disposition, RecordHandler};
use crate::backend::Backend;
use crate::dispatch::QueueBody;

/// Records handled at once per invocation.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// The failure-callback function's handler; cheap to clone.
#[derive(Clone)]
pub struct FailureCallback {
    services: Services,
    concurrency: usize,
}

impl FailureCallback {
    pub fn new(backend: &Backend) -> Self {
        Self {
            services: backend.consumer_services(),
            concurrency: DEFAULT_CONCURRENCY,
        }
    }

    /// Runs the use cases on `services` instead of the backend's (tests).
    pub fn with_services(mut self, services: Services) -> Self {
        self.services = services;
        self
    }

    /// Handles one batch; the response names the records to offer again.
    pub async fn handle(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
        record::batch(self, event.payload.records, self.concurrency).await
    }

    async fn wakeup(&self, record: &SqsMessage, id: &MessageId) -> Disposition {
        if record::group(record).is_some() {
            match self.still_waiting(id).await {
                Ok(false) => {}
                Ok(true) => {
                    tracing::warn!(message = %id, "a paused queue's message outwaited its record; sent again");
                    return Disposition::Done;
                }
                Err(e) => {
                    tracing::error!(message = %id, error = %e, "a worn-out ordered record not recorded; retried");
                    return Disposition::Again;
                }
            }
        }
        self.poison(record, id).await
    }

    /// Sends a fresh wake-up for message `id` when it is stored and its qpost queue or its
    /// flow-control key is paused (its record only wore out waiting); says whether it did.
    async fn still_waiting(&self, id: &MessageId) -> qpost_core::Result<bool> {
        let Some(message) = self.services.messages.get(id).await? else {
            return Ok(false);
        };
        let Some(queue) = &message.queue_name else {
            return Ok(false);
        };
        let queue_paused = qpost_core::queues::is_paused(&self.services, queue).await?;
        let key_paused = match &message.flow_control {
            Some(fc) if !queue_paused => self
                .services
                .admission
                .flow_key(&fc.key)
                .await?
                .is_some_and(|k| k.is_paused),
            _ => false,
        };
        let paused = queue_paused || key_paused;
        if paused {
            self.services
                .dispatcher
                .dispatch(Wakeup::of(&message))
                .await?;
        }
        Ok(paused)
    }

    async fn poison(&self, record: &SqsMessage, id: &MessageId) -> Disposition {
        match dead_letter_poison(&self.services, id, &reason(record)).await {
            Ok(Some(dlq_id)) => {
                tracing::warn!(message = %id, dlq_id, "poison wake-up: message moved to the DLQ");
                Disposition::Done
            }
            Ok(None) => Disposition::Done,
            Err(e) => {
                tracing::error!(message = %id, error = %e, "poison wake-up not recorded; retried");
                Disposition::Again
            }
        }
    }
}

#[async_trait]
impl RecordHandler for FailureCallback {
    async fn handle(&self, record: &SqsMessage) -> Disposition {
        match QueueBody::parse(record.body.as_deref().unwrap_or("")) {
            Ok(QueueBody::Wakeup(id)) => self.wakeup(record, &id).await,
            Ok(QueueBody::Schedule(id)) => {
                tracing::error!(
                    schedule = id,
                    reason = reason(record),
                    "a schedule firing was dropped"
                );
                Disposition::Done
            }
            Err(e) => {
                tracing::error!(
                    record = record.message_id.as_deref(),
                    body = record::excerpt(record, 1024),
                    error = %e,
                    "an unreadable record on the dead-letter queue; left for parking"
                );
                Disposition::Again
            }
        }
    }
}

/// Why the record is poison, as the DLQ entry and the failure callback show it: the
/// scheduler's error when it sent the record here, else the redrive.
fn reason(record: &SqsMessage) -> String {
    let attribute = |name: &str| {
        record
            .message_attributes
            .get(name)
            .and_then(|a| a.string_value.clone())
    };
    match attribute("ERROR_MESSAGE") {
        Some(error) => format!("the delivery wake-up could not be sent: {error}"),
        None => "the delivery wake-up could not be processed; its queue record was moved to the dead-letter queue".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsMessageAttribute;

    #[test]
    fn the_reason_names_the_scheduler_error_when_there_is_one() {
        let mut r = SqsMessage::default();
        assert!(reason(&r).contains("dead-letter queue"));
        let mut error = SqsMessageAttribute::default();
        error.string_value = Some("AccessDenied".into());
        r.message_attributes.insert("ERROR_MESSAGE".into(), error);
        assert_eq!(
            reason(&r),
            "the delivery wake-up could not be sent: AccessDenied"
        );
    }
}
