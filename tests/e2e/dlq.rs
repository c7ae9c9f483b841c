//! The dead-letter queue (§7): listing with paging and filters, reading, deleting and
//! retrying entries.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Receiver, Reply, SOON, TestApp, assert_error, now_ms, spawn_app};

/// Publishes to `path` (which must fail) with no retries and waits for its DLQ entry.
async fn dead_letter(
    app: &TestApp,
    receiver: &Receiver,
    path: &str,
    headers: &[(&str, &str)],
) -> (String, Value) {
    let mut all = vec![("Upstash-Retries", "0")];
    all.extend_from_slice(headers);
    let id = app
        .publish_ok(&receiver.url(path), &all, format!("body of {path}"))
        .await;
    let entry = app.wait_for_dlq_entry(&id).await;
    (id, entry)
}

fn dlq_id(entry: &Value) -> String {
    entry["dlqId"].as_str().expect("dlqId").to_string()
}

fn ids(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .expect("messages array")
        .iter()
        .map(dlq_id)
        .collect()
}

fn has_no_cursor(page: &Value) -> bool {
    page.get("cursor").is_none_or(|c| c.is_null() || c == "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_message_with_no_retries_lands_in_the_dlq_with_its_last_response() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply_always("/fail", Reply::status(500).body("broken"));
    let (id, _) = dead_letter(&app, &receiver, "/fail", &[]).await;

    let entries = app.dlq_entries().await;
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry["messageId"], id);
    assert_eq!(entry["url"], receiver.url("/fail"));
    assert_eq!(entry["responseStatus"], 500);
    assert_eq!(entry["responseBody"], "broken");
    assert_eq!(entry["maxRetries"], 0);
    assert_eq!(entry["body"], "body of /fail");
    assert!(entry["dlqId"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(
        app.message_status(&id).await,
        StatusCode::NOT_FOUND,
        "a dead-lettered message is no longer pending"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dlq_pages_one_entry_at_a_time_and_the_cursor_visits_each_once() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply_always("/fail", Reply::status(500));
    for _ in 0..3 {
        dead_letter(&app, &receiver, "/fail", &[]).await;
    }
    let all: HashSet<String> = ids(&app.dlq("").await).into_iter().collect();
    assert_eq!(all.len(), 3);

    let mut seen = Vec::new();
    let mut page = app.dlq("?count=1").await;
    for _ in 0..4 {
        let page_ids = ids(&page);
        assert!(
            page_ids.len() <= 1,
            "count=1 but the page holds {page_ids:?}"
        );
        seen.extend(page_ids);
        if has_no_cursor(&page) {
            break;
        }
        let cursor = page["cursor"]
            .as_str()
            .expect("cursor is a string")
            .to_string();
        page = app.dlq(&format!("?count=1&cursor={cursor}")).await;
    }
    assert!(has_no_cursor(&page), "the cursor never ran out: {page}");
    assert_eq!(seen.len(), 3, "every entry seen exactly once: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_filters_select_by_url_response_status_label_and_date() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply_always("/fail-a", Reply::status(500));
    receiver.reply_always("/fail-b", Reply::status(404));
    let (_, a) = dead_letter(&app, &receiver, "/fail-a", &[("Upstash-Label", "alpha")]).await;
    // Clock separation between the two entries, not a wait for the server.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let between = now_ms();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let (_, b) = dead_letter(&app, &receiver, "/fail-b", &[("Upstash-Label", "beta")]).await;
    let (a, b) = (dlq_id(&a), dlq_id(&b));

    let url_a = receiver.url("/fail-a");
    let cases = [
        (format!("?url={url_a}"), vec![a.clone()]),
        ("?responseStatus=404".to_string(), vec![b.clone()]),
        ("?label=alpha".to_string(), vec![a.clone()]),
        (
            "?label=alpha&label=beta".to_string(),
            vec![a.clone(), b.clone()],
        ),
        (format!("?fromDate={between}"), vec![b.clone()]),
        (format!("?toDate={between}"), vec![a.clone()]),
        ("?label=beta&responseStatus=500".to_string(), vec![]),
    ];
    for (query, expected) in cases {
        let mut found = ids(&app.dlq(&query).await);
        found.sort();
        let mut expected = expected;
        expected.sort();
        assert_eq!(found, expected, "GET /v2/dlq{query}");
    }
    let response = app.get("/v2/dlq?host=127.0.0.1").send().await.unwrap();
    assert_error(
        response,
        StatusCode::BAD_REQUEST,
        "the DLQ refuses a host filter",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dlq_entry_can_be_read_and_deleted_exactly_once() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply_always("/fail", Reply::status(502).body("bad gateway"));
    let (id, entry) = dead_letter(&app, &receiver, "/fail", &[]).await;
    let dlq_id = dlq_id(&entry);

    let response = app.get(&format!("/v2/dlq/{dlq_id}")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let one: Value = response.json().await.unwrap();
    assert_eq!(one["dlqId"], dlq_id);
    assert_eq!(one["messageId"], id);
    assert_eq!(one["url"], receiver.url("/fail"));
    assert_eq!(one["responseStatus"], 502);
    assert_eq!(one["responseBody"], "bad gateway");
    assert_eq!(one["maxRetries"], 0);

    let first = app
        .delete(&format!("/v2/dlq/{dlq_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let second = app
        .delete(&format!("/v2/dlq/{dlq_id}"))
        .send()
        .await
        .unwrap();
    assert_error(
        second,
        StatusCode::NOT_FOUND,
        "deleting a deleted DLQ entry",
    )
    .await;
    let gone = app.get(&format!("/v2/dlq/{dlq_id}")).send().await.unwrap();
    assert_error(gone, StatusCode::NOT_FOUND, "reading a deleted DLQ entry").await;
}

/// Three dead-lettered entries' ids, in creation order.
async fn three_entries(app: &TestApp, receiver: &Receiver) -> Vec<String> {
    receiver.reply_always("/fail", Reply::status(500));
    let mut out = Vec::new();
    for _ in 0..3 {
        out.push(dlq_id(&dead_letter(app, receiver, "/fail", &[]).await.1));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_delete_removes_the_dlq_ids_given_in_the_query() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let ids3 = three_entries(&app, &receiver).await;

    let query = format!("/v2/dlq?dlqIds={}&dlqIds={}", ids3[0], ids3[1]);
    let response = app.delete(&query).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["deleted"], 2);
    assert_eq!(ids(&app.dlq("").await), [ids3[2].clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_delete_accepts_the_legacy_json_body() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let ids3 = three_entries(&app, &receiver).await;

    let response = app
        .delete("/v2/dlq")
        .json(&json!({ "dlqIds": [ids3[1], ids3[2]] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["deleted"], 2);
    assert_eq!(ids(&app.dlq("").await), [ids3[0].clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_a_dlq_entry_delivers_a_new_message_to_the_now_healthy_destination() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply("/flaky", [Reply::status(500)]);
    let (id, entry) =
        dead_letter(&app, &receiver, "/flaky", &[("Content-Type", "text/plain")]).await;
    let dlq_id = dlq_id(&entry);

    let response = app
        .post(&format!("/v2/dlq/retry/{dlq_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let retried: Value = response.json().await.unwrap();
    let new_id = retried["messageId"]
        .as_str()
        .expect("messageId")
        .to_string();
    assert_ne!(new_id, id, "a retry is a new message");
    let gone = app.get(&format!("/v2/dlq/{dlq_id}")).send().await.unwrap();
    assert_eq!(
        gone.status(),
        StatusCode::NOT_FOUND,
        "the retried entry leaves the DLQ"
    );

    let got = receiver.wait_for("/flaky", 2, SOON).await;
    assert_eq!(got[1].header("upstash-message-id"), Some(new_id.as_str()));
    assert_eq!(got[1].header("upstash-retried"), Some("0"));
    assert_eq!(got[1].header("content-type"), Some("text/plain"));
    assert_eq!(got[1].body, got[0].body);
    app.wait_until_gone(&new_id).await;
    assert!(app.dlq_entries().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dlq_retry_with_upstash_retries_0_overrides_the_original_retries() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply_always("/down", Reply::status(500));
    let headers = [("Upstash-Retries", "1"), ("Upstash-Retry-Delay", "50")];
    let id = app.publish_ok(&receiver.url("/down"), &headers, "x").await;
    let entry = app.wait_for_dlq_entry(&id).await;
    assert_eq!(entry["maxRetries"], 1);
    assert_eq!(receiver.requests("/down").len(), 2);

    let response = app
        .post(&format!("/v2/dlq/retry/{}", dlq_id(&entry)))
        .header("Upstash-Retries", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let new_id = response.json::<Value>().await.unwrap()["messageId"]
        .as_str()
        .unwrap()
        .to_string();

    let again = app.wait_for_dlq_entry(&new_id).await;
    assert_eq!(again["maxRetries"], 0, "the override applies: {again}");
    receiver
        .assert_stays("/down", 3, Duration::from_millis(400))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_many_dlq_entries_creates_one_new_message_each() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply("/flaky", [Reply::status(500), Reply::status(500)]);
    let (_, a) = dead_letter(&app, &receiver, "/flaky", &[]).await;
    let (_, b) = dead_letter(&app, &receiver, "/flaky", &[]).await;

    let query = format!("/v2/dlq/retry?dlqIds={}&dlqIds={}", dlq_id(&a), dlq_id(&b));
    let response = app.post(&query).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let new_ids: HashSet<String> = body["responses"]
        .as_array()
        .expect("responses array")
        .iter()
        .map(|r| r["messageId"].as_str().expect("messageId").to_string())
        .collect();
    assert_eq!(new_ids.len(), 2, "{body}");
    assert!(
        has_no_cursor(&body),
        "a retry of listed ids has nothing more to page: {body}"
    );
    assert!(app.dlq_entries().await.is_empty());

    let got = receiver.wait_for("/flaky", 4, SOON).await;
    let delivered: HashSet<String> = got[2..]
        .iter()
        .map(|r| r.header("upstash-message-id").unwrap().to_string())
        .collect();
    assert_eq!(delivered, new_ids);
}
