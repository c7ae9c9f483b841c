//! The DLQ API through the dlq function: entries written by the deliver function are
//! listed, read, retried as new messages and deleted.

use std::time::Duration;

use super::gateway::ApiRequest;
use super::harness::{Stack, eventually};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn dlq_entries_are_listed_read_retried_into_a_delivered_message_and_deleted() {
    let stack = Stack::start().await;
    let url = stack.receiver.url("/dead");
    stack.receiver.script("/dead", &[500, 500]);
    let first = stack.publish(&url, &[("upstash-retries", "0")]).await;
    let second = stack.publish(&url, &[("upstash-retries", "0")]).await;

    let entries = eventually(WAIT, "two DLQ entries", || async {
        let listed = stack.api(ApiRequest::get("/v2/dlq")).await.ok();
        let entries = listed["messages"].as_array().cloned().unwrap_or_default();
        (entries.len() == 2).then_some(entries)
    })
    .await;
    let dlq_id = |message: &str| {
        let entry = entries.iter().find(|e| e["messageId"] == message);
        let id = entry.and_then(|e| e["dlqId"].as_str());
        id.unwrap_or_else(|| panic!("no entry for {message}"))
            .to_string()
    };
    let (retried, deleted) = (dlq_id(&first), dlq_id(&second));

    let read = stack
        .api(ApiRequest::get(&format!("/v2/dlq/{retried}")))
        .await;
    assert_eq!(read.ok()["messageId"], first.as_str());
    let retry = stack
        .api(ApiRequest::post(&format!("/v2/dlq/retry/{retried}")))
        .await
        .ok();
    let new_id = retry["messageId"].as_str().expect("the new message's id");
    assert_ne!(new_id, first, "a retry is a new message");
    let attempts = stack.receiver.wait_for("/dead", 3, WAIT).await;
    assert_eq!(attempts[2].header("upstash-message-id"), Some(new_id));

    let removed = stack
        .api(ApiRequest::delete(&format!("/v2/dlq/{deleted}")))
        .await;
    assert!((200..300).contains(&removed.status), "{removed:?}");
    let listed = stack.api(ApiRequest::get("/v2/dlq")).await.ok();
    assert_eq!(listed["messages"], serde_json::json!([]), "{listed}");
    for gone in [retried, deleted] {
        let read = stack.api(ApiRequest::get(&format!("/v2/dlq/{gone}"))).await;
        assert_eq!(read.status, 404, "{gone}");
    }
}
