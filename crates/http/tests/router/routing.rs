//! What unknown paths, wrong methods and trailing slashes get.

use axum::http::StatusCode;

use crate::support::*;

#[tokio::test]
async fn an_unknown_route_answers_404_json() {
    let app = app();
    let (status, body) = app.call(empty(authed("GET", "/v2/nothing"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn a_wrong_method_answers_405_json() {
    let app = app();
    let (status, body) = app
        .call(empty(authed("GET", "/v2/publish/https://example.com")))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["error"].is_string());
    let (status, _) = app.call(empty(authed("PUT", "/v2/dlq"))).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn collection_paths_accept_a_trailing_slash() {
    let app = app();
    for (method, uri) in [
        ("GET", "/v2/dlq/"),
        ("DELETE", "/v2/messages/"),
        ("GET", "/v2/keys/"),
    ] {
        assert_eq!(
            app.call(empty(authed(method, uri))).await.0,
            StatusCode::OK,
            "{method} {uri}"
        );
    }
    let (status, body) = app.call(empty(authed("POST", "/v2/dlq/retry/"))).await;
    assert_eq!((status, &body["cursor"]), (StatusCode::CREATED, &"".into()));
}
