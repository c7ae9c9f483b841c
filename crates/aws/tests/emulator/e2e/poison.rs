//! Poison records: what the deliver function cannot process is moved by the delivery
//! queue's redrive policy to the SQS dead-letter queue after `maxReceiveCount` receives;
//! the failure-callback function dead-letters the message it names, or, when it cannot
//! read the record either, leaves it to the dead-letter queue's own redrive policy, which
//! parks it for an operator.
//!
//! The stack's policies (100 receives, visibility 36 minutes on the delivery queue; 10
//! receives, 6 minutes on the dead-letter queue) are shortened here to 2 (4) receives and
//! 1 second, before any poller runs, so that a poison record travels within a test.

use std::time::{Duration, Instant};

use qpost_aws::backend::SIGNING_KEYS_TTL;

use super::gateway::ApiRequest;
use super::harness::{Stack, eventually};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn a_wakeup_the_deliver_function_keeps_failing_is_redriven_and_dead_lettered_with_its_failure_callback()
 {
    let mut stack = Stack::idle().await;
    let c = stack.backend.config.clone();
    stack.shorten_redrive(&c.delivery_queue_url, 2, 1).await;
    let keys = stack
        .read_attribute("KEYS", "KEYS", "keys")
        .await
        .expect("stored signing keys");
    // Unreadable signing keys: every attempt fails with qpost's own error, before sending.
    // The clock moves past the consumers' key cache, so that they read them.
    stack.overwrite("KEYS", "KEYS", "keys", "not json").await;
    stack
        .clock
        .advance_ms(SIGNING_KEYS_TTL.as_millis() as i64 + 1);
    let callback = stack.receiver.url("/failed");
    let id = stack
        .publish(
            &stack.receiver.url("/never"),
            &[("upstash-failure-callback", &callback)],
        )
        .await;

    let deadline = Instant::now() + WAIT;
    let mut failed = 0;
    while failed < 2 {
        assert!(
            Instant::now() < deadline,
            "the deliver function failed the record {failed} times"
        );
        failed += stack.delivery.poll_once().await.expect("polled").failed;
    }
    // The third receive finds the record over its receive count: the redrive moves it.
    eventually(WAIT, "the record on the dead-letter queue", || async {
        stack.delivery.poll_once().await.expect("polled");
        (stack.depth(&c.dead_letter_queue_url).await.total() == 1).then_some(())
    })
    .await;
    stack.overwrite("KEYS", "KEYS", "keys", &keys).await;
    stack.start_pollers();

    let failure = stack.receiver.wait_for("/failed", 1, WAIT).await;
    let payload = failure[0].json();
    assert_eq!(payload["sourceMessageId"], id.as_str());
    let dlq = stack.api(ApiRequest::get("/v2/dlq")).await.ok();
    let entries = dlq["messages"].as_array().expect("a messages array");
    assert_eq!(entries.len(), 1, "{dlq}");
    assert_eq!(entries[0]["messageId"], id.as_str());
    assert_eq!(entries[0]["dlqId"], payload["dlqId"]);
    let error = entries[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("dead-letter queue"), "{error}");
    assert!(stack.receiver.to("/never").is_empty(), "never attempted");
    stack.wait_until_empty(&c.dead_letter_queue_url, WAIT).await;
    stack.wait_until_empty(&c.delivery_queue_url, WAIT).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn records_neither_function_can_read_end_up_parked_and_write_nothing() {
    let mut stack = Stack::idle().await;
    let c = stack.backend.config.clone();
    stack.shorten_redrive(&c.delivery_queue_url, 2, 1).await;
    // Above the delivery queue's count: moto carries a record's receive count into the
    // dead-letter queue (see the README), and the failure-callback function must see it.
    stack.shorten_redrive(&c.dead_letter_queue_url, 4, 1).await;
    let parked = stack.parked_queue_url().await;
    // A message whose stored item is corrupted before its wake-up (3 s away) arrives.
    let id = stack
        .publish(&stack.receiver.url("/corrupt"), &[("upstash-delay", "3s")])
        .await;
    stack
        .overwrite(&format!("MSG#{id}"), "MSG", "meta", "{corrupt")
        .await;
    stack.send_raw(&c.delivery_queue_url, "not a wake-up").await;
    stack.start_pollers();

    eventually(WAIT, "both records parked", || async {
        (stack.depth(&parked).await.visible == 2).then_some(())
    })
    .await;

    let delivery = stack.delivery.totals();
    assert_eq!(
        (delivery.records, delivery.failed),
        (4, 4),
        "two failed receives each"
    );
    let dead = stack.dead_letters.totals();
    assert!(dead.failed >= 2 && dead.failed == dead.records, "{dead:?}");
    let dlq = stack.api(ApiRequest::get("/v2/dlq")).await.ok();
    assert_eq!(
        dlq["messages"],
        serde_json::json!([]),
        "no DLQ entry written"
    );
    assert!(stack.receiver.all().is_empty(), "nothing was delivered");
    stack.wait_until_empty(&c.delivery_queue_url, WAIT).await;
    stack.wait_until_empty(&c.dead_letter_queue_url, WAIT).await;
}
