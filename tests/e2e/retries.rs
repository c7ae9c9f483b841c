//! Failed attempts (§3.2–3.5): retries with `Upstash-Retry-Delay`, non-retryable
//! answers, timeouts and `Retry-After`. Delays are short expressions, never the default backoff.

use std::time::{Duration, Instant};

use crate::support::{Receiver, Reply, SOON, now_ms, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_failing_twice_gets_the_message_on_the_third_attempt() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply("/flaky", [Reply::status(500), Reply::status(500)]);
    let headers = [
        ("Upstash-Retries", "3"),
        ("Upstash-Retry-Delay", "200 + 100 * retried"),
    ];
    let id = app
        .publish_ok(&receiver.url("/flaky"), &headers, "again")
        .await;

    let got = receiver.wait_for("/flaky", 3, SOON).await;
    let retried: Vec<_> = got
        .iter()
        .map(|r| r.header("upstash-retried").unwrap_or("-"))
        .collect();
    assert_eq!(retried, ["0", "1", "2"]);
    for r in &got {
        assert_eq!(
            r.header("upstash-message-id"),
            Some(id.as_str()),
            "the id is stable across retries"
        );
        assert_eq!(&r.body[..], b"again");
    }
    let (first_gap, second_gap) = (got[1].at - got[0].at, got[2].at - got[1].at);
    assert!(
        first_gap >= Duration::from_millis(195),
        "first retry after {first_gap:?}, delay 200 ms"
    );
    assert!(
        second_gap >= Duration::from_millis(295),
        "second retry after {second_gap:?}, delay 300 ms"
    );
    app.wait_until_gone(&id).await;
    receiver
        .assert_stays("/flaky", 3, Duration::from_millis(600))
        .await;
    assert!(
        app.dlq_entries().await.is_empty(),
        "a delivered message is not dead-lettered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_retries_run_out_is_dead_lettered_after_one_plus_retries_attempts() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply_always("/down", Reply::status(500).body("still down"));
    let headers = [("Upstash-Retries", "2"), ("Upstash-Retry-Delay", "100")];
    let id = app.publish_ok(&receiver.url("/down"), &headers, "x").await;

    let entry = app.wait_for_dlq_entry(&id).await;
    assert_eq!(receiver.requests("/down").len(), 3);
    assert_eq!(entry["responseStatus"], 500);
    assert_eq!(entry["responseBody"], "still down");
    assert_eq!(entry["maxRetries"], 2);
    receiver
        .assert_stays("/down", 3, Duration::from_millis(500))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_489_with_the_non_retryable_header_is_attempted_once_and_dead_lettered() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let refusal = Reply::status(489)
        .header("Upstash-NonRetryable-Error", "true")
        .body("do not retry");
    receiver.reply_always("/refuse", refusal);
    let headers = [("Upstash-Retries", "3"), ("Upstash-Retry-Delay", "100")];
    let id = app
        .publish_ok(&receiver.url("/refuse"), &headers, "x")
        .await;

    let entry = app.wait_for_dlq_entry(&id).await;
    assert_eq!(entry["responseStatus"], 489);
    assert_eq!(entry["responseBody"], "do not retry");
    receiver
        .assert_stays("/refuse", 1, Duration::from_millis(600))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_489_without_the_non_retryable_header_is_retried_like_any_failure() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply("/plain-489", [Reply::status(489)]);
    let headers = [("Upstash-Retries", "1"), ("Upstash-Retry-Delay", "100")];
    app.publish_ok(&receiver.url("/plain-489"), &headers, "x")
        .await;

    let got = receiver.wait_for("/plain-489", 2, SOON).await;
    assert_eq!(got[1].header("upstash-retried"), Some("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_that_outlives_its_timeout_is_dead_lettered_with_response_status_0() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply_always("/slow", Reply::ok().delay(Duration::from_secs(3)));
    let started = Instant::now();
    let headers = [("Upstash-Timeout", "1s"), ("Upstash-Retries", "0")];
    let id = app.publish_ok(&receiver.url("/slow"), &headers, "x").await;

    let entry = app.wait_for_dlq_entry(&id).await;
    let took = started.elapsed();
    assert_eq!(
        entry["responseStatus"], 0,
        "no answer within the timeout: {entry}"
    );
    assert!(
        took >= Duration::from_millis(950),
        "dead-lettered after {took:?}, before the 1 s timeout"
    );
    assert!(
        took < Duration::from_millis(2_800),
        "dead-lettered after {took:?}: the 1 s timeout was not applied"
    );
    assert_eq!(receiver.requests("/slow").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_on_a_failed_attempt_beats_a_long_retry_delay() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply("/busy", [Reply::status(503).header("Retry-After", "1")]);
    let headers = [("Upstash-Retries", "1"), ("Upstash-Retry-Delay", "60000")];
    let published_at = now_ms();
    app.publish_ok(&receiver.url("/busy"), &headers, "x").await;

    let got = receiver.wait_for("/busy", 2, SOON).await;
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "retried after {gap:?}, Retry-After said 1 s"
    );
    assert!(
        gap <= Duration::from_secs(3),
        "retried after {gap:?}, Retry-After said 1 s"
    );
    assert!(got[1].at_ms - published_at < 5_000);
    assert_eq!(got[1].header("upstash-retried"), Some("1"));
}
