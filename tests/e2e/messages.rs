//! Pending messages (§6): cancelling one, many by id (query or legacy body), and by filter.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Receiver, SOON, TestApp, assert_error, spawn_app};

/// Publishes a message to `path` that will not be due during the test.
async fn pending(app: &TestApp, receiver: &Receiver, path: &str) -> String {
    app.publish_ok(&receiver.url(path), &[("Upstash-Delay", "1h")], "later")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_delayed_message_means_it_is_never_delivered() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let id = app
        .publish_ok(
            &receiver.url("/cancelled"),
            &[("Upstash-Delay", "1s")],
            "no",
        )
        .await;

    let response = app
        .delete(&format!("/v2/messages/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "cancelled": 1 })
    );
    assert_eq!(app.message_status(&id).await, StatusCode::NOT_FOUND);

    // A sentinel published later with the same delay is due later: once it has
    // arrived, the cancelled message would have arrived too.
    app.publish_ok(
        &receiver.url("/sentinel"),
        &[("Upstash-Delay", "1s")],
        "yes",
    )
    .await;
    receiver.wait_for("/sentinel", 1, SOON).await;
    assert!(
        receiver.requests("/cancelled").is_empty(),
        "a cancelled message was delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_cancel_by_message_ids_in_the_query_cancels_exactly_those() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let ids: Vec<String> = pending_many(&app, &receiver, "/p", 3).await;

    let query = format!("/v2/messages?messageIds={}&messageIds={}", ids[0], ids[1]);
    let response = app.delete(&query).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["cancelled"], 2);
    assert_eq!(app.message_status(&ids[0]).await, StatusCode::NOT_FOUND);
    assert_eq!(app.message_status(&ids[1]).await, StatusCode::NOT_FOUND);
    assert_eq!(app.message_status(&ids[2]).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_cancel_accepts_the_legacy_json_body() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let ids = pending_many(&app, &receiver, "/p", 3).await;

    let response = app
        .delete("/v2/messages")
        .json(&json!({ "messageIds": [ids[1], ids[2]] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["cancelled"], 2);
    assert_eq!(app.message_status(&ids[0]).await, StatusCode::OK);
    assert_eq!(app.message_status(&ids[1]).await, StatusCode::NOT_FOUND);
    assert_eq!(app.message_status(&ids[2]).await, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_cancel_with_a_url_filter_cancels_only_matching_messages() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let x = pending_many(&app, &receiver, "/x", 2).await;
    let y = pending(&app, &receiver, "/y").await;

    let response = app
        .delete(&format!("/v2/messages?url={}", receiver.url("/x")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["cancelled"], 2);
    for id in &x {
        assert_eq!(app.message_status(id).await, StatusCode::NOT_FOUND);
    }
    assert_eq!(app.message_status(&y).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_unknown_message_is_404() {
    let app = spawn_app().await;
    let response = app
        .delete("/v2/messages/msg_doesNotExist123")
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "cancel of an unknown id").await;
}

/// `n` pending messages to `path`, published one after another.
async fn pending_many(app: &TestApp, receiver: &Receiver, path: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(pending(app, receiver, path).await);
    }
    ids
}
