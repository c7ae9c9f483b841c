//! Redaction and labels across the read APIs (§2.2 `Upstash-Redact-Fields` and
//! `Upstash-Label`, §6, §7, §11): redacted values read back as `REDACTED:<sha256>` from
//! messages, the DLQ and the logs, yet reach destinations in clear, also after a DLQ retry;
//! label filters select the same messages for bulk cancel, the DLQ and the logs.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{Receiver, Reply, SOON, TestApp, eventually, spawn_app};

const SECRET_BODY: &str = "secret-body-42";
const SECRET_TOKEN: &str = "Bearer tok-123";

/// `REDACTED:<sha256 hex>`, computed here independently of the server.
fn redacted(value: &str) -> String {
    let hex: String = Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("REDACTED:{hex}")
}

/// Fails if `text` shows a secret, in clear or base64.
fn assert_hides_secrets(text: &str, what: &str) {
    for secret in [SECRET_BODY, SECRET_TOKEN] {
        assert!(!text.contains(secret), "{what} shows {secret:?}: {text}");
        let encoded = STANDARD.encode(secret);
        assert!(
            !text.contains(&encoded),
            "{what} shows base64 {secret:?}: {text}"
        );
    }
}

async fn get_text(app: &TestApp, path: &str) -> (StatusCode, String) {
    let response = app.get(path).send().await.expect("GET");
    (response.status(), response.text().await.unwrap_or_default())
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    let (status, text) = get_text(app, path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
    assert_hides_secrets(&text, path);
    serde_json::from_str(&text).expect("JSON")
}

/// The headers of a publish with a redacted body and `Authorization` header.
fn redacting<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![
        ("Content-Type", "text/plain"),
        ("Upstash-Forward-Authorization", SECRET_TOKEN),
        ("Upstash-Forward-X-Plain", "plain"),
        ("Upstash-Redact-Fields", "body, header[Authorization]"),
    ];
    headers.extend_from_slice(extra);
    headers
}

/// Asserts a message view (message or DLQ entry) hides the body and `Authorization` only.
fn assert_redacted_view(view: &Value) {
    assert_eq!(view["body"], redacted(SECRET_BODY), "{view}");
    assert_eq!(
        view["header"]["Authorization"],
        json!([redacted(SECRET_TOKEN)])
    );
    assert_eq!(view["header"]["X-Plain"], json!(["plain"]));
}

/// The `CREATED` log entry of `id`, waiting for it.
async fn created_entry(app: &TestApp, id: &str) -> Value {
    let query = format!("/v2/logs?messageId={id}&state=CREATED");
    let found = eventually(SOON, || async {
        get_json(app, &query).await["logs"]
            .as_array()
            .and_then(|l| l.first().cloned())
    });
    found
        .await
        .unwrap_or_else(|| panic!("no CREATED entry for {id}"))
}

fn assert_redacted_log(entry: &Value) {
    let body = STANDARD
        .decode(entry["body"].as_str().expect("body"))
        .expect("log bodies are base64");
    assert_eq!(String::from_utf8(body).unwrap(), redacted(SECRET_BODY));
    assert_eq!(
        entry["header"]["Authorization"],
        json!([redacted(SECRET_TOKEN)])
    );
    assert_eq!(entry["header"]["X-Plain"], json!(["plain"]));
}

