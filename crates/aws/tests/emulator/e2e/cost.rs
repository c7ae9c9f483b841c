//! What one delivered message costs in AWS requests, from the publish request to the
//! delete of its queue record, counted at the SDK's HTTP layer (`counting`): the functions'
//! own requests, and the event source mapping's receive and delete (which serve a batch of
//! up to 10 records, so they are shared when traffic fills batches). `crates/aws/README.md`
//! states the figure.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::counting::Call;
use super::harness::Stack;

const WAIT: Duration = Duration::from_secs(20);

fn call(sender: &'static str, service: &str, operation: &str) -> Call {
    Call {
        sender,
        service: service.into(),
        operation: operation.into(),
    }
}

fn tally(calls: impl IntoIterator<Item = Call>) -> BTreeMap<Call, usize> {
    let mut tally = BTreeMap::new();
    for call in calls {
        *tally.entry(call).or_insert(0) += 1;
    }
    tally
}

fn print(what: &str, tally: &BTreeMap<Call, usize>) {
    let total: usize = tally.values().sum();
    println!("AWS requests for {what}: {total}");
    for (call, count) in tally {
        println!("  {count} x {call}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_delivered_message_costs_seven_aws_requests_from_publish_to_delete() {
    let stack = Stack::idle().await;
    let url = stack.receiver.url("/counted");
    stack.requests.clear();

    stack.publish(&url, &[]).await;
    let polled = stack.delivery.poll_once().await.expect("polled");
    assert_eq!(
        (polled.records, polled.failed),
        (1, 0),
        "received and done at once"
    );
    stack.receiver.wait_for("/counted", 1, WAIT).await;

    let counted = stack.requests.tally();
    print("one delivered message", &counted);
    let expected = tally([
        call("qpost", "dynamodb", "TransactWriteItems"),
        call("qpost", "sqs", "SendMessage"),
        call("event source", "sqs", "ReceiveMessage"),
        call("qpost", "dynamodb", "GetItem"),
        call("qpost", "dynamodb", "GetItem"),
        call("qpost", "dynamodb", "TransactWriteItems"),
        call("event source", "sqs", "DeleteMessageBatch"),
    ]);
    assert_eq!(counted, expected);
    assert_eq!(counted.values().sum::<usize>(), 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_failed_attempt_with_retries_left_costs_five_aws_requests() {
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
        call("qpost", "dynamodb", "GetItem"),
        call("qpost", "dynamodb", "TransactWriteItems"),
        call("qpost", "sqs", "ChangeMessageVisibility"),
    ]);
    assert_eq!(attempts[0], expected, "the record is left on the queue");
    assert_eq!(attempts[1].values().sum::<usize>(), 5, "{:?}", attempts[1]);
    stack.receiver.wait_for("/retried", 2, WAIT).await;
}
