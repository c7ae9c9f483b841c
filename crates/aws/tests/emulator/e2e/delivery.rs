//! Delivery through the deliver function: once on success, again through the record's
//! visibility on failure, into the DLQ when retries run out.

use std::time::Duration;

use super::gateway::{ApiRequest, SOURCE_IP};
use super::harness::Stack;
use super::signature::assert_signed;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn a_published_message_is_delivered_once_signed_and_leaves_nothing_behind() {
    let stack = Stack::start().await;
    let url = stack.receiver.url("/ok");

    // A forged X-Forwarded-For: the caller IP is the one API Gateway saw.
    let id = stack.publish(&url, &[("x-forwarded-for", "1.2.3.4")]).await;

    let delivered = stack.receiver.wait_for("/ok", 1, WAIT).await;
    let key = stack.signing_key().await;
    assert_signed(&delivered[0], &key, &url, stack.now_ms());
    assert_eq!(delivered[0].header("upstash-message-id"), Some(id.as_str()));
    assert_eq!(delivered[0].header("upstash-retried"), Some("0"));
    assert_eq!(delivered[0].method, "POST");
    let caller = delivered[0].header("upstash-caller-ip");
    assert_eq!(caller, Some(SOURCE_IP), "API Gateway's source IP");
    assert_eq!(delivered[0].body, br#"{"hello":"aws"}"#);
    let c = &stack.backend.config;
    stack.wait_until_empty(&c.delivery_queue_url, WAIT).await;
    assert_eq!(stack.receiver.to("/ok").len(), 1, "delivered exactly once");
    let gone = stack
        .api(ApiRequest::get(&format!("/v2/messages/{id}")))
        .await;
    assert_eq!(gone.status, 404, "the delivered message is removed");
    assert_eq!(stack.depth(&c.dead_letter_queue_url).await.total(), 0);
    let dlq = stack.api(ApiRequest::get("/v2/dlq")).await.ok();
    assert_eq!(dlq["messages"], serde_json::json!([]), "the DLQ is empty");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_destination_is_retried_through_the_records_visibility_after_each_delay() {
    let stack = Stack::start().await;
    let url = stack.receiver.url("/flaky");
    stack.receiver.script("/flaky", &[500, 500]);

    let id = stack
        .publish(
            &url,
            &[("upstash-retries", "2"), ("upstash-retry-delay", "1000")],
        )
        .await;

    let attempts = stack.receiver.wait_for("/flaky", 3, WAIT).await;
    let retried: Vec<_> = attempts
        .iter()
        .map(|a| a.header("upstash-retried").unwrap_or_default())
        .collect();
    assert_eq!(retried, ["0", "1", "2"]);
    for pair in attempts.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(1000), "attempts {gap:?} apart");
    }
    let c = &stack.backend.config;
    stack.wait_until_empty(&c.delivery_queue_url, WAIT).await;
    assert_eq!(
        stack.receiver.to("/flaky").len(),
        3,
        "no attempt after the success"
    );
    let gone = stack
        .api(ApiRequest::get(&format!("/v2/messages/{id}")))
        .await;
    assert_eq!(gone.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_out_of_retries_is_in_the_dlq_and_its_failure_callback_names_the_entry() {
    let stack = Stack::start().await;
    let url = stack.receiver.url("/down");
    stack.receiver.script("/down", &[500; 5]);
    let callback = stack.receiver.url("/failed");

    let id = stack
        .publish(
            &url,
            &[
                ("upstash-retries", "1"),
                ("upstash-retry-delay", "1000"),
                ("upstash-failure-callback", &callback),
            ],
        )
        .await;

    let failure = stack.receiver.wait_for("/failed", 1, WAIT).await;
    let payload = failure[0].json();
    assert_eq!(payload["sourceMessageId"], id.as_str());
    assert_eq!(payload["status"], 500);
    let dlq = stack.api(ApiRequest::get("/v2/dlq")).await.ok();
    let entries = dlq["messages"].as_array().expect("a messages array");
    assert_eq!(entries.len(), 1, "{dlq}");
    assert_eq!(entries[0]["messageId"], id.as_str());
    assert_eq!(entries[0]["responseStatus"], 500);
    assert_eq!(
        entries[0]["dlqId"], payload["dlqId"],
        "the callback names the entry"
    );
    assert_eq!(
        stack.receiver.to("/down").len(),
        2,
        "one attempt and one retry"
    );
    let c = &stack.backend.config;
    stack.wait_until_empty(&c.delivery_queue_url, WAIT).await;
    let dead = stack.depth(&c.dead_letter_queue_url).await;
    assert_eq!(
        dead.total(),
        0,
        "exhausted messages never use the SQS dead-letter queue"
    );
}