fn assert_clear_delivery(r: &crate::support::receiver::Recorded) {
    assert_eq!(&r.body[..], SECRET_BODY.as_bytes());
    assert_eq!(r.header("authorization"), Some(SECRET_TOKEN));
    assert_eq!(r.header("x-plain"), Some("plain"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_redacted_message_reads_back_hashed_in_messages_and_logs() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let headers = redacting(&[("Upstash-Delay", "1h")]);
    let id = app
        .publish_ok(&receiver.url("/later"), &headers, SECRET_BODY)
        .await;

    let message = get_json(&app, &format!("/v2/messages/{id}")).await;
    assert_redacted_view(&message);
    assert_redacted_log(&created_entry(&app, &id).await);
    get_json(&app, "/v2/events").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redacted_message_is_delivered_in_clear_hashed_in_the_dlq_and_clear_again_on_retry() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply("/secret", [Reply::status(500)]);
    let headers = redacting(&[("Upstash-Retries", "0")]);
    let id = app
        .publish_ok(&receiver.url("/secret"), &headers, SECRET_BODY)
        .await;

    let first = receiver.wait_for("/secret", 1, SOON).await;
    assert_clear_delivery(&first[0]);
    let listed = app.wait_for_dlq_entry(&id).await;
    assert_redacted_view(&listed);
    let dlq_id = listed["dlqId"].as_str().expect("dlqId");
    assert_redacted_view(&get_json(&app, &format!("/v2/dlq/{dlq_id}")).await);
    get_json(&app, "/v2/dlq").await;
    assert_redacted_log(&created_entry(&app, &id).await);

    let response = app
        .post(&format!("/v2/dlq/retry/{dlq_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let retried: Value = response.json().await.unwrap();
    let new_id = retried["messageId"].as_str().expect("messageId");
    let again = receiver.wait_for("/secret", 2, SOON).await;
    assert_clear_delivery(&again[1]);
    assert_redacted_log(&created_entry(&app, new_id).await);
    get_json(&app, "/v2/events").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redacting_all_headers_hashes_every_value_under_both_spellings() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    for spelling in ["header", "headers"] {
        let headers = [
            ("Upstash-Delay", "1h"),
            ("Content-Type", "text/plain"),
            ("Upstash-Forward-X-A", "a"),
            ("Upstash-Redact-Fields", spelling),
        ];
        let id = app.publish_ok(&receiver.url("/h"), &headers, "open").await;
        let message = get_json(&app, &format!("/v2/messages/{id}")).await;
        assert_eq!(
            message["header"]["X-A"],
            json!([redacted("a")]),
            "{spelling}"
        );
        assert_eq!(
            message["header"]["Content-Type"],
            json!([redacted("text/plain")])
        );
        assert_eq!(message["body"], "open", "only headers were redacted");
    }
    let headers = [
        ("Upstash-Forward-X-A", "a"),
        ("Upstash-Forward-X-B", "b"),
        ("Upstash-Redact-Fields", "headers[X-A]"),
        ("Upstash-Delay", "1h"),
    ];
    let id = app.publish_ok(&receiver.url("/h"), &headers, "open").await;
    let message = get_json(&app, &format!("/v2/messages/{id}")).await;
    assert_eq!(message["header"]["X-A"], json!([redacted("a")]));
    assert_eq!(message["header"]["X-B"], json!(["b"]));

    let headers = [
        ("Upstash-Forward-X-A", "a"),
        ("Upstash-Redact-Fields", "header"),
    ];
    app.publish_ok(&receiver.url("/clear"), &headers, "x").await;
    let got = receiver.wait_for("/clear", 1, SOON).await;
    assert_eq!(got[0].header("x-a"), Some("a"), "delivered in clear");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_of_a_redacted_message_gets_clear_values_but_logs_never_show_them() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let callback = receiver.url("/cb");
    let mut headers = redacting(&[]);
    headers.push(("Upstash-Callback", &callback));
    let id = app
        .publish_ok(&receiver.url("/with-cb"), &headers, SECRET_BODY)
        .await;

    let cb = receiver.wait_for("/cb", 1, SOON).await;
    let payload = cb[0].json();
    assert_eq!(payload["sourceMessageId"], id);
    assert_eq!(payload["sourceBody"], STANDARD.encode(SECRET_BODY));
    let settled = eventually(SOON, || async {
        let page = get_json(&app, "/v2/events?state=DELIVERED").await;
        (page["events"].as_array().map_or(0, Vec::len) == 2).then_some(())
    });
    settled.await.expect("message and callback delivered");
    let all = get_json(&app, "/v2/events").await;
    for entry in all["events"].as_array().unwrap() {
        if let Some(body) = entry["body"].as_str() {
            let decoded = STANDARD.decode(body).expect("base64 body");
            assert_hides_secrets(&String::from_utf8_lossy(&decoded), "a logged body");
        }
    }
}

/// Ids of the messages a page of events, a DLQ page or a list of views names.
fn ids_in(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|v| v["messageId"].as_str().expect("messageId").to_string())
        .collect()
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_read_back_everywhere_and_label_filters_select_in_cancel_dlq_and_logs() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let delayed = |label: &'static str| [("Upstash-Delay", "1h"), ("Upstash-Label", label)];
    let red = app
        .publish_ok(&receiver.url("/l"), &delayed("red"), "r")
        .await;
    let blue = app
        .publish_ok(&receiver.url("/l"), &delayed("blue"), "b")
        .await;
    let both = app
        .publish_ok(&receiver.url("/l"), &delayed("green,blue"), "g")
        .await;
    let view = get_json(&app, &format!("/v2/messages/{both}")).await;
    assert_eq!(view["label"], "green");
    assert_eq!(view["labels"], json!(["green", "blue"]));

    let response = app.delete("/v2/messages?label=blue").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cancelled: Value = response.json().await.unwrap();
    assert_eq!(cancelled["cancelled"], 2);
    assert_eq!(app.message_status(&red).await, StatusCode::OK);
    assert_eq!(app.message_status(&blue).await, StatusCode::NOT_FOUND);

    let logs = get_json(&app, "/v2/events?label=blue").await;
    assert_eq!(ids_in(&logs["events"]), set(&[&blue, &both]));
    let canceled = get_json(&app, "/v2/logs?label=blue&state=CANCELED").await;
    assert_eq!(canceled["logs"].as_array().unwrap().len(), 2);
    let logs = get_json(&app, "/v2/events?label=red").await;
    assert_eq!(ids_in(&logs["events"]), set(&[&red]));
    assert_eq!(logs["events"][0]["labels"], json!(["red"]));

    receiver.reply_always("/dl", Reply::status(500));
    let failing = |label: &'static str| [("Upstash-Retries", "0"), ("Upstash-Label", label)];
    let a = app
        .publish_ok(&receiver.url("/dl"), &failing("dl-a"), "a")
        .await;
    let b = app
        .publish_ok(&receiver.url("/dl"), &failing("dl-b,x"), "b")
        .await;
    app.wait_for_dlq(2, SOON).await;
    let only_a = get_json(&app, "/v2/dlq?label=dl-a").await;
    assert_eq!(ids_in(&only_a["messages"]), set(&[&a]));
    assert_eq!(only_a["messages"][0]["label"], "dl-a");
    let response = app.delete("/v2/dlq?label=x").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let deleted: Value = response.json().await.unwrap();
    assert_eq!(deleted["deleted"], 1);
    assert_eq!(ids_in(&app.dlq("").await["messages"]), set(&[&a]));
    let failed = get_json(&app, "/v2/events?label=dl-b&state=FAILED").await;
    assert_eq!(ids_in(&failed["events"]), set(&[&b]));
}
