//! The SQS event source mapping, emulated: what AWS Lambda's poller does between a queue
//! and a function configured with `ReportBatchItemFailures` (template.yaml: `BatchSize` 10,
//! no batching window). It receives up to 10 records with the queue's own visibility
//! timeout, hands them to the function as one `LambdaEvent<SqsEvent>` shaped like
//! `infra/events/deliver.json`, deletes the records the function did not report failed,
//! and leaves the failed ones to come back when their visibility ends (the function may
//! have changed it). A function error fails the whole batch: nothing is deleted.
//!
//! Shared by the emulator tests (`tests/emulator/e2e`) and the `qpost-aws-local` example,
//! which includes this file by path.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName,
};
use lambda_runtime::{Context, Error, LambdaEvent};
use qpost_aws::lambda::deliver::Deliver;
use qpost_aws::lambda::failure::FailureCallback;

/// Records per invocation, as the stack's event source mappings are configured.
pub const BATCH_SIZE: i32 = 10;

/// A function an event source mapping invokes.
#[async_trait]
pub trait Function: Send + Sync + 'static {
    async fn invoke(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error>;
}

#[async_trait]
impl Function for Deliver {
    async fn invoke(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
        self.handle(event).await
    }
}

#[async_trait]
impl Function for FailureCallback {
    async fn invoke(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
        self.handle(event).await
    }
}

/// What one poll did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Polled {
    /// Records received and handed to the function.
    pub records: usize,
    /// Of those, the records left on the queue (reported failed, or the whole batch failed).
    pub failed: usize,
    /// Receives that returned records, each one invocation (the others were empty polls).
    pub batches: usize,
}

/// One queue wired to one function.
#[derive(Clone)]
pub struct EventSource {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    queue_arn: String,
    region: String,
    function: Arc<dyn Function>,
    /// The function's timeout: the invocation's deadline is this far from its start.
    timeout: Duration,
    /// Everything polled so far, by every clone of this event source.
    totals: Arc<std::sync::Mutex<Polled>>,
    /// Long-poll wait of one receive (AWS's pollers wait 20 s; short here so that tests
    /// and a stopping server are not held up). 0 on FIFO queues: moto decides which
    /// message groups are busy when a long poll starts, so a long poll running while
    /// another receive takes a group's head would hand out the next record of that group
    /// too, out of order (SQS decides per record). Short polls see the current state.
    wait_seconds: i32,
}

/// Pause between two short polls that found nothing.
const SHORT_POLL_PAUSE: Duration = Duration::from_millis(50);

