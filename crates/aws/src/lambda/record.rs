//! What both SQS consumers share: a batch is processed record by record, concurrently
//! (bounded), each record on its own task so that even a panic fails only that record;
//! the records to try again are reported as partial batch failures.

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsMessage};
use futures_util::{StreamExt, stream};
use lambda_runtime::Error;

/// What became of one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Recorded: the event source deletes the record.
    Done,
    /// Reported as a batch item failure: SQS delivers the record again once its
    /// visibility timeout ends (the handler may have set it).
    Again,
}

/// One consumer's treatment of one record. Never fails: every problem is a disposition.
#[async_trait]
pub trait RecordHandler: Clone + Send + Sync + 'static {
    async fn handle(&self, record: &SqsMessage) -> Disposition;
}

/// Handles `records` with at most `concurrency` at once and reports those to try again.
/// A record to try again without a `messageId` (never sent by SQS) cannot be reported
/// alone, so the whole batch fails rather than lose it.
pub async fn batch<H: RecordHandler>(
    handler: &H,
    records: Vec<SqsMessage>,
    concurrency: usize,
) -> Result<SqsBatchResponse, Error> {
    let results: Vec<(Option<String>, Disposition)> = stream::iter(records)
        .map(|record| isolated(handler.clone(), record))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut failed = Vec::new();
    for (id, disposition) in results {
        match (disposition, id) {
            (Disposition::Done, _) => {}
            (Disposition::Again, Some(id)) => failed.push(id),
            (Disposition::Again, None) => {
                return Err(
                    "a record to retry has no messageId; the whole batch is retried".into(),
                );
            }
        }
    }
    let mut response = SqsBatchResponse::default();
    response.set_failures(failed);
    Ok(response)
}

/// Handles one record on its own task: a panic becomes [`Disposition::Again`].
async fn isolated<H: RecordHandler>(
    handler: H,
    record: SqsMessage,
) -> (Option<String>, Disposition) {
    let id = record.message_id.clone();
    let task = tokio::spawn(async move { handler.handle(&record).await });
    let disposition = task.await.unwrap_or_else(|e| {
        tracing::error!(record = id.as_deref(), error = %e, "handling the record panicked");
        Disposition::Again
    });
    (id, disposition)
}

/// When SQS first received the record's message (its `SentTimestamp`), Unix ms.
pub fn sent_at(record: &SqsMessage) -> Option<i64> {
    record.attributes.get("SentTimestamp")?.parse().ok()
}

/// The record body, at most `max` bytes of it, for logs.
pub fn excerpt(record: &SqsMessage, max: usize) -> &str {
    let body = record.body.as_deref().unwrap_or("");
    &body[..body.floor_char_boundary(max.min(body.len()))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Script;

    #[async_trait]
    impl RecordHandler for Script {
        async fn handle(&self, record: &SqsMessage) -> Disposition {
            match record.body.as_deref() {
                Some("ok") => Disposition::Done,
                Some("panic") => panic!("a bug while handling a record"),
                _ => Disposition::Again,
            }
        }
    }

    fn record(id: Option<&str>, body: &str) -> SqsMessage {
        let mut r = SqsMessage::default();
        r.message_id = id.map(String::from);
        r.body = Some(body.into());
        r
    }

    #[tokio::test]
    async fn only_the_failed_records_are_reported_and_a_panic_fails_only_its_record() {
        let records = vec![
            record(Some("1"), "ok"),
            record(Some("2"), "again"),
            record(Some("3"), "panic"),
            record(Some("4"), "ok"),
        ];
        let response = batch(&Script, records, 2).await.unwrap();
        let mut failed: Vec<String> = response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        failed.sort();
        assert_eq!(failed, ["2", "3"]);
    }

    #[tokio::test]
    async fn a_failed_record_without_an_id_fails_the_whole_batch() {
        let records = vec![record(Some("1"), "ok"), record(None, "again")];
        assert!(batch(&Script, records, 4).await.is_err());
        let done = vec![record(None, "ok")];
        assert!(batch(&Script, done, 4).await.is_ok());
    }

    #[test]
    fn the_sent_time_and_excerpts_come_from_the_record() {
        let mut r = record(Some("1"), "héllo");
        r.attributes
            .insert("SentTimestamp".into(), "1700000000123".into());
        assert_eq!(sent_at(&r), Some(1_700_000_000_123));
        assert_eq!(excerpt(&r, 2), "h", "never cuts a character");
        assert_eq!(excerpt(&r, 100), "héllo");
    }
}
