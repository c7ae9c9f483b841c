//! The logs (§11): `GET /v2/events` and `GET /v2/logs` show every state transition of a
//! message in order, filter on every documented field, and page with a cursor.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Receiver, Reply, SOON, TestApp, assert_error, eventually, spawn_app};

/// `GET {path}{query}` as JSON, asserting 200.
async fn get_json(app: &TestApp, path_and_query: &str) -> Value {
    let response = app.get(path_and_query).send().await.expect("list logs");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::OK, "GET {path_and_query}: {text}");
    serde_json::from_str(&text).expect("logs answer JSON")
}

/// `GET /v2/events{query}` as JSON.
async fn events(app: &TestApp, query: &str) -> Value {
    get_json(app, &format!("/v2/events{query}")).await
}

fn entries(page: &Value) -> Vec<Value> {
    page["events"].as_array().expect("events array").clone()
}

fn states(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["state"].as_str().expect("state").to_string())
        .collect()
}

fn message_ids(page: &Value) -> BTreeSet<String> {
    entries(page)
        .iter()
        .map(|e| e["messageId"].as_str().expect("messageId").to_string())
        .collect()
}

/// The events of message `id`, oldest first.
async fn history(app: &TestApp, id: &str) -> Vec<Value> {
    let mut list = entries(&events(app, &format!("?messageId={id}")).await);
    list.reverse();
    list
}

/// Waits until the history of `id` is exactly `expected` (oldest first) and returns it.
async fn wait_for_history(app: &TestApp, id: &str, expected: &[&str]) -> Vec<Value> {
    let found = eventually(SOON, move || async move {
        let list = history(app, id).await;
        (states(&list) == expected).then_some(list)
    });
    match found.await {
        Some(list) => list,
        None => panic!(
            "history of {id} is {:?}, wanted {expected:?}",
            states(&history(app, id).await)
        ),
    }
}

