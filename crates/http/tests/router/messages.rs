//! `/v2/messages`: read, cancel, bulk cancel.

use axum::http::StatusCode;

use crate::support::*;

fn ids(app: &App) -> Vec<String> {
    app.memory
        .stored()
        .into_iter()
        .map(|m| m.id.to_string())
        .collect()
}

fn seeded() -> App {
    let app = app();
    app.seed_message("msg_a", "https://a.example/x");
    app.seed_message("msg_b", "https://b.example/x");
    app.seed_message("msg_c", "https://b.example/x");
    app
}

#[tokio::test]
async fn a_pending_message_is_read_with_the_fields_every_sdk_requires() {
    let app = seeded();
    let (status, body) = app.call(empty(authed("GET", "/v2/messages/msg_a"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["messageId"], "msg_a");
    assert_eq!(body["url"], "https://a.example/x");
    for field in ["method", "maxRetries", "notBefore", "createdAt"] {
        assert!(body.get(field).is_some(), "{field}");
    }
}

#[tokio::test]
async fn an_unknown_message_id_answers_404_json() {
    let app = seeded();
    let (status, body) = app
        .call(empty(authed("GET", "/v2/messages/msg_nope")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn cancelling_a_message_answers_cancelled_1_and_a_second_cancel_404() {
    let app = seeded();
    let (status, body) = app
        .call(empty(authed("DELETE", "/v2/messages/msg_a")))
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, serde_json::json!({"cancelled": 1}))
    );
    assert_eq!(ids(&app), ["msg_b", "msg_c"]);
    let (status, body) = app
        .call(empty(authed("DELETE", "/v2/messages/msg_a")))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn bulk_cancel_takes_repeated_or_comma_separated_ids_from_the_query() {
    let app = seeded();
    let (_, body) = app
        .call(empty(authed(
            "DELETE",
            "/v2/messages?messageIds=msg_a&messageIds=msg_b",
        )))
        .await;
    assert_eq!(body["cancelled"], 2);
    let app = seeded();
    let (_, body) = app
        .call(empty(authed(
            "DELETE",
            "/v2/messages?messageIds=msg_a,msg_c",
        )))
        .await;
    assert_eq!(body["cancelled"], 2);
    assert_eq!(ids(&app), ["msg_b"]);
}

#[tokio::test]
async fn bulk_cancel_by_query_filter_and_count_cancels_only_matching_messages() {
    let app = seeded();
    let uri = "/v2/messages?url=https%3A%2F%2Fb.example%2Fx&count=1";
    let (status, body) = app.call(empty(authed("DELETE", uri))).await;
    assert_eq!((status, &body["cancelled"]), (StatusCode::OK, &1.into()));
    assert_eq!(ids(&app), ["msg_a", "msg_c"]);
}

#[tokio::test]
async fn bulk_cancel_takes_the_legacy_json_body() {
    let app = seeded();
    let (_, body) = app
        .call(json_body(
            authed("DELETE", "/v2/messages"),
            r#"{"messageIds":["msg_b"]}"#,
        ))
        .await;
    assert_eq!(body["cancelled"], 1);
    assert_eq!(ids(&app), ["msg_a", "msg_c"]);
}

#[tokio::test]
async fn an_empty_message_ids_array_or_no_selection_at_all_cancels_everything() {
    let app = seeded();
    let (_, body) = app
        .call(json_body(
            authed("DELETE", "/v2/messages"),
            r#"{"messageIds":[]}"#,
        ))
        .await;
    assert_eq!(body["cancelled"], 3);
    let app = seeded();
    let (_, body) = app.call(empty(authed("DELETE", "/v2/messages"))).await;
    assert_eq!(body["cancelled"], 3);
}

#[tokio::test]
async fn query_ids_win_over_an_empty_json_body() {
    let app = seeded();
    let (_, body) = app
        .call(json_body(
            authed("DELETE", "/v2/messages?messageIds=msg_a"),
            "{}",
        ))
        .await;
    assert_eq!(body["cancelled"], 1);
    assert_eq!(ids(&app), ["msg_b", "msg_c"]);
}

#[tokio::test]
async fn malformed_json_bodies_unknown_filters_and_bad_counts_answer_400_and_cancel_nothing() {
    let app = seeded();
    let requests = [
        json_body(authed("DELETE", "/v2/messages"), r#"{"messageIds": ["#),
        json_body(authed("DELETE", "/v2/messages"), "[1]"),
        empty(authed("DELETE", "/v2/messages?colour=red")),
        empty(authed("DELETE", "/v2/messages?count=0")),
    ];
    for request in requests {
        let (status, body) = app.call(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["error"].is_string());
    }
    assert_eq!(ids(&app).len(), 3);
}