impl EventSource {
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        queue_url: &str,
        queue_arn: &str,
        function: Arc<dyn Function>,
    ) -> Self {
        Self {
            sqs,
            queue_url: queue_url.to_string(),
            queue_arn: queue_arn.to_string(),
            region: region_of(queue_arn),
            function,
            timeout: Duration::from_secs(360),
            totals: Arc::default(),
            wait_seconds: if queue_url.ends_with(".fifo") { 0 } else { 1 },
        }
    }

    /// The event source of the queue at `queue_url`, its ARN read from the queue.
    pub async fn for_queue(
        sqs: aws_sdk_sqs::Client,
        queue_url: &str,
        function: Arc<dyn Function>,
    ) -> Result<Self, Error> {
        let arn = queue_attribute(&sqs, queue_url, QueueAttributeName::QueueArn).await?;
        Ok(Self::new(sqs, queue_url, &arn, function))
    }

    /// One receive, one invocation (when records came), then the deletes.
    pub async fn poll_once(&self) -> Result<Polled, Error> {
        let received = self.receive().await?;
        if received.is_empty() {
            if self.wait_seconds == 0 {
                tokio::time::sleep(SHORT_POLL_PAUSE).await;
            }
            return Ok(Polled::default());
        }
        let records: Vec<SqsMessage> = received.iter().map(|m| self.record(m)).collect();
        let receipts: HashMap<String, String> = received
            .iter()
            .filter_map(|m| Some((m.message_id()?.to_string(), m.receipt_handle()?.to_string())))
            .collect();
        let count = records.len();
        let failed = match self.function.invoke(self.event(records)).await {
            Ok(response) => failures(&response),
            Err(e) => {
                tracing::warn!(error = %e, "the function failed: the whole batch comes back");
                receipts.keys().cloned().collect()
            }
        };
        let done: Vec<(&String, &String)> = receipts
            .iter()
            .filter(|(id, _)| !failed.contains(*id))
            .collect();
        self.delete(&done).await?;
        let polled = Polled {
            records: count,
            failed: count - done.len(),
            batches: 1,
        };
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        totals.records += polled.records;
        totals.failed += polled.failed;
        totals.batches += polled.batches;
        Ok(polled)
    }

    /// Records handed to the function so far, and how many of them it failed.
    pub fn totals(&self) -> Polled {
        *self.totals.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Polls until `stop` says so; errors are logged and polling goes on after a pause.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        while !*stop.borrow() {
            tokio::select! {
                polled = self.poll_once() => {
                    if let Err(e) = polled {
                        tracing::warn!(queue = %self.queue_url, error = %e, "polling failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
                _ = stop.changed() => {}
            }
        }
    }

    async fn receive(&self) -> Result<Vec<Message>, Error> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(BATCH_SIZE)
            .wait_time_seconds(self.wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await?;
        Ok(out.messages.unwrap_or_default())
    }

    async fn delete(&self, done: &[(&String, &String)]) -> Result<(), Error> {
        if done.is_empty() {
            return Ok(());
        }
        let entries = done
            .iter()
            .enumerate()
            .map(|(i, (_, receipt))| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("r{i}"))
                    .receipt_handle(receipt.as_str())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .sqs
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await?;
        if !out.failed().is_empty() {
            return Err(format!("deleting records failed: {:?}", out.failed()).into());
        }
        Ok(())
    }

    /// The record as the event source hands it over (`infra/events/deliver.json`).
    fn record(&self, m: &Message) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = m.message_id().map(String::from);
        record.receipt_handle = m.receipt_handle().map(String::from);
        record.body = m.body().map(String::from);
        record.md5_of_body = m.md5_of_body().map(String::from);
        record.md5_of_message_attributes = m.md5_of_message_attributes().map(String::from);
        record.attributes = m
            .attributes()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str().to_string(), v.clone()))
            .collect();
        record.message_attributes = m
            .message_attributes()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), attribute(v)))
            .collect();
        record.event_source = Some("aws:sqs".into());
        record.event_source_arn = Some(self.queue_arn.clone());
        record.aws_region = Some(self.region.clone());
        record
    }

    fn event(&self, records: Vec<SqsMessage>) -> LambdaEvent<SqsEvent> {
        let mut payload = SqsEvent::default();
        payload.records = records;
        let mut context = Context::default();
        context.request_id = qpost_core::ids::random_token(16);
        context.deadline = deadline(self.timeout);
        LambdaEvent::new(payload, context)
    }
}

/// Attribute `name` of the queue at `url`.
async fn queue_attribute(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    name: QueueAttributeName,
) -> Result<String, Error> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(name.clone())
        .send()
        .await?;
    out.attributes()
        .and_then(|a| a.get(&name))
        .cloned()
        .ok_or_else(|| format!("{url} has no {name:?}").into())
}

/// The URL of the queue the redrive policy of the queue at `url` moves records to.
pub async fn dead_letter_queue(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, Error> {
    let policy = queue_attribute(sqs, url, QueueAttributeName::RedrivePolicy).await?;
    let policy: serde_json::Value = serde_json::from_str(&policy)?;
    let arn = policy["deadLetterTargetArn"]
        .as_str()
        .ok_or("the redrive policy names no target")?;
    let name = arn.rsplit(':').next().unwrap_or_default();
    let out = sqs.get_queue_url().queue_name(name).send().await?;
    Ok(out.queue_url().unwrap_or_default().to_string())
}

fn attribute(v: &MessageAttributeValue) -> SqsMessageAttribute {
    let mut a = SqsMessageAttribute::default();
    a.data_type = Some(v.data_type().to_string());
    a.string_value = v.string_value().map(String::from);
    a.binary_value = v.binary_value().map(|b| {
        let mut data = Base64Data::default();
        data.extend_from_slice(b.as_ref());
        data
    });
    a
}

/// The message ids the function reported failed.
fn failures(response: &SqsBatchResponse) -> HashSet<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

/// Unix ms `timeout` from now, as Lambda sets an invocation's deadline.
fn deadline(timeout: Duration) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now + timeout).as_millis() as u64
}

/// The region part of an ARN (`arn:aws:sqs:<region>:<account>:<name>`).
fn region_of(arn: &str) -> String {
    arn.split(':').nth(3).unwrap_or_default().to_string()
}
