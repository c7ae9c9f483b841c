//! Queues (§10): the `/v2/queues` API, auto-creation by enqueue, FIFO order through
//! retries and callbacks, parallelism, pause and lag. Concurrency is measured from the
//! receiver's arrival times and a fixed answer delay per path.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::receiver::Recorded;
use crate::support::{Receiver, Reply, SOON, TestApp, assert_error, eventually, spawn_app};

/// The most requests that were being answered at once, when each takes `answer` to
/// answer: request `i` is open during `[at_i, at_i + answer)`. A next request can only
/// arrive after qpost got the previous answer, so this is exact.
pub fn max_concurrency(requests: &[Recorded], answer: Duration) -> usize {
    requests
        .iter()
        .map(|r| {
            requests
                .iter()
                .filter(|o| o.at <= r.at && r.at < o.at + answer)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// The bodies of `requests` as text, in arrival order.
pub fn bodies(requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

pub async fn upsert(app: &TestApp, body: Value) -> reqwest::Response {
    app.post("/v2/queues")
        .json(&body)
        .send()
        .await
        .expect("upsert queue")
}

async fn upsert_ok(app: &TestApp, body: Value) {
    let response = upsert(app, body.clone()).await;
    assert_eq!(response.status(), StatusCode::OK, "upsert {body}");
}

/// `POST /v2/enqueue/{queue}/{destination}`, asserting 200; returns the message id.
pub async fn enqueue(
    app: &TestApp,
    queue: &str,
    destination: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> String {
    let mut request = app
        .post(&format!("/v2/enqueue/{queue}/{destination}"))
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("enqueue");
    let status = response.status();
    let json: Value = response.json().await.expect("enqueue answers JSON");
    assert_eq!(status, StatusCode::OK, "enqueue to {queue} answered {json}");
    json["messageId"].as_str().expect("messageId").to_string()
}

async fn queue(app: &TestApp, name: &str) -> (StatusCode, Value) {
    let response = app
        .get(&format!("/v2/queues/{name}"))
        .send()
        .await
        .expect("get queue");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post_ok(app: &TestApp, path: &str) {
    let response = app.post(path).send().await.expect(path);
    assert_eq!(response.status(), StatusCode::OK, "POST {path}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_api_creates_updates_lists_reads_and_deletes_queues() {
    let app = spawn_app().await;
    upsert_ok(&app, json!({"queueName": "orders", "parallelism": 2})).await;
    upsert_ok(&app, json!({"queueName": "emails", "paused": true})).await;

    let (status, orders) = queue(&app, "orders").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(orders["name"], "orders");
    assert_eq!(orders["parallelism"], 2);
    assert_eq!(orders["paused"], false);
    assert_eq!(orders["lag"], 0);
    let created = orders["createdAt"].as_i64().expect("createdAt is a number");
    assert!(orders["updatedAt"].as_i64() >= Some(created));
    let (_, emails) = queue(&app, "emails").await;
    assert_eq!(
        (emails["parallelism"].clone(), emails["paused"].clone()),
        (json!(1), json!(true))
    );

    upsert_ok(&app, json!({"queueName": "orders", "parallelism": 5})).await;
    let (_, orders) = queue(&app, "orders").await;
    assert_eq!(orders["parallelism"], 5);
    assert_eq!(
        orders["createdAt"].as_i64(),
        Some(created),
        "an update keeps createdAt"
    );

    let list: Value = app
        .get("/v2/queues")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list
        .as_array()
        .expect("a bare array")
        .iter()
        .filter_map(|q| q["name"].as_str())
        .collect();
    assert_eq!(names, ["emails", "orders"]);

    for _ in 0..2 {
        let response = app.delete("/v2/queues/orders").send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "delete answers 200 even when gone"
        );
    }
    assert_eq!(queue(&app, "orders").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queue_requests_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let over = upsert(&app, json!({"queueName": "q", "parallelism": 101})).await;
    assert_error(
        over,
        StatusCode::PRECONDITION_FAILED,
        "parallelism over the limit",
    )
    .await;
    for body in [
        json!({"queueName": "bad name"}),
        json!({"queueName": "q", "parallelism": 0}),
        json!({"queueName": "q", "paused": "no"}),
        json!({"parallelism": 2}),
    ] {
        assert_error(
            upsert(&app, body.clone()).await,
            StatusCode::BAD_REQUEST,
            &body.to_string(),
        )
        .await;
    }
    let malformed = app
        .post("/v2/queues")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(malformed, StatusCode::BAD_REQUEST, "malformed JSON").await;
    assert_eq!(
        queue(&app, "q").await.0,
        StatusCode::NOT_FOUND,
        "nothing was created"
    );
    let unknown = app.post("/v2/queues/missing/pause").send().await.unwrap();
    assert_error(unknown, StatusCode::NOT_FOUND, "pause of an unknown queue").await;
    let bad = app.get("/v2/queues/a%20b").send().await.unwrap();
    assert_error(bad, StatusCode::BAD_REQUEST, "an invalid name in the path").await;
    let bad_enqueue = app
        .post("/v2/enqueue/a%20b/http://127.0.0.1:1/")
        .send()
        .await
        .unwrap();
    assert_error(
        bad_enqueue,
        StatusCode::BAD_REQUEST,
        "enqueue to an invalid name",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_creates_a_missing_queue_with_parallelism_one() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    enqueue(&app, "auto-made", &receiver.url("/auto"), &[], "x").await;
    let (status, q) = queue(&app, "auto-made").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (q["parallelism"].clone(), q["paused"].clone()),
        (json!(1), json!(false))
    );
    let got = receiver.wait_for("/auto", 1, SOON).await;
    assert_eq!(&got[0].body[..], b"x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_delivers_in_order_and_holds_later_messages_while_the_head_retries() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply("/fifo", [Reply::status(500), Reply::status(500)]);
    let url = receiver.url("/fifo");
    let headers = [("Upstash-Retries", "3"), ("Upstash-Retry-Delay", "150")];
    for n in 0..5 {
        enqueue(&app, "fifo", &url, &headers, &n.to_string()).await;
    }

    let got = receiver.wait_for("/fifo", 7, SOON).await;
    assert_eq!(
        bodies(&got),
        ["0", "0", "0", "1", "2", "3", "4"],
        "nothing overtakes the head while it retries"
    );
    receiver
        .assert_stays("/fifo", 7, Duration::from_millis(300))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_with_parallelism_n_has_at_most_n_deliveries_in_flight() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let answer = Duration::from_millis(250);
    receiver.reply_always("/wide", Reply::ok().delay(answer));
    upsert_ok(&app, json!({"queueName": "wide", "parallelism": 3})).await;
    for n in 0..9 {
        enqueue(&app, "wide", &receiver.url("/wide"), &[], &n.to_string()).await;
    }

    let got = receiver.wait_for("/wide", 9, SOON).await;
    assert_eq!(
        max_concurrency(&got, answer),
        3,
        "exactly 3 at once at the most"
    );
    let mut delivered = bodies(&got);
    delivered.sort();
    assert_eq!(delivered, ["0", "1", "2", "3", "4", "5", "6", "7", "8"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_queue_accepts_messages_counts_them_as_lag_and_delivers_after_resume() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    upsert_ok(&app, json!({"queueName": "held", "paused": true})).await;
    for n in 0..3 {
        enqueue(&app, "held", &receiver.url("/held"), &[], &n.to_string()).await;
    }
    receiver
        .assert_stays("/held", 0, Duration::from_millis(500))
        .await;
    let (_, q) = queue(&app, "held").await;
    assert_eq!(
        (q["paused"].clone(), q["lag"].clone()),
        (json!(true), json!(3))
    );

    post_ok(&app, "/v2/queues/held/resume").await;
    let got = receiver.wait_for("/held", 3, SOON).await;
    assert_eq!(bodies(&got), ["0", "1", "2"]);
    let app_ref = &app;
    let drained = eventually(SOON, move || async move {
        let (_, q) = queue(app_ref, "held").await;
        (q["lag"] == 0).then_some(q)
    });
    let q = drained
        .await
        .expect("lag drops to 0 once all are delivered");
    assert_eq!(q["paused"], false);

    post_ok(&app, "/v2/queues/held/pause").await;
    enqueue(&app, "held", &receiver.url("/held"), &[], "late").await;
    receiver
        .assert_stays("/held", 3, Duration::from_millis(400))
        .await;
    upsert_ok(&app, json!({"queueName": "held", "paused": false})).await;
    receiver.wait_for("/held", 4, SOON).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_message_waits_for_the_callback_of_the_one_before() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let callback_time = Duration::from_millis(300);
    receiver.reply_always("/cb", Reply::ok().delay(callback_time));
    let callback = receiver.url("/cb");
    let headers = [("Upstash-Callback", callback.as_str())];
    enqueue(&app, "with-cb", &receiver.url("/job"), &headers, "first").await;
    enqueue(&app, "with-cb", &receiver.url("/job"), &[], "second").await;

    let jobs = receiver.wait_for("/job", 2, SOON).await;
    let callbacks = receiver.requests("/cb");
    assert_eq!(callbacks.len(), 1);
    assert!(
        jobs[1].at >= callbacks[0].at + callback_time,
        "the second message started before the first one's callback was answered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_head_releases_the_queue_after_its_failure_callback() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply_always("/broken", Reply::status(500));
    let failure_time = Duration::from_millis(300);
    receiver.reply_always("/failed", Reply::ok().delay(failure_time));
    let failure = receiver.url("/failed");
    let headers = [
        ("Upstash-Retries", "1"),
        ("Upstash-Retry-Delay", "100"),
        ("Upstash-Failure-Callback", failure.as_str()),
    ];
    enqueue(&app, "failing", &receiver.url("/broken"), &headers, "bad").await;
    enqueue(&app, "failing", &receiver.url("/after"), &[], "good").await;

    let after = receiver.wait_for("/after", 1, SOON).await;
    assert_eq!(
        receiver.requests("/broken").len(),
        2,
        "the head used its retry first"
    );
    let failed = receiver.requests("/failed");
    assert_eq!(failed.len(), 1);
    assert!(after[0].at >= failed[0].at + failure_time);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_queue_stays_paused_and_ordered_across_a_restart() {
    let mut app = spawn_app().await;
    let receiver = Receiver::start().await;
    upsert_ok(&app, json!({"queueName": "durable", "paused": true})).await;
    for n in 0..3 {
        enqueue(
            &app,
            "durable",
            &receiver.url("/durable"),
            &[],
            &n.to_string(),
        )
        .await;
    }
    app.restart().await;
    receiver
        .assert_stays("/durable", 0, Duration::from_millis(500))
        .await;
    assert_eq!(queue(&app, "durable").await.1["lag"], 3);

    post_ok(&app, "/v2/queues/durable/resume").await;
    let got = receiver.wait_for("/durable", 3, SOON).await;
    assert_eq!(bodies(&got), ["0", "1", "2"]);
}