fn assert_time_ordered(list: &[Value]) {
    let times: Vec<i64> = list
        .iter()
        .map(|e| e["time"].as_i64().expect("time"))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "times go backwards: {times:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_failing_twice_then_delivered_logs_every_transition_in_order() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let failure = Reply::status(500).header("X-Why", "busy").body("try later");
    receiver.reply("/flaky", [failure.clone(), failure]);
    let headers = [("Upstash-Retries", "3"), ("Upstash-Retry-Delay", "100")];
    let id = app.publish_ok(&receiver.url("/flaky"), &headers, "x").await;

    let expected = [
        "CREATED",
        "ACTIVE",
        "ERROR",
        "RETRY",
        "ACTIVE",
        "ERROR",
        "RETRY",
        "ACTIVE",
        "DELIVERED",
    ];
    let list = wait_for_history(&app, &id, &expected).await;
    assert_time_ordered(&list);
    let error = &list[2];
    assert_eq!(error["responseStatus"], 500);
    assert_eq!(error["responseBody"], STANDARD.encode("try later"));
    assert_eq!(error["responseHeader"]["X-Why"], json!(["busy"]));
    assert_eq!(error["responseHeaders"], error["responseHeader"]);
    assert!(error["error"].as_str().is_some_and(|e| !e.is_empty()));
    let retry = &list[3];
    let next = retry["nextDeliveryTime"]
        .as_i64()
        .expect("nextDeliveryTime");
    assert!(next >= retry["time"].as_i64().unwrap(), "{retry}");
    assert_eq!(list[8]["responseStatus"], 200);
    for entry in &list {
        assert_eq!(entry["messageId"], id);
        assert_eq!(entry["url"], receiver.url("/flaky"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_retries_run_out_logs_error_then_failed() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply_always("/down", Reply::status(503));
    let headers = [("Upstash-Retries", "1"), ("Upstash-Retry-Delay", "100")];
    let id = app.publish_ok(&receiver.url("/down"), &headers, "x").await;

    let expected = [
        "CREATED", "ACTIVE", "ERROR", "RETRY", "ACTIVE", "ERROR", "FAILED",
    ];
    let list = wait_for_history(&app, &id, &expected).await;
    assert_time_ordered(&list);
    assert_eq!(list[6]["responseStatus"], 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_delayed_message_logs_created_cancel_requested_then_canceled() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let id = app
        .publish_ok(&receiver.url("/later"), &[("Upstash-Delay", "1h")], "x")
        .await;
    let created = wait_for_history(&app, &id, &["CREATED"]).await;
    assert!(created[0]["time"].as_i64().is_some());

    let response = app
        .delete(&format!("/v2/messages/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let list = wait_for_history(&app, &id, &["CREATED", "CANCEL_REQUESTED", "CANCELED"]).await;
    assert_time_ordered(&list);
    assert!(receiver.requests("/later").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_entry_carries_the_request_as_the_sdks_read_it() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let headers = [
        ("Upstash-Delay", "1h"),
        ("Upstash-Method", "PUT"),
        ("Upstash-Retries", "2"),
        ("Upstash-Retry-Delay", "1000 * retried"),
        ("Upstash-Timeout", "5s"),
        ("Upstash-Callback", &receiver.url("/cb")),
        ("Upstash-Failure-Callback", &receiver.url("/fcb")),
        ("Upstash-Callback-Forward-X-Cb", "cb"),
        ("Upstash-Label", "first,second"),
        ("Upstash-Forward-X-Custom", "c"),
        ("Content-Type", "text/plain"),
        ("X-Forwarded-For", "10.9.8.7"),
    ];
    let id = app
        .publish_ok(&receiver.url("/full"), &headers, "hello")
        .await;

    let list = wait_for_history(&app, &id, &["CREATED"]).await;
    let e = &list[0];
    assert!(e["time"].is_i64());
    assert_eq!(e["url"], receiver.url("/full"));
    assert_eq!(e["method"], "PUT");
    assert_eq!(e["header"]["X-Custom"], json!(["c"]));
    assert_eq!(e["header"]["Content-Type"], json!(["text/plain"]));
    assert_eq!(e["body"], STANDARD.encode("hello"));
    assert_eq!(e["maxRetries"], 2);
    assert_eq!(e["retryDelayExpression"], "1000 * retried");
    assert_eq!(e["retryDelayExpr"], "1000 * retried");
    assert_eq!(e["timeout"], 5_000);
    assert_eq!(e["callback"], receiver.url("/cb"));
    assert_eq!(e["failureCallback"], receiver.url("/fcb"));
    assert_eq!(e["callbackHeaders"]["X-Cb"], json!(["cb"]));
    assert_eq!(e["label"], "first");
    assert_eq!(e["labels"], json!(["first", "second"]));
    assert_eq!(e["callerIP"], "10.9.8.7");
}

/// Messages in every shape a filter can tell apart, each waited on until its history is final.
struct Zoo {
    labelled: String,
    local_host: String,
    queued: String,
    grouped: String,
    failed: String,
    cancelled: String,
}

async fn zoo(app: &TestApp, receiver: &Receiver) -> Zoo {
    receiver.reply_always("/zoo/fail", Reply::status(500));
    let labelled_headers = [
        ("Upstash-Label", "alpha,shared"),
        ("X-Forwarded-For", "10.0.0.7"),
        ("Upstash-Flow-Control-Key", "fk-1"),
        ("Upstash-Flow-Control-Value", "parallelism=2"),
    ];
    let labelled = app
        .publish_ok(&receiver.url("/zoo/a"), &labelled_headers, "a")
        .await;
    let local = format!("http://localhost:{}/zoo/b?q=1", receiver.addr.port());
    let local_headers = [("Upstash-Delay", "1h"), ("Upstash-Label", "beta")];
    let local_host = app.publish_ok(&local, &local_headers, "b").await;
    let queued = enqueue(app, "lq", &receiver.url("/zoo/q")).await;
    let grouped = publish_to_group(app, receiver).await;
    let failed = app
        .publish_ok(&receiver.url("/zoo/fail"), &[("Upstash-Retries", "0")], "f")
        .await;
    let cancelled = app
        .publish_ok(&receiver.url("/zoo/c"), &[("Upstash-Delay", "1h")], "c")
        .await;
    let response = app
        .delete(&format!("/v2/messages/{cancelled}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let delivered = ["CREATED", "ACTIVE", "DELIVERED"];
    for id in [&labelled, &queued, &grouped] {
        wait_for_history(app, id, &delivered).await;
    }
    wait_for_history(app, &local_host, &["CREATED"]).await;
    wait_for_history(app, &failed, &["CREATED", "ACTIVE", "ERROR", "FAILED"]).await;
    let cancel = ["CREATED", "CANCEL_REQUESTED", "CANCELED"];
    wait_for_history(app, &cancelled, &cancel).await;
    Zoo {
        labelled,
        local_host,
        queued,
        grouped,
        failed,
        cancelled,
    }
}

async fn enqueue(app: &TestApp, queue: &str, url: &str) -> String {
    let response = app
        .post(&format!("/v2/enqueue/{queue}/{url}"))
        .body("q")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let json: Value = response.json().await.unwrap();
    json["messageId"].as_str().expect("messageId").to_string()
}

async fn publish_to_group(app: &TestApp, receiver: &Receiver) -> String {
    let endpoints = json!({"endpoints": [{"name": "ep1", "url": receiver.url("/zoo/t")}]});
    let response = app
        .post("/v2/topics/grp/endpoints")
        .json(&endpoints)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = app.publish("grp").body("t").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let json: Value = response.json().await.unwrap();
    json[0]["messageId"]
        .as_str()
        .expect("messageId")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filter_selects_only_the_matching_events() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let z = zoo(&app, &receiver).await;
    let ids =
        |list: &[&String]| -> BTreeSet<String> { list.iter().map(|s| s.to_string()).collect() };

    let cases: Vec<(String, BTreeSet<String>)> = vec![
        (format!("?messageId={}", z.failed), ids(&[&z.failed])),
        (
            format!("?messageIds={}&messageIds={}", z.failed, z.queued),
            ids(&[&z.failed, &z.queued]),
        ),
        (
            format!("?messageIds={},{}", z.failed, z.queued),
            ids(&[&z.failed, &z.queued]),
        ),
        (
            "?state=DELIVERED".into(),
            ids(&[&z.labelled, &z.queued, &z.grouped]),
        ),
        ("?state=FAILED".into(), ids(&[&z.failed])),
        ("?state=CANCEL_REQUESTED".into(), ids(&[&z.cancelled])),
        ("?state=CANCELED".into(), ids(&[&z.cancelled])),
        ("?state=CANCELLED".into(), ids(&[&z.cancelled])),
        (
            format!("?url={}", receiver.url("/zoo/a")),
            ids(&[&z.labelled]),
        ),
        ("?host=localhost".into(), ids(&[&z.local_host])),
        ("?path=/zoo/b".into(), ids(&[&z.local_host])),
        ("?topicName=grp".into(), ids(&[&z.grouped])),
        ("?queueName=lq".into(), ids(&[&z.queued])),
        ("?scheduleId=scd_none".into(), ids(&[])),
        ("?label=alpha".into(), ids(&[&z.labelled])),
        ("?label=shared".into(), ids(&[&z.labelled])),
        (
            "?label=beta&label=alpha".into(),
            ids(&[&z.labelled, &z.local_host]),
        ),
        ("?flowControlKey=fk-1".into(), ids(&[&z.labelled])),
        ("?callerIp=10.0.0.7".into(), ids(&[&z.labelled])),
        ("?callerIP=10.0.0.7".into(), ids(&[&z.labelled])),
        ("?label=alpha&state=FAILED".into(), ids(&[])),
    ];
    for (query, expected) in cases {
        let page = events(&app, &query).await;
        assert_eq!(message_ids(&page), expected, "{query}");
    }

    let delivered = entries(&events(&app, "?state=DELIVERED").await);
    assert_eq!(states(&delivered), ["DELIVERED"; 3]);
    let progress = entries(&events(&app, "?state=IN_PROGRESS").await);
    assert!(!progress.is_empty());
    assert!(
        states(&progress)
            .iter()
            .all(|s| ["ACTIVE", "RETRY", "ERROR"].contains(&s.as_str())),
        "{progress:?}"
    );
    let both = entries(&events(&app, "?label=alpha&state=DELIVERED").await);
    assert_eq!(states(&both), ["DELIVERED"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn date_filters_are_inclusive_bounds_on_the_event_time() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let z = zoo(&app, &receiver).await;
    let all = entries(&events(&app, "").await);
    let failed = history(&app, &z.failed).await;
    let pivot = failed[0]["time"].as_i64().expect("time");
    let time = |e: &Value| e["time"].as_i64().expect("time");

    let from = entries(&events(&app, &format!("?fromDate={pivot}")).await);
    let want_from = all.iter().filter(|e| time(e) >= pivot).count();
    assert_eq!(from.len(), want_from);
    assert!(from.iter().all(|e| time(e) >= pivot));
    assert!(
        from.iter().any(|e| time(e) == pivot),
        "fromDate is inclusive"
    );

    let to = entries(&events(&app, &format!("?toDate={pivot}")).await);
    let want_to = all.iter().filter(|e| time(e) <= pivot).count();
    assert_eq!(to.len(), want_to);
    assert!(to.iter().any(|e| time(e) == pivot), "toDate is inclusive");

    let only = entries(&events(&app, &format!("?fromDate={pivot}&toDate={pivot}")).await);
    assert!(!only.is_empty() && only.iter().all(|e| time(e) == pivot));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_filters_states_dates_counts_and_cursors_are_refused() {
    let app = spawn_app().await;
    for query in [
        "?colour=red",
        "?state=SLEEPING",
        "?fromDate=yesterday",
        "?toDate=1.5",
        "?count=0",
        "?count=ten",
        "?count=-3",
        "?cursor=not-a-cursor",
    ] {
        for path in ["/v2/events", "/v2/logs"] {
            let response = app.get(&format!("{path}{query}")).send().await.unwrap();
            assert_error(response, StatusCode::BAD_REQUEST, &format!("{path}{query}")).await;
        }
    }
    let capped = events(&app, "?count=5000").await;
    assert!(capped["events"].is_array(), "a count above 1000 is capped");
}

/// Publishes `n` delayed messages labelled `label`; returns their ids.
async fn publish_delayed(app: &TestApp, receiver: &Receiver, label: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let headers = [("Upstash-Delay", "1h"), ("Upstash-Label", label)];
        ids.push(
            app.publish_ok(&receiver.url("/page"), &headers, format!("{i}"))
                .await,
        );
    }
    ids
}

/// Follows cursors from the first page of `query` (which must already hold `count=`).
async fn all_pages(app: &TestApp, path: &str, query: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}{query}&cursor={c}"),
            None => format!("{path}{query}"),
        };
        let page = get_json(app, &url).await;
        assert_eq!(page["events"], page["logs"], "{url}");
        pages.push(entries(&page));
        match page.get("cursor").and_then(Value::as_str) {
            Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
            _ => return pages,
        }
        assert!(pages.len() < 100, "paging does not end");
    }
}

/// A key telling events apart: message, state and time.
fn key(e: &Value) -> String {
    format!("{} {} {}", e["messageId"], e["state"], e["time"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_paging_with_small_counts_visits_each_event_once() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let ids = publish_delayed(&app, &receiver, "pg", 7).await;
    publish_delayed(&app, &receiver, "other", 2).await;
    for id in &ids[..2] {
        let response = app
            .delete(&format!("/v2/messages/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let whole = entries(&events(&app, "?label=pg").await);
    assert_eq!(whole.len(), 7 + 2 * 2);

    for (path, count) in [("/v2/events", 2), ("/v2/logs", 3), ("/v2/events", 1)] {
        let pages = all_pages(&app, path, &format!("?label=pg&count={count}")).await;
        let (last, full) = pages.split_last().expect("one page at least");
        assert!(
            full.iter().all(|p| p.len() == count),
            "{path} count={count}"
        );
        assert!(!last.is_empty() && last.len() <= count);
        let seen: Vec<String> = pages.iter().flatten().map(key).collect();
        let want: Vec<String> = whole.iter().map(key).collect();
        assert_eq!(
            seen, want,
            "{path} count={count}: same events, same order, once each"
        );
    }
    let unfiltered = all_pages(&app, "/v2/events", "?count=4").await;
    assert_eq!(unfiltered.iter().flatten().count(), 7 + 2 * 2 + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_and_logs_paths_answer_the_same_page() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    publish_delayed(&app, &receiver, "same", 3).await;

    for query in ["", "?label=same", "?count=2", "?state=CREATED&count=1"] {
        let events = get_json(&app, &format!("/v2/events{query}")).await;
        let logs = get_json(&app, &format!("/v2/logs{query}")).await;
        let slash = get_json(&app, &format!("/v2/logs/{query}")).await;
        assert_eq!(events, logs, "{query}");
        assert_eq!(events, slash, "{query}");
        assert_eq!(events["events"], events["logs"], "{query}");
    }
    let last = get_json(&app, "/v2/events?count=1000").await;
    assert!(
        last.get("cursor").is_none(),
        "no cursor on the last page: {last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_older_than_the_configured_retention_are_purged() {
    let mut app = spawn_app().await;
    let receiver = Receiver::start().await;
    let id = app
        .publish_ok(&receiver.url("/kept"), &[("Upstash-Delay", "1h")], "x")
        .await;
    wait_for_history(&app, &id, &["CREATED"]).await;

    // The purge runs when the server starts (and every minute after).
    let retention = std::time::Duration::from_millis(1);
    app.restart_with(|s| s.limits.event_retention = retention)
        .await;
    let purged = eventually(SOON, || async {
        history(&app, &id).await.is_empty().then_some(())
    });
    purged
        .await
        .expect("the CREATED event outlived its retention");
    assert_eq!(
        app.message_status(&id).await,
        StatusCode::OK,
        "retention drops log events, never pending messages"
    );
}
