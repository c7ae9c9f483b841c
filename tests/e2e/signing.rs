//! Signatures (§4.1) checked by an independent verifier, and the signing keys (§4.2).

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::jwt::{assert_signed, verify};
use crate::support::{Receiver, SOON, TestApp, spawn_app};

const BODY: &[u8] = b"sign \xff\x00 me";

async fn keys(app: &TestApp) -> Value {
    let response = app.get("/v2/keys").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn rotate(app: &TestApp) -> Value {
    let response = app.post("/v2/keys/rotate").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_delivery_carries_a_signature_an_independent_verifier_accepts() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let destination = receiver.url("/signed?x=1&y=two");
    app.publish_ok(&destination, &[], BODY).await;

    let got = receiver.wait_for("/signed", 1, SOON).await;
    let r = &got[0];
    let claims = assert_signed(
        r.header("upstash-signature"),
        app.keys.current.expose(),
        &destination,
        &r.body,
    );
    assert_eq!(claims["iss"], "Upstash");
    assert_eq!(
        claims["sub"], destination,
        "sub is the exact destination URL, query included"
    );
    let other = verify(
        r.header("upstash-signature").unwrap(),
        app.keys.next.expose(),
        &destination,
        &r.body,
    );
    assert!(
        other.is_err(),
        "deliveries are signed with the current key, not the next one"
    );
    let tampered = verify(
        r.header("upstash-signature").unwrap(),
        app.keys.current.expose(),
        &destination,
        b"other",
    );
    assert!(
        tampered.is_err(),
        "the body claim binds the signature to the body"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_data_dir_serves_the_public_dev_keys() {
    let app = spawn_app().await;
    let keys = keys(&app).await;
    assert_eq!(keys["current"], qpost::DEV_CURRENT_SIGNING_KEY);
    assert_eq!(keys["next"], qpost::DEV_NEXT_SIGNING_KEY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_promotes_next_and_later_deliveries_are_signed_with_the_new_current() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let before = keys(&app).await;
    let rotated = rotate(&app).await;
    assert_eq!(rotated["current"], before["next"]);
    let new_next = rotated["next"].as_str().expect("next key");
    assert!(new_next.starts_with("sig_"), "{new_next}");
    assert_ne!(rotated["next"], before["current"]);
    assert_ne!(rotated["next"], before["next"]);
    assert_eq!(
        keys(&app).await,
        rotated,
        "GET /v2/keys shows the rotated keys"
    );

    let destination = receiver.url("/after-rotation");
    app.publish_ok(&destination, &[], BODY).await;
    let got = receiver.wait_for("/after-rotation", 1, SOON).await;
    let token = got[0].header("upstash-signature");
    assert_signed(
        token,
        rotated["current"].as_str().unwrap(),
        &destination,
        BODY,
    );
    let old = verify(
        token.unwrap(),
        before["current"].as_str().unwrap(),
        &destination,
        BODY,
    );
    assert!(old.is_err(), "the retired key must no longer sign");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_keys_survive_a_restart_on_the_same_data_dir() {
    let mut app = spawn_app().await;
    let receiver = Receiver::start().await;
    let rotated = rotate(&app).await;
    app.restart().await;

    assert_eq!(keys(&app).await, rotated);
    assert_eq!(app.keys.current.expose(), rotated["current"]);
    assert_eq!(app.keys.next.expose(), rotated["next"]);
    let destination = receiver.url("/after-restart");
    app.publish_ok(&destination, &[], BODY).await;
    let got = receiver.wait_for("/after-restart", 1, SOON).await;
    assert_signed(
        got[0].header("upstash-signature"),
        rotated["current"].as_str().unwrap(),
        &destination,
        BODY,
    );
}
