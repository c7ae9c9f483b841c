//! Flow control in AWS mode: the deliver function takes a lease on the message's key
//! before each attempt (`DynamoAdmission::acquire`) and gives it back after; a refused
//! record comes back by its visibility when a slot may be free, the rate period ends, or
//! (paused) after a backoff.

use std::time::{Duration, Instant};

use super::gateway::ApiRequest;
use super::harness::{Stack, eventually};

const WAIT: Duration = Duration::from_secs(30);

async fn key_view(stack: &Stack, key: &str) -> serde_json::Value {
    stack
        .api(ApiRequest::get(&format!("/v2/flowControl/{key}")))
        .await
        .ok()
}

fn under(key: &'static str, value: &'static str) -> [(&'static str, &'static str); 2] {
    [
        ("upstash-flow-control-key", key),
        ("upstash-flow-control-value", value),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_keeps_to_its_parallelism_and_counts_every_start() {
    let stack = Stack::start().await;
    let url = stack.receiver.url("/par");
    stack.receiver.slow("/par", Duration::from_millis(400));
    for _ in 0..6 {
        stack
            .publish(&url, &under("aws-par", "parallelism=2, rate=50, period=1m"))
            .await;
    }

    stack.receiver.wait_for("/par", 6, WAIT).await;
    assert_eq!(stack.receiver.most_at_once("/par"), 2);
    let view = eventually(WAIT, "no lease left", || async {
        let view = key_view(&stack, "aws-par").await;
        (view["parallelismCount"] == 0).then_some(view)
    })
    .await;
    assert_eq!(view["parallelismMax"], 2);
    assert_eq!(
        (view["rateMax"].clone(), view["ratePeriod"].clone()),
        (50.into(), 60.into())
    );
    assert_eq!(view["rateCount"], 6, "{view}");
    assert_eq!(view["waitListSize"], 0);
    stack
        .wait_until_empty(&stack.backend.config.delivery_queue_url, WAIT)
        .await;
    assert_eq!(stack.receiver.to("/par").len(), 6, "each delivered once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_used_up_rate_holds_the_rest_until_its_period_ends() {
    let stack = Stack::start().await;
    let url = stack.receiver.url("/rate");
    let started = Instant::now();
    for _ in 0..4 {
        stack
            .publish(&url, &under("aws-rate", "rate=2, period=3s"))
            .await;
    }

    let got = stack.receiver.wait_for("/rate", 4, WAIT).await;
    let first = got[0].at;
    let early = got
        .iter()
        .filter(|d| d.at - first < Duration::from_millis(2900));
    assert_eq!(early.count(), 2, "two starts in the first period");
    assert!(got[3].at - started >= Duration::from_millis(2900));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_key_holds_its_messages_until_resumed() {
    let stack = Stack::start().await;
    let url = stack.receiver.url("/paused");
    let key = under("aws-pause", "parallelism=1");
    stack.publish(&url, &key).await;
    stack.receiver.wait_for("/paused", 1, WAIT).await;

    let pause = ApiRequest::post("/v2/flowControl/aws-pause/pause");
    assert_eq!(stack.api(pause).await.status, 200);
    stack.publish(&url, &key).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(stack.receiver.to("/paused").len(), 1, "held while paused");
    let view = key_view(&stack, "aws-pause").await;
    assert_eq!(
        (view["isPaused"].clone(), view["waitListSize"].clone()),
        (true.into(), 1.into())
    );

    let resume = ApiRequest::post("/v2/flowControl/aws-pause/resume");
    assert_eq!(stack.api(resume).await.status, 200);
    stack.receiver.wait_for("/paused", 2, WAIT).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_message_under_a_key_takes_its_turn_and_its_lease() {
    let stack = Stack::start().await;
    let url = stack.receiver.url("/both");
    for n in ["0", "1", "2"] {
        let request = ApiRequest::post(&format!("/v2/enqueue/both/{url}"))
            .header("upstash-flow-control-key", "aws-both")
            .header("upstash-flow-control-value", "parallelism=1")
            .body(n);
        stack.api(request).await.ok();
    }

    let got = stack.receiver.wait_for("/both", 3, WAIT).await;
    let bodies: Vec<&[u8]> = got.iter().map(|d| d.body.as_slice()).collect();
    assert_eq!(bodies, [b"0", b"1", b"2"]);
    let view = key_view(&stack, "aws-both").await;
    assert_eq!(view["rateCount"], 3, "{view}");
}
