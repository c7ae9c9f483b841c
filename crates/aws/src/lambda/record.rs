//! What both SQS consumers share: a batch is processed record by record, concurrently
//! (bounded), each record on its own task so that even a panic fails only that record;
//! the records to try again are reported as partial batch failures.
//!
//! Records of a FIFO queue carry their message group: those of one group are handled one
//! after the other, in order, and once one of them is to be tried again the group's later
//! records are not handled at all. They are handed back to the handler
//! ([`RecordHandler::unhandled`], which makes them visible again at once) and reported
//! failed, so SQS offers them again after the earlier one, in the same order.

use std::collections::HashMap;

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

    /// Records of a FIFO group left unhandled behind one to try again; they are reported
    /// failed. The default does nothing (they come back when their visibility ends).
    async fn unhandled(&self, _records: &[SqsMessage]) {}
}

/// The FIFO message group of a record (none on a standard queue).
pub fn group(record: &SqsMessage) -> Option<&str> {
    record.attributes.get("MessageGroupId").map(String::as_str)
}

/// The records in lines: one per FIFO message group in arrival order, one per record of a
/// standard queue.
fn lines(records: Vec<SqsMessage>) -> Vec<Vec<SqsMessage>> {
    let mut lines: Vec<Vec<SqsMessage>> = Vec::new();
    let mut by_group: HashMap<String, usize> = HashMap::new();
    for record in records {
        let Some(group) = group(&record).map(String::from) else {
            lines.push(vec![record]);
            continue;
        };
        match by_group.get(&group) {
            Some(&i) => lines[i].push(record),
            None => {
                by_group.insert(group, lines.len());
                lines.push(vec![record]);
            }
        }
    }
    lines
}

/// Handles one line in order, stopping at the first record to try again; the rest are
/// handed to [`RecordHandler::unhandled`] and reported failed with it.
async fn line<H: RecordHandler>(
    handler: H,
    records: Vec<SqsMessage>,
) -> Vec<(Option<String>, Disposition)> {
    let mut results = Vec::with_capacity(records.len());
    let mut records = records.into_iter();
    for record in records.by_ref() {
        let result = isolated(handler.clone(), record).await;
        let again = result.1 == Disposition::Again;
        results.push(result);
        if again {
            break;
        }
    }
    let rest: Vec<SqsMessage> = records.collect();
    if !rest.is_empty() {
        handler.unhandled(&rest).await;
        results.extend(rest.into_iter().map(|r| (r.message_id, Disposition::Again)));
    }
    results
}

/// Handles `records` with at most `concurrency` lines at once and reports those to try
/// again. A record to try again without a `messageId` (never sent by SQS) cannot be
/// reported alone, so the whole batch fails rather than lose it.
pub async fn batch<H: RecordHandler>(
    handler: &H,
    records: Vec<SqsMessage>,
    concurrency: usize,
) -> Result<SqsBatchResponse, Error> {
    let results: Vec<(Option<String>, Disposition)> = stream::iter(lines(records))
        .map(|records| line(handler.clone(), records))
        .buffer_unordered(concurrency.max(1))
        .flat_map(stream::iter)
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

/// How often SQS has handed this record out, this time included.
pub fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
}

/// The record body, at most `max` bytes of it, for logs.
pub fn excerpt(record: &SqsMessage, max: usize) -> &str {
    let body = record.body.as_deref().unwrap_or("");
    &body[..body.floor_char_boundary(max.min(body.len()))]
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

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

    /// Records what it handled and what it was handed back, in order.
    #[derive(Clone, Default)]
    struct Journal(Arc<Mutex<Vec<String>>>);

    #[async_trait]
    impl RecordHandler for Journal {
        async fn handle(&self, record: &SqsMessage) -> Disposition {
            let body = record.body.clone().unwrap_or_default();
            self.0.lock().unwrap().push(format!("handled {body}"));
            if body.ends_with("again") {
                Disposition::Again
            } else {
                Disposition::Done
            }
        }

        async fn unhandled(&self, records: &[SqsMessage]) {
            for r in records {
                let body = r.body.clone().unwrap_or_default();
                self.0.lock().unwrap().push(format!("unhandled {body}"));
            }
        }
    }

    fn in_group(id: &str, group: &str, body: &str) -> SqsMessage {
        let mut r = record(Some(id), body);
        r.attributes.insert("MessageGroupId".into(), group.into());
        r
    }

    #[tokio::test]
    async fn a_fifo_group_is_handled_in_order_and_stops_at_its_first_record_to_retry() {
        let journal = Journal::default();
        let records = vec![
            in_group("1", "a", "a1"),
            in_group("2", "b", "b1-again"),
            in_group("3", "a", "a2-again"),
            in_group("4", "b", "b2"),
            in_group("5", "a", "a3"),
            in_group("6", "b", "b3"),
        ];
        let response = batch(&journal, records, 1).await.unwrap();
        let failed: Vec<String> = response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        assert_eq!(failed, ["3", "5", "2", "4", "6"]);
        let journal = journal.0.lock().unwrap().clone();
        assert_eq!(
            journal,
            [
                "handled a1",
                "handled a2-again",
                "unhandled a3",
                "handled b1-again",
                "unhandled b2",
                "unhandled b3"
            ]
        );
    }

    #[test]
    fn the_receive_count_defaults_to_one() {
        let mut r = record(Some("1"), "x");
        assert_eq!(receive_count(&r), 1);
        r.attributes
            .insert("ApproximateReceiveCount".into(), "7".into());
        assert_eq!(receive_count(&r), 7);
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
