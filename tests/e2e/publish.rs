//! Publishing (§2) and what arrives at the destination (§3.1).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{Receiver, Reply, SOON, now_ms, spawn_app};

/// A body that is not UTF-8, so any text conversion on the way would show.
const BINARY_BODY: &[u8] = b"\x00\xff\xfehello\x80\x81 world\r\n\x7f";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_message_is_delivered_once_with_its_method_body_and_headers() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let destination = receiver.url("/hook");
    let response = app
        .publish(&destination)
        .header("Upstash-Method", "PUT")
        .header("Content-Type", "application/octet-stream")
        .header("Upstash-Forward-X-Custom", "custom value")
        .header("upstash-forward-x-lower-case", "lower")
        .body(BINARY_BODY.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let published: Value = response.json().await.unwrap();
    let id = published["messageId"]
        .as_str()
        .expect("messageId")
        .to_string();
    assert!(id.starts_with("msg_"), "{id}");
    assert_eq!(published["url"], destination);
    assert!(
        published.get("deduplicated").is_none_or(|d| d == false),
        "{published}"
    );

    let got = receiver.wait_for("/hook", 1, SOON).await;
    let r = &got[0];
    assert_eq!(r.method, "PUT");
    assert_eq!(&r.body[..], BINARY_BODY, "body must arrive byte-identical");
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.header("x-custom"), Some("custom value"));
    assert_eq!(r.header("x-lower-case"), Some("lower"));
    assert_eq!(
        r.header("upstash-forward-x-custom"),
        None,
        "the prefix is stripped"
    );
    assert_eq!(r.header("user-agent"), Some("Upstash-QStash"));
    assert_eq!(r.header("upstash-message-id"), Some(id.as_str()));
    assert_eq!(r.header("upstash-retried"), Some("0"));
    assert!(
        r.header("upstash-caller-ip")
            .is_some_and(|ip| !ip.is_empty()),
        "Upstash-Caller-Ip: {:?}",
        r.headers
    );
    assert_eq!(
        r.header("authorization"),
        None,
        "the QStash token must not reach the destination"
    );

    app.wait_until_gone(&id).await;
    receiver
        .assert_stays("/hook", 1, Duration::from_millis(500))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_destination_keeps_its_own_query_string_but_not_the_config_parameters() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    app.publish_ok(&receiver.url("/hook?a=1&upstash-retries=0&b=2"), &[], "q")
        .await;

    let got = receiver.wait_for("/hook", 1, SOON).await;
    assert_eq!(got[0].path_and_query, "/hook?a=1&b=2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_given_as_lowercase_query_parameters_takes_effect() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply_always("/hook", Reply::status(500));
    let published_at = now_ms();
    let destination = receiver.url("/hook?upstash-method=PATCH&upstash-retries=0&upstash-delay=1s");
    let id = app.publish_ok(&destination, &[], "q").await;

    let entry = app.wait_for_dlq_entry(&id).await;
    let got = receiver.requests("/hook");
    assert_eq!(got.len(), 1, "upstash-retries=0 means one attempt");
    assert_eq!(got[0].method, "PATCH");
    assert_eq!(got[0].path_and_query, "/hook");
    assert!(
        got[0].at_ms - published_at >= 990,
        "upstash-delay=1s, arrived after {} ms",
        got[0].at_ms - published_at
    );
    assert_eq!(entry["maxRetries"], 0);
    assert_eq!(entry["method"], "PATCH");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_forward_true_forwards_plain_request_headers() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let headers = [
        ("Upstash-Header-Forward", "true"),
        ("Stripe-Signature", "t=1,v1=abc"),
        ("X-Webhook-Id", "wh_1"),
        ("Content-Type", "application/json"),
    ];
    app.publish_ok(&receiver.url("/webhook"), &headers, r#"{"event":"x"}"#)
        .await;

    let got = receiver.wait_for("/webhook", 1, SOON).await;
    let r = &got[0];
    assert_eq!(r.header("stripe-signature"), Some("t=1,v1=abc"));
    assert_eq!(r.header("x-webhook-id"), Some("wh_1"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("upstash-header-forward"),
        None,
        "config headers are not forwarded"
    );
    assert_eq!(
        r.header("authorization"),
        None,
        "the QStash token must not reach the destination"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_headers_are_not_forwarded_without_header_forward() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    app.publish_ok(&receiver.url("/hook"), &[("X-Plain", "p")], "b")
        .await;

    let got = receiver.wait_for("/hook", 1, SOON).await;
    assert_eq!(got[0].header("x-plain"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_message_arrives_after_its_delay_and_is_readable_meanwhile() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let published_at = now_ms();
    let id = app
        .publish_ok(&receiver.url("/later"), &[("Upstash-Delay", "1s")], "wait")
        .await;

    let response = app.get(&format!("/v2/messages/{id}")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["messageId"], id);
    assert_eq!(message["url"], receiver.url("/later"));
    assert_eq!(message["body"], "wait");
    let (not_before, created_at) = (
        message["notBefore"].as_i64().unwrap(),
        message["createdAt"].as_i64().unwrap(),
    );
    assert!(
        (999..=1100).contains(&(not_before - created_at)),
        "notBefore {not_before}, createdAt {created_at}"
    );
    assert!(
        receiver.requests("/later").is_empty(),
        "delivered before its delay"
    );

    let got = receiver.wait_for("/later", 1, SOON).await;
    let waited = got[0].at_ms - published_at;
    assert!(
        waited >= 990,
        "Upstash-Delay: 1s but delivered after {waited} ms"
    );
    app.wait_until_gone(&id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstash_not_before_holds_the_message_until_that_unix_second() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let not_before = now_ms() / 1000 + 2;
    let headers = [
        ("Upstash-Not-Before", not_before.to_string()),
        ("Upstash-Delay", "1h".to_string()),
    ];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let id = app.publish_ok(&receiver.url("/at"), &headers, "nb").await;

    let message: Value = app
        .get(&format!("/v2/messages/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        message["notBefore"],
        not_before * 1000,
        "Upstash-Not-Before wins over Upstash-Delay"
    );
    let got = receiver.wait_for("/at", 1, SOON).await;
    assert!(
        got[0].at_ms >= not_before * 1000,
        "arrived at {} before {}",
        got[0].at_ms,
        not_before * 1000
    );
}
