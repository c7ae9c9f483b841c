//! `POST /v2/batch` (§2.4): entries go through the publish path one by one, the answer
//! is aligned with the request (nested arrays for URL groups), and a bad entry gets an
//! error element while the others are created.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Receiver, SOON, TestApp, assert_error, spawn_app, spawn_app_with};

async fn batch(app: &TestApp, entries: Value) -> Vec<Value> {
    let response = app.post("/v2/batch").json(&entries).send().await.unwrap();
    let status = response.status();
    let json: Value = response.json().await.expect("batch answers JSON");
    assert_eq!(status, StatusCode::OK, "batch answered {json}");
    json.as_array()
        .unwrap_or_else(|| panic!("batch answers an array: {json}"))
        .clone()
}

fn is_error(element: &Value) -> bool {
    element["error"].as_str().is_some_and(|e| !e.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_urls_groups_queues_and_bad_entries_answers_aligned_and_creates_the_good_ones() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let group_urls = [receiver.url("/g1"), receiver.url("/g2")];
    let added = app
        .post("/v2/topics/batch-group/endpoints")
        .json(&json!({"endpoints": [{"url": group_urls[0]}, {"url": group_urls[1]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::OK);

    let single = receiver.url("/single?x=1");
    let elements = batch(
        &app,
        json!([
            {"destination": single, "body": "one",
             "headers": {"upstash-forward-x-a": "a", "Content-Type": "text/plain", "upstash-method": "PUT"}},
            {"destination": "batch-group", "body": "to the group"},
            {"destination": "ftp://nope", "body": "bad"},
            {"destination": receiver.url("/queued"), "body": null, "queue": "batch-q", "headers": null},
            {"body": "no destination"},
            {"destination": receiver.url("/bad-header"), "headers": {"Upstash-Retries": "lots"}},
            "not an object",
        ]),
    )
    .await;
    assert_eq!(elements.len(), 7, "{elements:?}");
    assert!(elements[0]["messageId"].is_string(), "{:?}", elements[0]);
    assert_eq!(elements[0]["url"], single);
    let group = elements[1]
        .as_array()
        .expect("a group entry answers an array");
    assert_eq!(group.len(), 2, "{group:?}");
    assert!(group.iter().all(|m| m["messageId"].is_string()));
    assert!(is_error(&elements[2]), "{:?}", elements[2]);
    assert!(elements[3]["messageId"].is_string(), "{:?}", elements[3]);
    for bad in [4, 5, 6] {
        assert!(is_error(&elements[bad]), "entry {bad}: {:?}", elements[bad]);
    }

    let got = receiver.wait_for("/single", 1, SOON).await;
    assert_eq!(got[0].method, "PUT");
    assert_eq!(&got[0].body[..], b"one");
    assert_eq!(got[0].path_and_query, "/single?x=1");
    assert_eq!(got[0].header("x-a"), Some("a"));
    assert_eq!(got[0].header("content-type"), Some("text/plain"));
    for path in ["/g1", "/g2"] {
        let got = receiver.wait_for(path, 1, SOON).await;
        assert_eq!(&got[0].body[..], b"to the group");
        assert_eq!(got[0].header("upstash-topic-name"), Some("batch-group"));
    }
    let queued = receiver.wait_for("/queued", 1, SOON).await;
    assert!(queued[0].body.is_empty(), "a null body is an empty body");
    receiver
        .assert_stays("/bad-header", 0, Duration::from_millis(300))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_entries_keep_their_queue_delay_and_deduplication_like_a_publish() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let url = receiver.url("/later");
    let entry = json!({"destination": url, "queue": "q-later", "body": "b",
        "headers": {"Upstash-Delay": "1h", "Upstash-Deduplication-Id": "once"}});
    let elements = batch(&app, json!([entry, entry])).await;
    let id = elements[0]["messageId"].as_str().expect("messageId");
    assert_eq!(elements[1]["messageId"], id, "{elements:?}");
    assert_eq!(elements[1]["deduplicated"], true, "{elements:?}");

    let message: Value = app
        .get(&format!("/v2/messages/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(message["queueName"], "q-later", "{message}");
    assert!(
        message["notBefore"].as_i64().unwrap() > message["createdAt"].as_i64().unwrap() + 3_000_000,
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_body_that_is_not_a_json_array_is_refused_and_creates_nothing() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let url = receiver.url("/never");
    let bodies = [
        json!({"destination": url, "body": "x"}).to_string(),
        format!("[{{\"destination\": \"{url}\""),
        String::new(),
    ];
    for body in bodies {
        let response = app
            .post("/v2/batch")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, &body).await;
    }
    assert!(batch(&app, json!([])).await.is_empty());
    receiver
        .assert_stays("/never", 0, Duration::from_millis(300))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_entry_body_is_held_to_the_message_limit_while_the_batch_may_be_larger() {
    let app = spawn_app_with(|s| s.limits.max_body_bytes = 1_000).await;
    let receiver = Receiver::start().await;
    let fits = "f".repeat(900);
    let entries = json!([
        {"destination": receiver.url("/fits1"), "body": fits},
        {"destination": receiver.url("/too-big"), "body": "b".repeat(1_001)},
        {"destination": receiver.url("/fits2"), "body": fits},
    ]);
    let elements = batch(&app, entries).await;
    assert!(elements[0]["messageId"].is_string(), "{elements:?}");
    assert!(is_error(&elements[1]), "{:?}", elements[1]);
    assert!(elements[2]["messageId"].is_string(), "{elements:?}");
    receiver.wait_for("/fits1", 1, SOON).await;
    receiver.wait_for("/fits2", 1, SOON).await;
    receiver
        .assert_stays("/too-big", 0, Duration::from_millis(300))
        .await;

    let huge = json!([{"destination": receiver.url("/huge"), "body": "h".repeat(100_001)}]);
    let response = app.post("/v2/batch").json(&huge).send().await.unwrap();
    assert_error(
        response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "batch over 100 bodies",
    )
    .await;
}
