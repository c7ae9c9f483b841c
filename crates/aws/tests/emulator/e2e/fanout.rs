//! The publish function's other paths: URL-group fan-out, batches, and the logs that record
//! each message's way.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::gateway::ApiRequest;
use super::harness::{Stack, eventually};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn a_url_group_fans_out_to_every_endpoint_and_a_batch_delivers_every_entry() {
    let stack = Stack::start().await;
    let r = &stack.receiver;
    let endpoints = json!({ "endpoints": [{ "url": r.url("/a") }, { "url": r.url("/b") }] });
    let added = stack
        .api(ApiRequest::post("/v2/topics/team/endpoints").json(&endpoints))
        .await;
    assert!((200..300).contains(&added.status), "{added:?}");

    let published = stack
        .api(ApiRequest::post("/v2/publish/team").body("to the group"))
        .await
        .ok();
    assert_eq!(published.as_array().map(Vec::len), Some(2), "{published}");
    for path in ["/a", "/b"] {
        let delivered = r.wait_for(path, 1, WAIT).await;
        assert_eq!(delivered[0].header("upstash-topic-name"), Some("team"));
        assert_eq!(delivered[0].body, b"to the group");
    }

    let batch = json!([
        { "destination": r.url("/c"), "body": "one" },
        { "destination": "team", "body": "two" },
        { "destination": r.url("/d"), "headers": { "Upstash-Delay": "1s" }, "body": "three" },
    ]);
    let answer = stack
        .api(ApiRequest::post("/v2/batch").json(&batch))
        .await
        .ok();
    let answer = answer.as_array().expect("an array answer").clone();
    assert_eq!(answer.len(), 3);
    assert_eq!(
        answer[1].as_array().map(Vec::len),
        Some(2),
        "the group entry fans out"
    );
    assert_eq!(r.wait_for("/c", 1, WAIT).await[0].body, b"one");
    assert_eq!(r.wait_for("/d", 1, WAIT).await[0].body, b"three");
    assert_eq!(r.wait_for("/a", 2, WAIT).await[1].body, b"two");
    assert_eq!(r.wait_for("/b", 2, WAIT).await[1].body, b"two");
    let c = &stack.backend.config;
    stack.wait_until_empty(&c.delivery_queue_url, WAIT).await;
    assert_eq!(r.all().len(), 6, "each message delivered once");
}

/// The states the logs show for message `id`, oldest first.
async fn states(stack: &Stack, id: &str) -> Vec<String> {
    let page = stack
        .api(ApiRequest::get(&format!("/v2/logs?messageIds={id}")))
        .await
        .ok();
    let events = page["events"].as_array().cloned().unwrap_or_default();
    let mut states: Vec<(i64, String)> = events
        .iter()
        .map(|e| (e["time"].as_i64().unwrap_or(0), state(e)))
        .collect();
    states.sort();
    states.into_iter().map(|(_, s)| s).collect()
}

fn state(event: &Value) -> String {
    event["state"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_logs_show_each_messages_way_through_the_publish_function() {
    let stack = Stack::start().await;
    stack.receiver.script("/refused", &[500]);
    let ok = stack.publish(&stack.receiver.url("/fine"), &[]).await;
    let failed = stack
        .publish(&stack.receiver.url("/refused"), &[("upstash-retries", "0")])
        .await;

    let delivered = eventually(WAIT, "DELIVERED in the logs", || async {
        let s = states(&stack, &ok).await;
        s.contains(&"DELIVERED".to_string()).then_some(s)
    })
    .await;
    assert_eq!(
        delivered.first().map(String::as_str),
        Some("CREATED"),
        "{delivered:?}"
    );
    assert!(delivered.contains(&"ACTIVE".to_string()), "{delivered:?}");
    let dead = eventually(WAIT, "FAILED in the logs", || async {
        let s = states(&stack, &failed).await;
        s.contains(&"FAILED".to_string()).then_some(s)
    })
    .await;
    let seen: BTreeSet<&str> = dead.iter().map(String::as_str).collect();
    assert!(
        seen.is_superset(&BTreeSet::from(["CREATED", "ACTIVE", "FAILED"])),
        "{dead:?}"
    );
    assert!(!seen.contains("DELIVERED"), "{dead:?}");
}
