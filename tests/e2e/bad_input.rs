//! Rejected requests (§1.2, §1.3, DESIGN "Bad input and limits"): the right 4xx with a
//! JSON error, and no state change.

use reqwest::StatusCode;

use crate::support::{Receiver, SOON, TestApp, assert_error, spawn_app, spawn_app_with};

/// Waits for a sentinel published after the requests under test, so that any delivery
/// they caused has happened by then.
async fn flush(app: &TestApp, receiver: &Receiver) {
    app.publish_ok(&receiver.url("/sentinel"), &[], "s").await;
    receiver.wait_for("/sentinel", 1, SOON).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_token_are_refused_with_401() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let keys = app.client.get(app.url("/v2/keys")).send().await.unwrap();
    assert_error(
        keys,
        StatusCode::UNAUTHORIZED,
        "GET /v2/keys without a token",
    )
    .await;
    let url = app.url(&format!("/v2/publish/{}", receiver.url("/x")));
    let publish = app.client.post(url).body("x").send().await.unwrap();
    assert_error(publish, StatusCode::UNAUTHORIZED, "publish without a token").await;

    flush(&app, &receiver).await;
    assert!(
        receiver.requests("/x").is_empty(),
        "a refused publish was delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_with_401() {
    let app = spawn_app().await;
    let wrong = format!("{}x", app.token);
    let response = app
        .client
        .get(app.url("/v2/keys"))
        .bearer_auth(wrong)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "a wrong bearer token").await;
    let response = app
        .client
        .get(app.url("/v2/keys?qstash_token=nope"))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "a wrong qstash_token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_may_be_given_as_the_qstash_token_query_parameter() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let token: String = form_urlencoded_value(&app.token);
    let keys = app
        .client
        .get(app.url(&format!("/v2/keys?qstash_token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(keys.status(), StatusCode::OK);

    let destination = receiver.url(&format!("/q?x=1&qstash_token={token}"));
    let url = app.url(&format!("/v2/publish/{destination}"));
    let response = app.client.post(url).body("via query").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let got = receiver.wait_for("/q", 1, SOON).await;
    assert_eq!(
        got[0].path_and_query, "/q?x=1",
        "the token is not passed on to the destination"
    );
}

fn form_urlencoded_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_publish_config_is_refused_with_400_and_nothing_is_delivered() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let without_scheme = format!("{}/bad", receiver.addr);
    let response = app.publish(&without_scheme).body("x").send().await.unwrap();
    assert_error(
        response,
        StatusCode::BAD_REQUEST,
        "a destination without scheme",
    )
    .await;

    let cases = [
        ("Upstash-Delay", "soon"),
        ("Upstash-Retries", "abc"),
        ("Upstash-Retry-Delay", "pow(2"),
        ("Upstash-Method", "FETCH"),
    ];
    for (name, value) in cases {
        let response = app
            .publish(&receiver.url("/bad"))
            .header(name, value)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_error(
            response,
            StatusCode::BAD_REQUEST,
            &format!("{name}: {value}"),
        )
        .await;
    }

    flush(&app, &receiver).await;
    assert!(
        receiver.requests("/bad").is_empty(),
        "a refused publish was delivered"
    );
    assert!(app.dlq_entries().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_refused_with_413_and_nothing_is_stored() {
    let app = spawn_app_with(|s| s.limits.max_body_bytes = 1024).await;
    let receiver = Receiver::start().await;
    let response = app
        .publish(&receiver.url("/big"))
        .body(vec![b'x'; 1025])
        .send()
        .await
        .unwrap();
    assert_error(
        response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "a body one byte over the limit",
    )
    .await;
    app.publish_ok(&receiver.url("/fits"), &[], vec![b'x'; 1024])
        .await;

    flush(&app, &receiver).await;
    receiver.wait_for("/fits", 1, SOON).await;
    assert!(
        receiver.requests("/big").is_empty(),
        "a refused publish was delivered"
    );
    assert!(app.dlq_entries().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_answer_404_with_a_json_error() {
    let app = spawn_app().await;
    let response = app.get("/v2/no-such-route").send().await.unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "an unknown route").await;
    let response = app.get("/nothing/here").send().await.unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "a path outside /v2").await;
}
