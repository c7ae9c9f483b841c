//! qpost queues in AWS mode: their messages take turns on the ordered (FIFO) queue, one
//! message group per queue or per parallel lane, so order holds through retries,
//! parallelism is never exceeded, and a paused queue holds its line.

use std::time::Duration;

use serde_json::json;

use super::gateway::ApiRequest;
use super::harness::{Stack, eventually};

const WAIT: Duration = Duration::from_secs(30);

/// Enqueues `body` to `queue` for `destination`; returns the message id.
async fn enqueue(
    stack: &Stack,
    queue: &str,
    destination: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> String {
    let mut request = ApiRequest::post(&format!("/v2/enqueue/{queue}/{destination}")).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let answer = stack.api(request).await.ok();
    answer["messageId"]
        .as_str()
        .expect("a messageId")
        .to_string()
}

async fn upsert(stack: &Stack, queue: &str, parallelism: u32, paused: bool) {
    let settings = json!({"queueName": queue, "parallelism": parallelism, "paused": paused});
    stack
        .api(ApiRequest::post("/v2/queues/").json(&settings))
        .await
        .ok();
}

fn bodies(stack: &Stack, path: &str) -> Vec<String> {
    let to = stack.receiver.to(path);
    to.iter()
        .map(|d| String::from_utf8_lossy(&d.body).into_owned())
        .collect()
}

async fn lag(stack: &Stack, queue: &str) -> u64 {
    let view = stack
        .api(ApiRequest::get(&format!("/v2/queues/{queue}")))
        .await
        .ok();
    view["lag"].as_u64().expect("a lag")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_delivers_in_order_and_its_line_waits_while_the_head_is_retried() {
    let stack = Stack::start().await;
    let url = stack.receiver.url("/line");
    stack.receiver.script("/line", &[500, 500]);
    let retry = [("upstash-retries", "3"), ("upstash-retry-delay", "1000")];
    for n in ["0", "1", "2", "3"] {
        enqueue(&stack, "jobs", &url, n, &retry).await;
    }

    stack.receiver.wait_for("/line", 6, WAIT).await;
    assert_eq!(bodies(&stack, "/line"), ["0", "0", "0", "1", "2", "3"]);
    let attempts = stack.receiver.to("/line");
    assert!(attempts[2].at - attempts[1].at >= Duration::from_millis(1000));
    let c = &stack.backend.config;
    stack.wait_until_empty(&c.ordered_queue_url, WAIT).await;
    stack.wait_until_empty(&c.delivery_queue_url, WAIT).await;
    assert_eq!(stack.receiver.to("/line").len(), 6, "each delivered once");
    assert_eq!(lag(&stack, "jobs").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_with_parallelism_two_has_exactly_two_deliveries_in_flight_at_most() {
    let stack = Stack::start().await;
    let url = stack.receiver.url("/wide");
    stack.receiver.slow("/wide", Duration::from_millis(400));
    upsert(&stack, "wide", 2, false).await;
    for n in 0..6 {
        enqueue(&stack, "wide", &url, &n.to_string(), &[]).await;
    }

    stack.receiver.wait_for("/wide", 6, WAIT).await;
    assert_eq!(stack.receiver.most_at_once("/wide"), 2);
    stack
        .wait_until_empty(&stack.backend.config.ordered_queue_url, WAIT)
        .await;
    assert_eq!(stack.receiver.to("/wide").len(), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_queue_holds_its_messages_until_resumed_then_delivers_them_in_order() {
    let stack = Stack::start().await;
    let url = stack.receiver.url("/held");
    upsert(&stack, "held", 1, true).await;
    enqueue(&stack, "held", &url, "first", &[]).await;
    enqueue(&stack, "held", &url, "second", &[]).await;

    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        stack.receiver.to("/held").is_empty(),
        "nothing while paused"
    );
    assert_eq!(lag(&stack, "held").await, 2);

    stack
        .api(ApiRequest::post("/v2/queues/held/resume"))
        .await
        .ok();
    stack.receiver.wait_for("/held", 2, WAIT).await;
    assert_eq!(bodies(&stack, "/held"), ["first", "second"]);
    eventually(WAIT, "the lag to drop to 0", || async {
        (lag(&stack, "held").await == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delayed_enqueue_waits_on_the_delivery_queue_then_takes_its_turn_in_order() {
    let stack = Stack::start().await;
    let url = stack.receiver.url("/later");
    let before = std::time::Instant::now();
    enqueue(&stack, "later", &url, "delayed", &[("upstash-delay", "2s")]).await;
    enqueue(&stack, "later", &url, "now", &[]).await;

    stack.receiver.wait_for("/later", 2, WAIT).await;
    assert_eq!(
        bodies(&stack, "/later"),
        ["now", "delayed"],
        "a queue's order is the order messages fall due"
    );
    let delayed = &stack.receiver.to("/later")[1];
    assert!(delayed.at - before >= Duration::from_secs(2));
    let c = &stack.backend.config;
    stack.wait_until_empty(&c.delivery_queue_url, WAIT).await;
    stack.wait_until_empty(&c.ordered_queue_url, WAIT).await;
}
