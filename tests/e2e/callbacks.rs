//! Callbacks and failure callbacks (§5): signed messages of their own, carrying a JSON
//! description of the attempt.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::support::jwt::assert_signed;
use crate::support::{Receiver, Reply, SOON, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_attempt_sends_a_callback_describing_it() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply_always(
        "/dest",
        Reply::status(201)
            .header("X-Dest", "yes")
            .body("done \u{e9}"),
    );
    let headers = [
        ("Upstash-Callback", receiver.url("/cb")),
        ("Upstash-Retries", "2".to_string()),
        ("Content-Type", "text/plain".to_string()),
        ("Upstash-Forward-X-Src", "s".to_string()),
    ];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let id = app
        .publish_ok(&receiver.url("/dest"), &headers, "payload")
        .await;

    let got = receiver.wait_for("/cb", 1, SOON).await;
    let cb = &got[0];
    assert_eq!(cb.method, "POST");
    let callback_id = cb
        .header("upstash-message-id")
        .expect("the callback has its own Upstash-Message-Id");
    assert!(
        callback_id.starts_with("msg_") && callback_id != id,
        "callback id {callback_id}, source {id}"
    );
    let v = cb.json();
    assert_eq!(v["status"], 201);
    assert_eq!(v["body"], STANDARD.encode("done \u{e9}"));
    assert_eq!(v["header"]["X-Dest"], json!(["yes"]));
    assert_eq!(v["sourceMessageId"], id);
    assert_eq!(v["url"], receiver.url("/dest"));
    assert_eq!(v["method"], "POST");
    assert_eq!(v["sourceHeader"]["X-Src"], json!(["s"]));
    assert_eq!(v["sourceHeader"]["Content-Type"], json!(["text/plain"]));
    assert_eq!(v["sourceBody"], STANDARD.encode("payload"));
    assert_eq!(v["maxRetries"], 2);
    assert!(
        v["notBefore"].is_i64() && v["createdAt"].is_i64(),
        "numeric notBefore/createdAt: {v}"
    );
    assert!(v.get("retried").is_none_or(|r| r == 0), "{v}");
    assert!(
        v.get("dlqId").is_none(),
        "only failure callbacks carry dlqId: {v}"
    );
    receiver
        .assert_stays("/cb", 1, Duration::from_millis(500))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_is_signed_with_the_callback_url_as_subject() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let callback = receiver.url("/cb?kind=done");
    app.publish_ok(
        &receiver.url("/dest"),
        &[("Upstash-Callback", callback.as_str())],
        "x",
    )
    .await;

    let got = receiver.wait_for("/cb", 1, SOON).await;
    let claims = assert_signed(
        got[0].header("upstash-signature"),
        app.keys.current.expose(),
        &callback,
        &got[0].body,
    );
    assert_eq!(claims["sub"], callback);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_forward_headers_arrive_at_the_callback_without_their_prefix() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let callback = receiver.url("/cb");
    let headers = [
        ("Upstash-Callback", callback.as_str()),
        ("Upstash-Callback-Forward-X-Token", "cb-secret"),
    ];
    app.publish_ok(&receiver.url("/dest"), &headers, "x").await;

    let got = receiver.wait_for("/cb", 1, SOON).await;
    assert_eq!(got[0].header("x-token"), Some("cb-secret"));
    assert_eq!(got[0].header("upstash-callback-forward-x-token"), None);
    let dest = receiver.requests("/dest");
    assert_eq!(
        dest[0].header("x-token"),
        None,
        "callback headers are not sent to the destination"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_message_with_one_retry_sends_two_callbacks_then_one_failure_callback() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply_always("/dest", Reply::status(500).body("bad"));
    let headers = [
        ("Upstash-Retries", "1".to_string()),
        ("Upstash-Retry-Delay", "100".to_string()),
        ("Upstash-Callback", receiver.url("/cb")),
        ("Upstash-Failure-Callback", receiver.url("/failed")),
    ];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let id = app.publish_ok(&receiver.url("/dest"), &headers, "x").await;

    let callbacks = receiver.wait_for("/cb", 2, SOON).await;
    let failure = receiver.wait_for("/failed", 1, SOON).await;
    let entry = app.wait_for_dlq(1, SOON).await.remove(0);
    let (first, second) = (callbacks[0].json(), callbacks[1].json());
    assert_eq!(
        (&first["status"], &second["status"]),
        (&json!(500), &json!(500))
    );
    assert_eq!(first["body"], STANDARD.encode("bad"));
    assert!(first.get("retried").is_none_or(|r| r == 0), "{first}");
    assert_eq!(second["retried"], 1);
    assert_eq!(second["sourceMessageId"], id);

    let f = failure[0].json();
    assert_eq!(
        f["dlqId"], entry["dlqId"],
        "the failure callback names the DLQ entry"
    );
    assert_eq!(f["sourceMessageId"], id);
    assert_eq!(f["status"], 500);
    assert_eq!(f["maxRetries"], 1);
    assert_signed(
        failure[0].header("upstash-signature"),
        app.keys.current.expose(),
        &receiver.url("/failed"),
        &failure[0].body,
    );
    receiver
        .assert_stays("/failed", 1, Duration::from_millis(500))
        .await;
    receiver.assert_stays("/cb", 2, Duration::ZERO).await;
}
