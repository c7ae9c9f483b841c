//! What a delivered message costs in AWS requests, from the publish request to the
//! delete of its queue record, counted at the SDK's HTTP layer (`counting`) over 20
//! messages: the functions' own requests, and the event source mapping's receive and
//! delete (which serve a batch of up to 10 records, so they are shared when traffic fills
//! batches). The signing keys are read through the consumers' cache
//! (`Backend::consumer_services`): at most once per `SIGNING_KEYS_TTL` per process, and
//! not at all right after a cold start, which primes the cache. `crates/aws/README.md`
//! states the figures; `qpost-bench --scenario aws-cost` measures them on a running server.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::counting::{Call, RequestLog};
use super::harness::Stack;

const WAIT: Duration = Duration::from_secs(20);
/// Messages per measurement: enough that one read of the keys would show as a fraction.
const MESSAGES: usize = 20;
/// The target: billable requests per delivered message.
const TARGET: f64 = 6.0;

fn call(sender: &'static str, service: &str, operation: &str) -> Call {
    Call {
        sender,
        service: service.into(),
        operation: operation.into(),
    }
}

/// `count` of each of `calls`.
fn times(count: usize, calls: impl IntoIterator<Item = Call>) -> BTreeMap<Call, usize> {
    calls.into_iter().map(|call| (call, count)).collect()
}

fn tally(calls: impl IntoIterator<Item = Call>) -> BTreeMap<Call, usize> {
    let mut tally = BTreeMap::new();
    for call in calls {
        *tally.entry(call).or_insert(0) += 1;
    }
    tally
}

/// The requests that got an answer other than a server error: moto answers 500 to some
/// concurrent transactions, and the SDK sends them again (AWS would not).
fn answered(log: &RequestLog) -> BTreeMap<Call, usize> {
    let failed = log.failed();
    let mut tally = log.tally();
    for (call, count) in tally.iter_mut() {
        *count -= failed.get(call).copied().unwrap_or(0);
    }
    tally.retain(|_, count| *count > 0);
    tally
}

fn print(what: &str, tally: &BTreeMap<Call, usize>) {
    let total: usize = tally.values().sum();
    println!("AWS requests for {what}: {total}");
    for (call, count) in tally {
        println!("  {count} x {call}");
    }
}

/// Reads of the signing keys among `counted`, given `messages` reads of messages: the
/// `GetItem`s beyond one per message.
fn key_reads(counted: &BTreeMap<Call, usize>, messages: usize) -> usize {
    let gets = counted
        .get(&call("qpost", "dynamodb", "GetItem"))
        .copied()
        .unwrap_or(0);
    gets.saturating_sub(messages)
}

/// What `messages` delivered messages cost when the event source served them in `batches`
/// receives (and as many deletes), plus `key_reads` reads of the signing keys.
fn delivered(messages: usize, batches: usize, key_reads: usize) -> BTreeMap<Call, usize> {
    let mut expected = times(
        messages,
        [
            call("qpost", "sqs", "SendMessage"),
            call("qpost", "dynamodb", "GetItem"),
        ],
    );
    expected.insert(
        call("qpost", "dynamodb", "TransactWriteItems"),
        2 * messages,
    );
    *expected
        .entry(call("qpost", "dynamodb", "GetItem"))
        .or_default() += key_reads;
    expected.extend(times(
        batches,
        [
            call("event source", "sqs", "ReceiveMessage"),
            call("event source", "sqs", "DeleteMessageBatch"),
        ],
    ));
    expected
}

fn per_message(tally: &BTreeMap<Call, usize>, messages: usize) -> f64 {
    tally.values().sum::<usize>() as f64 / messages as f64
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_delivered_alone_costs_six_aws_requests_from_publish_to_delete() {
    let stack = Stack::idle().await;
    let url = stack.receiver.url("/counted");
    stack.requests.clear();

    for i in 1..=MESSAGES {
        stack.publish(&url, &[]).await;
        let polled = stack.delivery.poll_once().await.expect("polled");
        assert_eq!(
            (polled.records, polled.failed),
            (1, 0),
            "received and done at once"
        );
        stack.receiver.wait_for("/counted", i, WAIT).await;
    }

    let counted = answered(&stack.requests);
    print(&format!("{MESSAGES} messages, one at a time"), &counted);
    let keys = key_reads(&counted, MESSAGES);
    // Publish: TransactWriteItems, SendMessage. Delivery: ReceiveMessage, GetItem (the
    // message), TransactWriteItems, DeleteMessageBatch. The keys: from the cache.
    assert_eq!(counted, delivered(MESSAGES, MESSAGES, keys));
    assert!(keys <= 1, "the keys are read at most once a minute: {keys}");
    let per = per_message(&counted, MESSAGES);
    assert!(per <= TARGET + keys as f64 / MESSAGES as f64, "{per}");
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_delivered_in_batches_share_the_receive_and_the_delete() {
    let stack = Stack::idle().await;
    let url = stack.receiver.url("/batched");
    stack.requests.clear();

    for _ in 0..MESSAGES {
        stack.publish(&url, &[]).await;
    }
    let deadline = Instant::now() + WAIT;
    let (mut received, mut batches) = (0, 0);
    while received < MESSAGES {
        assert!(Instant::now() < deadline, "{received} records received");
        let polled = stack.delivery.poll_once().await.expect("polled");
        assert_eq!(polled.failed, 0);
        received += polled.records;
        batches += polled.batches;
    }
    stack.receiver.wait_for("/batched", MESSAGES, WAIT).await;

    let counted = answered(&stack.requests);
    print(
        &format!("{MESSAGES} messages in {batches} batches"),
        &counted,
    );
    let keys = key_reads(&counted, MESSAGES);
    assert_eq!(counted, delivered(MESSAGES, batches, keys));
    assert!(batches <= MESSAGES, "{batches}");
    let per = per_message(&counted, MESSAGES);
    assert!(per <= TARGET, "{per} requests per message");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_failed_attempt_with_retries_left_costs_four_aws_requests() {
    let stack = Stack::idle().await;
    let url = stack.receiver.url("/retried");
    stack.receiver.script("/retried", &[500]);
    let headers = [("upstash-retries", "1"), ("upstash-retry-delay", "1000")];
    stack.publish(&url, &headers).await;

    // Only the requests of polls that received the record count: the empty long polls
    // while the record waits out its visibility are the event source's idle cost.
    let deadline = Instant::now() + WAIT;
    let mut attempts = Vec::new();
    while attempts.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the record came back {attempts:?}"
        );
        stack.requests.clear();
        let polled = stack.delivery.poll_once().await.expect("polled");
        if polled.records > 0 {
            attempts.push(tally(stack.requests.calls()));
        }
    }

    print("a failed attempt with retries left", &attempts[0]);
    let expected = tally([
        call("event source", "sqs", "ReceiveMessage"),
        call("qpost", "dynamodb", "GetItem"),
        call("qpost", "dynamodb", "TransactWriteItems"),
        call("qpost", "sqs", "ChangeMessageVisibility"),
    ]);
    assert_eq!(attempts[0], expected, "the record is left on the queue");
    assert_eq!(attempts[1].values().sum::<usize>(), 4, "{:?}", attempts[1]);
    stack.receiver.wait_for("/retried", 2, WAIT).await;
}
