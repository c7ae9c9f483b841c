//! Bearer and query tokens: who gets in.

use axum::http::header::AUTHORIZATION;
use axum::http::{Request, StatusCode};

use crate::support::*;

#[tokio::test]
async fn a_request_without_a_token_is_refused_with_401_json() {
    let app = app();
    let (status, body) = app.call(empty(Request::builder().uri("/v2/keys"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn a_request_with_a_wrong_token_is_refused_and_changes_nothing() {
    let app = app();
    let request = Request::builder()
        .method("POST")
        .uri("/v2/publish/https://example.com/hook")
        .header(AUTHORIZATION, "Bearer test-tokeN");
    let (status, body) = app.call(empty(request)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].is_string());
    assert!(app.memory.stored().is_empty());
}

#[tokio::test]
async fn the_qstash_token_query_parameter_is_accepted() {
    let app = app();
    let (status, _) = app
        .call(empty(
            Request::builder().uri(format!("/v2/keys?qstash_token={TOKEN}")),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn any_of_the_configured_tokens_is_accepted() {
    let app = app();
    let request = Request::builder()
        .uri("/v2/keys")
        .header(AUTHORIZATION, "Bearer other-token");
    assert_eq!(app.call(empty(request)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_route_is_refused_before_a_token_is_shown() {
    let app = app();
    let (status, _) = app.call(empty(Request::builder().uri("/v2/nothing"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
