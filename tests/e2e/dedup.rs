//! Deduplication (§2.5): by id and by content.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{Receiver, SOON, TestApp, spawn_app};

async fn publish(
    app: &TestApp,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, Value) {
    let mut request = app.publish(url).body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Waits for a sentinel published after the messages under test, so that anything
/// they would cause has happened by then.
async fn flush(app: &TestApp, receiver: &Receiver) {
    app.publish_ok(&receiver.url("/sentinel"), &[], "s").await;
    receiver.wait_for("/sentinel", 1, SOON).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_deduplication_id_returns_the_first_message_and_delivers_once() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let url = receiver.url("/once");
    let headers = [("Upstash-Deduplication-Id", "order-42")];
    let (status, first) = publish(&app, &url, &headers, "a").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        first.get("deduplicated").is_none_or(|d| d == false),
        "{first}"
    );
    let (status, second) = publish(&app, &url, &headers, "a").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(second["deduplicated"], true);
    assert_eq!(second["messageId"], first["messageId"]);

    receiver.wait_for("/once", 1, SOON).await;
    flush(&app, &receiver).await;
    assert_eq!(receiver.requests("/once").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_based_deduplication_treats_identical_messages_as_one() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let url = receiver.url("/same");
    let headers = [
        ("Upstash-Content-Based-Deduplication", "true"),
        ("Content-Type", "text/plain"),
    ];
    let (status, first) = publish(&app, &url, &headers, "same body").await;
    assert_eq!(status, StatusCode::OK);
    let (status, second) = publish(&app, &url, &headers, "same body").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(second["deduplicated"], true);
    assert_eq!(second["messageId"], first["messageId"]);

    receiver.wait_for("/same", 1, SOON).await;
    flush(&app, &receiver).await;
    assert_eq!(receiver.requests("/same").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_based_deduplication_keeps_messages_with_different_bodies() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let url = receiver.url("/different");
    let headers = [("Upstash-Content-Based-Deduplication", "true")];
    let (status_a, a) = publish(&app, &url, &headers, "body one").await;
    let (status_b, b) = publish(&app, &url, &headers, "body two").await;
    assert_eq!((status_a, status_b), (StatusCode::OK, StatusCode::OK));
    assert_ne!(a["messageId"], b["messageId"]);
    assert!(b.get("deduplicated").is_none_or(|d| d == false), "{b}");

    receiver.wait_for("/different", 2, SOON).await;
}
