//! `/v2/keys`: list and rotate the signing keys.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn the_signing_keys_are_listed() {
    let app = app();
    let (status, body) = app.call(empty(authed("GET", "/v2/keys"))).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"current": "sig_current", "next": "sig_next"})
        )
    );
}

#[tokio::test]
async fn rotation_makes_next_current_and_a_fresh_key_next() {
    let app = app();
    let (status, body) = app.call(empty(authed("POST", "/v2/keys/rotate"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["current"], "sig_next");
    let next = body["next"].as_str().unwrap();
    assert!(next.starts_with("sig_") && next != "sig_next");
    let (_, listed) = app.call(empty(authed("GET", "/v2/keys"))).await;
    assert_eq!(listed, body);
}
