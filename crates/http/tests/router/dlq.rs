//! `/v2/dlq`: list, read, delete, retry.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::*;

fn seeded() -> App {
    let app = app();
    app.seed_dlq("1000-0", "https://a.example/x");
    app.seed_dlq("1000-1", "https://b.example/x");
    app.seed_dlq("1000-2", "https://b.example/x");
    app
}

fn dlq_ids(page: &serde_json::Value) -> Vec<&str> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["dlqId"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_dlq_is_listed_in_pages_with_a_cursor_that_disappears_at_the_end() {
    let app = seeded();
    let (status, first) = app.call(empty(authed("GET", "/v2/dlq?count=2"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(dlq_ids(&first), ["1000-0", "1000-1"]);
    assert_eq!(first["messages"][0]["responseStatus"], 500);
    assert_eq!(first["messages"][0]["messageId"], "msg_1000-0");
    let cursor = first["cursor"].as_str().unwrap();
    let (_, second) = app
        .call(empty(authed(
            "GET",
            &format!("/v2/dlq?count=2&cursor={cursor}"),
        )))
        .await;
    assert_eq!(dlq_ids(&second), ["1000-2"]);
    assert!(second.get("cursor").is_none());
}

#[tokio::test]
async fn the_dlq_is_filtered_by_query_and_refuses_host_filters() {
    let app = seeded();
    let (_, page) = app
        .call(empty(authed("GET", "/v2/dlq?url=https://a.example/x")))
        .await;
    assert_eq!(dlq_ids(&page), ["1000-0"]);
    let (status, body) = app
        .call(empty(authed("GET", "/v2/dlq?host=a.example")))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn one_dlq_entry_is_read_and_an_unknown_one_answers_404() {
    let app = seeded();
    let (status, body) = app.call(empty(authed("GET", "/v2/dlq/1000-1"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["dlqId"], "1000-1");
    assert_eq!(body["responseBody"], "boom");
    let (status, body) = app.call(empty(authed("GET", "/v2/dlq/9-9"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn deleting_one_entry_answers_an_empty_object_and_a_second_delete_404() {
    let app = seeded();
    let (status, body) = app.call(empty(authed("DELETE", "/v2/dlq/1000-1"))).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    assert_eq!(app.memory.dlq_ids(), ["1000-0", "1000-2"]);
    let (status, _) = app.call(empty(authed("DELETE", "/v2/dlq/1000-1"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bulk_delete_takes_ids_from_the_query_or_the_legacy_body() {
    let app = seeded();
    let (status, body) = app
        .call(empty(authed("DELETE", "/v2/dlq?dlqIds=1000-0,1000-2")))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"deleted": 2})));
    let (_, body) = app
        .call(json_body(
            authed("DELETE", "/v2/dlq"),
            r#"{"dlqIds":["1000-1"]}"#,
        ))
        .await;
    assert_eq!(body, json!({"deleted": 1}));
    assert!(app.memory.dlq_ids().is_empty());
}

#[tokio::test]
async fn bulk_delete_of_a_page_returns_the_cursor_while_more_is_left() {
    let app = seeded();
    let (_, body) = app.call(empty(authed("DELETE", "/v2/dlq?count=2"))).await;
    assert_eq!(body["deleted"], 2);
    let cursor = body["cursor"].as_str().unwrap();
    let (_, body) = app
        .call(empty(authed(
            "DELETE",
            &format!("/v2/dlq?count=2&cursor={cursor}"),
        )))
        .await;
    assert_eq!(body, json!({"deleted": 1}));
}

#[tokio::test]
async fn retrying_one_entry_answers_201_with_a_new_message_and_header_overrides() {
    let app = seeded();
    let request = authed("POST", "/v2/dlq/retry/1000-1").header("Upstash-Retries", "0");
    let (status, body) = app.call(empty(request)).await;
    assert_eq!(status, StatusCode::CREATED);
    let stored = app.memory.stored();
    assert_eq!(body, json!({"messageId": stored[0].id.to_string()}));
    assert_eq!(
        (stored[0].url.as_str(), stored[0].max_retries),
        ("https://b.example/x", 0)
    );
    assert_eq!(app.memory.dlq_ids(), ["1000-0", "1000-2"]);
    let (status, _) = app
        .call(empty(authed("POST", "/v2/dlq/retry/1000-1")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_retry_with_a_bad_config_header_answers_400_and_keeps_the_entry() {
    let app = seeded();
    let request = authed("POST", "/v2/dlq/retry/1000-1").header("Upstash-Retries", "lots");
    assert_eq!(app.call(empty(request)).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(app.memory.dlq_ids().len(), 3);
}

#[tokio::test]
async fn retrying_many_answers_201_with_responses_and_an_empty_cursor_at_the_end() {
    let app = seeded();
    let (status, body) = app
        .call(empty(authed(
            "POST",
            "/v2/dlq/retry?dlqIds=1000-0&dlqIds=1000-2",
        )))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["cursor"], "");
    assert_eq!(body["responses"].as_array().unwrap().len(), 2);
    assert!(
        body["responses"][0]["messageId"]
            .as_str()
            .unwrap()
            .starts_with("msg_")
    );
    assert_eq!(app.memory.dlq_ids(), ["1000-1"]);
}

#[tokio::test]
async fn retrying_a_page_returns_the_next_cursor_while_more_is_left() {
    let app = seeded();
    let (_, body) = app
        .call(empty(authed("POST", "/v2/dlq/retry?count=2")))
        .await;
    assert_eq!(body["responses"].as_array().unwrap().len(), 2);
    assert_eq!(body["cursor"], "1000-1");
    assert_eq!(app.memory.stored().len(), 2);
}

#[tokio::test]
async fn retrying_unknown_ids_answers_404_and_revives_nothing() {
    let app = seeded();
    let (status, body) = app
        .call(empty(authed("POST", "/v2/dlq/retry?dlqIds=1000-0,9-9")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());
    assert!(app.memory.stored().is_empty());
}
